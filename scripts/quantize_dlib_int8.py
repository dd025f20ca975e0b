"""Write dlib's ResNet as a static int8 ONNX model: ``src/facelens/models/quantized/``.

The float32 graph is the one facelens builds from dlib's ``.dat`` file
(:func:`facelens.models.dlib_resnet.build_onnx`, registry id
``dlib-resnet-v1``). onnxruntime's ``quantize_static`` then turns it into a
QDQ graph: weights int8 per output channel, activations uint8, Conv and
MatMul quantized except the four parts that one-at-a-time quantization found
most sensitive (``FLOAT_NODES``: the final MatMul, the first Conv, the first
and the twelfth residual blocks), ranges by MinMax over the dlib chips of 300
LFW development images that no pair of ``pairs.txt`` uses (the accuracy
evaluation): the first such image of each person with only one, sorted by
path. ``benchmarks/int8_dlib_variants.py`` chose this variant on other
non-pair LFW faces and ORL, without the LFW pairs (docs/benchmarks.md,
"Session 7"). MinMax calibration is deterministic, so the same chips and
onnxruntime version give the same file; the registry records its sha256. The
chips are cut by today's pipeline: since session 9 changed how photos with large
faces are searched, a rerun writes another file (docs/models.md); the committed
one stays the reference.

    .venv/bin/python scripts/quantize_dlib_int8.py [--data ../shared/data/lfw]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.models import registry  # noqa: E402
from facelens.models.dlib_format import read_network  # noqa: E402
from facelens.models.dlib_resnet import build_onnx  # noqa: E402
from facelens.models.spec import graph_digest, verified_model_bytes  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from int8_calibration import CalibrationBatches  # noqa: E402

from int8_dlib_variants import crops_of, lfw_split  # noqa: E402

OUT = REPO / "src" / "facelens" / "models" / "quantized" / "dlib-resnet-v1-int8.onnx"


FLOAT_NODES = ("MatMul_88", "Conv_4", "Conv_7", "Conv_9", "Conv_69", "Conv_71")
"""Kept float32 (node names: op type and index in ``build_onnx``'s graph)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--count", type=int, default=300, help="calibration images")
    args = parser.parse_args()
    calibration, _ = lfw_split(args.data.resolve(), args.count, 0)
    _, chips, _ = crops_of(calibration, lfw=True)
    model = build_onnx(read_network(verified_model_bytes(registry.get_spec("dlib-resnet-v1"))))
    name = model.graph.input[0].name
    for index, node in enumerate(model.graph.node):  # names, so that nodes can be excluded
        node.name = node.name or f"{node.op_type}_{index}"
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = f"{scratch}/dlib.onnx"
        onnx.save(model, fp32)
        quantize_static(
            fp32,
            str(args.out),
            CalibrationBatches(name, chips, 10),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            nodes_to_exclude=list(FLOAT_NODES),
        )
    data = args.out.read_bytes()
    print(f"{args.out}: {len(data)} bytes, {len(chips)} calibration chips")
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"graph digest {graph_digest(onnx.load_from_string(data))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
