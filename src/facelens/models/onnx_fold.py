"""Turn the block-quantized OpenCV-zoo ONNX files into graphs onnxruntime runs.

The ``*_int8bq.onnx`` files store each weight as int8 plus per-block scales and
feed it through a ``DequantizeLinear`` node with a ``block_size`` attribute.
Folding computes ``(q - zero_point) * scale`` once, in float32, and stores the
result as an initializer: the arithmetic is exactly what ``DequantizeLinear``
does at run time, so the folded graph gives the same numbers. Inputs that the
exporter left dangling (weights declared as graph inputs) are removed, and the
batch (and optionally spatial) dimensions are made symbolic so that one
session runs batches of any size.

:func:`prelu_as_batch_norms` rewrites per-channel ``PRelu`` into operators
that onnxruntime's blocked-layout (NCHWc) convolutions keep in their layout:
SFace spent about two thirds of its onnxruntime time in ``PRelu`` and the
layout conversions around it (docs/benchmarks.md, "SFace on onnxruntime").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["fold_dequantize_linear", "make_dims_symbolic", "prelu_as_batch_norms"]


def fold_dequantize_linear(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every constant ``DequantizeLinear`` by its float32 result, in place.

    Each result is written into the graph as soon as it is computed, and the
    quantized tensors are dropped at the end, so that loading holds one
    float32 copy of the weights (plus one tensor in flight), not three.
    """
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    folded_nodes = [
        node
        for node in graph.node
        if node.op_type == "DequantizeLinear" and all(name in initializers for name in node.input)
    ]
    kept_nodes = [node for node in graph.node if all(node is not f for f in folded_nodes)]
    for node in folded_nodes:
        graph.initializer.add().CopyFrom(
            numpy_helper.from_array(_dequantize(node, initializers), node.output[0])
        )
    del graph.node[:]
    graph.node.extend(kept_nodes)

    used = {name for node in kept_nodes for name in node.input} | {o.name for o in graph.output}
    folded_names = {node.output[0] for node in folded_nodes}
    original_count = len(graph.initializer) - len(folded_nodes)
    for index in reversed(range(original_count)):
        name = graph.initializer[index].name
        if name not in used or name in folded_names:
            del graph.initializer[index]

    constant_names = {t.name for t in graph.initializer}
    live_inputs = [i for i in graph.input if i.name in used and i.name not in constant_names]
    del graph.input[:]
    graph.input.extend(live_inputs)
    return model


def _dequantize(node: onnx.NodeProto, initializers: Mapping[str, onnx.TensorProto]) -> np.ndarray:
    quantized = numpy_helper.to_array(initializers[node.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
    if len(node.input) > 2 and node.input[2]:
        zero_point = numpy_helper.to_array(initializers[node.input[2]]).astype(np.float32)
    else:
        zero_point = np.zeros_like(scale)
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis = int(attributes.get("axis", 1))
    block_size = int(attributes.get("block_size", 0))
    if quantized.ndim == 0 or scale.ndim == 0:
        return np.asarray((quantized - zero_point) * scale, dtype=np.float32)
    axis %= quantized.ndim
    if block_size:
        # Blocked quantization: one scale per `block_size` elements along `axis`.
        length = quantized.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(length), axis=axis)
        zero_point = np.repeat(zero_point, block_size, axis=axis).take(range(length), axis=axis)
    elif scale.ndim == 1:
        # Per-axis quantization: broadcast the 1-D scale along `axis`.
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = zero_point.reshape(shape)
    return np.asarray((quantized - zero_point) * scale, dtype=np.float32)


def make_dims_symbolic(model: onnx.ModelProto, names: Mapping[int, str]) -> onnx.ModelProto:
    """Give the first input and every output symbolic dimensions, e.g. ``{0: "batch"}``."""
    for value in [model.graph.input[0], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index, symbol in names.items():
            if index < len(dims) and (value is model.graph.input[0] or index == 0):
                dims[index].ClearField("dim_value")
                dims[index].dim_param = symbol
    return model


PRELU_EPSILON = 1e-5
"""The ``epsilon`` of the scaling BatchNormalization nodes; their variance is
``1 - epsilon``, so that they divide by 1."""


def prelu_as_batch_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite every ``PRelu`` with a constant per-channel slope ``a``, in place.

    ``PRelu(x) = a * x + (1 - a) * Relu(x)`` for any slope, negative or above 1.
    The two per-channel scalings are written as ``BatchNormalization`` (mean 0,
    variance ``1 - eps``, bias 0) and summed by ``Add``: onnxruntime turns each
    into a blocked depthwise convolution and fuses the ``Add``, so the tensor
    never leaves the NCHWc layout, where a ``PRelu`` is run in plain NCHW
    between two reorders. The result equals ``PRelu``'s to float32 rounding.
    """
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            nodes.append(node)
            continue
        slope = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        if slope.size <= 1 or slope.size != max(slope.shape):
            nodes.append(node)  # a scalar or non-channel slope: left as it is
            continue
        x, y = node.input[0], node.output[0]
        prefix = f"prelu{index}"
        nodes.append(helper.make_node("Relu", [x], [f"{prefix}_relu"], name=f"{prefix}_relu"))
        nodes.append(_scale(graph, f"{prefix}_relu", 1.0 - slope.reshape(-1), f"{prefix}_pos"))
        nodes.append(_scale(graph, x, slope.reshape(-1), f"{prefix}_lin"))
        nodes.append(
            helper.make_node("Add", [f"{prefix}_lin", f"{prefix}_pos"], [y], name=f"{prefix}_add")
        )
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    for position in reversed(range(len(graph.initializer))):
        if graph.initializer[position].name not in used:
            del graph.initializer[position]  # in place: extend() would copy every weight
    return model


def _scale(graph: onnx.GraphProto, source: str, scale: np.ndarray, name: str) -> onnx.NodeProto:
    """A BatchNormalization node that multiplies channel ``c`` of ``source`` by ``scale[c]``."""
    zeros = np.zeros_like(scale, dtype=np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
            numpy_helper.from_array(zeros, f"{name}_bias"),
            numpy_helper.from_array(zeros, f"{name}_mean"),
            numpy_helper.from_array(np.full_like(zeros, 1.0 - PRELU_EPSILON), f"{name}_var"),
        ]
    )
    return helper.make_node(
        "BatchNormalization",
        [source, f"{name}_scale", f"{name}_bias", f"{name}_mean", f"{name}_var"],
        [name],
        name=name,
        epsilon=PRELU_EPSILON,
    )
