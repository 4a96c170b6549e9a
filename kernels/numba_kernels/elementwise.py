"""Element-wise integer kernels: requantization, aligned add, table lookup, float quantization.

Each public function follows ``kernels/protocol.py``; arrays arrive C-contiguous from
the front.  Rounding happens once per element in :mod:`.rounding` (exact in 128 bits),
saturation or wrapping once in :func:`.overflow.fit`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..limits import ADD_INT64_MAX_LSHIFT
from .overflow import fit, overflow_params
from .rounding import div_round, mul_wide, round_up_bit, rounding_mask, scale_i64, scale_wide


def column_masks(rounding, shift: np.ndarray) -> np.ndarray:
    """Per-column mode masks: the mode's mask where bits are dropped (shift > 0), else 0."""
    return np.where(shift > 0, np.int64(rounding_mask(rounding)), np.int64(0))


def epilogue_args(epilogue, columns: int, acc_dtype) -> tuple:
    """An epilogue resolved into what the njit kernels take: (shift, mult, masks, wide, relu, lo, hi, qmin, wrap)."""
    lo, hi, qmin, wrap = overflow_params(epilogue.fast_overflow, epilogue.out_bits)
    shift = np.ascontiguousarray(epilogue.shift, dtype=np.int64)
    wide = epilogue.multiplier is not None and np.dtype(acc_dtype) == np.int64
    return (shift, multipliers(epilogue.multiplier, columns), column_masks(epilogue.rounding, shift),
            wide, epilogue.relu, lo, hi, qmin, wrap)


def multipliers(multiplier, columns: int) -> np.ndarray:
    """The int64 multiplier per column; ``None`` means 1."""
    if multiplier is None:
        return np.ones(columns, dtype=np.int64)
    return np.ascontiguousarray(multiplier, dtype=np.int64)


@njit(cache=True, inline="always")
def requant_value(acc, m, s, mask, wide):
    """round(acc * m / 2**s), exact; ``wide`` when acc * m may exceed 63 bits (int64 acc)."""
    if wide:
        hi, lo = mul_wide(np.int64(acc), m)
        return scale_wide(hi, lo, s, mask)
    return scale_i64(np.int64(acc) * m, s, mask)


@njit(cache=True)
def _requant_rows(acc, shift, mult, masks, wide, relu, lo, hi, qmin, wrap, out):
    """out[r, j] = fit(round(acc[r, j] * mult[j] / 2**shift[j])); returns the overflow count."""
    count = 0
    rows, cols = acc.shape
    for r in range(rows):
        for j in range(cols):
            y = requant_value(acc[r, j], mult[j], np.int64(shift[j]), masks[j], wide)
            value, outside = fit(y, relu, lo, hi, qmin, wrap)
            out[r, j] = value
            count += outside
    return count


def requant(acc, epilogue, out) -> int:
    """Requantize ``acc`` (R, N) int32/int64 into ``out`` (R, N), per-column shift/multiplier.

    Exact for any int64 ``acc`` times a multiplier below 2**31 (128-bit intermediate).
    """
    cols = acc.shape[-1]
    return int(_requant_rows(acc.reshape(-1, cols), *epilogue_args(epilogue, cols, acc.dtype), out.reshape(-1, cols)))


@njit(cache=True)
def _add(a, b, a_lshift, b_lshift, shift, mask, relu, lo, hi, qmin, wrap, out):
    """Aligned sum in int64, then round, relu and overflow."""
    count = 0
    for i in range(a.shape[0]):
        total = (np.int64(a[i]) << a_lshift) + (np.int64(b[i]) << b_lshift)
        value, outside = fit(scale_i64(total, shift, mask), relu, lo, hi, qmin, wrap)
        out[i] = value
        count += outside
    return count


def add_requant(a, b, a_lshift, b_lshift, epilogue, out) -> int:
    """out = epilogue((a << a_lshift) + (b << b_lshift)); the aligned sum is exact in int64 for shifts
    up to ``limits.ADD_INT64_MAX_LSHIFT`` (the front's bound)."""
    if not 0 <= min(a_lshift, b_lshift) <= max(a_lshift, b_lshift) <= ADD_INT64_MAX_LSHIFT:
        raise ValueError(f"a_lshift={a_lshift} and b_lshift={b_lshift} must lie in [0, {ADD_INT64_MAX_LSHIFT}]")
    shift = int(epilogue.shift[0])
    lo, hi, qmin, wrap = overflow_params(epilogue.fast_overflow, epilogue.out_bits)
    mask = rounding_mask(epilogue.rounding) if shift > 0 else 0
    count = _add(a.reshape(-1), b.reshape(-1), int(a_lshift), int(b_lshift), shift, mask, epilogue.relu,
                 lo, hi, qmin, wrap, out.reshape(-1))
    return int(count)


@njit(cache=True)
def _divide(num, den, mask, lo, hi, qmin, wrap, out):
    count = 0
    for i in range(num.shape[0]):
        value, outside = fit(div_round(num[i], den[i], mask), False, lo, hi, qmin, wrap)
        out[i] = value
        count += outside
    return count


def divide(num, den, rounding, overflow, out_bits, out) -> int:
    """out = overflow(round(num / den)) for 1-d int64 ``num`` and ``den`` in [1, 2**62]; one rounding."""
    lo, hi, qmin, wrap = overflow_params(overflow, out_bits)
    return int(_divide(num, den, np.int64(rounding_mask(rounding)), lo, hi, qmin, wrap, out))


@njit(cache=True)
def _lut(x, table, offset, out):
    for i in range(x.shape[0]):
        out[i] = table[np.int64(x[i]) + offset]


def lut(x, table, out) -> None:
    """out = table[x - x_min] for int8 (256-entry table) or int16 (65536-entry) ``x``; the entries are
    copied as raw bits, so any table dtype (float16 included) works."""
    as_bits = np.dtype(f"u{table.itemsize}")
    _lut(x.reshape(-1), table.view(as_bits), -int(np.iinfo(x.dtype).min), out.reshape(-1).view(as_bits))


@njit(cache=True)
def _quantize(x, scale, mask, lo, hi, out):
    """out = clamp(round(x * scale)) with the value formed exactly in float64.

    The value is clamped to [lo - 2, hi + 2] before the floor (so the int64 conversion
    is defined); clamped values are integers beyond the range and still saturate, also
    after ``mag_trunc`` or ``jam`` move them by one.  The side of the half-way point is
    decided on an exact difference: ``v - floor(v)`` for v >= 0 and ``ceil(v) - v`` for
    v < 0 (``v - floor(v)`` can round up to 0.5 for -0.5 < v < 0).
    """
    saturated = 0
    nans = 0
    below, above = np.float64(lo - 2), np.float64(hi + 2)
    for i in range(x.shape[0]):
        v = np.float64(x[i]) * scale
        is_nan = v != v
        v = below if v < below else v
        v = above if v > above else v
        v = 0.0 if is_nan else v
        q = np.floor(v)
        if v >= 0.0:
            dropped = v - q                               # exact, 0 <= dropped < 1
            rest = np.int64(dropped != 0.0) + np.int64(dropped >= 0.5) + np.int64(dropped > 0.5)
        else:
            missing = np.ceil(v) - v                      # exact, 1 - dropped (0 when v is an integer)
            rest = np.int64(missing != 0.0) * (np.int64(1) + np.int64(missing <= 0.5) + np.int64(missing < 0.5))
        q_int = np.int64(q)
        y = q_int + round_up_bit(mask, q_int & 1, np.int64(v < 0.0), rest)
        saturated += (y < lo) | (y > hi)
        out[i] = 0 if is_nan else min(max(y, lo), hi)
        nans += is_nan
    return saturated, nans


def quantize(x, frac, rounding, out_bits, out) -> tuple[int, int]:
    """out = saturate(round(x * 2**frac)) for 1-d float32/float64 ``x``; (saturated, nan) counts.

    One rounding of the exact product (the front routes here only when ``x * 2**frac``
    is exact in float64), by the mode's full table: the exact value is cast from an
    unbounded source, so ``jam`` and ``mag_trunc`` act on integral values too.  NaN
    elements are counted and written as 0.
    """
    if not 2 <= out_bits <= 32:
        raise ValueError(f"out_bits={out_bits!r} must lie in [2, 32]")
    qmin, qmax = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    saturated, nans = _quantize(x, np.ldexp(1.0, int(frac)), rounding_mask(rounding), qmin, qmax, out)
    return int(saturated), int(nans)
