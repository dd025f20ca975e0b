"""Models: provenance checks, and our onnxruntime graphs against OpenCV's own runtime."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facelens.errors import ModelIntegrityError, UnknownModelError
from facelens.models import registry
from facelens.models.spec import verified_model_bytes
from facelens.pipeline.align import align_face

pytestmark = pytest.mark.usefixtures("float32_onnxruntime")  # exact checks of our graphs


def test_registry_records_provenance() -> None:
    for spec in registry.all_specs():
        if spec.parts:  # a fusion: provenance is its parts'
            assert all(registry.get_spec(part) for part, _ in spec.parts)
            continue
        info = spec.describe()
        assert len(spec.sha256) == 64 and spec.licence and spec.upstream
        assert spec.package_version in info["source"]
        assert spec.path().is_file()


def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownModelError, match="known models"):
        registry.get_spec("no-such-model")


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    spec = registry.get_spec(registry.DEFAULT_DETECTOR)
    tampered = tmp_path / spec.file
    data = bytearray(spec.path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        verified_model_bytes(spec, tampered)


def test_yunet_matches_opencv_face_detector(astronaut: np.ndarray) -> None:
    """Folded YuNet on onnxruntime gives OpenCV FaceDetectorYN's boxes and landmarks."""
    detector = registry.load_detector()
    ours = detector.detect(astronaut)
    spec = registry.get_spec(registry.DEFAULT_DETECTOR)
    height, width = astronaut.shape[:2]
    reference = cv2.FaceDetectorYN.create(str(spec.path()), "", (width, height), 0.6, 0.3)
    _, faces = reference.detect(np.ascontiguousarray(astronaut[:, :, ::-1]))
    assert faces is not None and len(ours) == len(faces) == 1
    assert np.allclose(ours[0].box.as_list(), faces[0][:4], atol=0.1)
    assert np.allclose(ours[0].landmarks.reshape(-1), faces[0][4:14], atol=0.1)
    assert abs(ours[0].score - faces[0][14]) < 1e-3


@pytest.mark.parametrize("size", [(250, 250), (721, 1279), (64, 97)])
def test_yunet_input_is_the_bgr_planes_zero_padded_to_32(size: tuple[int, int]) -> None:
    from facelens.models.yunet import network_input

    height, width = size
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    blob = network_input(image)
    padded = (-(-height // 32) * 32, -(-width // 32) * 32)
    assert blob.shape == (1, 3, *padded) and blob.dtype == np.float32
    expected = np.zeros((1, 3, *padded), np.float32)
    expected[0, :, :height, :width] = image[:, :, ::-1].transpose(2, 0, 1)
    assert np.array_equal(blob, expected)


def test_sface_matches_opencv_dnn(astronaut: np.ndarray) -> None:
    """Folded SFace on onnxruntime equals the block-quantized file run by OpenCV DNN."""
    embedder = registry.load_embedder(registry.SFACE_EMBEDDER, runtime="onnxruntime")
    face = registry.load_detector().detect(astronaut)[0]
    crop = align_face(astronaut, face.landmarks, embedder.reference_landmarks, embedder.input_size)
    ours = embedder.embed(crop[None])[0]
    net = cv2.dnn.readNetFromONNX(str(registry.get_spec(registry.SFACE_EMBEDDER).path()))
    net.setInput(crop.transpose(2, 0, 1)[None].astype(np.float32), "data")
    theirs = net.forward().reshape(-1)
    theirs /= np.linalg.norm(theirs)
    assert float(ours @ theirs) > 0.99999


@pytest.mark.parametrize("runtime", ["opencv", "onnxruntime"])
def test_batches_equal_single_runs(runtime: str) -> None:
    embedder = registry.load_embedder(registry.SFACE_EMBEDDER, runtime=runtime)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (5, 112, 112, 3), dtype=np.uint8)
    batch = embedder.embed(crops)
    single = np.stack([embedder.embed(c[None])[0] for c in crops])
    assert np.allclose(batch, single, atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_both_sface_runtimes_give_the_same_templates(astronaut: np.ndarray) -> None:
    face = registry.load_detector().detect(astronaut)[0]
    opencv = registry.load_embedder(registry.SFACE_EMBEDDER, runtime="opencv")
    crop = align_face(astronaut, face.landmarks, opencv.reference_landmarks, opencv.input_size)
    flipped = np.ascontiguousarray(crop[:, ::-1])
    crops = np.stack([crop, flipped])
    same = (
        opencv.embed(crops)
        * registry.load_embedder(registry.SFACE_EMBEDDER, runtime="onnxruntime").embed(crops)
    ).sum(1)
    assert np.all(same > 0.99999)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(UnknownModelError, match="runs on"):
        registry.load_embedder(registry.SFACE_EMBEDDER, runtime="tensorflow")


def test_prelu_rewrite_equals_prelu() -> None:
    """PRelu with slopes below 0, between 0 and 1 and above 1 equals its BatchNorm rewrite."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from facelens.models.onnx_fold import prelu_as_batch_norms

    slope = np.array([-0.8, 0.0, 0.25, 1.0, 1.12], dtype=np.float32).reshape(5, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 6, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, 6, 7])],
        [numpy_helper.from_array(slope, "slope")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(0).normal(0, 50, (2, 5, 6, 7)).astype(np.float32)
    expected = np.where(x > 0, x, slope * x)
    rewritten = prelu_as_batch_norms(model)
    onnx.checker.check_model(rewritten)
    assert "PRelu" not in {n.op_type for n in rewritten.graph.node}
    session = ort.InferenceSession(
        rewritten.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert np.allclose(session.run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-4)


def test_sface_default_runtime_keeps_the_templates_on_real_faces(lfw_root: Path) -> None:
    """The default (onnxruntime, PRelu rewritten) gives OpenCV DNN's templates on LFW faces."""
    from facelens.io.image import load_image

    default = registry.load_embedder(registry.SFACE_EMBEDDER)
    assert default.runtime == "onnxruntime"  # type: ignore[attr-defined]
    opencv = registry.load_embedder(registry.SFACE_EMBEDDER, runtime="opencv")
    detector = registry.load_detector()
    crops = []
    for path in sorted((lfw_root / "images_deepfunneled").glob("A*/*_0001.jpg"))[:24]:
        image = load_image(path).pixels
        for face in detector.detect(image):
            crops.append(
                align_face(image, face.landmarks, opencv.reference_landmarks, opencv.input_size)
            )
    assert len(crops) >= 20
    cosines = (default.embed(np.stack(crops)) * opencv.embed(np.stack(crops))).sum(1)
    assert cosines.min() >= 0.9999


def test_a_model_being_built_does_not_hold_up_loading_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry builds each model under a lock of its own: while one model is being built
    (here held inside its factory), another loads, and two threads asking for the same
    model get one object."""
    import dataclasses
    import threading

    from facelens.models import yunet

    started, release = threading.Event(), threading.Event()

    def held_factory(spec: object, data: bytes, threads: int | None, runtime: str) -> object:
        started.set()
        release.wait(timeout=60)
        return yunet.YuNetDetector(yunet.SPEC, data, threads)

    registry.get_spec(registry.DEFAULT_DETECTOR)  # the built-in models are registered
    held = dataclasses.replace(yunet.SPEC, id="yunet-held-in-its-factory", factory=held_factory)
    monkeypatch.setitem(registry._REGISTRY, held.id, held)
    results: dict[str, list[object]] = {"held": [], "other": []}

    def load(model_id: str, key: str) -> None:
        results[key].append(registry.load_detector(model_id, threads=1))

    holders = [threading.Thread(target=load, args=(held.id, "held")) for _ in range(2)]
    for thread in holders:
        thread.start()
    assert started.wait(timeout=60)
    other = threading.Thread(target=load, args=(registry.DEFAULT_DETECTOR, "other"))
    other.start()
    other.join(timeout=30)
    try:
        assert not other.is_alive(), "loading YuNet waited for another model's build"
        assert len(results["other"]) == 1 and not results["held"]
    finally:
        release.set()
        for thread in holders:
            thread.join(timeout=60)
    assert len(results["held"]) == 2 and results["held"][0] is results["held"][1]
