"""How close each model runs to the CPU's peak: operations per face, CPU ms, share of peak.

For every network facelens runs on a face or a photo, this counts the
multiply-accumulates of its convolutions and matrix products from the ONNX
graph itself (shapes inferred at the given input size; a MAC is 2 operations),
times one inference thread on onnxruntime (process CPU ms per face, median of
runs, random input of the real shape: the cost of these networks does not
depend on the pixels), and compares the achieved rate with one core's float32
peak measured here by a 2048x2048 float32 matrix product in onnxruntime (its
own GEMM, one thread).
int8 graphs are counted with the same operations; their rate is GOP/s against
the same float32 peak, so a share above 100% is possible.

    .venv/bin/python benchmarks/physical_limit.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.models import dlib_resnet, registry, sface  # noqa: E402
from facelens.models.attributes import CNN48_INT8_SPEC, CNN48_SPEC  # noqa: E402
from facelens.models.onnx_fold import fold_dequantize_linear  # noqa: E402
from facelens.models.runtime import create_session  # noqa: E402
from facelens.models.spec import verified_model_bytes  # noqa: E402


@dataclass
class Network:
    """One row: a graph and the input shape it is timed at (batch first)."""

    name: str
    graph: bytes
    shape: tuple[int, ...]
    per: str  # "face" or "image"


def networks() -> list[Network]:
    """The networks of the default pipeline and of the expression model, as facelens runs them."""
    detector = registry.get_spec("yunet-2023mar-int8bq")
    detector_graph = fold_dequantize_linear(onnx.load_from_string(verified_model_bytes(detector)))
    embedder = registry.get_spec("sface-2021dec-int8bq")
    dlib = registry.get_spec("dlib-resnet-v1")
    dlib_int8 = registry.get_spec("dlib-resnet-v1-int8")
    rows = [
        Network(f"YuNet {side}x{side}", _fixed(detector_graph, side), (1, 3, side, side), "image")
        for side in (640, 512, 256)
    ]
    return [
        *rows,
        Network(
            "SFace 112x112",
            sface.folded_graph(embedder, verified_model_bytes(embedder)),
            (8, 3, 112, 112),
            "face",
        ),
        Network(
            "dlib ResNet 150x150, float32",
            dlib_resnet.built_graph(dlib, verified_model_bytes(dlib)),
            (8, 150, 150, 3),
            "face",
        ),
        Network(
            "dlib ResNet 150x150, int8",
            verified_model_bytes(dlib_int8),
            (8, 150, 150, 3),
            "face",
        ),
        Network(
            "expression CNN 48x48 (4 passes), float32",
            verified_model_bytes(CNN48_SPEC),
            (64, 48, 48, 1),
            "face",
        ),
        Network(
            "expression CNN 48x48 (4 passes), int8",
            verified_model_bytes(CNN48_INT8_SPEC),
            (64, 48, 48, 1),
            "face",
        ),
    ]


def _fixed(model: onnx.ModelProto, side: int) -> bytes:
    """YuNet's graph with its input fixed at ``side`` x ``side`` (it is shipped at 640)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = side, side
    for output in fixed.graph.output:  # let inference find the outputs' sizes again
        output.type.tensor_type.ClearField("shape")
    del fixed.graph.value_info[:]
    serialized: bytes = fixed.SerializeToString()
    return serialized


def macs(graph: bytes, shape: tuple[int, ...]) -> float:
    """Multiply-accumulates of one item (the batch is 1 here) of the graph's Conv, Gemm, MatMul."""
    model = onnx.load_from_string(graph)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, *shape[1:]), strict=True):
        dim.dim_value = size
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    shapes |= {t.name: list(t.dims) for t in inferred.graph.initializer}
    total = 0.0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight, out = shapes[_weight_source(inferred, node.input[1])], shapes[node.output[0]]
            total += float(np.prod(out)) * float(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            first, out = shapes[node.input[0]], shapes[node.output[0]]
            total += float(np.prod(out)) * float(first[-1])
    return total


def _weight_source(model: onnx.ModelProto, name: str) -> str:
    """The initializer behind a weight, through a ``DequantizeLinear`` (int8 graphs)."""
    for node in model.graph.node:
        if name in node.output and node.op_type == "DequantizeLinear":
            return str(node.input[0])
    return name


def cpu_ms_per_item(graph: bytes, shape: tuple[int, ...], repeats: int) -> float:
    """Median process CPU ms per item on onnxruntime with one inference thread."""
    session = create_session(graph, threads=1)
    graph_input = session.get_inputs()[0]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)  # dlib's graph takes uint8 pixels
    data = pixels if "uint8" in graph_input.type else pixels.astype(np.float32)
    feed = {graph_input.name: data}
    session.run(None, feed)
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        session.run(None, feed)
        runs.append((time.process_time() - started) * 1000 / shape[0])
    return float(np.median(runs))


def float32_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """One core's float32 rate in GFLOP/s: the best of ``repeats`` ``size`` x ``size`` matrix
    products by onnxruntime's own GEMM (MLAS) on one thread, the kernel the networks use."""
    from onnx import TensorProto, helper

    a = np.random.default_rng(0).random((size, size), np.float32)
    product = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "peak",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
        [onnx.numpy_helper.from_array(a, "w")],
    )
    session = create_session(helper.make_model(product).SerializeToString(), threads=1)
    session.run(None, {"a": a})
    best = min(_timed(lambda: session.run(None, {"a": a})) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ["FACELENS_CPU_ENGINE"] = "onnxruntime"
    peak = float32_peak_gflops()
    rows = []
    for network in networks():
        operations = 2 * macs(network.graph, network.shape) / 1e9
        ms = cpu_ms_per_item(network.graph, network.shape, args.repeats)
        rate = operations / (ms / 1000)
        rows.append(
            {
                "network": network.name,
                "per": network.per,
                "gop": round(operations, 3),
                "cpu_ms": round(ms, 2),
                "gop_per_s": round(rate, 1),
                "share_of_float32_peak": round(rate / peak, 3),
            }
        )
    report = {
        "float32_peak_gflops_one_core": round(peak, 1),
        "cpu": _cpu_name(),
        "load_average_1min": os.getloadavg()[0],
        "rows": rows,
    }
    print(
        f"one core's float32 peak (onnxruntime MatMul 2048x2048): {peak:.1f} GFLOP/s; {report['cpu']}"
    )
    print("| network | GOP a face or image | CPU ms, 1 thread | GOP/s | share of float32 peak |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['network']} (per {row['per']}) | {row['gop']:.3f} | {row['cpu_ms']:.2f} | "
            f"{row['gop_per_s']:.0f} | {row['share_of_float32_peak']:.0%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
