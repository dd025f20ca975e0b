"""Write facelens's expression CNN as a static int8 ONNX model: ``src/facelens/models/quantized/``.

The float32 graph is the shipped ``facelens-expression-cnn48`` (version 6: two
networks, each on the face and its mirror image, logits averaged). onnxruntime's
``quantize_static`` turns its 14 convolutions and 6 max-pools into a QDQ graph:
weights int8 per output channel, activations uint8, ranges by MinMax over the
expression crops of 1,000 FER2013 training faces (seeded, never from the
validation split that measures accuracy), cut by the pipeline as ``facelens
analyze`` cuts them (:func:`expression_data.pipeline_crops`).

Two choices make it fast and right on CPUs without VNNI (AVX2 only):

* ``reduce_range``: weights use 7 bits. onnxruntime's AVX2 kernel multiplies
  uint8 by int8 into 16-bit sums that saturate at 8-bit weights; with them the
  validation accuracy fell from 0.696 to 0.623 on an AVX2 EPYC.
* each ReLU is folded into its convolution's output quantization: the
  quantizer leaves ``Conv -> Q -> DQ -> Relu -> (MaxPool) -> Q``, which
  onnxruntime runs as a float ReLU between two int8 convolutions; quantizing
  the convolution's output with the ReLU's (or the pool's) own scale and zero
  point 0 clamps negatives to 0, which is the ReLU, and leaves one fused
  ``QLinearConv`` per layer.

MinMax calibration is deterministic, so the same crops and onnxruntime
version give the same file (checked twice in session 15); the registry records
its sha256. The crops are cut by the pipeline of the day, so a later pipeline
may write another file; the committed one stays the reference.

    .venv/bin/python scripts/quantize_expression_int8.py [--data ../shared/data/fer2013_train]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from expression_data import fer_items, fer_split, pipeline_crops  # noqa: E402
from int8_calibration import CalibrationBatches  # noqa: E402

from facelens.models.attributes import CNN48_SPEC  # noqa: E402
from facelens.models.spec import verified_model_bytes  # noqa: E402
from facelens.pipeline.faces import FacePipeline  # noqa: E402

OUT = REPO / "src" / "facelens" / "models" / "quantized" / "expression-cnn48-int8.onnx"
CALIBRATION_SEED = 7
"""Seed of the permutation that picks the calibration faces among the training split."""


def calibration_crops(root: Path, count: int) -> np.ndarray:
    """``(count, 48, 48, 1)`` float32 network inputs of seeded training-split faces."""
    items = fer_items(root)
    validation = fer_split([label for label, _ in items])
    rng = np.random.default_rng(CALIBRATION_SEED)
    chosen = rng.permutation(np.flatnonzero(~validation))[:count]
    crops, _ = pipeline_crops([items[i][1] for i in chosen], FacePipeline())
    return (crops.astype(np.float32)[..., None] / 255.0 - 0.5) * 2.0


def fold_relus(model: onnx.ModelProto) -> int:
    """Quantize each ``Conv`` output with the scale of the ReLU (or max-pool) after it and drop
    the ReLU; returns how many were folded. Every such zero point must be 0 (checked).

    ``Conv -> Q -> DQ -> Relu -> Q2`` becomes ``Conv -> Q2``;
    ``Conv -> Q -> DQ -> Relu -> MaxPool -> Q3`` becomes ``Conv -> Q(Q3's) -> DQ -> MaxPool -> Q3``.
    """
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}
    dropped: list[onnx.NodeProto] = []
    for relu in [n for n in graph.node if n.op_type == "Relu"]:
        dequantize = producer.get(relu.input[0])
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue
        quantize = producer.get(dequantize.input[0])
        if quantize is None or quantize.op_type != "QuantizeLinear":
            continue
        conv = producer.get(quantize.input[0])
        after = consumers.get(relu.output[0], [])
        if conv is None or conv.op_type != "Conv" or len(after) != 1:
            continue  # also when another node reads the ReLU's output or its input
        if len(consumers[dequantize.output[0]]) != 1 or len(consumers[quantize.output[0]]) != 1:
            continue
        pool = after[0] if after[0].op_type == "MaxPool" else None
        requantize = after[0] if pool is None else _only(consumers.get(pool.output[0], []))
        if requantize is None or requantize.op_type != "QuantizeLinear":
            continue
        if np.any(numpy_helper.to_array(initializers[requantize.input[2]]) != 0):
            raise SystemExit(f"{relu.name}: the zero point after it is not 0")
        if pool is not None:
            for node in (quantize, dequantize):
                node.input[1], node.input[2] = requantize.input[1], requantize.input[2]
            pool.input[0] = dequantize.output[0]
            dropped.append(relu)
        else:
            requantize.input[0] = conv.output[0]
            dropped.extend([quantize, dequantize, relu])
    return _drop(model, dropped)


def _only(nodes: list[onnx.NodeProto]) -> onnx.NodeProto | None:
    """The one node of ``nodes``, None when there are none or several."""
    return nodes[0] if len(nodes) == 1 else None


def _drop(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> int:
    """Remove ``nodes`` from the graph; returns how many ReLUs went."""
    kept = [n for n in model.graph.node if all(n is not d for d in nodes)]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    onnx.checker.check_model(model)
    return sum(n.op_type == "Relu" for n in nodes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/fer2013_train")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--count", type=int, default=1000, help="calibration faces")
    args = parser.parse_args()
    inputs = calibration_crops(args.data.resolve(), args.count)
    model = onnx.load_from_string(verified_model_bytes(CNN48_SPEC))
    name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as scratch:
        fp32, int8 = f"{scratch}/float.onnx", f"{scratch}/int8.onnx"
        onnx.save(model, fp32)
        quantize_static(
            fp32,
            int8,
            CalibrationBatches(name, inputs, 50),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv", "MaxPool"],
        )
        quantized = onnx.load(int8)
    folded = fold_relus(quantized)
    data = quantized.SerializeToString()
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data)} bytes, {len(inputs)} calibration faces, {folded} ReLUs folded")
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
