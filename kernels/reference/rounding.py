"""Exact rounding of integers by a power of two: the specification of all 15 modes.

``round_shift(v, s, mode)`` returns the integer that ``v / 2**s`` rounds to.  ``v`` is an
int64 array or an object array of Python ints (for values wider than 64 bits); ``s`` is
a non-negative integer array broadcast against ``v``.  Nothing here goes through
floating point, so every result is exact.

With ``q = floor(v / 2**s)`` and ``r = v - q * 2**s`` (the dropped bits, 0 <= r < 2**s),
every deterministic mode returns ``q`` or ``q + 1`` as
:func:`fixedpoint.kernels.modes.rounds_up` decides from q's parity, v's sign and r
against half an LSB (``2**(s-1)``); its table, in words:

============== =====================================================================
floor          q
ceil           q + 1 if r != 0
to_zero        q + 1 if r != 0 and v < 0
away           q + 1 if r != 0 and v >= 0
mag_trunc      q + 1 if v < 0 (floor, then one LSB toward zero for negative values)
half_up        q + 1 if r >= 2**(s-1)
half_down      q + 1 if r > 2**(s-1)
half_to_zero   q + 1 if r > 2**(s-1), or r == 2**(s-1) and v < 0
half_away      q + 1 if r > 2**(s-1), or r == 2**(s-1) and v >= 0
half_even      q + 1 if r > 2**(s-1), or r == 2**(s-1) and q is odd
half_odd       q + 1 if r > 2**(s-1), or r == 2**(s-1) and q is even
jam            q with its lowest bit forced to 1 (q + 1 if q is even)
jam_unbiased   q with its lowest bit forced to 1 if r != 0
stochastic     q + 1 with probability r / 2**s  (floor(v/2**s + u), u ~ U[0, 1))
stochastic_eq  q + 1 with probability 1/2 if r != 0
============== =====================================================================

Where ``s == 0`` no bit is dropped and every mode returns ``v`` unchanged.

Stochastic modes draw one number per element of the broadcast result from a
``numpy.random.Generator`` (so a seed reproduces them): ``stochastic`` compares a
uniform 62-bit integer with the top 62 bits of ``r / 2**s``, exact for ``s <= 62`` and
biased by less than ``2**-62`` beyond; ``stochastic_equal`` uses one random bit.
"""
from __future__ import annotations

import numpy as np

from ..modes import REST_ZERO, ROUND_UP_MASKS, Rounding, as_rounding, round_up_index

_STOCHASTIC_BITS = 62


def round_shift(v, s, mode: Rounding | str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round ``v / 2**s`` to an integer in ``mode``; see the module docstring for the rules.

    ``v``: int64 or object (Python int) array.  ``s``: integer array, all >= 0.
    Returns an array of ``v``'s kind (int64 or object) with the broadcast shape.
    ``rng`` is required for the stochastic modes.
    """
    mode = as_rounding(mode)
    v, s = np.broadcast_arrays(np.asarray(v), np.asarray(s, dtype=np.int64))
    if np.any(s < 0):
        raise ValueError("round_shift needs s >= 0; a negative shift is an exact left shift")
    if v.ndim == 0:   # numpy turns 0-d object results into Python scalars; round one element instead
        return round_shift(v.reshape(1), s.reshape(1), mode, rng).reshape(())
    if v.dtype == object:
        q, r_bits = _floor_and_rest_object(v, s)
    else:
        q, r_bits = _floor_and_rest_int64(v.astype(np.int64, copy=False), s)
    inexact, half_cmp, top62 = r_bits
    if mode is Rounding.STOCHASTIC:
        u = _require_rng(rng, mode).integers(0, 2**_STOCHASTIC_BITS, size=v.shape, dtype=np.int64)
        y = q + (u < top62()).astype(np.int64)
    else:
        y = _apply_mode(q, inexact, half_cmp, v < 0, mode, rng)
    return _identity_where_no_shift(y, v, s)


def round_exact_integer(v, mode: Rounding | str) -> np.ndarray:
    """``mode`` applied to integers ``v`` that come from an unbounded source format.

    ``v`` is exact, so every dropped bit is zero (``REST_ZERO``): ``jam`` forces the
    lowest bit to 1, ``mag_trunc`` adds 1 to a negative value, every other deterministic
    mode (and both stochastic ones) returns ``v``.  This is how
    :func:`~fixedpoint.kernels.reference.quantize.quantize_float` rounds a float whose
    scaled value is already an integer.
    """
    mode = as_rounding(mode)
    v = np.asarray(v)
    if mode.is_stochastic:
        return v
    return _plus(v, _round_up(mode, (v & 1) == 1, v < 0, np.full(v.shape, REST_ZERO)))


def round_div(v, d, mode: Rounding | str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round ``v / d`` to an integer in ``mode`` for int64 ``v`` and positive int64 ``d``.

    The same rules as :func:`round_shift` with ``2**s`` replaced by ``d`` (ties are
    ``2 * r == d``; ``stochastic`` rounds up with probability exactly ``r / d``); used by
    average pooling, whose divisor is the window size.  ``d == 1`` returns ``v``.
    """
    mode = as_rounding(mode)
    v, d = np.broadcast_arrays(np.asarray(v, dtype=np.int64), np.asarray(d, dtype=np.int64))
    if v.ndim == 0:
        return round_div(v.reshape(1), d.reshape(1), mode, rng).reshape(())
    if np.any(d < 1):
        raise ValueError("round_div needs a divisor d >= 1")
    q = np.floor_divide(v, d)
    r = v - q * d
    half_cmp = np.sign(2 * r - d).astype(np.int8)
    if mode is Rounding.STOCHASTIC:
        u = _require_rng(rng, mode).integers(0, d)
        y = q + (u < r).astype(np.int64)
    else:
        y = _apply_mode(q, r != 0, half_cmp, v < 0, mode, rng)
    return np.where(d == 1, v, y)


def _apply_mode(q, inexact, half_cmp, negative, mode, rng):
    """Every mode but ``stochastic`` from the floor ``q`` and facts about the remainder."""
    if mode is Rounding.STOCHASTIC_EQUAL:
        coin = _require_rng(rng, mode).integers(0, 2, size=q.shape, dtype=np.int64)
        return q + (inexact & (coin == 1)).astype(np.int64)
    rest = np.where(inexact, 2 + half_cmp.astype(np.int64), REST_ZERO)   # below / half / above: 1 / 2 / 3
    return _plus(q, _round_up(mode, (q & 1) == 1, negative, rest))


def _plus(q, up):
    """q + up for int64 or Python-int (object) q: up joins q's kind, so wide values never pass through int64."""
    return q + (up.astype(object) if np.asarray(q).dtype == object else up)


def _round_up(mode, q_odd, negative, rest) -> np.ndarray:
    """0/1 per element: the mode's bit of ``ROUND_UP_MASKS`` for these facts (int64)."""
    index = round_up_index(np.asarray(q_odd, dtype=np.int64), np.asarray(negative, dtype=np.int64),
                           np.asarray(rest, dtype=np.int64))
    return (np.int64(ROUND_UP_MASKS[mode.code]) >> index) & 1


def _identity_where_no_shift(y, v, s):
    if np.any(s == 0):
        y = np.where(s == 0, v, y)
    return y


def _require_rng(rng, mode):
    if rng is None:
        raise ValueError(f"rounding={mode.value!r} needs a random generator (pass seed=)")
    return rng


def _floor_and_rest_int64(v, s):
    """Floor and the facts about the dropped bits, in int64 without overflow.

    Returns q and (inexact, half_cmp, top62) where half_cmp is the sign of r - 2**(s-1)
    (-1 where s == 0) and top62() lazily gives floor(r * 2**62 / 2**s).
    """
    big = s >= 64                      # every bit of v is dropped; r = v or v + 2**s
    sc = np.minimum(s, 63)
    q = v >> sc
    mask = (np.uint64(1) << sc.astype(np.uint64)) - np.uint64(1)
    r = (v.view(np.uint64) & mask).view(np.int64)
    half = np.where(sc >= 1, np.int64(1) << np.maximum(sc - 1, 0), np.int64(1))
    half_cmp = np.sign(r - half).astype(np.int8)
    half_cmp = np.where(sc == 0, np.int8(-1), half_cmp)
    # s >= 64: v >= 0 leaves r = v < 2**63 <= half; v < 0 leaves r = v + 2**s > half.
    half_cmp = np.where(big, np.where(v < 0, np.int8(1), np.int8(-1)), half_cmp)
    inexact = np.where(big, v != 0, r != 0)

    def top62():
        k = _STOCHASTIC_BITS
        low = r << np.maximum(k - sc, 0)                     # s <= 62: exact scaling
        high = r >> np.maximum(sc - k, 0)                    # s == 63
        top = np.where(sc <= k, low, high)
        shift_big = np.minimum(np.maximum(s - k, 0), 63)     # s >= 64
        top_big = np.where(v < 0, np.int64(2**k) + (v >> shift_big), v >> shift_big)
        return np.where(big, top_big, top)

    return q, (inexact, half_cmp, top62)


def _floor_and_rest_object(v, s):
    """The same facts for Python ints of any width (object arrays)."""
    s_obj = s.astype(object)
    q = v >> s_obj
    r = v - (q << s_obj)
    half = np.where(s > 0, np.left_shift(np.ones_like(s_obj), np.maximum(s_obj - 1, 0)), 1)
    half_cmp = np.sign((r - half).astype(object)).astype(np.int8)
    half_cmp = np.where(s == 0, np.int8(-1), half_cmp)
    inexact = r != 0

    def top62():
        k = _STOCHASTIC_BITS
        scaled = np.where(s <= k, r << np.maximum(k - s_obj, 0), r >> np.maximum(s_obj - k, 0))
        return scaled.astype(np.int64)

    return q, (inexact, half_cmp, top62)
