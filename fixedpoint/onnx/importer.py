"""`load`: an ONNX graph -> the float `fixedpoint.nn` model that computes it.

The graph is walked from its input to its output. A tensor used by one node continues the chain; a tensor used
by two nodes opens a residual block: both branches are followed until they meet at one Add of two computed
tensors, one branch computing nothing (the skip, Identity/Dropout/Transpose at most) and the other the body,
giving `nn.Residual(body)`. Anything else (a third consumer, two computing branches, a branch that ends
elsewhere, a node off the path from input to output) raises `OnnxModelError` naming the tensor or node.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from . import layout
from .errors import OnnxModelError
from .ops import TRANSLATORS, Value, require
from .reader import Graph, read_model

SUPPORTED_OPS = tuple(sorted(TRANSLATORS))


def load(model, input_shape=None) -> nn.Sequential:
    """The float `fixedpoint.nn.Sequential` computing ONNX `model` (a path to an .onnx file or a ModelProto).

    The result takes the graph's own input layout: an NCHW / NCL input is permuted to channels-last by a leading
    `nn.Permute`, convolution weights are permuted inside, and an output the graph gives channels-first is
    permuted back. `input_shape` (one sample's shape, without the batch axis, e.g. calibration_data.shape[1:])
    resolves dynamic non-batch input dimensions. Opsets 11..21 of the default domain; the operators are
    `SUPPORTED_OPS` (Constant nodes give constants). Raises `OnnxModelError` (a ValueError) naming the file,
    node or argument for anything it cannot convert; it never returns a partial model.
    """
    proto, label = read_model(model)
    graph = Graph(proto, label, input_shape)
    walker = _Walker(graph)
    shape = graph.shape(graph.input)
    layers = []
    end, join = walker.chain(Value(graph.input, shape, layout.identity(len(shape))), layers)
    if join is not None:
        raise graph.error(join, "this Add joins tensors from outside a residual block")
    require(end, layout.identity(end.rank), layers)
    unvisited = [node for node in graph.nodes if node.op_type != "Constant" and id(node) not in walker.visited]
    if unvisited:
        raise graph.error(unvisited[0], "the node is not on the path from the graph input to its output")
    result = nn.Sequential(layers)
    _check_runs(graph, result, shape, graph.shape(graph.output))
    return result


def _check_runs(graph, model, in_shape, out_shape) -> None:
    """One zero sample through the model: it must run and give the graph's output shape."""
    try:
        y = model(np.zeros((1,) + tuple(in_shape[1:])))
    except ValueError as exc:
        raise OnnxModelError(f"{graph.label}: the converted model does not run: {exc}") from None
    if any(d is not None and d != got for d, got in zip(out_shape[1:], y.shape[1:])) or y.ndim != len(out_shape):
        raise OnnxModelError(f"{graph.label}: the converted model gives shape {y.shape[1:]} per sample, the graph "
                             f"{tuple(out_shape[1:])}")


class _Walker:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.visited: set[int] = set()

    def is_join(self, node) -> bool:
        return node.op_type == "Add" and sum(name not in self.graph.constants for name in node.input) == 2

    def chain(self, value: Value, layers) -> tuple[Value, object]:
        """Follow `value` down the chain, appending layers; returns (last value, the Add join that ends it or None)."""
        graph = self.graph
        while True:
            consumers = graph.consumers.get(value.name, [])
            if value.name == graph.output:
                if consumers:
                    raise graph.error(consumers[0], f"the graph output {value.name!r} is also used inside the graph")
                return value, None
            if not consumers:
                raise OnnxModelError(f"{graph.label}: tensor {value.name!r} is not used and is not the graph output")
            if len(consumers) > 2:
                raise OnnxModelError(f"{graph.label}: tensor {value.name!r} feeds {len(consumers)} nodes; only "
                                     "chains with two-branch residual blocks are supported")
            if len(consumers) == 2:
                value = self.residual(value, consumers, layers)
                continue
            node = consumers[0]
            if self.is_join(node):
                return value, node
            value = self.translate(node, value, layers)

    def translate(self, node, value: Value, layers) -> Value:
        graph = self.graph
        self.visited.add(id(node))
        if node.domain not in ("", "ai.onnx") or node.op_type not in TRANSLATORS:
            domain = f" of domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
            raise graph.error(node, f"op type {node.op_type!r}{domain} is not supported; supported: "
                                    f"{', '.join(SUPPORTED_OPS)}")
        for name in node.output[1:]:
            if graph.is_used(name) and node.op_type not in ("Dropout", "MaxPool", "BatchNormalization"):
                raise graph.error(node, f"its output {name!r} is used; only the first output is supported")
        return TRANSLATORS[node.op_type](graph, node, value, layers)

    def branch(self, value: Value, node):
        """(layers, last value, join) of the branch that starts at `node` fed by `value`."""
        layers = []
        if self.is_join(node):
            return layers, value, node
        value = self.translate(node, value, layers)
        end, join = self.chain(value, layers)
        return layers, end, join

    def residual(self, value: Value, consumers, layers) -> Value:
        graph = self.graph
        if consumers[0] is consumers[1]:
            raise graph.error(consumers[0], f"uses {value.name!r} twice; only residual joins x + f(x) are supported")
        (first, first_end, join), (second, second_end, other) = (self.branch(value, node) for node in consumers)
        if join is None or join is not other:
            raise OnnxModelError(f"{graph.label}: the two branches from tensor {value.name!r} do not meet at one Add")
        self.visited.add(id(join))
        if first and second:
            raise graph.error(join, "joins two branches that both compute layers; only residual joins x + f(x) "
                                    "(one branch without layers) are supported")
        if not first and not second:
            raise graph.error(join, "adds a tensor to itself; only residual joins x + f(x) are supported")
        (body, body_end), skip_end = ((first, first_end), second_end) if first else ((second, second_end), first_end)
        if body_end.shape != skip_end.shape:
            raise graph.error(join, f"the branches have shapes {skip_end.shape} and {body_end.shape}; "
                                    "a residual join needs equal shapes (no broadcasting)")
        require(body_end, skip_end.layout, body)
        layers.append(nn.Residual(body))
        name = join.output[0]
        return Value(name, graph.shape(name), skip_end.layout)
