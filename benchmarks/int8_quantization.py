"""Static int8 quantization (QDQ, per-channel) of SFace and dlib's ResNet: agreement and speed.

Calibration: the first face of 200 images of LFW fold 5; evaluation: 200
images of fold 1 (no image in both). Each model is quantized by onnxruntime's
``quantize_static`` (MinMax, activations uint8, weights int8 per channel,
only Conv/Gemm/MatMul); its templates are compared with the float32 model's
(cosine) and both are timed on one thread, batches of 8, interleaved.
A quantized model is acceptable only if every cosine is >= 0.995 (then its
LFW accuracy must be checked too).

    .venv/bin/python benchmarks/int8_quantization.py [--data ../shared/data/lfw]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.evaluation.lfw import find_images_folder, read_pairs  # noqa: E402
from facelens.io.image import load_image  # noqa: E402
from facelens.models import registry  # noqa: E402
from facelens.models.dlib_format import read_network  # noqa: E402
from facelens.models.dlib_resnet import build_onnx  # noqa: E402
from facelens.models.onnx_fold import (  # noqa: E402
    fold_dequantize_linear,
    make_dims_symbolic,
    prelu_as_batch_norms,
)
from facelens.models.spec import verified_model_bytes  # noqa: E402
from facelens.pipeline.detect import detect_faces  # noqa: E402
from facelens.pipeline.faces import FacePipeline, _crop_for  # noqa: E402


class _Batches(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, size: int = 8) -> None:
        self._feeds = iter([{name: data[i : i + size]} for i in range(0, len(data), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def crops(root: Path, fold: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """SFace and dlib crops of the first face of ``count`` images of a fold."""
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    paths = sorted({images / p for pair in folds[fold] for p in (pair.first, pair.second)})
    pipeline = FacePipeline()
    parts = pipeline.embedder.parts  # type: ignore[attr-defined]
    sface, dlib = [], []
    for path in paths[:count]:
        image = load_image(path)
        for detection in detect_faces(pipeline.detector, image.pixels)[:1]:
            sface.append(_crop_for(parts[0], image, detection))
            dlib.append(_crop_for(parts[1], image, detection))
    return np.stack(sface), np.stack(dlib)


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def templates(sess: ort.InferenceSession, name: str, data: np.ndarray) -> np.ndarray:
    out = np.concatenate(
        [sess.run(None, {name: data[i : i + 8]})[0] for i in range(0, len(data), 8)]
    )
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def cpu_ms_per_face(sess: ort.InferenceSession, name: str, data: np.ndarray) -> float:
    start = time.process_time()
    for _ in range(5):
        sess.run(None, {name: data[:8]})
    return (time.process_time() - start) / 40 * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    args = parser.parse_args()
    root = args.data.resolve()
    calib_sface, calib_dlib = crops(root, 4, 200)
    eval_sface, eval_dlib = crops(root, 0, 200)

    sface = fold_dequantize_linear(
        onnx.load_from_string(verified_model_bytes(registry.get_spec(registry.SFACE_EMBEDDER)))
    )
    make_dims_symbolic(sface, {0: "batch"})
    prelu_as_batch_norms(sface)
    dlib = build_onnx(read_network(verified_model_bytes(registry.get_spec("dlib-resnet-v1"))))
    nchw = (0, 3, 1, 2)
    cases = [
        ("sface", sface, "data", calib_sface.transpose(nchw), eval_sface.transpose(nchw)),
        ("dlib-resnet-v1", dlib, dlib.graph.input[0].name, calib_dlib, eval_dlib),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for label, model, name, calib, evaluate in cases:
            dtype = np.float32 if label == "sface" else np.uint8
            calib, evaluate = calib.astype(dtype), evaluate.astype(dtype)
            fp32, int8 = f"{scratch}/{label}.onnx", f"{scratch}/{label}-int8.onnx"
            onnx.save(model, fp32)
            quantize_static(
                fp32,
                int8,
                _Batches(name, calib),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            )
            full, quantized = session(fp32), session(int8)
            cosines = (templates(full, name, evaluate) * templates(quantized, name, evaluate)).sum(
                1
            )
            times = {"fp32": [], "int8": []}
            for _ in range(3):
                times["fp32"].append(cpu_ms_per_face(full, name, evaluate))
                times["int8"].append(cpu_ms_per_face(quantized, name, evaluate))
            print(
                f"{label}: cosine int8 vs fp32 min {cosines.min():.4f} mean {cosines.mean():.4f}"
                f" ({len(cosines)} faces); CPU ms/face fp32 {min(times['fp32']):.2f},"
                f" int8 {min(times['int8']):.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
