"""The numpy reference backend: every function of ``kernels/protocol.py``, written for clarity.

This module is the specification the fast backends are tested against.  Integer
products and sums are formed in int64 (exact: ``api.py`` only passes shapes and
biases whose accumulator provably fits, see ``api._check_accumulator_bound``) and
stored in the accumulator dtype of the protocol (int32 for int8 x int8, int64 when
a 16-bit operand is involved).  Rounding happens once, in
:func:`~fixedpoint.kernels.reference.rounding.round_shift` (or ``round_div`` for
average pooling); saturation or wrapping happens once, in
:func:`~fixedpoint.kernels.reference.overflow.apply_overflow`.  Rounding and overflow
arrive as the integer codes of :class:`~fixedpoint.kernels.modes.Rounding` and
:class:`~fixedpoint.kernels.modes.Overflow`.
"""
from __future__ import annotations

import sys

import numpy as np

from ..modes import Overflow, Rounding
from ..protocol import UnpackedWeights
from .overflow import apply_overflow, integer_range
from .quantize import quantize_float
from .requantize import requantize
from .rounding import round_div

NAME = "reference"

_ROUNDINGS = tuple(Rounding)
_OVERFLOWS = tuple(Overflow)


def gemm(x, w, bias, out) -> None:
    """out[M, N] = x[M, K] @ w[N, K].T + bias[N]; integers summed exactly in int64."""
    out[...] = _accumulate(x, w, bias)


def gemm_requant(x, w, bias, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
    """The exact integer ``gemm`` (int64), then :func:`requant` into ``out``."""
    return requant(_accumulate(x, w, bias), shift, multiplier, rounding, overflow, out_bits, relu, out)


def prepare_gemm(w, bias, x_dtype) -> UnpackedWeights:
    """Nothing to pack: ``gemm``/``gemm_requant`` with the stored ``w`` and ``bias``."""
    return UnpackedWeights(sys.modules[__name__], w, bias)


def requant(acc, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
    """out = overflow(relu(round(acc * multiplier / 2**shift))), per column of ``acc`` (R, N)."""
    y, count = requantize(
        acc, shift, multiplier, rounding=_ROUNDINGS[rounding], overflow=_OVERFLOWS[overflow],
        bits=out_bits, signed=True, relu=relu, axis=-1,
    )
    out[...] = y
    return count


def quantize(x, frac, rounding, out_bits, out) -> tuple[int, int]:
    """out = saturate(round(x * 2**frac)) for 1-d float ``x``; +-inf saturate at any ``frac``;
    NaN elements are counted and left 0."""
    nan = np.isnan(x)
    inf = np.isinf(x)
    finite = ~(nan | inf)
    raw, saturated = quantize_float(
        x[finite], frac, out_bits, signed=True, rounding=_ROUNDINGS[rounding], overflow=Overflow.SATURATE
    )
    qmin, qmax = integer_range(out_bits, True)
    out[...] = 0
    out[finite] = raw
    out[inf] = np.where(x[inf] > 0, qmax, qmin)
    return saturated + int(np.count_nonzero(inf)), int(np.count_nonzero(nan))


def maxpool(x, kernel, stride, out) -> None:
    """out[b, i, j, c] = max of the window x[b, i*sh : i*sh+kh, j*sw : j*sw+kw, c]."""
    windows = _windows(x, kernel, stride, out.shape)
    out[...] = windows[0]
    for window in windows[1:]:
        np.maximum(out, window, out=out)


def avgpool(x, kernel, stride, rounding, out) -> None:
    """Window mean: integers as round_div(exact int64 window sum, kh*kw); floats summed in float64."""
    windows = _windows(x, kernel, stride, out.shape)
    size = kernel[0] * kernel[1]
    if np.issubdtype(x.dtype, np.integer):
        total = sum(window.astype(np.int64) for window in windows)
        out[...] = round_div(total, size, _ROUNDINGS[rounding])
    else:
        total = sum(window.astype(np.float64) for window in windows)
        out[...] = total / size


def add_requant(a, b, a_lshift, b_lshift, shift, rounding, overflow, out_bits, relu, out) -> int:
    """out = overflow(relu(round(((a << a_lshift) + (b << b_lshift)) / 2**shift))).

    The aligned sum is exact: int64 when it provably fits (16-bit inputs shifted by at
    most 46 bits), Python integers beyond.  ``shift < 0`` is an exact left shift.
    """
    if max(a_lshift, b_lshift) <= 46:
        total = (a.astype(np.int64) << a_lshift) + (b.astype(np.int64) << b_lshift)
    else:
        total = (a.astype(object) << a_lshift) + (b.astype(object) << b_lshift)
    y, count = requantize(
        total, shift, rounding=_ROUNDINGS[rounding], overflow=_OVERFLOWS[overflow],
        bits=out_bits, signed=True, relu=relu,
    )
    out[...] = y
    return count


def lut(x, table, out) -> None:
    """out = table[x - x_min]: entry 0 of the table belongs to the most negative input."""
    x_min = int(np.iinfo(x.dtype).min)
    out[...] = table[x.astype(np.int64) - x_min]


def _accumulate(x, w, bias):
    """x @ w.T + bias: float in the input dtype, integers exactly in int64."""
    if np.issubdtype(x.dtype, np.floating):
        acc = x @ w.T
    else:
        acc = x.astype(np.int64) @ w.astype(np.int64).T
    if bias is not None:
        acc = acc + bias.astype(acc.dtype)
    return acc


def _windows(x, kernel, stride, out_shape):
    """The kh*kw strided views x[:, di::sh, dj::sw, :] cut to the output's spatial size."""
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = out_shape[1], out_shape[2]
    return [
        x[:, di : di + (oh - 1) * sh + 1 : sh, dj : dj + (ow - 1) * sw + 1 : sw, :]
        for di in range(kh)
        for dj in range(kw)
    ]
