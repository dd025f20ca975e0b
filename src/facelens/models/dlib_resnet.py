"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``): 150x150 RGB -> 128-D.

The weights are the ``.dat`` file that PyPI's ``face-recognition-models``
ships; dlib itself is never imported. At load, :mod:`facelens.models.dlib_format`
reads the file, the layers are checked against the network's C++ type (from
dlib's ``examples/dnn_face_recognition_ex.cpp``, mirrored below) and turned
into an ONNX graph that onnxruntime runs in batches:

* input: ``(N, 150, 150, 3)`` **RGB** uint8, as dlib's ``input_rgb_image_sized<150>``
  takes it; the graph subtracts the per-channel means stored in the file
  (122.782, 117.001, 104.298 for R, G, B) and divides by 256;
* ``con`` + ``affine`` (dlib's inference form of batch norm) become one Conv
  (the affine scale and shift folded into its weights and bias);
* ``add_prev`` adds two tensors of possibly different sizes as dlib does:
  the output takes the larger size in every dimension and each input counts
  as zero outside its own extent (channels, rows, columns padded at the end);
* the output is the 128-D ``fc_no_bias`` vector, L2-normalised here.

Reading the 22.5 MB file and building the graph take about 0.2 s; nothing is
cached on disk.

Two alignments, two model ids (their templates differ, so do their calibrations):

* ``dlib-resnet-v1``: the chip is aligned from the detector's 5 landmarks onto
  ``REFERENCE_LANDMARKS`` (where those landmarks fall in dlib's own chips), like
  every other embedder; the better of the two on LFW.
* ``dlib-resnet-v1-native``: dlib's own alignment (:meth:`DlibResNetEmbedder.align`):
  a dlib-like box made from the detection, dlib's 5-point shape predictor and
  dlib's chip, all in numpy (:mod:`facelens.models.dlib_shape`); the predictor
  file ships in the same package and is read, after its sha256 check, at the
  first alignment (~3 s). Its templates match dlib's full pipeline.
Equivalence with real dlib (cosine >= 0.9999 on real faces) is checked by
``tests/test_dlib_resnet.py`` against ``tests/fixtures/dlib_reference.json``.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facelens.errors import ModelIntegrityError
from facelens.models import dlib_format
from facelens.models.dlib_format import Layer, Network, read_network
from facelens.models.dlib_shape import (
    Rect,
    ShapePredictor,
    face_chip,
    predict_shape,
    read_shape_predictor,
)
from facelens.models.graph_cache import cached_session
from facelens.models.runtime import create_session, engine_of, faces_per_call
from facelens.models.spec import ModelSpec, check_folded, verified_model_bytes
from facelens.types import Detection, FloatArray, ImageArray
from facelens.vectors import unit_rows

__all__ = [
    "INPUT_NAME",
    "INT8_SPEC",
    "NATIVE_SPEC",
    "OUTPUT_NAME",
    "REFERENCE_LANDMARKS",
    "SHAPE_PREDICTOR_SHA256",
    "SPEC",
    "DlibResNetEmbedder",
    "build_onnx",
    "built_graph",
    "dlib_box",
    "match_architecture",
]

CHIP_SIZE = 150

REFERENCE_LANDMARKS = np.array(
    [
        [47.5308, 44.3070],
        [100.7426, 44.0558],
        [73.1771, 75.9290],
        [51.6732, 102.3515],
        [97.6456, 102.3065],
    ],
    dtype=np.float32,
)
"""Where facelens's 5 landmarks (image-left eye first) fall in dlib's 150x150 chip, x, y.

dlib cuts its chips with ``get_face_chip_details(shape5, 150, padding=0.25)``
from its own 5-point shape predictor, whose points are not YuNet's. These are
the medians of YuNet's landmarks (found as the pipeline finds them) on dlib's
own chips of 307 LFW faces (every 20th image), measured by
``benchmarks/dlib_chip_landmarks.py`` (``benchmarks/results/dlib_chip_landmarks.json``);
the faces spread around them by 1-3 px (median absolute deviation).
"""

SHAPE_PREDICTOR_FILE = "models/shape_predictor_5_face_landmarks.dat"
SHAPE_PREDICTOR_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"

DLIB_BOX_SIDE = 1.1319
DLIB_BOX_SHIFT = (-0.0301, 0.0544)
"""dlib's HOG box of a face from YuNet's box ``(x, y, w, h)``: a square of side
``1.1319 w`` centred at ``(x + w/2 - 0.0301 w, y + h/2 + 0.0544 w)``.

dlib's 5-point predictor was trained on its HOG/MMOD detector's boxes. These
factors are the least-squares fit of real dlib's HOG boxes (upsample 1) on 627
LFW faces (every 10th image) from YuNet's; the side is off by 5% (median) as
HOG's boxes come in discrete scales, and the 5 points predicted from this box
fall within 2.3% of the inter-ocular distance (median; 90th percentile 3.3%)
of those predicted from dlib's own box.
"""

INPUT_NAME = "image"
OUTPUT_NAME = "descriptor"
OPSET = 17


# --- the network's C++ type, as a list of operations from the input up ---------------------


@dataclass(frozen=True)
class Op:
    """One step of the architecture: a layer, or a tag/skip wrapper (``tag`` = its number)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc", "tag", "skip"
    filters: int = 0
    stride: int = 1
    tag: int = 0


def _block(filters: int, stride: int) -> list[Op]:
    """``block<N,affine,stride>``.

    = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    """
    return [
        Op("con", filters, stride),
        Op("affine"),
        Op("relu"),
        Op("con", filters, 1),
        Op("affine"),
    ]


def _ares(filters: int) -> list[Op]:
    """``ares<N>`` = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>."""
    return [Op("tag", tag=1), *_block(filters, 1), Op("add_prev", tag=1), Op("relu")]


def _ares_down(filters: int) -> list[Op]:
    """``ares_down<N>``.

    = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    """
    return [
        Op("tag", tag=1),
        *_block(filters, 2),
        Op("tag", tag=2),
        Op("skip", tag=1),
        Op("avg_pool"),
        Op("add_prev", tag=2),
        Op("relu"),
    ]


def architecture() -> list[Op]:
    """``anet_type`` of dnn_face_recognition_ex.cpp, input side first (dlib nests it the other way).

    loss_metric<fc_no_bias<128,avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>
    """
    ops = [Op("con", 32, 2), Op("affine"), Op("relu"), Op("max_pool")]
    ops += _ares(32) * 3  # alevel4
    ops += _ares_down(64) + _ares(64) * 3  # alevel3
    ops += _ares_down(128) + _ares(128) * 2  # alevel2
    ops += _ares_down(256) + _ares(256) * 2  # alevel1
    ops += _ares_down(256)  # alevel0
    ops += [Op("avg_pool"), Op("fc", 128)]  # avg_pool_everything, fc_no_bias<128>
    return ops


def match_architecture(network: Network) -> list[tuple[Op, Layer]]:
    """Pair each parsed layer with its step of :func:`architecture`; refuse any mismatch."""
    ops = architecture()
    if len(ops) != len(network.layers):
        raise ModelIntegrityError(
            f"dlib network has {len(network.layers)} layers, the face ResNet has {len(ops)}"
        )
    for index, (op, layer) in enumerate(zip(ops, network.layers, strict=True)):
        expected = "tag_or_skip" if op.kind in ("tag", "skip") else op.kind
        same = layer.kind == expected
        if same and op.kind == "con":
            settings = layer.settings
            same = (settings["filters"], settings["stride_y"], settings["stride_x"]) == (
                op.filters,
                op.stride,
                op.stride,
            )
        if same and op.kind == "fc":
            same = layer.settings["outputs"] == op.filters
        if not same:
            raise ModelIntegrityError(
                f"dlib network layer {index} is {layer.version or layer.kind} {layer.settings}, "
                f"the face ResNet expects {op}"
            )
    return list(zip(ops, network.layers, strict=True))


# --- ONNX graph -----------------------------------------------------------------------------


class _GraphBuilder:
    """Accumulates ONNX nodes and initializers, tracking each tensor's static (C, H, W)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(
        self, op_type: str, inputs: list[str], shape: tuple[int, int, int], **attrs: Any
    ) -> str:
        output = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        self.shapes[output] = shape
        return output


def _conv(builder: _GraphBuilder, source: str, con: Layer, affine: Layer) -> str:
    """dlib ``con_`` followed by ``affine_`` (conv mode), as one Conv with folded weights."""
    if affine.settings["mode"] != "conv":
        raise ModelIntegrityError("dlib affine_ after a con_ must be in CONV_MODE")
    settings = con.settings
    gamma = affine.weights["gamma"].reshape(-1).astype(np.float64)
    beta = affine.weights["beta"].reshape(-1).astype(np.float64)
    filters = con.weights["filters"].astype(np.float64) * gamma[:, None, None, None]
    bias = con.weights["biases"].astype(np.float64) * gamma + beta
    pad_y, pad_x = settings["padding_y"], settings["padding_x"]
    _, height, width = builder.shapes[source]
    out_h = (height + 2 * pad_y - settings["rows"]) // settings["stride_y"] + 1
    out_w = (width + 2 * pad_x - settings["columns"]) // settings["stride_x"] + 1
    return builder.node(
        "Conv",
        [
            source,
            builder.constant("w", filters.astype(np.float32)),
            builder.constant("b", bias.astype(np.float32)),
        ],
        (settings["filters"], out_h, out_w),
        kernel_shape=[settings["rows"], settings["columns"]],
        strides=[settings["stride_y"], settings["stride_x"]],
        pads=[pad_y, pad_x, pad_y, pad_x],
    )


def _pool(builder: _GraphBuilder, source: str, layer: Layer) -> str:
    """dlib ``max_pool_`` / ``avg_pool_``; a 0x0 window means the whole input (global pool)."""
    settings = layer.settings
    channels, height, width = builder.shapes[source]
    if settings["rows"] == 0 and settings["columns"] == 0:
        op = "GlobalMaxPool" if layer.kind == "max_pool" else "GlobalAveragePool"
        return builder.node(op, [source], (channels, 1, 1))
    if settings["padding_y"] or settings["padding_x"]:
        # dlib averages only the pixels inside the image, and max-pools ignoring padding;
        # the face ResNet has no padded pooling, so this case is left out.
        raise ModelIntegrityError("padded dlib pooling is not supported")
    out_h = (height - settings["rows"]) // settings["stride_y"] + 1
    out_w = (width - settings["columns"]) // settings["stride_x"] + 1
    return builder.node(
        "MaxPool" if layer.kind == "max_pool" else "AveragePool",
        [source],
        (channels, out_h, out_w),
        kernel_shape=[settings["rows"], settings["columns"]],
        strides=[settings["stride_y"], settings["stride_x"]],
    )


def _pad_to(builder: _GraphBuilder, source: str, shape: tuple[int, int, int]) -> str:
    """Zero-pad ``source`` at the end of channels, rows and columns up to ``shape``."""
    current = builder.shapes[source]
    if current == shape:
        return source
    extra = [target - have for target, have in zip(shape, current, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return builder.node("Pad", [source, builder.constant("pads", pads)], shape, mode="constant")


def _add_prev(builder: _GraphBuilder, first: str, second: str) -> str:
    """dlib ``add_prev_``: sum over the larger extent, each input zero outside its own."""
    shape_a, shape_b = builder.shapes[first], builder.shapes[second]
    shape = (
        max(shape_a[0], shape_b[0]),
        max(shape_a[1], shape_b[1]),
        max(shape_a[2], shape_b[2]),
    )
    return builder.node(
        "Add", [_pad_to(builder, first, shape), _pad_to(builder, second, shape)], shape
    )


def build_onnx(network: Network) -> onnx.ModelProto:
    """The ONNX graph of the dlib face ResNet: ``(N, 150, 150, 3)`` uint8 RGB -> ``(N, 128)``."""
    steps = match_architecture(network)
    net_input = network.input
    builder = _GraphBuilder()
    as_float = builder.node(
        "Cast", [INPUT_NAME], (net_input.rows, net_input.columns, 3), to=TensorProto.FLOAT
    )
    nchw = builder.node(
        "Transpose", [as_float], (3, net_input.rows, net_input.columns), perm=[0, 3, 1, 2]
    )
    means = np.array(net_input.means_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    centred = builder.node("Sub", [nchw, builder.constant("means", means)], builder.shapes[nchw])
    scale = np.array(1.0 / 256.0, dtype=np.float32)  # a power of two: exact, as in dlib
    current = builder.node("Mul", [centred, builder.constant("scale", scale)], builder.shapes[nchw])

    tags: dict[int, str] = {}
    index = 0
    while index < len(steps):
        op, layer = steps[index]
        if op.kind == "con":
            current = _conv(builder, current, layer, steps[index + 1][1])
            index += 1  # the affine is folded into the conv
        elif op.kind == "relu":
            current = builder.node("Relu", [current], builder.shapes[current])
        elif op.kind in ("max_pool", "avg_pool"):
            current = _pool(builder, current, layer)
        elif op.kind == "tag":
            tags[op.tag] = current
        elif op.kind == "skip":
            current = tags[op.tag]
        elif op.kind == "add_prev":
            current = _add_prev(builder, current, tags[op.tag])
        elif op.kind == "fc":
            flat = builder.node("Flatten", [current], (layer.settings["inputs"], 1, 1), axis=1)
            weights = builder.constant("fc", layer.weights["weights"].astype(np.float32))
            current = builder.node("MatMul", [flat, weights], (layer.settings["outputs"], 1, 1))
        else:
            raise ModelIntegrityError(f"no ONNX mapping for dlib layer {op.kind}")
        index += 1

    builder.nodes.append(helper.make_node("Identity", [current], [OUTPUT_NAME]))
    graph = helper.make_graph(
        builder.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.UINT8, ["batch", net_input.rows, net_input.columns, 3]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 128])],
        builder.initializers,
    )
    builder.initializers.clear()  # the graph holds its own copies: 22 MB less at the peak
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# --- the embedder ---------------------------------------------------------------------------


class DlibResNetEmbedder:
    """128-D face templates from dlib's ResNet; see :class:`facelens.models.base.Embedder`."""

    input_size = (CHIP_SIZE, CHIP_SIZE)
    reference_landmarks = REFERENCE_LANDMARKS
    dimension = 128

    def __init__(
        self,
        spec: ModelSpec,
        model_bytes: bytes,
        threads: int | None = None,
        runtime: str = "onnxruntime",
        own_alignment: bool = False,
    ) -> None:
        self.model_id = spec.id
        self.runtime = runtime
        self.own_alignment = own_alignment  # cut chips with dlib's shape predictor (align)
        if spec.file.endswith(".onnx"):  # a graph facelens wrote (the int8 one): run as is
            check_folded(spec, onnx.load_from_string(model_bytes))
            self._session = create_session(  # the file's sha256 was checked as it was read
                model_bytes, threads, openvino_precision="bf16", model_sha256=spec.sha256
            )
        else:  # dlib's own .dat: build the graph
            self._session = cached_session(
                spec,
                (dlib_format, sys.modules[__name__]),
                lambda: built_graph(spec, model_bytes),
                threads,
                openvino_precision="bf16",
            )
        self.engine = engine_of(self._session)
        """What runs the network: ``"onnxruntime"`` or ``"openvino"``."""
        self.faces_per_call = faces_per_call(self._session)
        """Faces per call it runs best at (:class:`facelens.models.base.BatchedEmbedder`)."""
        self._spec = spec
        self._predictor: ShapePredictor | None = None
        self._predictor_lock = threading.Lock()

    @property
    def shape_predictor(self) -> ShapePredictor:
        """dlib's 5-point predictor, read (sha256-checked) from the same package on first use."""
        with self._predictor_lock:
            if self._predictor is None:
                spec = replace(self._spec, file=SHAPE_PREDICTOR_FILE, sha256=SHAPE_PREDICTOR_SHA256)
                self._predictor = read_shape_predictor(verified_model_bytes(spec))
            return self._predictor

    def align(self, image: ImageArray, detection: Detection) -> ImageArray:
        """dlib's own 150x150 chip of a detected face: RGB uint8 ``(150, 150, 3)``.

        ``image`` is the full-resolution RGB uint8 photo the detection's
        coordinates refer to. The box given to the shape predictor is
        :func:`dlib_box` of the detection.
        """
        points = predict_shape(self.shape_predictor, image, dlib_box(detection))
        return face_chip(image, points, CHIP_SIZE)

    def descriptors(self, crops: ImageArray) -> FloatArray:
        """``(N, 150, 150, 3)`` RGB uint8 chips -> dlib's raw ``(N, 128)`` descriptors.

        These are the numbers dlib's ``compute_face_descriptor`` returns (not normalised).
        """
        if crops.ndim != 4 or crops.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) chips, got {crops.shape}")
        batch = np.ascontiguousarray(crops, dtype=np.uint8)
        outputs = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(outputs[0], dtype=np.float32)

    def embed(self, crops: ImageArray) -> FloatArray:
        """``(N, 150, 150, 3)`` RGB uint8 -> ``(N, 128)`` float32 with unit L2 norm."""
        if len(crops) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return unit_rows(self.descriptors(crops))


def built_graph(spec: ModelSpec, model_bytes: bytes) -> bytes:
    """The serialized, checked graph of a dlib ``.dat`` file.

    The graph object is dropped before the session is made, so that loading
    does not hold one more copy of the weights while onnxruntime reads them.
    """
    model = build_onnx(read_network(model_bytes))
    check_folded(spec, model)
    serialized: bytes = model.SerializeToString()
    return serialized


def dlib_box(detection: Detection) -> Rect:
    """A dlib ``rectangle`` (left, top, right, bottom, whole pixels) for a detected face."""
    box = detection.box
    side = DLIB_BOX_SIDE * box.width
    centre_x = box.x + box.width / 2 + DLIB_BOX_SHIFT[0] * box.width
    centre_y = box.y + box.height / 2 + DLIB_BOX_SHIFT[1] * box.width
    left = math.floor(centre_x - side / 2 + 0.5)
    top = math.floor(centre_y - side / 2 + 0.5)
    right = math.floor(centre_x + side / 2 + 0.5)
    bottom = math.floor(centre_y + side / 2 + 0.5)
    return left, top, right, bottom


def _create(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> DlibResNetEmbedder:
    return DlibResNetEmbedder(spec, model_bytes, threads, runtime)


def _create_native(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> DlibResNetEmbedder:
    return DlibResNetEmbedder(spec, model_bytes, threads, runtime, own_alignment=True)


SPEC = ModelSpec(
    id="dlib-resnet-v1",
    task="embedder",
    family="dlib_resnet",
    package="face-recognition-models",
    package_version="0.3.0",
    module="face_recognition_models",
    file="models/dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    folded_digest="3e839ec27d2fcbf5d2a4ac5c22df9bea49cdfe8e3ee07ae2594b3ba29763bf54",
    licence="CC0-1.0 (dlib-models, Davis King)",
    upstream="https://github.com/davisking/dlib-models (dlib_face_recognition_resnet_model_v1)",
    input_spec=(
        "Nx150x150x3 uint8 RGB chip (dlib get_face_chip_details, padding 0.25); "
        "the graph subtracts the RGB means 122.782, 117.001, 104.298 and divides by 256"
    ),
    factory=_create,
    runtimes=("onnxruntime",),
    calibration_file="dlib-resnet-v1.json",
)

NATIVE_SPEC = replace(
    SPEC,
    id="dlib-resnet-v1-native",
    factory=_create_native,
    calibration_file="dlib-resnet-v1-native.json",
)
"""The same network on chips cut by dlib's own 5-point shape predictor (``align``):
the templates equal those of dlib and the ``face_recognition`` library for the
same face box, so encodings made by either can be compared with facelens's.
On LFW it scores lower than ``dlib-resnet-v1`` (docs/benchmarks.md)."""

INT8_SPEC = replace(
    SPEC,
    id="dlib-resnet-v1-int8",
    package="facelens (written by scripts/quantize_dlib_int8.py)",
    package_version="1",
    module="facelens.models.quantized",
    file="dlib-resnet-v1-int8.onnx",
    sha256="2bc99fcd7e4600eaf1cd9c462993966b7554631f3e3d0d3db1d7abfbb843142e",
    folded_digest="6aff09ae43228acc30fefc5c7afc4cc4171aceebb824059beb3824b3c4bba2a3",
    upstream=(
        "dlib-resnet-v1 (dlib_face_recognition_resnet_model_v1.dat, face-recognition-models "
        "0.3.0) built by facelens.models.dlib_resnet.build_onnx, then onnxruntime 1.32.0 "
        "quantize_static: QDQ, int8 weights per channel, uint8 activations, Conv/MatMul except "
        "the final MatMul, the first Conv and residual blocks 1 and 12 (kept float32), MinMax "
        "ranges from the dlib chips of 300 LFW images outside pairs.txt "
        "(scripts/quantize_dlib_int8.py)"
    ),
    calibration_file=None,  # calibrated as a part of the default fusion
)
"""dlib's ResNet with int8 weights and activations (its 4 most sensitive parts float32):
about 0.6x the CPU time per face of ``dlib-resnet-v1``; its templates agree (cosine >= 0.9997
on LFW faces outside the pairs and on ORL), and in the default fusion LFW accuracy is the
float32 fusion's, 99.67% (docs/benchmarks.md, "Session 7")."""
