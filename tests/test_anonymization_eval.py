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
from facelens.evaluation.anonymization import lfw_samples, measure
from facelens.pipeline.faces import FacePipeline
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
