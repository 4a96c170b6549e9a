"""Exact rounding of wide integers by a power of two, for the Numba kernels.

Every deterministic mode is one 16-bit *mode mask* of
:data:`fixedpoint.kernels.modes.ROUND_UP_MASKS` (the rule table every backend reads):
with ``q`` the floor of the exact quotient, the result is ``q + up`` where ``up`` is
bit ``q_odd + 2*negative + 4*rest`` of the mask, and ``rest`` classifies the dropped
bits ``r`` against half an LSB: 0 if ``r == 0``, 1 if below half, 2 at exactly half,
3 above.  The lookup is branch-free, so LLVM vectorizes it.

Values are ``int64`` or a 128-bit pair ``(hi: int64, lo: uint64)`` meaning
``hi * 2**64 + lo`` (products ``acc * multiplier`` reach 94 bits, aligned sums more).
A rounded result that fits in ``[-2**62, 2**62)`` is returned exactly; a larger one
is returned as a *stand-in*: ``+-2**62`` plus its low 32 bits, which has the true
sign, lies outside every <= 32-bit range and is congruent modulo ``2**32``, so relu,
saturation, wrapping and overflow counts downstream stay exact.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..modes import ROUND_UP_MASKS, Rounding

_LOW32 = np.int64(0xFFFFFFFF)
_STAND_IN = np.int64(1 << 62)
_INT64_MIN = np.int64(-(1 << 63))
_U1 = np.uint64(1)


def rounding_mask(rounding: Rounding) -> int:
    """The 16-bit mode mask of deterministic ``rounding``."""
    if rounding.is_stochastic:
        raise ValueError(f"rounding {rounding.value!r} is not a deterministic mode")
    return ROUND_UP_MASKS[rounding.code]


@njit(cache=True, inline="always")
def round_up_bit(mask, q_odd, negative, rest):
    """0 or 1: the mode mask's verdict (all arguments int64)."""
    return (mask >> (q_odd | (negative << 1) | (rest << 2))) & 1


@njit(cache=True, inline="always")
def rest_class_u64(r, half):
    """0/1/2/3 for dropped bits ``r`` zero / below / at / above ``half`` (uint64, half >= 1)."""
    return np.int64(r != 0) + np.int64(r >= half) + np.int64(r > half)


@njit(cache=True, inline="always")
def shift_round_i64(v, s, mask):
    """round(v / 2**s) for int64 ``v`` and 1 <= s <= 127; exact, |result| <= 2**62."""
    sc = min(s, 63)
    q = v >> sc
    r = np.uint64(v) & ((_U1 << np.uint64(sc)) - _U1)
    rest = rest_class_u64(r, _U1 << np.uint64(sc - 1))
    if s >= 64:                       # every bit is dropped: q is 0 or -1
        # v >= 0: r = v < 2**63 <= half.  v < 0: r = 2**s + v >= half, equal only for v = -2**63, s = 64
        tie = np.int64((s == 64) & (v == _INT64_MIN))
        rest = np.int64(v != 0) if v >= 0 else 3 - tie
    return q + round_up_bit(mask, q & 1, np.int64(v < 0), rest)


@njit(cache=True, inline="always")
def stand_in(negative, low_bits):
    """The stand-in of a value beyond +-2**62: the sign and the low 32 bits (see module doc)."""
    return (-_STAND_IN if negative else _STAND_IN) + (low_bits & _LOW32)


@njit(cache=True, inline="always")
def shift_left_exact(v, k):
    """v * 2**k for int64 ``v`` and k >= 0: exact, or its stand-in beyond +-2**62."""
    kc = min(k, 63)
    limit = _STAND_IN >> kc                 # 0 for k >= 63: only v == 0 fits
    fits = (v == 0) | ((v >= -limit) & (v < limit))
    shifted = np.int64(np.uint64(v) << np.uint64(kc))
    return shifted if fits else stand_in(v < 0, shifted)


@njit(cache=True, inline="always")
def scale_i64(v, s, mask):
    """round(v / 2**s) for int64 ``v`` and -63 <= s <= 127 (s <= 0: exact left shift)."""
    if s > 0:
        return shift_round_i64(v, s, mask)
    return shift_left_exact(v, -s)


@njit(cache=True, inline="always")
def mul_wide(a, m):
    """The exact product of int64 ``a`` and 0 <= m < 2**31 as a 128-bit pair (hi, lo)."""
    a_hi = a >> 32                                  # |a_hi| < 2**31
    a_lo = a & _LOW32                               # 0 <= a_lo < 2**32
    low_part = np.uint64(a_lo * m)                  # < 2**63
    high_part = a_hi * m                            # |.| < 2**62, weight 2**32
    lo = (np.uint64(high_part) << np.uint64(32)) + low_part
    carry = np.int64(lo < low_part)
    return (high_part >> 32) + carry, lo


@njit(cache=True, inline="always")
def scale_wide(hi, lo, s, mask):
    """round((hi * 2**64 + lo) / 2**s) for -63 <= s <= 127: exact, or its stand-in."""
    lo_signed = np.int64(lo)
    if hi == (lo_signed >> 63):                     # the value fits in int64
        return scale_i64(lo_signed, s, mask)
    negative = hi < 0                               # |value| >= 2**63 from here on
    if s <= 0:
        return stand_in(negative, np.int64(lo << np.uint64(min(-s, 63))))
    if s < 64:
        su = np.uint64(s)
        q_lo = (np.uint64(hi) << (np.uint64(64) - su)) | (lo >> su)
        q_hi = hi >> s
        rest = rest_class_u64(lo & ((_U1 << su) - _U1), _U1 << (su - _U1))
    elif s == 64:
        q_lo = np.uint64(hi)
        q_hi = hi >> 63
        rest = rest_class_u64(lo, _U1 << np.uint64(63))
    else:                                           # dropped bits straddle both words
        t = s - 64
        q_lo = np.uint64(hi >> t)
        q_hi = hi >> 63
        r_hi = np.uint64(hi) & ((_U1 << np.uint64(t)) - _U1)
        half_hi = _U1 << np.uint64(t - 1)
        below = r_hi < half_hi
        at = (r_hi == half_hi) & (lo == 0)
        zero = (r_hi == 0) & (lo == 0)
        rest = 0 if zero else (1 if below else (2 if at else 3))
    up = round_up_bit(mask, np.int64(q_lo & _U1), np.int64(negative), rest)
    q_lo_signed = np.int64(q_lo)
    if (q_lo_signed >> 62) == q_hi:                 # the quotient lies in [-2**62, 2**62)
        return q_lo_signed + up
    return stand_in(negative, q_lo_signed + up)


@njit(cache=True, inline="always")
def div_round(v, d, mask):
    """round(v / d) for int64 ``v`` and d >= 1 in the mode of ``mask``; d == 1 returns v."""
    q = v // d                                      # floor division
    r2 = 2 * (v - q * d)                            # twice the remainder, 0 <= r2 < 2d
    rest = np.int64(r2 != 0) + np.int64(r2 >= d) + np.int64(r2 > d)
    rounded = q + round_up_bit(mask, q & 1, np.int64(v < 0), rest)
    return v if d == 1 else rounded
