"""dlib's 5-point shape predictor and face chips run without dlib, against real dlib.

The reference is ``tests/fixtures/dlib_shape_reference.json``, recorded by
``benchmarks/dlib_shape_reference.py`` (real dlib runs only there, in the peer
venv): for the largest face of real photos, the dlib box facelens made, and
dlib's 5 points, chip (its sha256) and whole-pipeline descriptor
(``compute_face_descriptor(image, shape)``). The photos are read from the
shared data folder; those tests skip when it is absent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facelens.io.image import load_image
from facelens.models import registry
from facelens.models.dlib_format import DlibFormatError
from facelens.models.dlib_resnet import (
    SHAPE_PREDICTOR_SHA256,
    DlibResNetEmbedder,
    dlib_box,
)
from facelens.models.dlib_shape import (
    ShapePredictor,
    extract_chip,
    face_chip,
    face_chip_details,
    predict_shape,
    pyramid_down,
    read_shape_predictor,
)
from facelens.pipeline.faces import FacePipeline
from facelens.types import Detection
from tests.conftest import DATA_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "dlib_shape_reference.json"
REFERENCE: dict[str, Any] = json.loads(FIXTURE.read_text())
FACES: list[dict[str, Any]] = REFERENCE["faces"]
MODEL_ID = "dlib-resnet-v1-native"


@pytest.fixture(scope="module")
def embedder() -> DlibResNetEmbedder:
    loaded = registry.load_embedder(MODEL_ID)
    assert isinstance(loaded, DlibResNetEmbedder)
    return loaded


@pytest.fixture(scope="module")
def predictor(embedder: DlibResNetEmbedder) -> ShapePredictor:
    return embedder.shape_predictor


def _sha256(chip: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(chip, dtype=np.uint8).tobytes()).hexdigest()


def _photo(relative: str) -> np.ndarray:
    photo = DATA_ROOT / relative
    if not photo.is_file():
        pytest.skip(
            f"real-photo data not found at {photo}; set FACELENS_DATA to the shared data folder"
        )
    return load_image(photo).pixels


# --- the file ---------------------------------------------------------------------------------


def test_shipped_predictor_has_dlibs_layout(predictor: ShapePredictor) -> None:
    assert predictor.parts == 5
    cascades, trees, splits = predictor.idx1.shape
    assert (cascades, trees, splits) == (15, 500, 15)  # depth-4 trees
    assert predictor.leaves.shape == (15, 500, 16, 10)
    assert predictor.deltas.shape == (15, 800, 2)
    # the mean shape sits inside the box: eyes above the nose
    assert np.all((predictor.initial_shape > 0) & (predictor.initial_shape < 1))
    assert predictor.initial_shape[:4, 1].max() < predictor.initial_shape[4, 1]


def test_truncated_predictor_is_refused(embedder: DlibResNetEmbedder) -> None:
    spec = registry.get_spec(MODEL_ID)
    path = spec.path().parent / "shape_predictor_5_face_landmarks.dat"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHAPE_PREDICTOR_SHA256
    with pytest.raises(DlibFormatError, match="offset"):
        read_shape_predictor(data[:100_000])


# --- geometry on synthetic input --------------------------------------------------------------


def test_pyramid_halves_with_dlibs_size_and_keeps_flat_regions() -> None:
    flat = np.full((41, 30, 3), 200, dtype=np.uint8)
    down = pyramid_down(flat)
    assert down.shape == (19, 13, 3)  # ((41 - 3) // 2, (30 - 3) // 2)
    assert np.all(down == 200)
    spot = np.zeros((9, 9, 3), dtype=np.uint8)
    spot[2, 2] = 255
    # output (0, 0) weighs input rows and columns 0-4 by [1 4 6 4 1]: 255 * 36 / 256 = 35.86
    assert pyramid_down(spot)[0, 0].tolist() == [35, 35, 35]  # truncated, as dlib does
    assert pyramid_down(flat[:8]).shape == (0, 0, 3)  # dlib gives up below 9 pixels


def test_upright_chip_of_a_gradient_samples_where_expected() -> None:
    # an image whose red channel is x and green channel is y: the chip reads its own coordinates
    ys, xs = np.mgrid[0:256, 0:256]
    image = np.stack([xs, ys, np.zeros_like(xs)], axis=2).astype(np.uint8)
    template = np.array(
        [[180.0, 100.0], [150.0, 102.0], [70.0, 100.0], [100.0, 102.0], [125.0, 160.0]]
    )
    details = face_chip_details(template, size=150)
    assert abs(details.angle) < 0.05
    chip = extract_chip(image, details)
    assert chip.shape == (150, 150, 3)
    assert np.all(np.diff(chip[75, :, 0].astype(int)) >= 0)  # x grows left to right
    assert np.all(np.diff(chip[:, 75, 1].astype(int)) >= 0)  # y grows top to bottom
    # the nose (point 4) lands on dlib's template position in the chip
    nose_chip = (0.25 + 0.4901123135679) / 1.5 * 150, (0.25 + 0.6277975316475) / 1.5 * 150
    red, green = chip[round(nose_chip[1]), round(nose_chip[0]), :2]
    assert abs(int(red) - 125) <= 2 and abs(int(green) - 160) <= 2


# --- equivalence with real dlib on real photos ------------------------------------------------


def test_fixture_covers_enough_real_faces() -> None:
    assert len(FACES) >= 50
    assert sum(not f["path"].startswith("lfw/") for f in FACES) >= 5
    assert REFERENCE["shape_predictor_sha256"] == SHAPE_PREDICTOR_SHA256


@pytest.mark.shared_data
def test_points_chips_and_descriptors_equal_real_dlib(
    predictor: ShapePredictor, embedder: DlibResNetEmbedder
) -> None:
    """Given dlib's box: dlib's 5 points, dlib's chip (byte for byte) and dlib's descriptor."""
    chips, expected = [], []
    for face in FACES:
        pixels = _photo(face["path"])
        points = predict_shape(predictor, pixels, tuple(face["rect"]))
        reference = np.array(face["points"], dtype=np.float32)
        assert np.abs(points - reference).max() <= 0.05, face["path"]
        chip = face_chip(pixels, points)
        assert _sha256(chip) == face["chip_sha256"], face["path"]
        chips.append(chip)
        expected.append(face["dlib_descriptor"])
    ours = embedder.descriptors(np.stack(chips)).astype(np.float64)
    theirs = np.array(expected, dtype=np.float64)
    cosines = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= 0.9999


@pytest.mark.shared_data
def test_pipeline_gives_dlibs_box_and_chip() -> None:
    """The pipeline's dlib crop comes from dlib's alignment of the fixture's box (the
    fixture's photos searched enlarged, as when it was made)."""
    pipeline = FacePipeline(embedder=MODEL_ID, large_face=None)
    checked = 0
    for face in FACES[::10]:
        photo = DATA_ROOT / face["path"]
        if not photo.is_file():
            continue
        found = pipeline.detect(photo, embed=False)[0]
        detection = Detection(found.box, found.landmarks, found.score)
        rect = np.array(dlib_box(detection))
        assert np.abs(rect - np.array(face["rect"])).max() <= 1, face["path"]
        if tuple(rect) == tuple(face["rect"]):
            assert found.aligned is not None
            assert _sha256(found.aligned) == face["chip_sha256"], face["path"]
        checked += 1
    if not checked:
        pytest.skip(f"real-photo data not found under {DATA_ROOT}; set FACELENS_DATA")
