"""The numpy reference backend: every function of ``kernels/protocol.py``, written for clarity.

This module is the specification the fast backends are tested against.  Integer
products and sums are formed in int64 (exact: the front only passes shapes and biases
whose accumulator provably fits, see ``kinds.check_accumulator_bound``) and stored in
the accumulator dtype of the protocol (int32 for int8 x int8, int64 when a 16-bit
operand is involved).  Rounding happens once, in
:func:`~fixedpoint.kernels.reference.rounding.round_shift` (or ``round_div`` for
average pooling); saturation or wrapping happens once, in
:func:`~fixedpoint.kernels.reference.overflow.apply_overflow`.
"""
from __future__ import annotations

import sys

import numpy as np

from ..bf16 import to_float32
from ..kinds import gemm_kind
from ..modes import Overflow
from ..protocol import UnpackedWeights
from .overflow import apply_overflow
from .quantize import quantize_float
from .requantize import requantize
from .rounding import round_div

NAME = "reference"

def gemm(x, w, bias, out) -> None:
    """out[M, N] = x[M, K] @ w[N, K].T + bias[N]; integers summed exactly in int64."""
    out[...] = _accumulate(x, w, bias)


def prepare_gemm(w, bias, kind, epilogue, threads=1) -> UnpackedWeights:
    """Nothing to pack: ``gemm`` with the stored ``w`` and ``bias``, then :func:`requant` (one thread)."""
    return UnpackedWeights(sys.modules[__name__], w, bias, kind, epilogue)


def requant(acc, epilogue, out) -> int:
    """out = overflow(relu(round(acc * multiplier / 2**shift))), per column of ``acc`` (R, N)."""
    e = epilogue
    y, count = requantize(acc, e.shift, e.multiplier, rounding=e.rounding, overflow=e.fast_overflow,
                          bits=e.out_bits, signed=True, relu=e.relu, axis=-1)
    out[...] = y
    return count


def quantize(x, frac, rounding, out_bits, out) -> tuple[int, int]:
    """out = saturate(round(x * 2**frac)) for 1-d float ``x`` (+-inf saturate); NaN elements are
    counted and written as 0."""
    nan = np.isnan(x)
    raw, saturated = quantize_float(np.where(nan, 0.0, x), frac, out_bits, signed=True, rounding=rounding,
                                    overflow=Overflow.SATURATE)
    out[...] = np.where(nan, 0, raw)
    return saturated, int(np.count_nonzero(nan))


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
        out[...] = round_div(total, size, rounding)
    else:
        total = sum(window.astype(np.float64) for window in windows)
        out[...] = total / size


def add_requant(a, b, a_lshift, b_lshift, epilogue, out) -> int:
    """out = epilogue((a << a_lshift) + (b << b_lshift)): the aligned sum exact in int64 (the front keeps
    the shifts within ``limits.ADD_INT64_MAX_LSHIFT``), then one requantization."""
    total = (a.astype(np.int64) << a_lshift) + (b.astype(np.int64) << b_lshift)
    return requant(total.reshape(-1, 1), epilogue, out.reshape(-1, 1))


def divide(num, den, rounding, overflow, out_bits, out) -> int:
    """out = overflow(round_div(num, den)): one rounding of the exact quotient, then the overflow mode."""
    y, count = apply_overflow(round_div(num, den, rounding), out_bits, True, overflow)
    out[...] = y
    return count


def lut(x, table, out) -> None:
    """out = table[x - x_min]: entry 0 of the table belongs to the most negative input."""
    x_min = int(np.iinfo(x.dtype).min)
    out[...] = table[x.astype(np.int64) - x_min]


def im2col(x, kernel, stride, padding, out_hw, rows, out) -> None:
    """Patch rows of output rows ``rows`` of every image: one strided copy per kernel offset."""
    (kh, kw), (sh, sw), (ph, pw), (_, ow), (i0, i1) = kernel, stride, padding, out_hw, rows
    b, _, _, c = x.shape
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    patches = out.reshape(b, i1 - i0, ow, kh, kw, c)
    for di in range(kh):
        top = i0 * sh + di
        for dj in range(kw):
            patches[:, :, :, di, dj, :] = padded[:, top : top + (i1 - i0 - 1) * sh + 1 : sh,
                                                 dj : dj + (ow - 1) * sw + 1 : sw, :]


def _accumulate(x, w, bias):
    """x @ w.T + bias: float in the input dtype, bf16 bit patterns (uint16) in float32 (exact products),
    integers exactly in int64."""
    if gemm_kind(x.dtype, w.dtype).name == "bf16":
        acc = to_float32(x) @ to_float32(w).T
    elif np.issubdtype(x.dtype, np.floating):
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
