"""Issue 18: tight face crops analysed as one face, and facelens's own expression model.

Always-on tests make their own images (scikit-image's astronaut, a blank
thumbnail); the real-data tests read CK+48 and FER2013 from ``FACELENS_DATA``
and skip without them. Floors sit below what ``benchmarks/expression_accuracy.py``
measured (docs/benchmarks.md#expression) and above what the previous model
reaches, so they fail if the new model or the pipeline regresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from facelens import FaceLens
from facelens.analysis.analyzer import (
    EXPRESSION_MODELS,
    AttributeAnalyzer,
    default_expression_model,
)
from facelens.analysis.crops import TIGHT_CROP_MAX_SIDE
from facelens.analysis.tight import attribute_faces
from facelens.cli.main import cli
from facelens.models import registry
from facelens.models.attributes import EXPRESSIONS
from facelens.models.runtime import using_engine
from facelens.models.spec import verified_model_bytes
from facelens.pipeline.faces import FacePipeline
from facelens.service.app import create_app
from facelens.service.settings import ServiceSettings
from tests.conftest import data_path
from tests.test_service import auth, jpeg, make_keys

REPO = Path(__file__).resolve().parent.parent
CNN = "facelens-expression-cnn48"
INT8 = "facelens-expression-cnn48-int8"
INT8_GAP = 0.02
"""How far the int8 form's accuracy may stray from the float model's on the same faces
(measured: FER2013 validation +0.001, CK+48 and Yale the same; docs/benchmarks.md#expression-int8)."""
CK_FLOOR = 0.62
"""Measured 0.765 on all 927 (docs/benchmarks.md#expression; version 1: 0.685); mini-Xception: 0.584."""
FER_FLOOR = 0.55
"""Measured 0.636 on the 2,872 held-back images (version 1: 0.601); mini-Xception (which saw them in training)
0.575."""


def test_the_new_model_is_registered_and_matches_its_sha256() -> None:
    spec = registry.get_spec(CNN)
    assert spec.task == "attribute" and spec.file == "expression-cnn48.onnx"
    assert verified_model_bytes(spec)  # raises ModelIntegrityError on a sha256 mismatch
    assert set(EXPRESSION_MODELS) == {CNN, INT8, "mini-xception-fer2013"}
    model = AttributeAnalyzer(expression_model=CNN).expression_model
    assert model.input_size == (48, 48)
    int8 = registry.get_spec(INT8)
    assert verified_model_bytes(int8) and int8.file == "expression-cnn48-int8.onnx"
    quantized = AttributeAnalyzer(expression_model=INT8).expression_model
    assert quantized.input_size == (48, 48) and quantized.engine == "onnxruntime"


def _tight_grey_crop(astronaut: np.ndarray, pipeline: FacePipeline, side: int) -> np.ndarray:
    """The astronaut's eyes, nose and mouth only (30% of the face box cut off each side), grey,
    ``side`` px square, RGB: too tight for the detector."""
    face = pipeline.detect(astronaut, embed=False)[0]
    x, y, w, h = (int(v) for v in face.box.as_list())
    inner = astronaut[
        y + int(0.3 * h) : y + h - int(0.3 * h), x + int(0.3 * w) : x + w - int(0.3 * w)
    ]
    grey = cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.repeat(small[:, :, None], 3, axis=2))


def test_a_small_image_with_no_face_found_is_analysed_as_the_face(
    astronaut: np.ndarray, pipeline: FacePipeline, tmp_path: Path
) -> None:
    """A 48x48 face crop where the detector finds nothing: one face, the whole image, said so.
    A blank image of any size is no face, even when the caller says it is a crop."""
    thumbnail = _tight_grey_crop(astronaut, pipeline, 48)
    assert pipeline.detect(thumbnail, embed=False) == []
    with FaceLens(gallery=tmp_path / "g.db") as lens:
        [face] = lens.analyze(thumbnail, age_gender=False)
        assert face.cropped and face.to_dict()["cropped"] is True
        assert face.face.box.as_list() == [0.0, 0.0, 48.0, 48.0]
        assert sum(face.attributes.expression_scores.values()) == pytest.approx(1.0, abs=1e-4)
        large = np.full((TIGHT_CROP_MAX_SIDE + 1, TIGHT_CROP_MAX_SIDE + 1, 3), 128, np.uint8)
        assert lens.analyze(large, age_gender=False) == []  # not small: no face is no face
        for blank in (np.zeros((1, 1, 3), np.uint8), np.full((64, 64, 3), 128, np.uint8)):
            assert lens.analyze(blank, age_gender=False) == []
            assert lens.analyze(blank, age_gender=False, cropped=True) == []
        tiny = cv2.resize(thumbnail, (12, 12), interpolation=cv2.INTER_AREA)
        assert lens.analyze(tiny, age_gender=False) == []  # under 16 px: not taken for a face


def test_cli_cropped_takes_the_whole_image_and_says_so(
    astronaut: np.ndarray, pipeline: FacePipeline, tmp_path: Path
) -> None:
    """--cropped on a tight grey crop of the smiling astronaut: one face, happy, "cropped"."""
    face = pipeline.detect(astronaut, embed=False)[0]
    x, y, w, h = (int(v) for v in face.box.as_list())
    crop = cv2.cvtColor(astronaut[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
    path = tmp_path / "crop.png"
    Image.fromarray(cv2.resize(crop, (64, 64))).save(path)
    result = CliRunner().invoke(
        cli, ["--gallery", str(tmp_path / "g.db"), "analyze", str(path), "--cropped", "--json"]
    )
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["cropped"] is True
    [found] = record["faces"]
    assert found["cropped"] is True and found["box"] == [0.0, 0.0, 64.0, 64.0]
    assert found["attributes"]["expression"] == "happy"
    plain = CliRunner().invoke(
        cli, ["--gallery", str(tmp_path / "g.db"), "analyze", str(path), "--json"]
    )
    [record] = json.loads(plain.stdout)
    assert record["cropped"] is False and record["faces"][0]["cropped"] is False  # detected


def test_service_analyzes_a_crop(astronaut: np.ndarray, tmp_path: Path) -> None:
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"))
    keys = make_keys(settings)
    photo = {"image": ("astronaut.jpg", jpeg(astronaut), "image/jpeg")}
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/analyze?cropped=true&age_gender=false", files=photo, headers=auth(keys["query"])
        )
        assert response.status_code == 200, response.text
        [face] = response.json()["faces"]
        assert face["cropped"] is True and face["box"] == [0.0, 0.0, 512.0, 512.0]
        normal = client.post("/api/analyze", files=photo, headers=auth(keys["query"]))
        assert normal.json()["faces"][0]["cropped"] is False


def test_both_models_read_the_smiling_astronaut(
    pipeline: FacePipeline, astronaut: np.ndarray
) -> None:
    faces = pipeline.detect(astronaut, embed=False)
    for model_id in EXPRESSION_MODELS:
        scores = AttributeAnalyzer(age_gender=False, expression_model=model_id).expression_scores(
            astronaut, faces
        )
        assert EXPRESSIONS[int(scores[0].argmax())] == "happy", model_id
        assert scores.sum() == pytest.approx(1.0, abs=1e-4)


def _pipeline_accuracy(
    paths: list[Path], truth: list[str], pipeline: FacePipeline
) -> dict[str, float]:
    """Accuracy of facelens's model and its int8 form through the pipeline as ``facelens
    analyze`` runs it (largest face or crop), each image detected once for both."""
    models = {m: AttributeAnalyzer(age_gender=False, expression_model=m) for m in (CNN, INT8)}
    hits = dict.fromkeys(models, 0)
    for result, label in zip(
        pipeline.detect_many(paths, embed=False, keep_images=True), truth, strict=True
    ):
        assert result.image is not None
        faces, _ = attribute_faces(pipeline, result.image, result.faces)
        for model_id, attributes in models.items():
            scores = attributes.expression_scores(result.image.pixels, faces[:1])
            hits[model_id] += EXPRESSIONS[int(scores[0].argmax())] == label
    return {model_id: count / len(paths) for model_id, count in hits.items()}


@pytest.mark.shared_data
def test_ckplus48_through_the_pipeline(pipeline: FacePipeline) -> None:
    """Every 3rd CK+48 image of the 6 mapped classes, as photos through the whole pipeline."""
    root = data_path("ckplus48/CK+48")
    mapping = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy"}
    mapping |= {"sadness": "sad", "surprise": "surprise"}
    items = [(label, p) for f, label in mapping.items() for p in sorted((root / f).glob("*.png"))]
    items = items[::3]
    accuracy = _pipeline_accuracy([p for _, p in items], [t for t, _ in items], pipeline)
    assert accuracy[CNN] > CK_FLOOR
    assert accuracy[INT8] > CK_FLOOR and abs(accuracy[INT8] - accuracy[CNN]) <= INT8_GAP


@pytest.mark.shared_data
def test_fer2013_validation_split_through_the_pipeline(pipeline: FacePipeline) -> None:
    """Every 4th image of the held-back FER2013 validation split (never trained on)."""
    root = data_path("fer2013_train")
    sys.path.insert(0, str(REPO / "scripts"))
    from expression_data import fer_items, fer_split

    items = fer_items(root)
    held = [
        item for item, keep in zip(items, fer_split([x for x, _ in items]), strict=True) if keep
    ]
    held = held[::4]
    accuracy = _pipeline_accuracy([p for _, p in held], [t for t, _ in held], pipeline)
    assert accuracy[CNN] > FER_FLOOR
    assert accuracy[INT8] > FER_FLOOR and abs(accuracy[INT8] - accuracy[CNN]) <= INT8_GAP


def test_the_default_is_facelens_model_in_the_form_its_engine_runs_fastest() -> None:
    """float32 (bfloat16 on OpenVINO) where OpenVINO runs the models, int8 on onnxruntime."""
    assert default_expression_model("openvino") == CNN
    assert default_expression_model("onnxruntime") == INT8
    with using_engine("openvino"):
        assert default_expression_model() == CNN
        assert AttributeAnalyzer().expression_model_id == CNN
    with using_engine("onnxruntime"):
        assert AttributeAnalyzer(age_gender=False).expression_model_id == INT8


def test_a_bad_cpu_engine_setting_is_one_line_where_an_engine_is_needed(
    astronaut: np.ndarray, tmp_path: Path
) -> None:
    """The default expression model is decided when a model is wanted, not at import: help
    still works, and analyze names the setting in one line, exit status 1."""
    environment = os.environ | {"FACELENS_CPU_ENGINE": "bogus"}
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    command = [sys.executable, "-m", "facelens.cli.main", "--gallery", str(tmp_path / "g.db")]
    failed = subprocess.run(
        [*command, "analyze", str(photo)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr and "FACELENS_CPU_ENGINE" in failed.stderr
    for arguments in (["--help"], ["analyze", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "facelens.cli.main", *arguments],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "--expression-model" in done.stdout or arguments == ["--help"]
