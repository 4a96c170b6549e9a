"""FixedModel: a converted model, callable on float inputs, with formats and overflow reports."""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..conversion import dequantize
from ..kernels.modes import as_rounding
from .fixed_layers import FixedInput, Run
from .layer_report import LayerReport, layer_report

# The batch runs in equal chunks whose quantized input holds at most this many bytes, so the integer activations
# of one chunk stay small (and cache-resident); the per-layer results are the same as for the whole batch.
_CHUNK_BYTES = 96 << 10


class FixedModel:
    """Integer layers behind an input quantizer (see `quantize_model`).

    `fixed(x)` quantizes float32/float64 `x` (B, ...), in either byte order, straight into the activation
    container, runs every layer on `backend` and returns the dequantized float64 output; `fixed(x, raw=True)`
    returns (raw integers, QFormat). `formats()` and `overflow_report()` list the input quantizer ("input")
    first, then every layer (the layers of a Residual body, then its ".add" join).

    On the C backend a call runs the whole forward as one native call of a plan compiled on first use (see
    `compile`, `plan_status` and `fixedpoint.nn.compiled`), bit-identical with the layer-by-layer execution
    the other backends (and stochastic roundings) use, batch chunks of `_CHUNK_BYTES` there.
    """

    def __init__(self, input_layer: FixedInput, layers, input_shape, *, precision, scale, rounding, seed,
                 backend):
        self.input_layer, self.layers, self.input_shape = input_layer, list(layers), tuple(input_shape)
        self.precision, self.scale, self.rounding, self.seed = precision, scale, rounding, seed
        self._backend = backend
        self._last_stats: dict = {}
        self._last_plan_run = None     # (CompiledModel, counts, batch) of the last compiled call
        self._plans: dict = {}         # (input dtype, rounding) -> CompiledModel, or the reason it runs layer by layer
        self._fast = None              # the CompiledModel of the last compiled call
        self._threads = None

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def output_format(self):
        return self.layers[-1].out_fmt if self.layers else self.input_layer.out_fmt

    def with_backend(self, name: str) -> "FixedModel":
        """The same model (shared integer parameters) running on kernel backend `name`."""
        kernels.registry.get_backend(name)
        return FixedModel(self.input_layer, self.layers, self.input_shape, precision=self.precision,
                          scale=self.scale, rounding=self.rounding, seed=self.seed, backend=name)

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        native = x.dtype.newbyteorder("=")
        if native not in (np.float32, np.float64):
            raise TypeError(f"x must be a float32 or float64 array (either byte order), got dtype {x.dtype}")
        x = x.astype(native, copy=False)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}) like the "
                             f"calibration data, got {x.shape}")
        return x

    def compile(self, dtype=np.float32, threads=None) -> "FixedModel":
        """Compile the model (C backend) into one native call per forward for float input of ``dtype``, its
        GEMMs split over ``threads`` (None: $FXBENCH_THREADS, else 1; results are identical for any count).
        Calls compile lazily on their own; this compiles now, again after a change of the model, and raises
        ``NotCompilable`` saying why a model runs layer by layer instead (see ``fixedpoint.nn.compiled``)."""
        from .compiled import compile_model

        self._plans.clear()
        self._fast = None
        self._threads = threads
        dtype = np.dtype(dtype)
        self._plans[(dtype, self.rounding)] = compile_model(self, dtype, as_rounding(self.rounding), threads)
        return self

    def plan_status(self, dtype=np.float32) -> str:
        """"compiled" when calls on float ``dtype`` input run as one native call, else why they run layer by layer."""
        dtype = np.dtype(dtype)
        return "compiled" if self._plan(dtype) is not None else self._plans[(dtype, self.rounding)]

    def arena_bytes(self, batch: int, dtype=np.float32) -> int:
        """Bytes a compiled call on ``batch`` samples keeps allocated between calls (activation arena and GEMM
        scratch of its tile size, besides the packed weights); 0 when the model runs layer by layer."""
        plan = self._plan(np.dtype(dtype))
        return 0 if plan is None else plan.plan.arena_bytes(batch)

    def _plan(self, dtype, recompile=False):
        """The CompiledModel for input ``dtype`` (compiled on first use), or None (layer-by-layer execution)."""
        key = (dtype, self.rounding)
        plan = self._plans.get(key)
        if plan is None and self._backend != "c":
            plan = self._plans[key] = f"plans run on the C backend, not {self._backend!r}"
        if plan is None or recompile:
            from .compiled import NotCompilable, compile_model

            try:
                plan = compile_model(self, dtype, as_rounding(self.rounding), self._threads)
            except NotCompilable as exc:
                plan = str(exc)
            self._plans[key] = plan
        return None if isinstance(plan, str) else plan

    def __call__(self, x, raw: bool = False):
        compiled = self._fast
        if (compiled is not None and type(x) is np.ndarray and x.dtype is compiled.dtype
                and x.shape[1:] == self.input_shape and x.flags.c_contiguous and x.shape[0]
                and self.rounding is compiled.rounding):   # the last call's plan takes x as it is
            if not compiled.unchanged(self.layers):
                compiled.check(self.layers)
            result = compiled.plan.run(x, raw)
            if result is not None:
                self._last_plan_run = (compiled, result[1], x.shape[0])
                return (result[0], self.output_format) if raw else result[0]
        x = self._check_input(x)
        compiled = self._plan(x.dtype)
        if compiled is not None:
            result = self._run_plan(compiled, x, raw)
            if result is None:      # weights packed for another SIMD path: pack and compile again
                result = self._run_plan(self._plan(x.dtype, recompile=True), x, raw)
            return result
        self._last_plan_run = None
        run = Run(self._backend, self.rounding, self.seed)
        row_bytes = self.input_layer.out_dtype.itemsize * math.prod(self.input_shape)
        max_rows = max(1, _CHUNK_BYTES // max(1, row_bytes))
        chunks = max(1, math.ceil(x.shape[0] / max_rows))
        rows = max(1, math.ceil(x.shape[0] / chunks))  # equal chunks, none above max_rows
        y = None
        for start in range(0, x.shape[0], rows):
            part = self.input_layer.forward(x[start:start + rows], run)
            for layer in self.layers:
                part = layer.forward(part, run)
            if y is None:
                y = np.empty((x.shape[0],) + part.shape[1:], dtype=part.dtype)
            y[start:start + rows] = part
        if y is None:
            raise ValueError("x must hold at least one sample")
        self._last_stats = run.stats
        fmt = self.output_format
        return (y, fmt) if raw else dequantize(y, fmt)

    def __getstate__(self):
        """Compiled plans (native step arrays over packed buffers) are compiled again after a copy or pickle."""
        state = dict(self.__dict__, _plans={}, _fast=None, _last_plan_run=None)
        if self._last_plan_run is not None:
            compiled, counts, batch = self._last_plan_run
            state["_last_stats"] = compiled.stats(counts, batch)
        return state

    def _run_plan(self, compiled, x, raw):
        compiled.check(self.layers)
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one sample")
        x = x if x.flags.c_contiguous else np.ascontiguousarray(x)
        result = compiled.plan.run(x, raw)
        if result is None:
            return None
        y, counts = result
        self._fast = compiled
        self._last_plan_run = (compiled, counts, x.shape[0])
        return (y, self.output_format) if raw else y

    def _all_layers(self):
        return [self.input_layer] + self.layers

    def formats(self) -> list[dict]:
        """One dict per layer: layer, input, weight, output, scale (+ bias_saturated for Linear/Conv).

        "weight" is None without weights; for scale="pow2" the weight Q format (or "lowest..highest" of the
        per-channel ones), for scale="multiplier" "int{bits}*s" (integers times a real per-channel scale).
        """
        return [row for layer in self._all_layers() for row in layer.rows()]

    def overflow_report(self) -> list[dict]:
        """Per layer of the LAST call: elements saturated and elements produced (all 0 before any call)."""
        if self._last_plan_run is not None:
            compiled, counts, batch = self._last_plan_run
            self._last_stats, self._last_plan_run = compiled.stats(counts, batch), None
        report = []
        for layer in self._all_layers():
            for name in layer.names():
                stats = self._last_stats.get(name)
                report.append({"layer": name, "saturated": stats.overflowed if stats else 0,
                               "total": stats.total if stats else 0})
        return report

    def layer_report(self, x) -> LayerReport:
        """Per layer on float input `x` (B, ...): output format, saturated/total elements, the measured SQNR (dB)
        of the dequantized integer activations against the float64 model's activations on the same input, and
        the SQNR the quantization-noise model predicts (see `fixedpoint.nn.noise`: uniform rounding noise of
        LSB**2/12 per rounding, propagated through every layer). Both compare the whole model up to that layer,
        so errors accumulate down the table; `str()` of the result is a table.

        The float64 activations are those of the folded float layers the model was converted from (BatchNorm
        folded, as at conversion); the batch runs unchunked, with the model's backend and rounding.
        """
        x = self._check_input(x)
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one sample")
        return layer_report(self, x)

    @property
    def weight_bytes(self) -> int:
        """Bytes of integer weights, biases, multipliers (int32) and shifts (one byte each) a device stores."""
        return sum(layer.stored_bytes() for layer in self.layers)

    def __str__(self) -> str:
        return formats_text(f"FixedModel precision={self.precision} scale={self.scale} backend={self._backend}",
                            self.formats())

    __repr__ = __str__


def formats_text(title: str, rows: list[dict]) -> str:
    """``title``, then the formats table (layer, input, weight, output, scale) in aligned columns."""
    header = ("layer", "input", "weight", "output", "scale")
    table = [header] + [tuple("-" if row[key] is None else str(row[key]) for key in header) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    return "\n".join([title] + lines)
