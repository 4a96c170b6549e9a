"""Exact conversion of floats (or integers) to fixed-point raw integers: the reference.

``quantize_float(x, frac, bits)`` rounds the exact real ``x * 2**frac`` to an integer
once, in the chosen mode, then applies the overflow mode.  No floating-point
arithmetic touches the value: each float is split into an integer mantissa ``m`` and
an exponent (``x = m * 2**e`` exactly), so the value to round is ``m * 2**(e + frac)``
and rounding is :func:`round_shift` on integers.  This holds at every magnitude,
subnormals included.

The rounding is that of a cast from an unbounded source format (DESIGN.md, "One rule
for every entry point"): a mode is a function of the exact value, so the modes that act
on exact values act here too (``jam`` of an exact 0 is 1, ``mag_trunc`` of an exact -2
is -1); every other mode leaves a value that is already an integer unchanged.
"""
from __future__ import annotations

import numpy as np

from ..limits import QUANTIZE_FRAC_BOUND
from ..modes import Overflow, Rounding, as_overflow, as_rounding
from .overflow import apply_overflow, integer_range
from .rounding import round_exact_integer, round_shift

_MANTISSA_BITS = 53
_HUGE = 1 << 62   # |value| >= this is out of range of every format of <= 32 bits


def quantize_float(
    x,
    frac: int,
    bits: int,
    signed: bool = True,
    rounding: Rounding | str = Rounding.HALF_EVEN,
    overflow: Overflow | str = Overflow.SATURATE,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, int]:
    """Raw integers ``overflow(round(x * 2**frac))`` in the container dtype of ``bits`` (up to 64).

    ``x``: a real (float or integer) array.  Returns ``(raw, overflow_count)``.
    NaN raises ``ValueError``; +-inf saturate under ``saturate`` and
    ``saturate_symmetric`` and raise ``OverflowError`` under ``wrap`` and ``error``.
    Any integer ``frac`` is accepted: beyond ``QUANTIZE_FRAC_BOUND`` it is clamped, which
    changes no result (see :mod:`..limits`).
    """
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    x = np.asarray(x)
    if x.ndim == 0:   # numpy turns 0-d object results into Python scalars; quantize one element instead
        raw, count = quantize_float(x.reshape(1), frac, bits, signed, rounding, overflow, rng)
        return raw.reshape(()), count
    inf = None
    if x.dtype.kind in "iu":
        mantissa, exponent = _integer_parts(x)
    elif x.dtype.kind == "f":
        inf = _check_specials(x, overflow)
        mantissa, exponent = _float_parts(np.where(inf, 0.0, x) if inf is not None else x)
    else:
        raise TypeError(f"x must be a real float or integer array, got dtype {x.dtype}")
    frac = max(-QUANTIZE_FRAC_BOUND, min(int(frac), QUANTIZE_FRAC_BOUND))
    exponent = exponent + frac                # value = mantissa * 2**exponent, exactly
    if bits > 32:                             # the int64 stand-ins hold <= 32-bit formats: use Python ints
        mantissa = mantissa.astype(object)
    value, shift = _split_exact_part(mantissa, exponent, bits)
    y = round_shift(value, shift, rounding, rng)
    y = np.where(shift == 0, round_exact_integer(value, rounding), y)
    if overflow is Overflow.ERROR:
        _raise_if_outside(x, y, bits, signed, frac)
    raw, count = apply_overflow(y, bits, signed, overflow)
    if inf is not None:                       # +-inf saturate to the range ends (only these modes get here)
        qmin, qmax = integer_range(bits, signed)
        lowest = -qmax if (overflow is Overflow.SATURATE_SYMMETRIC and signed) else qmin
        raw[inf] = np.where(x[inf] > 0, qmax, lowest)
        count += int(np.count_nonzero(inf))
    return raw, count


def _raise_if_outside(x, y, bits, signed, frac) -> None:
    """overflow="error": name the count and the worst input (``y`` may hold stand-ins of huge values)."""
    qmin, qmax = integer_range(bits, signed)
    outside = (y < qmin) | (y > qmax)
    count = int(np.count_nonzero(outside))
    if count:
        index = np.argmax(np.where(outside, np.abs(y.astype(object)), -1).reshape(-1))
        worst = y.reshape(-1)[index]
        if abs(int(worst)) < _HUGE:
            text = f"worst raw value {int(worst)}"
        else:                                   # a stand-in: name the input instead
            value = np.asarray(x).reshape(-1)[index].item()
            text = f"worst raw value {value!r} * 2**{frac}, beyond 2**62"
        raise OverflowError(f"{count} of {np.size(y)} elements overflow the {bits}-bit "
                            f"{'signed' if signed else 'unsigned'} range [{qmin}, {qmax}] (overflow='error'); {text}")


def _check_specials(x: np.ndarray, overflow: Overflow):
    """Raise for NaN (and for +-inf under wrap/error); the mask of +-inf, or None when there is none."""
    nan = np.isnan(x)
    if nan.any():
        raise ValueError(f"x contains {int(nan.sum())} NaN value(s); fixed point has no NaN")
    inf = np.isinf(x)
    if not inf.any():
        return None
    if overflow in (Overflow.WRAP, Overflow.ERROR):
        raise OverflowError(
            f"x contains {int(inf.sum())} infinite value(s), which overflow={overflow.value!r} cannot represent"
        )
    return inf


def _float_parts(x: np.ndarray):
    """(int64 mantissa, exponent) with x = mantissa * 2**exponent exactly, for finite x."""
    x = x.astype(np.float64)                  # exact for float16/32/64
    fraction, exponent = np.frexp(x)          # x = fraction * 2**exponent, 0.5 <= |fraction| < 1
    mantissa = np.ldexp(fraction, _MANTISSA_BITS).astype(np.int64)
    return mantissa, exponent.astype(np.int64) - _MANTISSA_BITS


def _integer_parts(x: np.ndarray):
    if x.dtype == np.uint64 and x.size and int(x.max()) > np.iinfo(np.int64).max:
        mantissa = x.astype(object)
    else:
        mantissa = x.astype(np.int64)
    return mantissa, np.zeros(x.shape, dtype=np.int64)


def _split_exact_part(mantissa, exponent, bits):
    """Return (value, shift) with value / 2**shift == mantissa * 2**exponent and shift >= 0.

    Elements that are exact integers get shift 0 (no rounding in any mode).  Elements
    whose left-shifted value would not fit int64 become a same-signed stand-in of
    magnitude >= 2**62 with the same low ``bits`` bits, so saturation and wrapping
    stay exact without wide integers.
    """
    mantissa, exponent = np.broadcast_arrays(mantissa, exponent)
    if mantissa.dtype == object:
        left = np.maximum(exponent, 0).astype(object)
        right = np.maximum(-exponent, 0)
        value = mantissa << left
        return _drop_zero_bits(value, right)
    left = np.maximum(exponent, 0)
    right = np.maximum(-exponent, 0)
    value = mantissa.copy()
    if left.any():
        magnitude_bits = np.where(mantissa == 0, 0, _bit_length(np.abs(mantissa)))
        fits = (mantissa == 0) | (magnitude_bits + left <= 62)
        safe_left = np.where(fits, left, 0)
        value = np.where(fits, mantissa << safe_left, value)
        if not fits.all():
            value = np.where(fits, value, _huge_stand_in(mantissa, left, bits))
    return _drop_zero_bits(value, right)


def _drop_zero_bits(value, right):
    """Where the bits to drop are all zero, drop them now and set the shift to 0."""
    if value.dtype == object:
        mask = (np.ones_like(right).astype(object) << right.astype(object)) - 1
        exact = (value & mask) == 0
        value = np.where(exact, value >> right.astype(object), value)
        return value, np.where(exact, 0, right)
    capped = np.minimum(right, 63)
    mask = (np.uint64(1) << capped.astype(np.uint64)) - np.uint64(1)
    low_zero = (value.view(np.uint64) & mask) == 0
    exact = low_zero & ((right < 64) | (value == 0))
    value = np.where(exact, value >> capped, value)
    return value, np.where(exact, 0, right)


def _bit_length(a: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values < 2**63 (0 for 0), exactly."""
    _, exponent = np.frexp(a.astype(np.float64))
    length = exponent.astype(np.int64)
    # float64 rounding can carry 2**k - small up to 2**k: correct by one where needed
    too_long = (length > 0) & (length <= 63) & (a < (np.int64(1) << np.clip(length - 1, 0, 62)))
    return length - too_long


def _huge_stand_in(mantissa, left, bits):
    """An int64 with the sign of ``mantissa``, magnitude >= 2**62, congruent to
    ``mantissa << left`` modulo ``2**bits`` (``bits`` <= 32)."""
    modulus = 1 << bits
    in_window = left < bits
    low = np.where(in_window, ((mantissa % modulus) << np.where(in_window, left, 0)) % modulus, 0)
    return np.where(mantissa < 0, -_HUGE + low, _HUGE + low)
