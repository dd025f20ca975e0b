"""OpenVINO against onnxruntime, model by model: CPU time, agreement, and YuNet on changing sizes.

Crops: the first face of 300 images of LFW fold 1 (SFace's 112x112 crop and
dlib's 150x150 chip, as the pipeline cuts them). For each embedder graph
(SFace folded, dlib's ResNet built from its .dat, the shipped int8 dlib):
onnxruntime float32 (facelens's session options) against OpenVINO with the
float32 and the bfloat16 precision hint, CPU ms per face on one thread at
batches of 2, and each OpenVINO form's templates against onnxruntime's
(cosine, mean and minimum). Then SFace and dlib on OpenVINO bfloat16 with two
threads at batches of 1 to 16 (CPU and wall ms per face). Last, YuNet on 200
LFW photos resized to random sizes (200-1280 px a side): onnxruntime against
OpenVINO, CPU ms per image and resident MB after two passes.

    .venv/bin/python benchmarks/openvino_engine.py [--data ../shared/data/lfw] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(BENCHMARKS))

from facelens.io.image import load_image  # noqa: E402
from facelens.models import registry  # noqa: E402
from facelens.models.dlib_resnet import built_graph  # noqa: E402
from facelens.models.onnx_fold import fold_dequantize_linear, make_dims_symbolic  # noqa: E402
from facelens.models.openvino_engine import OpenVinoSession  # noqa: E402
from facelens.models.runtime import create_session  # noqa: E402
from facelens.models.sface import folded_graph  # noqa: E402
from facelens.models.spec import verified_model_bytes  # noqa: E402
from facelens.models.yunet import YuNetDetector  # noqa: E402
from int8_quantization import crops  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def graph_bytes(model_id: str) -> bytes:
    """The graph facelens runs for an embedder: SFace folded, dlib's ResNet built, the int8 file."""
    spec = registry.get_spec(model_id)
    shipped = verified_model_bytes(spec)
    if model_id == registry.SFACE_EMBEDDER:
        return folded_graph(spec, shipped)
    if spec.file.endswith(".dat"):
        return built_graph(spec, shipped)
    return shipped


def yunet_graph(model_id: str) -> bytes:
    """YuNet's folded graph with symbolic height and width, as :class:`YuNetDetector` builds it."""
    model = fold_dequantize_linear(
        onnx.load_from_string(verified_model_bytes(registry.get_spec(model_id)))
    )
    make_dims_symbolic(model, {2: "height", 3: "width"})
    return model.SerializeToString()


def cpu_ms_per_face(
    run: Any, data: np.ndarray, batch: int, faces: int = 120
) -> tuple[float, float]:
    for start in range(0, 16, batch):
        run(data[start : start + batch])
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, faces, batch):
        run(data[start : start + batch])
    return (
        (time.process_time() - cpu) / faces * 1000,
        (time.perf_counter() - wall) / faces * 1000,
    )


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def runner(session: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``batch -> raw outputs`` of a session with one input."""
    name = session.get_inputs()[0].name
    return lambda batch: np.asarray(session.run(None, {name: batch})[0])


def templates(run: Callable[[np.ndarray], np.ndarray], data: np.ndarray) -> np.ndarray:
    return unit(np.concatenate([run(data[i : i + 2]) for i in range(0, len(data), 2)]))


def compare_embedders(sface: np.ndarray, dlib: np.ndarray) -> dict[str, Any]:
    inputs = {
        "sface-2021dec-int8bq": np.ascontiguousarray(sface.transpose(0, 3, 1, 2), np.float32),
        "dlib-resnet-v1": np.ascontiguousarray(dlib),
        "dlib-resnet-v1-int8": np.ascontiguousarray(dlib),
    }
    report: dict[str, Any] = {}
    for model_id, data in inputs.items():
        graph = graph_bytes(model_id)
        run_ort = runner(create_session(graph, 1))
        exact = templates(run_ort, data)
        row: dict[str, Any] = {"onnxruntime_cpu_ms": cpu_ms_per_face(run_ort, data, 2)[0]}
        for precision in ("f32", "bf16"):
            session = OpenVinoSession(graph, 1, precision)
            run_ov = runner(session)
            cosine = (templates(run_ov, data) * exact).sum(axis=1)
            row[f"openvino_{precision}"] = {
                "cpu_ms": cpu_ms_per_face(run_ov, data, 2)[0],
                "precision_used": session.precision,
                "cosine_mean": float(cosine.mean()),
                "cosine_min": float(cosine.min()),
            }
        if model_id != "dlib-resnet-v1":  # the two parts of the default fusion
            run_two = runner(OpenVinoSession(graph, 2, "bf16"))
            by_batch = {}
            for batch in (1, 2, 4, 8, 16):
                cpu, wall = cpu_ms_per_face(run_two, data, batch)
                by_batch[str(batch)] = {"cpu_ms": cpu, "wall_ms": wall}
            row["openvino_bf16_two_threads_by_batch"] = by_batch
        report[model_id] = row
        print(model_id, json.dumps(row), flush=True)
    return report


def yunet_on_changing_sizes(root: Path) -> dict[str, Any]:
    photos = sorted((root / "images_deepfunneled").glob("*/*.jpg"))[::40][:200]
    pixels = [load_image(p).pixels for p in photos]
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(200, 1280)), int(rng.integers(200, 1280))) for _ in pixels]
    frames = [cv2.resize(p, s) for p, s in zip(pixels, sizes, strict=True)]
    report: dict[str, Any] = {}
    for engine in ("onnxruntime", "openvino"):
        detector = registry.load_detector(threads=2)
        if engine == "openvino":  # the same folded graph, compiled by OpenVINO
            detector = YuNetDetector(
                registry.get_spec(detector.model_id),
                verified_model_bytes(registry.get_spec(detector.model_id)),
                2,
            )
            detector._session = OpenVinoSession(yunet_graph(detector.model_id), 2, "bf16")  # type: ignore[assignment]
        before = rss_mb()
        passes = []
        for _ in range(2):
            cpu = time.process_time()
            for frame in frames:
                detector.detect(frame)
            passes.append((time.process_time() - cpu) / len(frames) * 1000)
        report[engine] = {
            "cpu_ms_per_image": passes,
            "resident_mb_added": rss_mb() - before,
        }
        print("yunet", engine, json.dumps(report[engine]), flush=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = args.data.resolve()
    os.environ["FACELENS_CPU_ENGINE"] = "onnxruntime"  # the reference sessions: float32
    sface, dlib = crops(root, 0, 300)
    report = {
        "embedders": compare_embedders(sface, dlib),
        "yunet_changing_sizes": yunet_on_changing_sizes(root),
        "load_average_at_end": os.getloadavg(),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
