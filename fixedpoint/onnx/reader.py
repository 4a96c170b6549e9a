"""Reading an ONNX model: file, external data, checker, opset, the one input and output, shapes, constants.

Everything here uses the onnx package's own helpers (`onnx.load`, `onnx.checker`, `onnx.shape_inference`,
`onnx.numpy_helper`, `onnx.helper.get_attribute_value`); nothing parses protobuf by hand.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, numpy_helper, shape_inference

from .errors import OnnxModelError

OPSETS = range(11, 22)   # default-domain opsets read (and written)
FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}


def read_model(model) -> tuple[onnx.ModelProto, str]:
    """(ModelProto with its external data loaded, a label for messages: the file path or "model")."""
    if isinstance(model, onnx.ModelProto):
        for tensor in model.graph.initializer:
            if external_data_helper.uses_external_data(tensor):
                raise OnnxModelError(f"model: initializer {tensor.name!r} keeps its data in an external file; "
                                     "pass the model's file path so the data can be found beside it")
        return model, "model"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a path to an .onnx file or an onnx.ModelProto, got {type(model).__name__}")
    path = Path(model)
    if not path.is_file():
        raise OnnxModelError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise OnnxModelError(f"{path}: not an ONNX model ({exc.__class__.__name__})") from None
    if proto.ir_version == 0 or not proto.HasField("graph"):
        raise OnnxModelError(f"{path}: not an ONNX model (no graph)")
    for tensor in proto.graph.initializer:
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            if not (path.parent / info.location).is_file():
                raise OnnxModelError(f"{path}: external data file {info.location!r} of initializer "
                                     f"{tensor.name!r} is missing (looked beside the model)")
    external_data_helper.load_external_data_for_model(proto, str(path.parent))
    return proto, str(path)


class Graph:
    """The facts of one checked, shape-inferred ONNX graph that the importer walks.

    `input_shape` (one sample's shape, without the batch axis) fixes the input's non-batch dimensions when the
    graph leaves them dynamic, and must match those it fixes.
    """

    def __init__(self, proto: onnx.ModelProto, label: str, input_shape=None):
        self.label = label
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise OnnxModelError(f"{label}: fails onnx.checker: {_first_line(exc)}") from None
        self.opset = _opset(proto, label)
        graph = proto.graph
        self.initializers = {t.name: t for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in self.initializers]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise OnnxModelError(f"{label}: the graph must have one input and one output, got "
                                 f"{len(inputs)} inputs and {len(graph.output)} outputs")
        self.input, self.output = inputs[0].name, graph.output[0].name
        for value, what in ((inputs[0], "input"), (graph.output[0], "output")):
            element = value.type.tensor_type.elem_type
            if element not in FLOAT_TYPES:
                raise OnnxModelError(f"{label}: graph {what} {value.name!r} has element type "
                                     f"{onnx.TensorProto.DataType.Name(element)}; float32 and float64 are accepted")
        inferred = _infer(proto, inputs[0], input_shape, label)
        self.shapes = {v.name: _dims(v) for v in (*inferred.graph.value_info, *inferred.graph.input,
                                                     *inferred.graph.output)}
        self.nodes = list(graph.node)
        self.constants = {name: numpy_helper.to_array(t) for name, t in self.initializers.items()}
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = _constant_value(node)
        self.consumers: dict[str, list] = {}
        for node in self.nodes:
            if node.op_type == "Constant":
                continue
            for name in node.input:
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append(node)

    def node_label(self, node) -> str:
        index = next(i for i, n in enumerate(self.nodes) if n is node)
        name = node.name or f"#{index}"
        return f"{self.label}: node {name!r} ({node.op_type})"

    def error(self, node, message: str) -> OnnxModelError:
        return OnnxModelError(f"{self.node_label(node)}: {message}")

    def shape(self, name: str) -> tuple:
        """ONNX dims of tensor `name` (None where unknown); OnnxModelError when its rank is unknown."""
        if name not in self.shapes:
            raise OnnxModelError(f"{self.label}: the shape of tensor {name!r} cannot be inferred; "
                                 "pass input_shape (one sample's shape) to resolve the graph's dynamic dimensions")
        return self.shapes[name]

    def is_used(self, name: str) -> bool:
        return bool(name) and (name in self.consumers or name == self.output)

    def attributes(self, node) -> dict:
        values = {}
        for attribute in node.attribute:
            value = onnx.helper.get_attribute_value(attribute)
            values[attribute.name] = value.decode() if isinstance(value, bytes) else value
        return values


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def _opset(proto, label) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions or versions[0] not in OPSETS:
        found = versions[0] if versions else "none"
        raise OnnxModelError(f"{label}: default-domain opset {found} is not supported; "
                             f"accepted: {OPSETS.start}..{OPSETS.stop - 1}")
    return versions[0]


def _dims(value) -> tuple:
    shape = value.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in shape.dim)


def _infer(proto, graph_input, input_shape, label) -> onnx.ModelProto:
    """Shape inference after fixing the input's non-batch dimensions from `input_shape`."""
    dims = graph_input.type.tensor_type.shape.dim
    has_shape = graph_input.type.tensor_type.HasField("shape")
    if input_shape is not None:
        try:
            wanted = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            wanted = ()
        if not wanted or any(d < 1 for d in wanted):
            raise OnnxModelError(f"input_shape must be one sample's dimensions (positive ints), got {input_shape!r}",
                                 "input_shape")
        if has_shape and len(dims) != len(wanted) + 1:
            raise OnnxModelError(f"input_shape {wanted} has {len(wanted)} dimensions but the graph input "
                                 f"{graph_input.name!r} of {label} has {len(dims)} (batch first)", "input_shape")
        for axis, (dim, size) in enumerate(zip(list(dims)[1:], wanted), start=1):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise OnnxModelError(f"input_shape {wanted} does not match dimension {axis} = {dim.dim_value} "
                                     f"of the graph input {graph_input.name!r} of {label}", "input_shape")
        copy = onnx.ModelProto()
        copy.CopyFrom(proto)
        target = next(i for i in copy.graph.input if i.name == graph_input.name)
        batch = dims[0] if has_shape and len(dims) else None
        target.type.tensor_type.ClearField("shape")
        new_dims = target.type.tensor_type.shape.dim
        first = new_dims.add()
        if batch is not None and batch.HasField("dim_value"):
            first.dim_value = batch.dim_value
        else:
            first.dim_param = batch.dim_param if batch is not None and batch.dim_param else "batch"
        for size in wanted:
            new_dims.add().dim_value = size
        proto = copy
    elif not has_shape or any(not d.HasField("dim_value") for d in list(dims)[1:]):
        names = [d.dim_param or "?" for d in list(dims)[1:] if not d.HasField("dim_value")] if has_shape else []
        raise OnnxModelError(f"{label}: graph input {graph_input.name!r} has dynamic dimensions "
                             f"{', '.join(names) if names else '(no shape)'}; pass input_shape "
                             "(one sample's shape, e.g. that of the calibration data) to resolve them")
    try:
        return shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise OnnxModelError(f"{label}: shape inference fails: {_first_line(exc)}") from None


def _constant_value(node) -> np.ndarray:
    attribute = node.attribute[0]
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)
