"""dlib's ResNet run without dlib: the file reader, the graph, and equivalence with real dlib.

The equivalence tests compare our descriptors with real dlib's, recorded in
``tests/fixtures/dlib_reference.json`` by ``benchmarks/dlib_reference.py`` (dlib
runs only there, in the peer venv). They recompute each chip from the real
photo in the shared data folder and skip when it is absent.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from facelens.errors import ModelIntegrityError
from facelens.io.image import load_image
from facelens.match.calibration import calibration_for
from facelens.models import registry
from facelens.models.dlib_format import DlibFormatError, Reader, read_network
from facelens.models.dlib_resnet import SPEC, DlibResNetEmbedder, build_onnx, match_architecture
from facelens.models.spec import verified_model_bytes
from facelens.pipeline.align import align_face
from facelens.pipeline.faces import FacePipeline
from tests.conftest import DATA_ROOT

pytestmark = pytest.mark.usefixtures("float32_onnxruntime")  # exact checks of our graphs

FIXTURE = Path(__file__).parent / "fixtures" / "dlib_reference.json"
REFERENCE: dict[str, Any] = json.loads(FIXTURE.read_text())
MODEL_ID = SPEC.id


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return verified_model_bytes(registry.get_spec(MODEL_ID))


@pytest.fixture(scope="module")
def embedder() -> DlibResNetEmbedder:
    with pytest.MonkeyPatch.context() as patch:  # float32 on onnxruntime, as the module's tests
        patch.setenv("FACELENS_CPU_ENGINE", "onnxruntime")
        loaded = registry.load_embedder(MODEL_ID)
    assert isinstance(loaded, DlibResNetEmbedder)
    return loaded


# --- dlib's serialization primitives (dlib/serialize.h, dlib/float_details.h) ----------------


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x00", 0),
        (b"\x01\x96", 150),
        (b"\x02\x80\x12", 4736),  # little-endian
        (b"\x81\x1c", -28),  # bit 0x80: negative
    ],
)
def test_integers_decode_as_dlib_writes_them(encoded: bytes, value: int) -> None:
    reader = Reader(encoded)
    assert reader.integer() == value
    assert reader.offset == len(encoded)


def test_floats_are_mantissa_times_power_of_two() -> None:
    # 0.04 as dlib wrote it in the model file: mantissa 0xa3d70a, exponent -28
    reader = Reader(b"\x03\x0a\xd7\xa3\x81\x1c" + b"\x00\x02\x00\x7d")
    assert np.float32(reader.real()) == np.float32(0.04)
    assert reader.real() == float("inf")  # exponent 32000 marks +inf


def test_truncated_file_is_refused(model_bytes: bytes) -> None:
    with pytest.raises(DlibFormatError, match="offset"):
        read_network(model_bytes[: len(model_bytes) // 2])


# --- the real model file ---------------------------------------------------------------------


def test_reader_finds_the_face_resnet_in_the_shipped_file(model_bytes: bytes) -> None:
    network = read_network(model_bytes)
    kinds = Counter(layer.kind for layer in network.layers)
    assert kinds == {
        "con": 29,
        "affine": 29,
        "relu": 29,
        "tag_or_skip": 22,
        "add_prev": 14,
        "avg_pool": 5,
        "max_pool": 1,
        "fc": 1,
    }
    assert network.loss == "loss_metric_2"
    assert network.loss_settings["distance_threshold"] == pytest.approx(0.6)
    assert (network.input.rows, network.input.columns) == (150, 150)
    assert network.input.means_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    first, last = network.layers[0], network.layers[-1]
    assert first.weights["filters"].shape == (32, 3, 7, 7)
    assert (first.settings["stride_y"], first.settings["padding_y"]) == (2, 0)
    assert last.weights["weights"].shape == (256, 128)
    assert "biases" not in last.weights  # fc_no_bias
    parameters = sum(w.size for layer in network.layers for w in layer.weights.values())
    assert 5_500_000 < parameters < 5_700_000  # 22.5 MB of float32
    assert len(match_architecture(network)) == 130


def test_a_network_of_another_shape_is_refused(model_bytes: bytes) -> None:
    network = read_network(model_bytes)
    shorter = replace(network, layers=network.layers[:-2] + network.layers[-1:])
    with pytest.raises(ModelIntegrityError, match="layers"):
        build_onnx(shorter)
    swapped = list(network.layers)
    swapped[5], swapped[6] = swapped[6], swapped[5]  # affine before con
    with pytest.raises(ModelIntegrityError, match="layer 5"):
        build_onnx(replace(network, layers=swapped))


# --- the embedder ----------------------------------------------------------------------------


def test_astronaut_gives_a_unit_128d_template(astronaut: np.ndarray) -> None:
    faces = FacePipeline(embedder=MODEL_ID).detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.aligned is not None and face.aligned.shape == (150, 150, 3)
    assert face.template is not None and face.template.model_id == MODEL_ID
    vector = face.template.vector
    assert vector.shape == (128,) and vector.dtype == np.float32
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


def test_batch_equals_single(embedder: DlibResNetEmbedder, astronaut: np.ndarray) -> None:
    face = registry.load_detector().detect(astronaut)[0]
    chip = align_face(astronaut, face.landmarks, embedder.reference_landmarks, embedder.input_size)
    rng = np.random.default_rng(0)
    chips = np.stack([chip, chip[:, ::-1], *rng.integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)])
    batch = embedder.embed(chips)
    single = np.stack([embedder.embed(c[None])[0] for c in chips])
    assert batch.shape == (5, 128)
    assert np.allclose(batch, single, atol=1e-5)
    assert float(batch[0] @ batch[1]) > 0.9  # the mirrored face is the same person
    assert float(batch[0] @ batch[2]) < 0.9  # noise is not


def test_wrong_chip_size_is_refused(embedder: DlibResNetEmbedder) -> None:
    with pytest.raises(ValueError, match="150"):
        embedder.embed(np.zeros((1, 112, 112, 3), dtype=np.uint8))


# --- equivalence with real dlib on real photos -----------------------------------------------


def _chip_sha256(chip: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(chip, dtype=np.uint8).tobytes()).hexdigest()


def test_fixture_covers_enough_real_faces() -> None:
    faces = REFERENCE["faces"]
    assert len(faces) >= 60
    assert sum(not f["path"].startswith("lfw/") for f in faces) >= 5
    assert REFERENCE["model_file_sha256"] == SPEC.sha256


def test_calibration_fits_dlib_scores() -> None:
    """The stored calibration's false-match rates hold on real dlib descriptors of the fixture."""
    calibration = calibration_for(MODEL_ID)
    faces = REFERENCE["faces"]
    vectors = np.array([f["dlib_descriptor"] for f in faces])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = vectors @ vectors.T
    people = [_person(f["path"]) for f in faces]
    pairs = [(a, b) for a in range(len(faces)) for b in range(a + 1, len(faces))]
    lfw_cross = np.array(
        [
            scores[a, b]
            for a, b in pairs
            if people[a] != people[b]
            and faces[a]["path"].startswith("lfw/")
            and faces[b]["path"].startswith("lfw/")
        ]
    )
    assert len(lfw_cross) > 1500
    for fmr in (1e-1, 1e-2):
        observed = float((lfw_cross >= calibration.threshold_for(fmr)).mean())
        assert fmr / 3 < observed < fmr * 3
    genuine = [scores[a, b] for a, b in pairs if people[a] == people[b]]
    assert len(genuine) >= 3  # two LFW people twice, Obama at 240p and 1080p
    assert min(genuine) >= calibration.threshold_for(1e-2)


def _person(path: str) -> str:
    """LFW's folder name, or the file name without digits and resolution for other photos."""
    if path.startswith("lfw/"):
        return path.split("/")[-2]
    return path.rsplit("/", 1)[-1].split("-")[0].split(".")[0]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "face", REFERENCE["faces"], ids=lambda f: str(f["path"]).rsplit("/", 1)[-1]
)
def test_descriptor_equals_real_dlib(face: dict[str, Any], embedder: DlibResNetEmbedder) -> None:
    photo = DATA_ROOT / face["path"]
    if not photo.is_file():
        pytest.skip(
            f"real-photo data not found at {photo}; set FACELENS_DATA to the shared data folder"
        )
    pixels = load_image(photo).pixels
    landmarks = np.array(face["landmarks"], dtype=np.float32)

    chip = align_face(pixels, landmarks, embedder.reference_landmarks, embedder.input_size)
    assert _chip_sha256(chip) == face["chip_sha256"], (
        "alignment changed: rerun benchmarks/dlib_reference.py"
    )

    ours = embedder.descriptors(chip[None])[0].astype(np.float64)
    theirs = np.array(face["dlib_descriptor"], dtype=np.float64)
    cosine = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
    assert cosine >= 0.9999
    assert np.abs(ours - theirs).max() < 1e-4  # the raw numbers too, not only their direction


@pytest.mark.shared_data
def test_pipeline_finds_the_fixture_landmarks() -> None:
    """The detector, searching enlarged as when the fixture was made, still gives the
    landmarks the fixture's chips were cut from."""
    pipeline = FacePipeline(embedder=MODEL_ID, large_face=None)
    checked = 0
    for face in REFERENCE["faces"][::8]:
        photo = DATA_ROOT / face["path"]
        if not photo.is_file():
            continue
        found = pipeline.detect(photo, embed=False)[0].landmarks
        assert np.abs(found - np.array(face["landmarks"])).max() < 0.5, face["path"]
        checked += 1
    if not checked:
        pytest.skip(f"real-photo data not found under {DATA_ROOT}; set FACELENS_DATA")


# --- the int8 graph ---------------------------------------------------------------------------


def test_int8_model_is_a_checked_file_with_its_provenance() -> None:
    spec = registry.get_spec("dlib-resnet-v1-int8")
    data = verified_model_bytes(spec)  # sha256 checked
    assert hashlib.sha256(data).hexdigest() == spec.sha256
    assert "quantize_dlib_int8.py" in spec.upstream and "dlib-resnet-v1" in spec.upstream
    assert registry.load_embedder(spec.id).model_id == spec.id  # its graph digest matches


@pytest.mark.shared_data
def test_int8_model_keeps_the_templates_on_real_faces(lfw_root: Path) -> None:
    """dlib's int8 graph agrees with float32 (cosine >= 0.995) on LFW faces of other folds."""
    full = registry.load_embedder(MODEL_ID)
    quantized = registry.load_embedder("dlib-resnet-v1-int8")
    detector = registry.load_detector()
    chips = []
    for path in sorted((lfw_root / "images_deepfunneled").glob("B*/*_0001.jpg"))[:24]:
        image = load_image(path).pixels
        for face in detector.detect(image)[:1]:
            chips.append(
                align_face(image, face.landmarks, full.reference_landmarks, full.input_size)
            )
    assert len(chips) >= 20
    cosines = (full.embed(np.stack(chips)) * quantized.embed(np.stack(chips))).sum(1)
    assert cosines.min() >= 0.995


def test_int8_model_keeps_its_most_sensitive_parts_float32() -> None:
    """The final MatMul, the first Conv and residual blocks 1 and 12 read float32 weights.

    Quantizing one part at a time showed these four move the template most
    (``benchmarks/int8_dlib_variants.py --sensitivity``); every other Conv is int8.
    """
    model = onnx.load_from_string(verified_model_bytes(registry.get_spec("dlib-resnet-v1-int8")))
    made_by = {out: node for node in model.graph.node for out in node.output}
    initializers = {init.name for init in model.graph.initializer}
    weighted = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul")]
    float_weights = [n.input[1] in initializers for n in weighted]
    assert len(weighted) == 30
    kept = [i for i, is_float in enumerate(float_weights) if is_float]
    assert kept == [0, 1, 2, 23, 24, 29]  # first Conv, block 1, block 12, final MatMul
    for index in set(range(30)) - set(kept):
        assert made_by[weighted[index].input[1]].op_type == "DequantizeLinear"
