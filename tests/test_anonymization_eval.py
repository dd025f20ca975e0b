"""``facelens eval anonymization``: privacy curves and utility, on made data and on LFW.

The always-on test builds a small LFW-like tree from the astronaut (three
"people": the photo, its mirror image, a shifted crop); the LFW test uses
the shared data (skipped when absent).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens.cli.main import cli
from facelens.evaluation.anonymization import Sample, lfw_samples, measure, size_threshold
from facelens.io.image import load_image
from facelens.pipeline.faces import FacePipeline
from facelens.types import Detection
from tests.conftest import data_path


@pytest.fixture()
def tiny_lfw(tmp_path: Path, astronaut: np.ndarray) -> Path:
    root = tmp_path / "lfw"
    variants = {
        "A_One": astronaut,
        "B_Two": np.ascontiguousarray(astronaut[:, ::-1]),
        "C_Three": np.ascontiguousarray(np.pad(astronaut, ((40, 0), (0, 40), (0, 0)))[:512, 40:]),
    }
    for name, pixels in variants.items():
        (root / name).mkdir(parents=True)
        Image.fromarray(pixels).save(root / name / f"{name}_0001.jpg", quality=95)
    return root


def test_eval_anonymization_writes_curves_json_and_a_self_contained_html(
    tiny_lfw: Path, tmp_path: Path
) -> None:
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            *("eval", "anonymization", "--lfw", str(tiny_lfw), "--faces", "3"),
            *("--sizes", "32,96", "--methods", "none,box,blur"),
            *("--recognizers", "sface-2021dec-int8bq", "--html", str(html), "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["samples"] == {"lfw": 3} and data["attack"]["fmr"] == 0.01
    cells = data["reidentification"]["lfw"]
    for size in ("32", "96"):
        assert cells["none"]["sface-2021dec-int8bq"][size]["rate"] == 1.0  # the attack's ceiling
        assert cells["box"]["sface-2021dec-int8bq"][size]["rate"] == 0.0
        altered = data["utility_share_altered"]["lfw"]
        assert altered["none"][size] == 0.0 < altered["box"][size] < 0.6
    assert set(data["worst_rate"]) == {"box", "blur"}
    page = html.read_text()
    assert page.count("<svg") == 2 and "re-identification rate" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)


@pytest.mark.shared_data
@pytest.mark.slow
def test_shipped_strengths_on_lfw_faces_of_24_and_128_px() -> None:
    """20 LFW people at 24 and 128 px, attacked by SFace and dlib with the original photo:
    box and ellipse let nobody be re-identified; blur and pixelate (which keep a face's
    colours in place) at most 1 face in 10 (docs/benchmarks.md#anonymization-privacy)."""
    root = data_path("lfw")
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    samples = lfw_samples(root, 20, FacePipeline())
    curves = measure(
        {"lfw": samples},
        sizes=[24, 128],
        methods=["none", "blur", "pixelate", "box", "ellipse"],
        recognizers=["sface-2021dec-int8bq", "dlib-resnet-v1"],
    ).to_dict()
    cells = curves["reidentification"]["lfw"]
    assert all(c["rate"] == 1.0 for by_size in cells["none"].values() for c in by_size.values())
    assert curves["worst_rate"]["box"] == curves["worst_rate"]["ellipse"] == 0.0, cells
    assert curves["worst_rate"]["blur"] <= 0.1 and curves["worst_rate"]["pixelate"] <= 0.1


def test_lfw_samples_skip_leaves_out_the_people_tuned_on(tiny_lfw: Path) -> None:
    """``skip`` holds out the first people of the seeded order: the faces it gives are the
    ones after them, none of the skipped people, for final numbers on faces not tuned on."""
    finder = FacePipeline()
    every = [s.source for s in lfw_samples(tiny_lfw, 3, finder)]
    held_out = [s.source for s in lfw_samples(tiny_lfw, 1, finder, skip=2)]
    assert held_out == every[2:] and not set(held_out) & set(every[:2])
    html = tiny_lfw.parent / "held.html"
    result = CliRunner().invoke(
        cli,
        [
            *("eval", "anonymization", "--lfw", str(tiny_lfw), "--faces", "2", "--skip", "1"),
            *("--sizes", "96", "--methods", "none", "--recognizers", "sface-2021dec-int8bq"),
            *("--html", str(html), "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["samples"] == {"lfw": 2} and data["lfw_skip"] == 1
    assert "lfw (2 faces, after the first 1 people)" in html.read_text()


def test_size_threshold_is_fmr_1e2_among_different_peoples_originals() -> None:
    """Each size gets the attacker's threshold at FMR 1e-2 among different people's originals
    of that size; frames of one person never count as different people; too few pairs fall
    back to the calibrated threshold."""
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((40, 8))
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    people = [f"p{i}" for i in range(40)]
    scores = templates @ templates.T
    impostors = scores[~np.eye(40, dtype=bool)]
    assert size_threshold(templates, people, 0.3) == pytest.approx(np.quantile(impostors, 0.99))
    # the same 40 templates as 20 people with 2 frames each: the same-person pairs are left out
    pairs = [f"p{i // 2}" for i in range(40)]
    same = np.array([[a == b for b in pairs] for a in pairs])
    expected = np.quantile(scores[~same], 0.99)
    assert size_threshold(templates, pairs, 0.3) == pytest.approx(expected)
    assert size_threshold(templates[:20], people[:20], 0.3) == 0.3  # 380 pairs: calibrated


@pytest.mark.shared_data
@pytest.mark.slow
def test_grain_hides_the_lfw_faces_a_plain_blur_or_mosaic_left_matchable() -> None:
    """The LFW faces that SFace matched to their original at FMR 1e-2 after a plain blur or
    mosaic at 128 px (cosine 0.31-0.32 for a threshold of 0.30, run of 2026-12-06) stay
    below the threshold with a margin once the grain is added."""
    root = data_path("lfw")
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    folder = root / "images_deepfunneled"
    names = ("John_Salazar", "Calvin_Joseph_Coleman", "Wanda_de_la_Jesus", "Willis_Roberts")
    finder = FacePipeline()
    samples = []
    for name in names:
        pixels = load_image(folder / name / f"{name}_0001.jpg").pixels
        found = finder.detect(pixels, embed=False)
        centre = np.array([pixels.shape[1] / 2, pixels.shape[0] / 2])
        face = min(found, key=lambda f: float(np.linalg.norm(np.array(f.box.center) - centre)))
        samples.append(Sample(name, pixels, Detection(face.box, face.landmarks, face.score)))
    curves = measure(
        {"lfw": samples},
        sizes=[128, 256],
        methods=["blur", "pixelate"],
        recognizers=["sface-2021dec-int8bq"],
    )
    threshold = curves.thresholds["sface-2021dec-int8bq"]
    for (_, method, _, size), cell in curves.cells.items():
        assert max(cell.cosines) < threshold - 0.03, (method, size, cell.cosines)
