"""OpenVINO as the embedders' and the expression CNN's CPU engine: which models it runs,
agreement, its compiled cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from facelens import settings
from facelens.io.image import load_image
from facelens.models import registry
from facelens.models.openvino_engine import BLOB_UNUSED_DAYS, OpenVinoSession
from facelens.models.runtime import create_session, engine_of, using_engine
from facelens.pipeline.faces import FacePipeline
from facelens.types import ImageArray
from tests.conftest import DATA_ROOT

AGREEMENT = 0.995
"""The gate for a faster form of an embedder: cosine to float32's templates on real faces."""


def _tiny_model() -> bytes:
    """``y = relu(x) * 2`` with a symbolic batch, named inputs and outputs as ONNX has them."""
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Mul", ["r", "two"], ["scores_8"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("scores_8", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_the_embedders_run_on_openvino_and_the_detector_on_onnxruntime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    sface = registry.load_embedder(registry.SFACE_EMBEDDER)
    dlib = registry.load_embedder("dlib-resnet-v1-int8")
    assert getattr(sface, "engine", None) == getattr(dlib, "engine", None) == "openvino"
    detector = registry.load_detector()
    assert engine_of(detector._session) == "onnxruntime"  # type: ignore[attr-defined]
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "onnxruntime")
    assert getattr(registry.load_embedder(registry.SFACE_EMBEDDER), "engine", None) == "onnxruntime"


def test_the_default_engine_is_openvino_only_where_the_cpu_has_bfloat16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without bfloat16 OpenVINO computes in float32, slower and larger than onnxruntime on
    an AVX2-only CPU (docs/benchmarks.md#cpu-engine): the default follows the CPU's flags."""
    amx = "processor\t: 0\nflags\t\t: fpu sse4_2 avx2 avx512f amx_bf16 amx_tile\n"
    avx512_bf16 = "flags\t: avx2 avx512f avx512_bf16 avx512_vnni\n"
    avx2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
    assert settings.cpu_has_bfloat16(amx) and settings.cpu_has_bfloat16(avx512_bf16)
    assert not settings.cpu_has_bfloat16(avx2) and not settings.cpu_has_bfloat16("")
    monkeypatch.delenv("FACELENS_CPU_ENGINE", raising=False)
    expected = "openvino" if settings.cpu_has_bfloat16() else "onnxruntime"
    assert settings.default_cpu_engine() == settings.cpu_engine() == expected
    embedder = registry.load_embedder(registry.SFACE_EMBEDDER)
    assert getattr(embedder, "engine", None) == expected


def test_an_unknown_engine_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match="openvino, onnxruntime"):
        settings.cpu_engine()
    monkeypatch.setenv("FACELENS_CPU_ENGINE", " OnnxRuntime ")
    assert settings.cpu_engine() == "onnxruntime"


def test_only_a_model_that_allows_it_runs_on_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """``openvino_precision`` opts a model in; without it (YuNet, CenterFace, mini-Xception,
    the age and gender model) a session stays on onnxruntime."""
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    on_cpu = create_session(_tiny_model(), 1, openvino_precision="f32")
    assert engine_of(on_cpu) == "openvino"
    assert engine_of(create_session(_tiny_model(), 1)) == "onnxruntime"


def test_the_expression_cnn_on_openvino_reads_real_faces_as_on_onnxruntime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """facelens's expression CNN runs on OpenVINO by default (bfloat16 where the CPU has it)
    and names the same expression as float32 on onnxruntime for nearly every real face
    (CK+48's crops when the shared data is there, else the astronaut's face), with
    probabilities within a few hundredths."""
    import cv2
    from skimage import data as skdata

    root = DATA_ROOT / "ckplus48" / "CK+48"
    if root.is_dir():
        paths = sorted(root.glob("*/*.png"))[::4]
        crops = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    else:
        grey = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)
        crops = cv2.resize(grey[30:230, 130:330], (48, 48))[None]
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    fast = registry.load_attribute_model("facelens-expression-cnn48")
    with using_engine("onnxruntime"):
        exact = registry.load_attribute_model("facelens-expression-cnn48")
    assert (fast.engine, exact.engine) == ("openvino", "onnxruntime")
    fast_scores, exact_scores = fast.predict(crops), exact.predict(crops)
    assert np.abs(fast_scores - exact_scores).max() < 0.05
    agree = (fast_scores.argmax(axis=1) == exact_scores.argmax(axis=1)).mean()
    assert agree >= (0.98 if len(crops) > 1 else 1.0), agree


def test_the_age_and_gender_model_stays_on_onnxruntime_unless_asked(
    monkeypatch: pytest.MonkeyPatch, astronaut: ImageArray
) -> None:
    """bfloat16 moves apparent ages by years (docs/benchmarks.md#expression), so the registry
    runs FaceRes on onnxruntime; asked for it, OpenVINO runs it, and on the astronaut the
    two agree on the gender call and within a few years of age."""
    from facelens.analysis.crops import age_gender_crop
    from facelens.models.attributes import MALE_THRESHOLD, AgeGenderNet
    from facelens.models.spec import verified_model_bytes

    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    shipped = registry.load_attribute_model("hse-faceres-age-gender")
    spec = registry.get_spec("hse-faceres-age-gender")
    fast = AgeGenderNet(spec, verified_model_bytes(spec), 1, openvino_precision="bf16")
    assert (shipped.engine, fast.engine) == ("onnxruntime", "openvino")
    faces = FacePipeline().detect(astronaut, embed=False)
    crops = np.stack([age_gender_crop(astronaut, f.landmarks) for f in faces])
    (age, male), (fast_age, fast_male) = shipped.predict(crops), fast.predict(crops)
    assert ((male >= MALE_THRESHOLD) == (fast_male >= MALE_THRESHOLD)).all()
    assert np.abs(age - fast_age).max() < 8


def _real_photos(astronaut: ImageArray, lfw_root: Path | None) -> list[ImageArray]:
    """The astronaut, and the first photo of every 100th LFW person when LFW is there."""
    images = [astronaut]
    if lfw_root is not None:
        people = sorted(p for p in (lfw_root / "images_deepfunneled").iterdir() if p.is_dir())
        images += [load_image(next(iter(sorted(p.iterdir())))).pixels for p in people[::100]]
    return images


@pytest.mark.parametrize("model_id", [registry.SFACE_EMBEDDER, "dlib-resnet-v1-int8"])
def test_bfloat16_templates_agree_with_float32_on_real_faces(
    model_id: str, astronaut: ImageArray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate every faster embedder passed: cosine >= 0.995 to float32 on real faces
    (the astronaut always; a spread of LFW people when the shared data is there)."""
    lfw = DATA_ROOT / "lfw"
    images = _real_photos(astronaut, lfw if lfw.is_dir() else None)
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    fast = registry.load_embedder(model_id)
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "onnxruntime")
    exact = FacePipeline(embedder=model_id)
    assert getattr(fast, "engine", None) == "openvino"
    assert getattr(exact.embedder, "engine", None) == "onnxruntime"
    cosines: list[float] = []
    for pixels in images:
        faces = exact.detect(pixels, embed=False)
        if faces:
            crops = np.stack([f.aligned for f in faces])  # this model's own input crops
            cosines += list((fast.embed(crops) * exact.embedder.embed(crops)).sum(axis=1))
    assert len(cosines) >= (1 if len(images) == 1 else 20), "too few faces found"
    assert min(cosines) >= AGREEMENT, min(cosines)


def test_compiled_models_are_kept_and_a_damaged_one_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", str(tmp_path))
    x = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
    first = OpenVinoSession(_tiny_model(), 1, "f32")
    blobs = list((tmp_path / "openvino").glob("*.blob"))
    assert len(blobs) == 1
    second = OpenVinoSession(_tiny_model(), 1, "f32")  # read from the kept blob
    for session in (first, second):
        assert [p.name for p in session.get_inputs()] == ["x"]
        assert [p.name for p in session.get_outputs()] == ["scores_8"]
        assert [p.shape for p in session.get_inputs()] == [(None, 3)]  # the batch is open
        assert np.allclose(session.run(None, {"x": x})[0], [[0.0, 1.0, 4.0]])
        assert np.allclose(session.run(["scores_8"], {"x": np.vstack([x, x])})[0][1], [0, 1, 4])
    blobs[0].write_bytes(b"not a compiled model")
    again = OpenVinoSession(_tiny_model(), 1, "f32")
    assert np.allclose(again.run(None, {"x": x})[0], [[0.0, 1.0, 4.0]])


def test_compiled_models_unused_for_a_month_are_removed_when_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELENS_GRAPH_CACHE", str(tmp_path))
    folder = tmp_path / "openvino"
    folder.mkdir()
    stale, recent = folder / "stale.blob", folder / "recent.blob"
    for blob, days in ((stale, BLOB_UNUSED_DAYS + 1), (recent, BLOB_UNUSED_DAYS - 1)):
        blob.write_bytes(b"an older compiled model")
        moment = time.time() - days * 86400
        os.utime(blob, (moment, moment))
    OpenVinoSession(_tiny_model(), 1, "f32")  # compiles and writes its blob
    assert not stale.exists() and recent.exists()
    assert len(list(folder.glob("*.blob"))) == 2
    written = next(b for b in folder.glob("*.blob") if b != recent)
    os.utime(written, (0, 0))
    OpenVinoSession(_tiny_model(), 1, "f32")  # imports it: in use again
    assert written.stat().st_mtime > time.time() - 3600


def test_outputs_belong_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later run must not overwrite what an earlier one returned (OpenVINO reuses buffers)."""
    session = OpenVinoSession(_tiny_model(), 1, "f32")
    first = session.run(None, {"x": np.ones((1, 3), np.float32)})[0]
    session.run(None, {"x": np.full((1, 3), 5.0, np.float32)})
    assert np.allclose(first, 2.0)


def test_video_track_attacks_run_on_onnxruntime_and_photo_attacks_on_the_default(
    astronaut: ImageArray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video embeds few faces: its verifier loads on onnxruntime (VIDEO_VERIFY_ENGINE)."""
    from facelens.privacy.verify import VIDEO_VERIFY_ENGINE, HidingVerifier, TrackVerifier

    monkeypatch.setenv("FACELENS_CPU_ENGINE", "openvino")
    detection = registry.load_detector().detect(astronaut)[0]
    video = TrackVerifier("blur").verifier
    assert video.engine == VIDEO_VERIFY_ENGINE == "onnxruntime"
    assert HidingVerifier.shared().engine is None  # photos: the engine in force
    photo = HidingVerifier()  # the shared one may have loaded its models under another
    for verifier, engine in ((video, "onnxruntime"), (photo, "openvino")):
        templates = verifier.templates(astronaut, detection)
        assert templates
        for model in {model for model, _ in templates}:
            assert getattr(verifier._pipelines[model].embedder, "engine", None) == engine
    with pytest.raises(ValueError, match="openvino, onnxruntime"), using_engine("tensorrt"):
        pass
