"""Write dlib's ResNet as a static int8 ONNX model: ``src/facelens/models/quantized/``.

The float32 graph is the one facelens builds from dlib's ``.dat`` file
(:func:`facelens.models.dlib_resnet.build_onnx`, registry id
``dlib-resnet-v1``). onnxruntime's ``quantize_static`` then turns it into a
QDQ graph: weights int8 per output channel, activations uint8, only Conv and
Gemm quantized, ranges by MinMax over the dlib chips of the first face of the
first 200 images (sorted by path) of LFW fold 5 of ``pairs.txt`` (LFW
development data; the accuracy checks in docs/benchmarks.md use all 5 folds).
MinMax calibration is deterministic, so the same inputs and onnxruntime
version give the same file; the registry records its sha256.

    .venv/bin/python scripts/quantize_dlib_int8.py [--data ../shared/data/lfw]
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
from facelens.models.spec import graph_digest, verified_model_bytes  # noqa: E402
from facelens.pipeline.detect import detect_faces  # noqa: E402
from facelens.pipeline.faces import _crop_for  # noqa: E402

OUT = REPO / "src" / "facelens" / "models" / "quantized" / "dlib-resnet-v1-int8.onnx"


class _Batches(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, size: int = 8) -> None:
        self._feeds = iter([{name: data[i : i + size]} for i in range(0, len(data), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def calibration_chips(root: Path, fold: int = 4, count: int = 200) -> np.ndarray:
    """dlib chips (uint8 NHWC) of the first face of ``count`` images of fold ``fold`` (0-based)."""
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    paths = sorted({images / p for pair in folds[fold] for p in (pair.first, pair.second)})
    detector = registry.load_detector()
    dlib = registry.load_embedder("dlib-resnet-v1")
    chips = []
    for path in paths[:count]:
        image = load_image(path)
        for detection in detect_faces(detector, image.pixels)[:1]:
            chips.append(_crop_for(dlib, image, detection))
    return np.stack(chips).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--count", type=int, default=200, help="calibration images")
    parser.add_argument("--mirror", action="store_true", help="calibrate on mirror images too")
    parser.add_argument("--method", choices=["minmax", "percentile"], default="minmax")
    parser.add_argument(
        "--float-ends", action="store_true", help="keep the first Conv and the last Gemm float"
    )
    args = parser.parse_args()
    chips = calibration_chips(args.data.resolve(), count=args.count)
    if args.mirror:
        chips = np.concatenate([chips, chips[:, :, ::-1]])
    model = build_onnx(read_network(verified_model_bytes(registry.get_spec("dlib-resnet-v1"))))
    name = model.graph.input[0].name
    for index, node in enumerate(model.graph.node):  # names, so that nodes can be excluded
        node.name = node.name or f"{node.op_type}_{index}"
    weighted = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    exclude = [weighted[0], weighted[-1]] if args.float_ends else []
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = f"{scratch}/dlib.onnx"
        onnx.save(model, fp32)
        quantize_static(
            fp32,
            str(args.out),
            _Batches(name, chips),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=(
                CalibrationMethod.MinMax
                if args.method == "minmax"
                else CalibrationMethod.Percentile
            ),
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            nodes_to_exclude=exclude,
        )
    data = args.out.read_bytes()
    print(f"{args.out}: {len(data)} bytes, {len(chips)} calibration chips")
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"graph digest {graph_digest(onnx.load_from_string(data))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
