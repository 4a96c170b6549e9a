"""`export`: a float `fixedpoint.nn` model -> an `onnx.ModelProto` that computes the same function.

The graph takes and gives the arrays the model takes and gives (channels-last NLC / NHWC for convolutional
models, batch axis dynamic). ONNX convolutions and pools are channels-first, so the exporter tracks the layout
in which each ONNX tensor holds the model's array (see `layout`) and inserts a Transpose only where a node needs
another one: before the first convolution, and back before a Flatten, a Gemm or the graph output. A `Permute` of
the model changes the tracked layout and costs no node. Parameters are written as float32, so `load(export(m))`
reproduces m exactly when its parameters are float32 values (as the task models' are), otherwise to float32
rounding.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import nn
from . import layout
from .errors import OnnxModelError
from .reader import OPSETS

DEFAULT_OPSET = 17
EXPORTED_LAYERS = ("AvgPool1d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d", "Flatten", "Linear", "MaxPool1d",
                   "MaxPool2d", "Pad", "Permute", "ReLU", "ReLU6", "Residual", "Sequential", "Sigmoid", "Softmax",
                   "Tanh")


def export(model, input_shape, *, opset: int = DEFAULT_OPSET, graph_name: str = "fxbench") -> onnx.ModelProto:
    """The ONNX model (default-domain `opset` 11..21, checked by `onnx.checker` with full shape inference) of float
    `model`, whose input is a batch of samples of `input_shape` (one sample's shape, without the batch axis)."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise OnnxModelError(f"opset must be an int in {OPSETS.start}..{OPSETS.stop - 1}, got {opset!r}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise OnnxModelError(f"input_shape must be one sample's dimensions (positive ints), got {input_shape!r}")
    sample = np.zeros((1,) + shape)
    try:
        out_shape = np.shape(model(sample))[1:]
    except (ValueError, TypeError) as exc:
        raise OnnxModelError(f"the model does not take input_shape {shape}: {exc}") from None
    emitter = _Emitter(opset)
    end = emitter.layers(_leaves(model), _Tensor("input", layout.identity(len(shape) + 1), sample), "")
    end = emitter.transpose(end, layout.identity(end.rank))
    emitter.nodes.append(helper.make_node("Identity", [end.name], ["output"], name="output"))
    graph = helper.make_graph(
        emitter.nodes, graph_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", *out_shape])],
        emitter.initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="fxbench",
                              ir_version=helper.find_min_ir_version_for(opset_ids))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _leaves(model) -> list:
    """The layers of `model` with nested Sequentials inlined (Residual blocks kept)."""
    items = list(model) if isinstance(model, nn.Sequential) else [model]
    return [leaf for item in items for leaf in (_leaves(item) if isinstance(item, nn.Sequential) else [item])]


class _Tensor:
    """An ONNX tensor name, the layout it holds the model's array in, and that array on a zero sample."""

    def __init__(self, name, layout_, sample):
        self.name, self.layout, self.sample = name, tuple(layout_), sample

    @property
    def rank(self) -> int:
        return self.sample.ndim


class _Emitter:
    def __init__(self, opset: int):
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, name: str, value, dtype=np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op, inputs, name, **attributes) -> str:
        out = self.fresh(name.replace(":", "_").replace(".", "_"))
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attributes))
        return out

    def transpose(self, tensor: _Tensor, target) -> _Tensor:
        if tensor.layout == tuple(target):
            return tensor
        perm = list(layout.transpose_to(tensor.layout, target))
        return _Tensor(self.node("Transpose", [tensor.name], self.fresh("transpose"), perm=perm), target,
                       tensor.sample)

    def layers(self, layers, tensor: _Tensor, prefix: str) -> _Tensor:
        for index, layer in enumerate(layers):
            name = f"{prefix}{index}:{type(layer).__name__}"
            tensor = self.layer(layer, tensor, name)
        return tensor

    def layer(self, layer, x: _Tensor, name: str) -> _Tensor:
        if isinstance(layer, nn.Residual):
            body = self.layers(_leaves(layer.body), x, f"{name}.")
            body = self.transpose(body, x.layout)
            return _Tensor(self.node("Add", [x.name, body.name], f"{name}.add"), x.layout, layer(x.sample))
        if isinstance(layer, nn.Permute):
            return _Tensor(x.name, layout.compose(x.layout, layer.axes), layer(x.sample))
        method = getattr(self, f"_{type(layer).__name__.lower()}", None)
        if method is None or type(layer).__name__ not in EXPORTED_LAYERS:
            raise OnnxModelError(f"layer {name} ({type(layer).__name__}) cannot be exported; exported layers: "
                                 f"{', '.join(EXPORTED_LAYERS)}")
        return method(layer, x, name)

    def _to(self, x, target, layer, name, op, inputs=(), **attributes) -> _Tensor:
        """One node `op` on x held in layout `target`; the output keeps that layout."""
        x = self.transpose(x, target)
        out = self.node(op, [x.name, *inputs], name, **attributes)
        return _Tensor(out, target, layer(x.sample))

    def _linear(self, layer, x, name):
        if x.rank == 2:
            inputs = [self.constant(f"{name}.weight", layer.weight)]
            if layer.bias is not None:
                inputs.append(self.constant(f"{name}.bias", layer.bias))
            return self._to(x, x.layout, layer, name, "Gemm", inputs, transB=1)
        target = x.layout if x.layout[-1] == x.rank - 1 else layout.identity(x.rank)
        out = self._to(x, target, nn.Linear(layer.weight), name, "MatMul", [self.constant(f"{name}.weight",
                                                                                             layer.weight.T)])
        if layer.bias is None:
            return out
        biased = self.node("Add", [out.name, self.constant(f"{name}.bias", layer.bias)], f"{name}.bias_add")
        return _Tensor(biased, target, layer(x.sample))

    def _conv(self, layer, x, name, weight_axes):
        inputs = [self.constant(f"{name}.weight", layer.weight.transpose(weight_axes))]
        if layer.bias is not None:
            inputs.append(self.constant(f"{name}.bias", layer.bias))
        stride = layer.stride if isinstance(layer.stride, tuple) else (layer.stride,)
        padding = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,)
        return self._to(x, layout.channels_last(x.rank), layer, name, "Conv", inputs,
                        kernel_shape=list(layer.weight.shape[1:-1]), strides=list(stride),
                        pads=list(padding) * 2)

    def _conv1d(self, layer, x, name):
        return self._conv(layer, x, name, (0, 2, 1))

    def _conv2d(self, layer, x, name):
        return self._conv(layer, x, name, (0, 3, 1, 2))

    def _pool(self, layer, x, name, op, **attributes):
        kernel, stride = layer.window
        return self._to(x, layout.channels_last(x.rank), layer, name, op, kernel_shape=list(kernel),
                        strides=list(stride), **attributes)

    def _maxpool1d(self, layer, x, name):
        return self._pool(layer, x, name, "MaxPool")

    _maxpool2d = _maxpool1d

    def _avgpool1d(self, layer, x, name):
        pads = [b for b, _ in layer.padding] + [e for _, e in layer.padding]
        return self._pool(layer, x, name, "AveragePool", pads=pads, count_include_pad=0)

    _avgpool2d = _avgpool1d

    def _pad(self, layer, x, name):
        pads = [0, 0] + [b for b, _ in layer.pads] + [0, 0] + [e for _, e in layer.pads]
        inputs = [self.constant(f"{name}.pads", pads, np.int64), self.constant(f"{name}.value", layer.value)]
        return self._to(x, layout.channels_last(x.rank), layer, name, "Pad", inputs, mode="constant")

    def _batchnorm(self, layer, x, name):
        target = x.layout if x.layout[-1] == 1 else layout.channels_last(x.rank)
        inputs = [self.constant(f"{name}.{key}", getattr(layer, key)) for key in ("gamma", "beta", "mean", "var")]
        return self._to(x, target, layer, name, "BatchNormalization", inputs, epsilon=layer.eps)

    def _flatten(self, layer, x, name):
        out = self._to(x, layout.identity(x.rank), layer, name, "Flatten", axis=1)
        return _Tensor(out.name, layout.identity(2), out.sample)

    def _softmax(self, layer, x, name):
        r, n = x.rank, layer.n_axes
        if self.opset >= 13:
            if n != 1:
                raise OnnxModelError(f"layer {name}: a Softmax over {n} axes needs opset <= 12 (ONNX's Softmax of "
                                     f"opset >= 13 takes one axis), got opset {self.opset}")
            return self._to(x, x.layout, layer, name, "Softmax", axis=x.layout[-1])
        trailing = set(range(r - n, r))
        target = x.layout if {x.layout[j] for j in trailing} == trailing else layout.identity(r)
        return self._to(x, target, layer, name, "Softmax", axis=r - n)

    def _relu(self, layer, x, name):
        return self._to(x, x.layout, layer, name, "Relu")

    def _relu6(self, layer, x, name):
        bounds = [self.constant(f"{name}.min", 0.0), self.constant(f"{name}.max", 6.0)]
        return self._to(x, x.layout, layer, name, "Clip", bounds)

    def _sigmoid(self, layer, x, name):
        return self._to(x, x.layout, layer, name, "Sigmoid")

    def _tanh(self, layer, x, name):
        return self._to(x, x.layout, layer, name, "Tanh")

