"""ONNX operators -> float `fixedpoint.nn` layers, one translator per op type.

A translator gets the node and the `Value` flowing into it (its ONNX tensor name and shape, and the layout in
which the nn array holds it: see `layout`), appends the layers the node computes to `layers` and returns the
Value of the node's output. Convolutions, pools and BatchNorm on NCL/NCHW tensors need the channels-last
layout and get a `Permute` first when the array is held otherwise; Flatten, Reshape and Gemm need the ONNX
order itself (a Flatten after convolutions therefore flattens in ONNX's channel-first element order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .. import nn
from . import layout


@dataclass(frozen=True)
class Value:
    """A tensor of the graph as the nn chain holds it; `linear` is the Linear it is the direct output of."""

    name: str
    shape: tuple
    layout: tuple
    linear: object = None

    @property
    def rank(self) -> int:
        return len(self.shape)


def require(value: Value, target, layers) -> Value:
    """`value` held in layout `target`, appending a Permute when it is held otherwise."""
    if value.layout == tuple(target):
        return value
    layers.append(nn.Permute(layout.permute_to(value.layout, target)))
    return replace(value, layout=tuple(target), linear=None)


def _out(graph, node, value: Value, layout_=None, linear=None) -> Value:
    name = node.output[0]
    return Value(name, graph.shape(name), value.layout if layout_ is None else tuple(layout_), linear)


def _const(graph, node, index: int, what: str) -> np.ndarray:
    name = node.input[index] if index < len(node.input) else ""
    if not name:
        raise graph.error(node, f"{what} (input {index}) is missing")
    if name not in graph.constants:
        raise graph.error(node, f"{what} (input {index}, {name!r}) must be a constant initializer")
    return np.asarray(graph.constants[name])


def _optional_const(graph, node, index: int, what: str):
    if index >= len(node.input) or not node.input[index]:
        return None
    return _const(graph, node, index, what)


def _data_first(graph, node, value: Value) -> None:
    if node.input[0] != value.name:
        raise graph.error(node, f"the data input must be the first input, got {list(node.input)}")


def _check_static(graph, node, dims, what):
    if any(d is None for d in dims):
        raise graph.error(node, f"{what} {dims} are not all known; pass input_shape to resolve them")


# ----------------------------------------------------------------------------- dense


def gemm(graph, node, value, layers):
    _data_first(graph, node, value)
    a = graph.attributes(node)
    if a.get("transA", 0):
        raise graph.error(node, "transA = 1 is not supported (the data input must be (batch, K))")
    if value.rank != 2:
        raise graph.error(node, f"input must be 2-D (batch, K), got shape {value.shape}")
    b = _const(graph, node, 1, "B")
    weight = float(a.get("alpha", 1.0)) * (b if a.get("transB", 0) else b.T)
    c = _optional_const(graph, node, 2, "C")
    bias = None
    if c is not None:
        n = weight.shape[0]
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, n):
            raise graph.error(node, f"C of shape {c.shape} is not a bias of shape (N,) or (1, N) with N = {n}")
        bias = float(a.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1), (n,))
    linear = nn.Linear(weight, bias)
    layers.append(linear)
    return _out(graph, node, value, linear=linear)


def matmul(graph, node, value, layers):
    _data_first(graph, node, value)
    b = _const(graph, node, 1, "B")
    if b.ndim != 2 or value.rank < 2:
        raise graph.error(node, f"needs data of rank >= 2 and a 2-D constant B, got {value.shape} and {b.shape}")
    if value.layout[-1] != value.rank - 1:
        value = require(value, layout.identity(value.rank), layers)
    linear = nn.Linear(b.T)
    layers.append(linear)
    return _out(graph, node, value, linear=linear)


def add_bias(graph, node, value, layers):
    """Add of a constant: the bias of the MatMul/Gemm right before it."""
    other = next(name for name in node.input if name != value.name)
    c = np.asarray(graph.constants[other])
    linear = value.linear
    if linear is None or not layers or layers[-1] is not linear or value.layout[-1] != value.rank - 1:
        raise graph.error(node, "an Add of a constant is supported only as the bias of the MatMul/Gemm before it")
    n = linear.out_channels
    if c.ndim > value.rank or c.size not in (1, n) or (c.size == n and c.shape[-1] != n):
        raise graph.error(node, f"constant of shape {c.shape} is not a bias over the last axis ({n})")
    bias = np.broadcast_to(c.reshape(-1), (n,)) + (0 if linear.bias is None else linear.bias)
    merged = nn.Linear(linear.weight, bias)
    layers[-1] = merged
    return _out(graph, node, value, linear=merged)


# ----------------------------------------------------------------------------- convolution and pooling


def _window_pads(graph, node, attrs, spatial_shape, kernel, strides):
    """(begin, end) zeros per spatial axis from pads or auto_pad (NOTSET, VALID, SAME_UPPER, SAME_LOWER)."""
    n = len(kernel)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = list(attrs.get("pads", [0] * 2 * n))
        if len(pads) != 2 * n or any(p < 0 for p in pads):
            raise graph.error(node, f"pads {pads} must be {2 * n} counts >= 0")
        return tuple((int(pads[i]), int(pads[i + n])) for i in range(n))
    if auto == "VALID":
        return ((0, 0),) * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise graph.error(node, f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    _check_static(graph, node, spatial_shape, "the spatial input dimensions")
    out = []
    for size, k, s in zip(spatial_shape, kernel, strides):
        total = max(0, (math.ceil(size / s) - 1) * s + k - size)
        small = total // 2
        out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    return tuple(out)


def _window(graph, node, value, kernel_shape=None):
    """(attributes, kernel, strides, pads) of a Conv/MaxPool/AveragePool on a 3-D or 4-D input."""
    attrs = graph.attributes(node)
    if value.rank not in (3, 4):
        raise graph.error(node, f"only 1-D and 2-D windows are supported (input rank 3 or 4), got {value.shape}")
    n = value.rank - 2
    kernel = tuple(attrs.get("kernel_shape", kernel_shape or ()))
    if kernel_shape is not None and kernel != tuple(kernel_shape):
        raise graph.error(node, f"kernel_shape {kernel} differs from the weight's {tuple(kernel_shape)}")
    if len(kernel) != n:
        raise graph.error(node, f"kernel_shape must have {n} entries, got {kernel}")
    strides = tuple(attrs.get("strides", (1,) * n))
    dilations = tuple(attrs.get("dilations", (1,) * n))
    if any(d != 1 for d in dilations):
        raise graph.error(node, f"dilations {dilations} are not supported (only 1)")
    if attrs.get("ceil_mode", 0):
        raise graph.error(node, "ceil_mode = 1 is not supported")
    pads = _window_pads(graph, node, attrs, value.shape[2:], kernel, strides)
    return attrs, kernel, strides, pads


def _spatial(values):
    return values[0] if len(values) == 1 else tuple(values)


def conv(graph, node, value, layers):
    _data_first(graph, node, value)
    weight = _const(graph, node, 1, "W")
    bias = _optional_const(graph, node, 2, "B")
    attrs, kernel, strides, pads = _window(graph, node, value, weight.shape[2:])
    if attrs.get("group", 1) != 1:
        raise graph.error(node, f"group = {attrs['group']} is not supported (only 1)")
    value = require(value, layout.channels_last(value.rank), layers)
    symmetric = all(b == e for b, e in pads)
    if not symmetric:
        layers.append(nn.Pad(pads))
    padding = _spatial([b if symmetric else 0 for b, _ in pads])
    if value.rank == 3:
        layers.append(nn.Conv1d(weight.transpose(0, 2, 1), bias, stride=strides[0], padding=padding))
    else:
        layers.append(nn.Conv2d(weight.transpose(0, 2, 3, 1), bias, stride=strides, padding=padding))
    return _out(graph, node, value)


def _pool_common(graph, node, value, layers):
    if len(node.output) > 1 and graph.is_used(node.output[1]):
        raise graph.error(node, "the Indices output is not supported")
    _data_first(graph, node, value)
    attrs, kernel, strides, pads = _window(graph, node, value)
    if any(b >= k or e >= k for (b, e), k in zip(pads, kernel)):
        raise graph.error(node, f"pads {pads} must be smaller than the kernel {kernel}")
    return require(value, layout.channels_last(value.rank), layers), attrs, kernel, strides, pads


def max_pool(graph, node, value, layers):
    value, _, kernel, strides, pads = _pool_common(graph, node, value, layers)
    if any(any(p) for p in pads):
        layers.append(nn.Pad(pads, value=-math.inf))
    pool = nn.MaxPool1d if value.rank == 3 else nn.MaxPool2d
    layers.append(pool(_spatial(kernel), _spatial(strides)))
    return _out(graph, node, value)


def average_pool(graph, node, value, layers):
    value, attrs, kernel, strides, pads = _pool_common(graph, node, value, layers)
    pool = nn.AvgPool1d if value.rank == 3 else nn.AvgPool2d
    padded = any(any(p) for p in pads)
    if padded and attrs.get("count_include_pad", 0):
        layers.append(nn.Pad(pads))
        layers.append(pool(_spatial(kernel), _spatial(strides)))
    else:
        layers.append(pool(_spatial(kernel), _spatial(strides), padding=pads[0] if value.rank == 3 else pads))
    return _out(graph, node, value)


def global_average_pool(graph, node, value, layers):
    _data_first(graph, node, value)
    if value.rank not in (3, 4):
        raise graph.error(node, f"only 1-D and 2-D inputs are supported (rank 3 or 4), got {value.shape}")
    spatial = value.shape[2:]
    _check_static(graph, node, spatial, "the spatial input dimensions")
    value = require(value, layout.channels_last(value.rank), layers)
    pool = nn.AvgPool1d if value.rank == 3 else nn.AvgPool2d
    layers.append(pool(_spatial(spatial)))
    return _out(graph, node, value)


def pad(graph, node, value, layers):
    _data_first(graph, node, value)
    mode = graph.attributes(node).get("mode", "constant")
    if mode != "constant":
        raise graph.error(node, f"mode {mode!r} is not supported (only 'constant')")
    pads = [int(p) for p in _const(graph, node, 1, "pads").reshape(-1)]
    fill = _optional_const(graph, node, 2, "constant_value")
    fill = 0.0 if fill is None else float(fill.reshape(-1)[0]) if fill.size == 1 else None
    axes = _optional_const(graph, node, 3, "axes")
    r = value.rank
    axes = list(range(r)) if axes is None else [int(a) % r for a in axes.reshape(-1)]
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        raise graph.error(node, f"pads {pads} must be 2 x {len(axes)} counts >= 0")
    begin, end = [0] * r, [0] * r
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = pads[i], pads[i + len(axes)]
    if not any(begin) and not any(end):
        return _out(graph, node, value, linear=value.linear)
    if fill not in nn.Pad.VALUES:
        raise graph.error(node, f"constant_value {fill} is not supported (0 or -inf)")
    if r < 3 or begin[0] or end[0] or begin[1] or end[1]:
        raise graph.error(node, "only the spatial axes (2, ...) of an NCL/NCHW tensor may be padded")
    value = require(value, layout.channels_last(r), layers)
    layers.append(nn.Pad(tuple(zip(begin[2:], end[2:])), value=fill))
    return _out(graph, node, value)


def batch_norm(graph, node, value, layers):
    _data_first(graph, node, value)
    attrs = graph.attributes(node)
    if attrs.get("training_mode", 0) or any(graph.is_used(name) for name in node.output[1:]):
        raise graph.error(node, "training mode (running statistics outputs) is not supported")
    gamma, beta, mean, var = (_const(graph, node, i, what)
                              for i, what in ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")))
    if value.layout[-1] != 1:
        value = require(value, layout.channels_last(value.rank), layers)
    layers.append(nn.BatchNorm(gamma, beta, mean, var, eps=attrs.get("epsilon", 1e-5)))
    return _out(graph, node, value)


# ----------------------------------------------------------------------------- elementwise and layout


def _elementwise(layer_type):
    def translate(graph, node, value, layers):
        _data_first(graph, node, value)
        layers.append(layer_type())
        return _out(graph, node, value)
    return translate


def clip(graph, node, value, layers):
    _data_first(graph, node, value)
    low, high = (_optional_const(graph, node, i, what) for i, what in ((1, "min"), (2, "max")))
    low = None if low is None else float(low.reshape(-1)[0]) if low.size == 1 else math.nan
    high = None if high is None else float(high.reshape(-1)[0]) if high.size == 1 else math.nan
    if low == 0 and high == 6:
        layers.append(nn.ReLU6())
    elif low == 0 and (high is None or high == math.inf):
        layers.append(nn.ReLU())
    else:
        raise graph.error(node, f"Clip({low}, {high}) is not supported; accepted: Clip(0, 6) as ReLU6, "
                                "Clip(0, none) as ReLU")
    return _out(graph, node, value)


def passthrough(graph, node, value, layers):
    """Identity, and Dropout at inference (its ratio is ignored)."""
    _data_first(graph, node, value)
    if node.op_type == "Dropout":
        training = _optional_const(graph, node, 2, "training_mode")
        if (training is not None and bool(training.reshape(-1)[0])) or any(graph.is_used(n) for n in node.output[1:]):
            raise graph.error(node, "training mode (mask output or training_mode = true) is not supported")
    return _out(graph, node, value, linear=value.linear)


def transpose(graph, node, value, layers):
    _data_first(graph, node, value)
    perm = tuple(graph.attributes(node).get("perm", tuple(reversed(range(value.rank)))))
    if sorted(perm) != list(range(value.rank)) or perm[0] != 0:
        raise graph.error(node, f"perm {perm} must keep the batch axis first")
    return _out(graph, node, value, layout.compose(layout.inverse(perm), value.layout), linear=value.linear)


def _flatten_into(graph, node, value, layers):
    if value.rank == 2:
        return _out(graph, node, value, linear=value.linear)
    value = require(value, layout.identity(value.rank), layers)
    layers.append(nn.Flatten())
    return _out(graph, node, value, layout.identity(2))


def flatten(graph, node, value, layers):
    _data_first(graph, node, value)
    axis = graph.attributes(node).get("axis", 1)
    if axis % max(value.rank, 1) != 1:
        raise graph.error(node, f"axis {axis} is not supported (only 1: keep the batch axis, flatten the rest)")
    return _flatten_into(graph, node, value, layers)


def reshape(graph, node, value, layers):
    _data_first(graph, node, value)
    target = [int(d) for d in _const(graph, node, 1, "shape").reshape(-1)]
    allow_zero = graph.attributes(node).get("allowzero", 0)
    features = value.shape[1:]
    _check_static(graph, node, features, "the input dimensions after the batch")
    size = math.prod(features)
    batch = graph.shape(graph.input)[0]
    ok = (len(target) == 2 and not (allow_zero and 0 in target)
          and ((target[0] in (0, -1) or (batch is not None and target[0] == batch)) and target[1] in (-1, size))
          and not (target[0] == -1 and target[1] != size))
    if not ok:
        raise graph.error(node, f"shape {target} is not supported; accepted: (batch, -1) or (batch, {size}) with "
                                "batch given as 0, -1 or the input's batch size")
    return _flatten_into(graph, node, value, layers)


def softmax(graph, node, value, layers):
    _data_first(graph, node, value)
    r = value.rank
    axis = graph.attributes(node).get("axis", 1 if graph.opset < 13 else -1) % r
    if axis == 0:
        raise graph.error(node, "a softmax over the batch axis is not supported")
    axes = set(range(axis, r)) if graph.opset < 13 else {axis}
    held = [j for j, onnx_axis in enumerate(value.layout) if onnx_axis in axes]
    if held != list(range(r - len(axes), r)):
        order = [j for j in range(r) if j not in held] + held
        value = require(value, layout.compose(value.layout, order), layers)
    layers.append(nn.Softmax(n_axes=len(axes)))
    return _out(graph, node, value)


TRANSLATORS = {
    "Add": add_bias, "AveragePool": average_pool, "BatchNormalization": batch_norm, "Clip": clip, "Conv": conv,
    "Dropout": passthrough, "Flatten": flatten, "Gemm": gemm, "GlobalAveragePool": global_average_pool,
    "Identity": passthrough, "MatMul": matmul, "MaxPool": max_pool, "Pad": pad, "Relu": _elementwise(nn.ReLU),
    "Reshape": reshape, "Sigmoid": _elementwise(nn.Sigmoid), "Softmax": softmax, "Tanh": _elementwise(nn.Tanh),
    "Transpose": transpose,
}
