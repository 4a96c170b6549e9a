"""A FixedModel on the C backend compiled into one native call per forward (``kernels.c_plan``).

`compile_model(model, dtype)` maps the input quantizer and every layer onto plan steps running the same
kernels as layer-by-layer execution (so results and overflow counts are identical) and returns a
`CompiledModel`, or raises `NotCompilable` naming the layer or setting the plan does not cover: stochastic
rounding (its random stream belongs to the layer-by-layer path), a float64 input whose quantization
needs the exact slow path, K = 0 layers, overflow modes other than saturate, a softmax spanning the
batch axis. The caller then runs layer by layer.

Parameters are frozen while compiled: their arrays become read-only, and replacing an attribute of a
layer is detected on the next call (`PlanError`), before native code runs.
"""
from __future__ import annotations

import numpy as np

from ..kernels import c_plan
from ..kernels.args import threads_arg
from ..kernels.limits import ADD_INT64_MAX_LSHIFT
from ..kernels.modes import Overflow, Rounding
from ..kernels.pointwise import add_alignment, fast_quantize_applies
from ..stats import OverflowStats
from .fixed_layers import (FixedElementwise, FixedGemm, FixedInput, FixedLayer, FixedPad, FixedPermute, FixedPool,
                           FixedResidual, FixedSoftmax, FixedTable)
from .layers import window_counts

PlanError = c_plan.PlanError


class NotCompilable(Exception):
    """This model (or setting) runs layer by layer; the message says why."""


class CompiledModel:
    """The plan of one (model, input dtype, rounding), with what it needs to rebuild the model's stats."""

    def __init__(self, plan, records, layers, snapshot, dtype, rounding):
        self.plan, self.dtype, self.rounding = plan, dtype, rounding
        self._records = records        # (layer name, elements per sample it produces)
        self._slots = {name: i for i, name in enumerate(plan.counters)}
        self._layers, self._snapshot = list(layers), snapshot
        self._edits = FixedLayer.edits

    def unchanged(self, layers) -> bool:
        """True when no layer attribute anywhere was assigned since the last check and the layer list is the
        compiled one (the cheap test of every call; `check` looks closer otherwise)."""
        return FixedLayer.edits == self._edits and layers == self._layers

    def check(self, layers) -> None:
        """Raise PlanError if the model's layer list or any layer's attributes changed since compilation."""
        if self.unchanged(layers):
            return
        for layer, state in self._snapshot:
            changed = [name for name, value in vars(layer).items() if state.get(name, _MISSING) is not value]
            if changed or len(vars(layer)) != len(state):
                raise PlanError(f"layer {layer.name!r} changed ({', '.join(changed) or 'attributes'}) after the "
                                "model was compiled; call model.compile() to compile it again")
        if len(layers) != len(self._layers) or any(a is not b for a, b in zip(layers, self._layers)):
            raise PlanError("the model's layer list changed after it was compiled; call model.compile() again")
        self._edits = FixedLayer.edits

    def stats(self, counts: np.ndarray, batch: int) -> dict:
        """The per-layer OverflowStats of one call (as layer-by-layer execution fills them)."""
        stats = {}
        for name, per_sample in self._records:
            slot = self._slots.get(name)
            stats.setdefault(name, OverflowStats()).add(0 if slot is None else counts[slot], per_sample * batch)
        return stats


_MISSING = object()


def compile_model(model, dtype, rounding: Rounding, threads: int) -> CompiledModel:
    """The plan of ``model`` for float input of ``dtype`` (raises NotCompilable)."""
    if model.backend != "c":
        raise NotCompilable(f"plans run on the C backend, not {model.backend!r}")
    if rounding.is_stochastic:
        raise NotCompilable(f"stochastic rounding ({rounding.value}) runs layer by layer")
    builder = c_plan.PlanBuilder(model.input_shape, dtype)
    compiler = _Compiler(builder, rounding, threads)
    x = compiler.input(model.input_layer, builder.input)
    for layer in model.layers:
        x = compiler.layer(layer, x)
    plan = builder.build(x, model.output_format.frac, threads_arg(threads))
    snapshot = [(layer, dict(vars(layer))) for layer in compiler.visited]
    for layer in compiler.visited:
        for value in vars(layer).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
    return CompiledModel(plan, compiler.records, model.layers, snapshot, dtype, model.rounding)


class _Compiler:
    def __init__(self, builder, rounding, threads):
        self.b, self.rounding, self.threads = builder, rounding, threads
        self.records: list[tuple[str, int]] = []
        self.visited: list[FixedLayer] = []

    def _done(self, layer: FixedLayer, x, name=None):
        self.records.append((name or layer.name, x.count))
        return x

    def input(self, layer: FixedInput, x):
        fmt = layer.out_fmt
        if not fast_quantize_applies(x.dtype, fmt.frac, fmt.bits, True, self.rounding, Overflow.SATURATE):
            raise NotCompilable(f"quantizing {x.dtype} input to {fmt} takes the exact slow path")
        self.visited.append(layer)
        return self._done(layer, self.b.quantize(x, fmt.frac, fmt.bits, self.rounding, layer.out_dtype, layer.name))

    def layer(self, layer: FixedLayer, x):
        self.visited.append(layer)
        if x.dtype != layer.out_dtype and not isinstance(layer, FixedGemm):
            raise NotCompilable(f"layer {layer.name} changes the container {x.dtype} -> {layer.out_dtype}")
        if isinstance(layer, FixedGemm):
            return self._done(layer, self.gemm(layer, x))
        if isinstance(layer, FixedElementwise):
            if layer.kind == "Flatten":
                return self._done(layer, self.b.reshape(x, (x.count,)))
            hi = np.iinfo(x.dtype).max if layer.clamp is None else layer.clamp
            return self._done(layer, self.b.clamp(x, 0, hi))
        if isinstance(layer, FixedPermute):
            if layer.axes[0] != 0:
                raise NotCompilable(f"layer {layer.name} moves the batch axis")
            return self._done(layer, self.b.permute(x, [a - 1 for a in layer.axes[1:]]))
        if isinstance(layer, FixedPad):
            return self._done(layer, self.b.pad(x, layer.pads, layer.fill))
        if isinstance(layer, FixedPool):
            return self._done(layer, self.pool(layer, x))
        if isinstance(layer, FixedTable):
            return self._done(layer, self.b.lut(x, layer.table))
        if isinstance(layer, FixedSoftmax):
            return self._done(layer, self.softmax(layer, x))
        if isinstance(layer, FixedResidual):
            return self.residual(layer, x)
        raise NotCompilable(f"layer {layer.name} ({type(layer).__name__}) has no plan step")

    def gemm(self, layer: FixedGemm, x):
        prepared = layer.prepared(x.dtype, "c", self.rounding, self.threads)
        bound = prepared.bound
        if bound.k == 0 or not bound.fused or bound.epi.overflow is not Overflow.SATURATE:
            raise NotCompilable(f"layer {layer.name}: K = 0 or an epilogue the plan does not fuse")
        native = c_plan.native_gemm(bound.weights, bound.kind, bound.k, bound.n, bound.out_dtype)
        if layer.kind == "Linear":
            y = self.b.gemm(x, native, layer.name)
        else:
            y = self.b.conv(x, native, prepared.kernel, prepared.stride, prepared.padding, layer.name,
                            conv1d=layer.kind == "Conv1d")
        if layer.clamp is not None:
            y = self.b.clamp(y, np.iinfo(y.dtype).min, layer.clamp)
        return y

    def pool(self, layer: FixedPool, x):
        two_d = layer.kind.endswith("2d")
        kernel = tuple(layer.kernel) if two_d else (1, layer.kernel)
        stride = tuple(layer.stride) if two_d else (1, layer.stride)
        rounding = Rounding.HALF_EVEN if self.rounding.is_stochastic else self.rounding
        if layer.padding is not None:
            window = (kernel, stride) if two_d else ((layer.kernel,), (layer.stride,))
            if window_counts(x.shape[:-1], *window, layer.padding).min() < 1:
                raise NotCompilable(f"layer {layer.name} has windows of padding only")
            return self.b.avgpool_padded(x, kernel, stride, layer.padding, rounding)
        return self.b.pool(x, "max" if layer.kind.startswith("Max") else "avg", kernel, stride, rounding)

    def softmax(self, layer: FixedSoftmax, x):
        if layer.n_axes > len(x.shape):
            raise NotCompilable(f"layer {layer.name}: the softmax spans the batch axis")
        row = int(np.prod(x.shape[len(x.shape) - layer.n_axes:]))
        return self.b.softmax(x, row, layer.exp_table, layer.out_fmt.frac, layer.out_fmt.bits, self.rounding,
                              layer.out_dtype, layer.name)

    def residual(self, layer: FixedResidual, x):
        y = x
        for inner in layer.body:
            y = self.layer(inner, y)
        epi, a_lshift, b_lshift = add_alignment(layer.in_fmt.frac, layer.body_fmt.frac, layer.out_fmt.frac,
                                                layer.out_fmt.bits, self.rounding, Overflow.SATURATE, False)
        if epi.out_dtype != layer.out_dtype or max(a_lshift, b_lshift) > ADD_INT64_MAX_LSHIFT:
            raise NotCompilable(f"layer {layer.add_name}: an add the plan does not run in int64")
        out = self.b.add(x, y, a_lshift, b_lshift, epi, layer.add_name)
        self.records.append((layer.add_name, out.count))
        return out
