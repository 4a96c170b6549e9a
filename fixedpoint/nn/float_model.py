"""Float-format models: a float model whose weights and activations are rounded to a low-precision float
format (bf16, fp16, fp8, any ``E<E>M<M>``) at every layer boundary, with products and sums in float32.

``to_float_format(model, calibration_data, fmt, ...)`` (reached through ``quantize_model(..., precision=
"bf16" | "fp16" | "fp8e4m3" | "fp8e5m2" | "e<E>m<M>...")``) folds BatchNorm like the fixed-point converter,
rounds every weight once (from float64) and returns a :class:`FloatModel`.  A float format needs no
calibration: each tensor is simply rounded.  With ``prescale=True`` every tensor (each layer's weights, the
input and each layer's output) gets a power-of-two scale ``2**k``, as fp8 training recipes scale by
``fmt.max / amax``: ``k`` is the largest integer with ``amax * 2**k <= fmt.max``, ``amax`` the tensor's
calibration range (``max`` or ``percentile`` of the float64 model's activations on ``calibration_data``;
the weights' max |w|), clamped so that the scaled-back values stay float32 numbers.  The stored tensor is
then the format's values of ``x * 2**k``, and the model computes with ``Q(x * 2**k) * 2**-k`` (exact).  Linear/Conv layers whose
inputs and weights are bf16 numbers (bf16, the fp8 formats, any E<=8, M<=7 format in bf16's range) run on
the bf16 GEMM kind of the kernel backend (vdpbf16ps on the C backend where the CPU has it), the others
(fp16) on the float32 kind.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..conversion import as_real_array
from ..float_conversion import quantize_float
from ..float_rounding import descaled_exponent_range
from ..floatformat import BF16, NAMED
from .calibrate import calibration_range
from .fixed_model import formats_text
from .float_layers import EXPONENT_BYTES, FloatGemm, FloatInput, FloatPointwise, FloatResidual, FloatRun
from .folding import GEMMS, POOLS, calibration_forward, flatten_and_fold, steps
from .layers import Add, AvgPool1d, AvgPool2d, Flatten, Pad, Permute, ReLU, ReLU6, Sigmoid, Softmax, Tanh

FLOAT_METHODS = ("max", "percentile")
# layers that map the format's values to values of the format (Pad adds zeros, or -inf before a max pool)
_EXACT = (ReLU, Flatten, Permute, Pad) + tuple(p for p in POOLS if p not in (AvgPool1d, AvgPool2d))
_ROUNDED = (ReLU6, AvgPool1d, AvgPool2d, Sigmoid, Tanh, Softmax)


class FloatModel:
    """Float-format layers behind an input rounding (see :func:`to_float_format`).

    ``model(x)`` rounds float32/float64 ``x`` (B, ...), in either byte order, to the format, runs every layer
    (Linear/Conv products and sums on kernel backend ``backend``, in float32) and returns the float64 values
    of the last layer's output.  ``formats()`` and ``overflow_report()`` list the input rounding ("input")
    first, then every layer (the layers of a Residual body, then its ".add" join), like ``FixedModel``'s.
    """

    def __init__(self, fmt, input_layer: FloatInput, layers, input_shape, *, precision, rounding, seed, backend,
                 prescale):
        self.fmt, self.input_layer, self.layers = fmt, input_layer, list(layers)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.precision, self.rounding, self.seed, self.prescale = precision, rounding, seed, prescale
        self._backend = backend
        self._last_stats: dict = {}

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def output_format(self):
        return self.fmt

    def with_backend(self, name: str) -> "FloatModel":
        """The same model (shared weights) running its Linear/Conv layers on kernel backend ``name``."""
        kernels.registry.get_backend(name)
        return FloatModel(self.fmt, self.input_layer, self.layers, self.input_shape, precision=self.precision,
                          rounding=self.rounding, seed=self.seed, backend=name, prescale=self.prescale)

    def __call__(self, x):
        x = np.asarray(x)
        native = x.dtype.newbyteorder("=")
        if native not in (np.float32, np.float64):
            raise TypeError(f"x must be a float32 or float64 array (either byte order), got dtype {x.dtype}")
        x = x.astype(native, copy=False)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError("x must hold at least one sample")
        if self.input_shape is not None and x.shape[1:] != self.input_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}) like the "
                             f"calibration data, got {x.shape}")
        run = FloatRun(self._backend, self.rounding, self.seed)
        y = self.input_layer.forward(x, run)
        for layer in self.layers:
            y = layer.forward(y, run)
        self._last_stats = run.stats
        return y.astype(np.float64)

    def _all_layers(self):
        return [self.input_layer] + self.layers

    def formats(self) -> list[dict]:
        """One dict per layer: layer, input, weight, output, scale.

        Formats read "E4M3FN" (values of the format) or "E4M3FN*2^-5" (values of the format times 2**-5,
        with ``prescale``); "weight" is None without weights; "scale" is "pow2" where a tensor of the layer
        is scaled, else "none".
        """
        return [row for layer in self._all_layers() for row in layer.rows()]

    def overflow_report(self) -> list[dict]:
        """Per layer of the LAST call: elements saturated at +-max, nonzero elements flushed to zero, and
        elements produced (all 0 before any call)."""
        report = []
        for layer in self._all_layers():
            for name in layer.names():
                stats = self._last_stats.get(name)
                report.append({"layer": name, "saturated": stats.overflowed if stats else 0,
                               "flushed": stats.flushed if stats else 0, "total": stats.total if stats else 0})
        return report

    @property
    def weight_bytes(self) -> int:
        """Bytes a device stores: weights in the format's container (1 byte for fp8, 2 for bf16/fp16), float32
        biases, and with ``prescale`` one byte per scale exponent (each layer's weights and output)."""
        return sum(layer.stored_bytes() for layer in self.layers)

    def __str__(self) -> str:
        return formats_text(f"FloatModel precision={self.precision} format={self.fmt} backend={self._backend}",
                            self.formats())

    __repr__ = __str__


def float_precision_name(fmt) -> str:
    """The precision name of a float format: "bf16", "fp16", "fp8e4m3", "fp8e5m2", or its text ("E3M4")."""
    return next((name for name, named in NAMED.items() if named == fmt), str(fmt))


def to_float_format(model, calibration_data, fmt, *, method, rounding, seed, backend, prescale) -> FloatModel:
    """The float-format version of float ``model``: see the module docstring.

    ``calibration_data`` (B, ...) is needed with ``prescale=True`` and otherwise optional (None: the input
    shape is not checked); ``method`` "max" or "percentile" picks the activation ranges of ``prescale``;
    ``rounding`` (a float rounding) rounds the weights at conversion and every layer boundary at run time
    (stochastic rounding draws from a generator seeded with ``seed``, at conversion and afresh per call).
    """
    if method not in FLOAT_METHODS:
        raise ValueError(f"method must be one of {FLOAT_METHODS} for float formats, got {method!r}")
    if not isinstance(prescale, (bool, np.bool_)):
        raise TypeError(f"prescale must be True or False, got {prescale!r}")
    backend_name = kernels.registry.default_backend() if backend is None else backend
    kernels.registry.get_backend(backend_name)
    calib = None
    if calibration_data is not None:
        calib = as_real_array(calibration_data, "calibration_data").astype(np.float64)
        if calib.ndim < 2 or calib.shape[0] == 0 or not np.all(np.isfinite(calib)):
            raise ValueError(f"calibration_data must be a non-empty finite batch (B, ...), got shape {calib.shape}")
    elif prescale:
        raise ValueError("prescale=True needs calibration_data to choose the activation scales")
    builder = _Builder(fmt, method, rounding, seed, bool(prescale))
    input_layer = FloatInput("input", fmt, builder.exponent(calib))
    layers, _, _ = builder.convert(flatten_and_fold(model), calib, input_layer.out_exp, "")
    return FloatModel(fmt, input_layer, layers, None if calib is None else calib.shape[1:],
                      precision=float_precision_name(fmt), rounding=rounding, seed=seed, backend=backend_name,
                      prescale=bool(prescale))


class _Builder:
    """Float layers -> float-format layers, propagating the float64 calibration activations (when given)."""

    def __init__(self, fmt, method, rounding, seed, prescale):
        self.fmt, self.method, self.rounding, self.prescale = fmt, method, rounding, prescale
        self.rng = np.random.default_rng(seed) if rounding.is_stochastic else None
        self.exponent_range = descaled_exponent_range(fmt)

    def exponent(self, values, method=None) -> int:
        """The prescale exponent of a tensor: largest k with amax * 2**k <= fmt.max (0 without prescale)."""
        if not self.prescale:
            return 0
        amax = calibration_range(values, method or self.method)
        if amax == 0:
            return 0
        k = math.floor(math.log2(self.fmt.max) - math.log2(amax))
        while math.ldexp(amax, k + 1) <= self.fmt.max:
            k += 1
        while math.ldexp(amax, k) > self.fmt.max:
            k -= 1
        low, high = self.exponent_range
        return min(max(k, low), high)

    def convert(self, layers, x, in_exp, prefix):
        """(float-format layers, float64 output on the calibration data or None, output exponent)."""
        out_layers, exp = [], in_exp
        for name, layer, activation in steps(layers, prefix):
            if isinstance(layer, tuple):
                body, y, _ = self.convert(layer[1], x, exp, f"{name}.")
                y = None if x is None else x + y
                out = FloatResidual(name, self.fmt, exp, self.exponent(y), body)
            else:
                y = None if x is None else calibration_forward(layer, x, name)
                if activation is not None and y is not None:
                    y = calibration_forward(activation, y, name)
                out = self._layer(layer, name, exp, y, activation)
            out_layers.append(out)
            x, exp = y, out.out_exp
        return out_layers, x, exp

    def _layer(self, layer, name, in_exp, y, activation):
        if isinstance(layer, GEMMS):
            return self._gemm(layer, name, in_exp, self.exponent(y), activation)
        if isinstance(layer, _EXACT):
            return FloatPointwise(name, layer, self.fmt, in_exp, in_exp, rounds=False)
        if isinstance(layer, _ROUNDED):
            return FloatPointwise(name, layer, self.fmt, in_exp, self.exponent(y), rounds=True)
        if isinstance(layer, Add):
            raise ValueError(f"layer {name}: a two-input Add converts only as the join of a Residual")
        raise ValueError(f"layer {name}: cannot convert a {type(layer).__name__}")

    def _gemm(self, layer, name, in_exp, out_exp, activation):
        w_exp = self.exponent(layer.weight, "max")
        scaled = np.ldexp(layer.weight, w_exp)
        values = quantize_float(scaled, self.fmt, self.rounding, seed=self.rng)
        weight = np.ldexp(values.astype(np.float64), -w_exp).astype(np.float32)
        bias = None if layer.bias is None else layer.bias.astype(np.float32)
        kind = type(layer).__name__
        return FloatGemm(name, kind, self.fmt, in_exp, out_exp, weight, bias, w_exp,
                         relu=activation is not None, clamp=6.0 if isinstance(activation, ReLU6) else None,
                         stride=None if kind == "Linear" else layer.stride,
                         padding=None if kind == "Linear" else layer.padding,
                         exponent_bytes=2 * EXPONENT_BYTES if self.prescale else 0,
                         bf16=all(_bf16_numbers(self.fmt, k) for k in (in_exp, w_exp)))


def _bf16_numbers(fmt, exponent: int) -> bool:
    """Whether every value of ``fmt`` times ``2**-exponent`` is a bf16 number (8 significant bits, exponents
    -133 .. 127)."""
    return (fmt.man_bits <= BF16.man_bits and fmt.emax - exponent <= BF16.emax
            and fmt.emin - fmt.man_bits - exponent >= BF16.emin - BF16.man_bits)

