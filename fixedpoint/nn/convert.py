"""Conversion of a float model into a fixed-point one: `quantize_model`.

Steps: flatten nested Sequentials and fold each BatchNorm into the Linear/Conv before it (float64); run the
folded float64 model on the calibration data layer by layer; give every activation tensor the Q format
`QFormat.for_range(calibration_range(values, method), activation_bits)`; quantize weights and biases; build
the integer layers of `fixed_layers` (ReLU/ReLU6 after a Linear/Conv fused into its epilogue).

Weights (`weight_bits`, int8 container up to 8 bits, int16 above):
- scale="pow2": a power-of-two format per output channel (per_channel=True) or per tensor, the one with the
  most fraction bits that holds the channel's max |w|; requantization is a pure shift per channel,
  shift[o] = in_frac + w_frac[o] - out_frac (negative shifts allowed).
- scale="multiplier": w / s[o] with the real scale s[o] = max|w[o]| / qmax (per channel or per tensor);
  requantization by the real factor 2**-in_frac * s[o] / 2**-out_frac approximated like TFLite as
  M[o] * 2**-shift[o] with an int32 M[o] in [2**30, 2**31). Activations stay power-of-two Q formats.
Biases are quantized at the accumulator scale (in_frac + w_frac[o] fraction bits) into 32 bits and saturated
so that the kernels' accumulator bound holds (int32 accumulator for int8 x int8, int64 otherwise); the number
of saturated bias entries is listed in `formats()` as "bias_saturated".
Every rounding of the conversion and of the forward pass uses `rounding` (average pools, which take the
deterministic modes only, round half to even under the stochastic ones); the stochastic modes draw from a
generator seeded with `seed` at conversion and afresh at each call, so a given seed gives reproducible outputs.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels.kinds import bias_limit, gemm_kind
from ..kernels.limits import MULTIPLIER_RANGE, SHIFT_RANGE
from ..kernels.modes import as_rounding
from ..kernels.reference.quantize import quantize_float
from ..conversion import as_real_array
from ..float_conversion import as_float_rounding
from ..floatformat import NAMED, FloatFormat
from ..qformat import QFormat
from .calibrate import METHODS, calibration_range
from .fixed_layers import (FixedElementwise, FixedGemm, FixedInput, FixedPad, FixedPermute, FixedPool, FixedResidual,
                           FixedSoftmax, FixedTable)
from .fixed_model import FixedModel
from .float_model import to_float_format
from .folding import GEMMS, POOLS, calibration_forward, flatten_and_fold, steps
from .layers import Add, AvgPool1d, AvgPool2d, Flatten, Pad, Permute, ReLU, ReLU6, Sigmoid, Softmax, Tanh

PRECISIONS = {"i8": (8, 8), "i16": (16, 16), "a16w8": (16, 8)}   # name -> (activation bits, weight bits)
SCALES = ("pow2", "multiplier")


def quantize_model(model, calibration_data, precision="i8", *, weight_bits=None, activation_bits=None,
                   method="max", per_channel=True, scale="pow2", rounding="half_even", seed=None, backend=None,
                   prescale=False):
    """The fixed-point (or float-format) version of float `model` (a Layer or Sequential), calibrated on
    `calibration_data`.

    `precision` "i8" (int8 x int8, int32 accumulator), "i16" (int16 x int16, int64) or "a16w8" (int16
    activations x int8 weights, int64) sets the default widths; `weight_bits` / `activation_bits` (2..16)
    override them, stored in int8 containers up to 8 bits and int16 above (activations use int16 containers
    whenever the weights do). The model's `precision` is then "w{W}a{A}" (unless the widths are those of
    `precision`). `method` ("max", "percentile",
    "mse") picks the activation clipping ranges; weights always use their max |w|. Returns a `FixedModel`.

    A float format as `precision` ("bf16", "fp16", "fp8e4m3" = E4M3FN, "fp8e5m2", or the text of any
    `FloatFormat`: "e4m3", "e3m4fn", "e8m7ftz", ...) returns a `FloatModel` instead (see `float_model`):
    weights and activations rounded to the format at layer boundaries in `rounding` (the float roundings:
    half_even, half_away, to_zero, floor, ceil, stochastic), products and sums in float32; `calibration_data`
    may then be None, `prescale=True` adds per-tensor power-of-two scales chosen on it (`method` "max" or
    "percentile"); `weight_bits`, `activation_bits` and scale="multiplier" are fixed-point settings, and
    `per_channel` is not used.
    """
    if precision not in PRECISIONS:
        fmt = _float_format(precision)
        for name, value in (("weight_bits", weight_bits), ("activation_bits", activation_bits)):
            if value is not None:
                raise ValueError(f"{name} applies to the fixed-point precisions {tuple(PRECISIONS)}; the float "
                                 f"format {fmt} sets its own widths (got {name}={value!r})")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if scale != "pow2":
            raise ValueError(f"scale={scale!r} applies to the fixed-point precisions; float formats scale by "
                             "powers of two (prescale=True)")
        return to_float_format(model, calibration_data, fmt, method=method, rounding=as_float_rounding(rounding),
                               seed=seed, backend=backend, prescale=prescale)
    if prescale is not False:
        raise ValueError(f"prescale applies to float-format precisions, not to {precision!r} (fixed point "
                         "calibrates its Q formats)")
    act_bits, w_bits = _widths(precision, weight_bits, activation_bits)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"per_channel must be True or False, got {per_channel!r}")
    rounding = as_rounding(rounding, "rounding")
    backend_name = kernels.registry.default_backend() if backend is None else backend
    kernels.registry.get_backend(backend_name)
    calib = as_real_array(calibration_data, "calibration_data").astype(np.float64)
    if calib.ndim < 2 or calib.shape[0] == 0 or not np.all(np.isfinite(calib)):
        raise ValueError(f"calibration_data must be a non-empty finite batch (B, ...), got shape {calib.shape}")
    precision_name = precision if (act_bits, w_bits) == PRECISIONS[precision] else f"w{w_bits}a{act_bits}"
    builder = _Builder(act_bits, w_bits, method, bool(per_channel), scale, rounding, seed)
    input_layer = FixedInput("input", builder.fmt(calib), builder.fmt(calib), builder.act_dtype)
    layers, _, _ = builder.convert(flatten_and_fold(model), calib, input_layer.out_fmt, "")
    return FixedModel(input_layer, layers, calib.shape[1:], precision=precision_name, scale=scale,
                      rounding=rounding, seed=seed, backend=backend_name)


def _float_format(precision) -> FloatFormat:
    """The float format named by `precision`; ValueError naming `precision` and the accepted values."""
    try:
        return FloatFormat.parse(precision, "precision")
    except ValueError as exc:
        if str(exc).startswith("precision="):   # not a format's text at all
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)} or a float format "
                             f"({', '.join(map(repr, NAMED))} or 'e<E>m<M>[b<bias>][fn][ftz]'), "
                             f"got {precision!r}") from None
        raise ValueError(f"precision={precision!r}: {exc}") from None


def _widths(precision, weight_bits, activation_bits) -> tuple[int, int]:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    act_bits, w_bits = PRECISIONS[precision]
    for name, value in (("weight_bits", weight_bits), ("activation_bits", activation_bits)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or not 2 <= value <= 16):
            raise ValueError(f"{name} must be an int in 2..16 (or None), got {value!r}")
    return (act_bits if activation_bits is None else int(activation_bits),
            w_bits if weight_bits is None else int(weight_bits))


class _Builder:
    """Turns float layers into integer layers while propagating float64 calibration activations."""

    def __init__(self, act_bits, w_bits, method, per_channel, scale, rounding, seed):
        self.act_bits, self.w_bits, self.method = act_bits, w_bits, method
        self.per_channel, self.scale, self.rounding = per_channel, scale, rounding
        self.rng = np.random.default_rng(seed) if rounding.is_stochastic else None
        w_dtype = np.dtype(np.int8 if w_bits <= 8 else np.int16)
        self.act_dtype = np.dtype(np.int8 if act_bits <= 8 and w_bits <= 8 else np.int16)
        self.kind = gemm_kind(self.act_dtype, w_dtype)

    def fmt(self, values) -> QFormat:
        return QFormat.for_range(calibration_range(values, self.method, bits=self.act_bits), self.act_bits)

    def convert(self, layers, x, in_fmt, prefix):
        """(integer layers, float64 output on the calibration data, output format)."""
        fixed, fmt = [], in_fmt
        for name, layer, activation in steps(layers, prefix):
            if isinstance(layer, tuple):
                body, y, _ = self.convert(layer[1], x, fmt, f"{name}.")
                y = x + y
                out = FixedResidual(name, fmt, self.fmt(y), self.act_dtype, body)
            else:
                y = calibration_forward(layer, x, name)
                if activation is not None:
                    y = calibration_forward(activation, y, name)
                out = self._layer(layer, name, fmt, y, activation)
                out.source = (layer, activation) if activation is not None else (layer,)
            fixed.append(out)
            x, fmt = y, out.out_fmt
        return fixed, x, fmt

    def _layer(self, layer, name, in_fmt, y, activation):
        kind = type(layer).__name__
        if isinstance(layer, GEMMS):
            return self._gemm(layer, name, in_fmt, self.fmt(y), activation)
        if isinstance(layer, (ReLU, ReLU6, Flatten)):
            return FixedElementwise(name, kind, in_fmt, self.act_dtype,
                                    _six(in_fmt) if isinstance(layer, ReLU6) else None)
        if isinstance(layer, Permute):
            return FixedPermute(name, in_fmt, self.act_dtype, layer.axes)
        if isinstance(layer, Pad):
            return FixedPad(name, in_fmt, self.act_dtype, layer.pads, layer.value)
        if isinstance(layer, POOLS):
            padding = layer.padding if isinstance(layer, (AvgPool1d, AvgPool2d)) and layer.padded else None
            return FixedPool(name, kind, in_fmt, self.act_dtype, layer.kernel, layer.stride, padding)
        unit = QFormat.for_range(1.0, self.act_bits)
        if isinstance(layer, (Sigmoid, Tanh)):
            return FixedTable(name, kind, in_fmt, unit, self.act_dtype)
        if isinstance(layer, Softmax):
            return FixedSoftmax(name, in_fmt, unit, self.act_dtype, layer.n_axes)
        if isinstance(layer, Add):
            raise ValueError(f"layer {name}: a two-input Add converts only as the join of a Residual")
        raise ValueError(f"layer {name}: cannot convert a {kind}")

    def _gemm(self, layer, name, in_fmt, out_fmt, activation):
        weight = layer.weight
        axes = tuple(range(1, weight.ndim))
        top = np.abs(weight).max(axis=axes)
        if not self.per_channel:
            top = np.full_like(top, top.max())
        bias = np.zeros(weight.shape[0]) if layer.bias is None else layer.bias
        shape = (-1,) + (1,) * (weight.ndim - 1)
        if self.scale == "pow2":
            w_frac = np.array([QFormat.for_range(t, self.w_bits).frac for t in top], dtype=np.int64)
            # (near-)zero channels: fewer fraction bits than they could take, so the shift stays in range
            w_frac = np.minimum(w_frac, SHIFT_RANGE[1] - in_fmt.frac + out_fmt.frac)
            w_scaled = np.ldexp(weight, w_frac.reshape(shape))
            bias_acc = np.ldexp(bias, in_fmt.frac + w_frac)   # in accumulator LSBs
            shift, multiplier = in_fmt.frac + w_frac - out_fmt.frac, None
            weight_text = _frac_text(self.w_bits, w_frac)
        else:
            qmax = (1 << (self.w_bits - 1)) - 1
            # s[o] = w_scale[o] * 2**k[o] with a normal w_scale, so that subnormal weights do not underflow
            k = np.frexp(top)[1]
            w_scale = np.where(top > 0, np.ldexp(top, -k) / qmax, 1.0)
            w_scaled = np.ldexp(weight, -k.reshape(shape)) / w_scale.reshape(shape)
            bias_acc = np.ldexp(bias / w_scale, in_fmt.frac - k)
            multiplier, shift = _multipliers(np.ldexp(w_scale, k + out_fmt.frac - in_fmt.frac))
            weight_text = f"int{self.w_bits}*s"
        if np.any(shift < SHIFT_RANGE[0]) or np.any(shift > SHIFT_RANGE[1]):
            raise ValueError(f"layer {name}: requantization shifts {shift.min()}..{shift.max()} fall outside "
                             f"{list(SHIFT_RANGE)}; the weight or activation ranges are too extreme")
        w_raw = self._quantize(w_scaled, self.w_bits).astype(self.kind.w, copy=False)
        bias_raw, saturated = self._bias(bias_acc, int(np.prod(weight.shape[1:])))
        kind = type(layer).__name__
        stride = None if kind == "Linear" else layer.stride
        padding = None if kind == "Linear" else layer.padding
        return FixedGemm(name, kind, in_fmt, out_fmt, self.act_dtype, w_raw, bias_raw,
                         shift.astype(np.int32), multiplier, relu=activation is not None,
                         clamp=_six(out_fmt) if isinstance(activation, ReLU6) else None,
                         stride=stride, padding=padding, weight_text=weight_text, scale=self.scale,
                         bias_saturated=saturated)

    def _quantize(self, values, bits):
        raw, _ = kernels.quantize(values, 0, bits, rounding=self.rounding, rng=self.rng, backend="reference")
        return raw

    def _bias(self, scaled, k):
        """Bias in the accumulator dtype (int32, or int64 with a 16-bit operand): rounded once into the
        accumulator's width, saturated to leave room for k products (``kinds.bias_limit``)."""
        limit = min(int(np.iinfo(self.kind.acc).max), bias_limit(self.kind, k))
        raw, _ = quantize_float(scaled, 0, 8 * self.kind.acc.itemsize, rounding=self.rounding, rng=self.rng)
        raw = raw.astype(np.int64)
        # the quantizer itself saturates at the accumulator's maximum, which may equal the limit: a value above
        # the limit that lands on it was saturated too
        saturated = int(np.count_nonzero((np.abs(raw) > limit) | ((np.abs(raw) == limit) & (np.abs(scaled) > limit))))
        return np.clip(raw, -limit, limit).astype(self.kind.acc), saturated


def _six(fmt: QFormat):
    """Raw value of 6 (rounded down) in `fmt`, or None when 6 is above the format's range."""
    six = 6 << fmt.frac if fmt.frac >= 0 else 6 >> -fmt.frac   # exact at every frac
    return None if six >= fmt.qmax else six


def _frac_text(bits, w_frac) -> str:
    lo, hi = int(w_frac.min()), int(w_frac.max())
    return str(QFormat(bits, lo)) if lo == hi else f"{QFormat(bits, lo)}..{QFormat(bits, hi)}"


def _multipliers(real):
    """int32 M in [2**30, 2**31) and shift with M * 2**-shift ~= real (> 0), per channel."""
    mantissa, exponent = np.frexp(real)                     # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    multiplier = np.rint(np.ldexp(mantissa, 31)).astype(np.int64)
    carry = multiplier == (1 << 31)
    multiplier[carry] >>= 1
    shift = 31 - (exponent + carry).astype(np.int64)
    # factors below 2**-96 (channels of (near-)zero weights): the largest shift, a smaller multiplier
    excess = np.maximum(shift - SHIFT_RANGE[1], 0)
    multiplier = np.maximum(multiplier >> np.minimum(excess, 62), MULTIPLIER_RANGE[0])
    return multiplier, shift - excess
