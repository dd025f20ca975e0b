"""A reader for dlib's serialized DNN files (``net_type`` saved with ``dlib::serialize``).

Only what the face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``)
holds is supported; anything else is refused with the offset where it was met.
The byte layout follows dlib's sources:

* integers (``dlib/serialize.h``, ``pack_int``): one control byte, whose low 4
  bits give the number of value bytes that follow (little-endian) and whose
  bit ``0x80`` marks a negative value;
* floats and doubles (``dlib/float_details.h``): two such integers, a 64-bit
  mantissa and a 16-bit exponent, the value being ``mantissa * 2**exponent``
  (exponents 32000, 32001, 32002 mean +inf, -inf and NaN);
* strings: an integer length, then the bytes; bools: the ASCII byte ``'0'``/``'1'``;
* tensors (``dlib/dnn/tensor.h``, version 2): the sizes ``n, k, nr, nc``, then
  ``n*k*nr*nc`` little-endian IEEE float32 in that (row-major, NCHW) order;
  alias tensors: version 1 and the four sizes only;
* networks (``dlib/dnn/core.h``): each ``add_layer`` writes its version (2; 3
  for the one on the input layer), then its sub-network, then its own layer
  details and its training state; ``add_tag_layer`` and ``add_skip_layer``
  write version 1 and their sub-network only; ``add_loss_layer`` writes its
  version (1), its loss details, then the network. So the file lists the
  wrappers from the output inwards, then the input layer, then the layer
  details from the input outwards.

Tags and skips carry no id in the file, so they cannot be told apart here: they
are returned as ``"tag_or_skip"`` markers at their place, and the network's
topology is taken from its C++ type (see :mod:`facelens.models.dlib_resnet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.errors import ModelIntegrityError

__all__ = ["DlibFormatError", "Layer", "Network", "Reader", "read_network"]

FLOAT_INF, FLOAT_NINF, FLOAT_NAN = 32000, 32001, 32002


class DlibFormatError(ModelIntegrityError):
    """The bytes are not a dlib network of a supported kind."""


@dataclass(frozen=True)
class Tensor:
    """A dlib tensor: ``shape`` is ``(n, k, nr, nc)``; ``values`` is float32 of that shape."""

    values: np.ndarray


@dataclass(frozen=True)
class Layer:
    """One computational layer: its dlib class version tag, settings and weights."""

    kind: str  # "con", "affine", "relu", "add_prev", "avg_pool", "max_pool", "fc", "tag_or_skip"
    version: str  # the version string dlib wrote, e.g. "con_4"
    settings: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class InputLayer:
    """``input_rgb_image_sized``: per-channel means (R, G, B, in 0-255 units) and size."""

    version: str
    means_rgb: tuple[float, float, float]
    rows: int
    columns: int


@dataclass(frozen=True)
class Network:
    """A parsed network: its loss, its input and its layers from the input to the output."""

    loss: str
    loss_settings: dict[str, float]
    input: InputLayer
    layers: list[Layer]


class Reader:
    """Sequential reader over the bytes of a dlib serialization stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def fail(self, message: str) -> DlibFormatError:
        return DlibFormatError(f"dlib file, offset {self.offset}: {message}")

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise self.fail(f"needs {count} more bytes, the file ends")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def integer(self) -> int:
        """A signed or unsigned integer (``pack_int``)."""
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little") if size else 0
        return -value if control & 0x80 else value

    def real(self) -> float:
        """A float or double (``float_details``: mantissa * 2**exponent)."""
        mantissa = self.integer()
        exponent = self.integer()
        if exponent < FLOAT_INF:
            return float(np.ldexp(float(mantissa), exponent))
        if exponent == FLOAT_INF:
            return float("inf")
        if exponent == FLOAT_NINF:
            return float("-inf")
        return float("nan")

    def string(self) -> str:
        length = self.integer()
        return self.take(length).decode("latin-1")

    def boolean(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {byte!r}")
        return byte == b"1"

    def tensor(self) -> Tensor:
        """A ``resizable_tensor`` (version 2: sizes then raw little-endian float32)."""
        version = self.integer()
        if version != 2:
            raise self.fail(f"tensor version {version}, only 2 is supported")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        return Tensor(values.reshape(shape))

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only its sizes ``(n, k, nr, nc)``."""
        version = self.integer()
        if version != 1:
            raise self.fail(f"alias_tensor version {version}, only 1 is supported")
        n, k, nr, nc = (self.integer() for _ in range(4))
        return n, k, nr, nc

    def expect(self, tag: str) -> None:
        found = self.string()
        if found != tag:
            raise self.fail(f"expected {tag!r}, found {found!r}")


def read_network(data: bytes) -> Network:
    """Parse a whole network file: loss, wrappers, input layer and every layer's weights."""
    reader = Reader(data)
    if reader.integer() != 1:
        raise reader.fail("not an add_loss_layer (version 1)")
    loss, loss_settings = _loss(reader)
    nesting: list[int] = []  # the version of every wrapper, output side first
    while (version := reader.integer()) != 3:
        if version not in (1, 2):
            raise reader.fail(f"unexpected layer version {version}")
        nesting.append(version)
    input_layer = _input_layer(reader)
    layers = [_layer(reader)]
    _training_state(reader, on_input=True)
    for version in reversed(nesting):
        if version == 1:
            layers.append(Layer("tag_or_skip", ""))
        else:
            layers.append(_layer(reader))
            _training_state(reader, on_input=False)
    if reader.offset != len(data):
        raise reader.fail(f"{len(data) - reader.offset} bytes left after the network")
    return Network(loss, loss_settings, input_layer, layers)


def _loss(reader: Reader) -> tuple[str, dict[str, float]]:
    version = reader.string()
    if version != "loss_metric_2":
        raise reader.fail(f"unsupported loss {version!r}")
    return version, {"margin": reader.real(), "distance_threshold": reader.real()}


def _input_layer(reader: Reader) -> InputLayer:
    version = reader.string()
    if version != "input_rgb_image_sized":
        raise reader.fail(f"unsupported input layer {version!r}")
    means = (reader.real(), reader.real(), reader.real())
    return InputLayer(version, means, reader.integer(), reader.integer())


def _training_state(reader: Reader, on_input: bool) -> None:
    """Skip what ``add_layer`` saves after its details (flags and gradient buffers)."""
    for _ in range(3):  # setup called, gradient stale, output getters disabled
        reader.boolean()
    reader.tensor()  # x_grad
    reader.tensor()  # cached_output
    reader.tensor()  # params_grad, or grad_final on the input layer
    if on_input:
        reader.integer()  # _sample_expansion_factor


def _layer(reader: Reader) -> Layer:
    version = reader.string()
    parse = _LAYER_PARSERS.get(version)
    if parse is None:
        raise reader.fail(f"unsupported layer {version!r}")
    return parse(reader, version)


def _con(reader: Reader, version: str) -> Layer:
    """``con_4``: params, sizes, strides, paddings, filter/bias aliases, 4 multipliers."""
    params = reader.tensor().values.reshape(-1)
    settings: dict[str, Any] = {
        "filters": reader.integer(),
        "rows": reader.integer(),
        "columns": reader.integer(),
        "stride_y": reader.integer(),
        "stride_x": reader.integer(),
        "padding_y": reader.integer(),
        "padding_x": reader.integer(),
    }
    filters_shape = reader.alias_tensor()
    biases_shape = reader.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers (training only)
        reader.real()
    filter_count = int(np.prod(filters_shape))
    bias_count = int(np.prod(biases_shape))
    if filter_count + bias_count != params.size:
        raise reader.fail("con_ parameter count does not match its filters and biases")
    weights = {
        "filters": params[:filter_count].reshape(filters_shape),
        "biases": params[filter_count:].reshape(biases_shape[1]),
    }
    return Layer("con", version, settings, weights)


def _affine(reader: Reader, version: str) -> Layer:
    """``affine_`` (what ``bn_`` becomes at inference): y = gamma * x + beta per channel."""
    params = reader.tensor().values.reshape(-1)
    gamma_shape = reader.alias_tensor()
    beta_shape = reader.alias_tensor()
    mode = reader.integer()  # dlib's layer_mode: CONV_MODE = 0, FC_MODE = 1
    count = int(np.prod(gamma_shape))
    if count != int(np.prod(beta_shape)) or 2 * count != params.size:
        raise reader.fail("affine_ parameter count does not match gamma and beta")
    weights = {
        "gamma": params[:count].reshape(gamma_shape),
        "beta": params[count:].reshape(beta_shape),
    }
    return Layer("affine", version, {"mode": "conv" if mode == 0 else "fc"}, weights)


def _pool(reader: Reader, version: str) -> Layer:
    """``max_pool_2`` / ``avg_pool_2``: window (0 = whole input), strides, paddings."""
    settings = {
        "rows": reader.integer(),
        "columns": reader.integer(),
        "stride_y": reader.integer(),
        "stride_x": reader.integer(),
        "padding_y": reader.integer(),
        "padding_x": reader.integer(),
    }
    return Layer(version.rsplit("_", 1)[0], version, settings)


def _fc(reader: Reader, version: str) -> Layer:
    """``fc_2``: outputs, inputs, params, weight/bias aliases, bias mode, 4 multipliers."""
    outputs = reader.integer()
    inputs = reader.integer()
    params = reader.tensor().values.reshape(-1)
    weights_shape = reader.alias_tensor()  # (inputs, outputs): y = x @ W
    biases_shape = reader.alias_tensor()
    has_bias = reader.integer() == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        reader.real()
    count = int(np.prod(weights_shape))
    if weights_shape[:2] != (inputs, outputs):
        raise reader.fail(f"fc_ weights are {weights_shape}, expected ({inputs}, {outputs}, 1, 1)")
    weights = {"weights": params[:count].reshape(inputs, outputs)}
    if has_bias:
        weights["biases"] = params[count : count + int(np.prod(biases_shape))]
    elif params.size != count:
        raise reader.fail("fc_ without bias has extra parameters")
    return Layer("fc", version, {"outputs": outputs, "inputs": inputs}, weights)


def _plain(reader: Reader, version: str) -> Layer:
    """Layers with no settings: ``relu_``, ``add_prev_``."""
    return Layer(version.rstrip("_"), version)


_LAYER_PARSERS = {
    "con_4": _con,
    "affine_": _affine,
    "relu_": _plain,
    "add_prev_": _plain,
    "max_pool_2": _pool,
    "avg_pool_2": _pool,
    "fc_2": _fc,
}
