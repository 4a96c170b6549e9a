"""Independent oracles of rounding to a float format, written from the definitions (not from the library).

- ``fraction_round``: one value, exactly, with ``fractions.Fraction``: the ulp of the value's binade
  (the subnormal one below ``emin``), the rounding of the exact quotient, then overflow and flush to zero.
- ``table_round``: whole arrays for formats of up to 16 bits, by looking each value up between its two
  neighbours in the sorted table of every finite value of the format (built from the encoding rules).

Rounding names: half_even, half_away, to_zero, floor, ceil; overflow "saturate" or "inf" (IEEE 754: the
directions toward zero give +-max instead of +-inf).
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np


def _direction(mode: str, negative: bool) -> str:
    """The rounding of the magnitude: "down" (toward zero), "up" (away from zero), or a nearest mode."""
    if mode == "to_zero":
        return "down"
    if mode == "floor":
        return "up" if negative else "down"
    if mode == "ceil":
        return "down" if negative else "up"
    return mode


def _overflow_result(direction: str, overflow: str, maximum):
    if overflow == "saturate" or direction == "down":
        return maximum
    return math.inf


def fraction_round(x: float, fmt, mode: str, overflow: str = "saturate") -> float:
    """``x`` (a finite float or int) rounded to ``fmt`` exactly; returns a Python float (+-inf, signed zeros)."""
    negative = math.copysign(1.0, x) < 0 if isinstance(x, float) else x < 0
    a = abs(Fraction(x))
    sign = -1.0 if negative else 1.0
    if a == 0:
        return sign * 0.0
    k = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** k > a:
        k -= 1
    while Fraction(2) ** (k + 1) <= a:
        k += 1
    t = max(k, 1 - fmt.bias)
    ulp = Fraction(2) ** (t - fmt.man_bits)
    q = a / ulp
    direction = _direction(mode, negative)
    if direction == "down":
        n = math.floor(q)
    elif direction == "up":
        n = math.ceil(q)
    elif direction == "half_even":
        n = round(q)                       # Fraction.__round__ rounds half to even
    else:
        n = math.floor(q + Fraction(1, 2))
    r = n * ulp
    if r > Fraction(fmt.max):
        return sign * _overflow_result(direction, overflow, fmt.max)
    if not fmt.subnormals and r < Fraction(fmt.min_normal):
        r = Fraction(0)
    return sign * float(r)


def format_table(fmt):
    """(ascending finite non-negative values incl. subnormals, even-mantissa flags, the value past max).

    "The value past max" is the next grid value beyond the largest finite one (the start of the next binade
    for IEEE-style formats, max + ulp for finite_only ones), where a rounding up from max lands.
    """
    values, even = [], []
    for code in range(fmt.max_code + 2):
        field, mantissa = code >> fmt.man_bits, code & ((1 << fmt.man_bits) - 1)
        if field == 0:
            value = math.ldexp(mantissa, 1 - fmt.bias - fmt.man_bits)
        else:
            value = math.ldexp((1 << fmt.man_bits) + mantissa, field - fmt.bias - fmt.man_bits)
        values.append(value)
        # ties to even: an even integer significand at the ulp of the binade below the tie (for man_bits = 0
        # every nonzero value has significand 1, so a tie between 2**t and 2**(t + 1) goes up)
        even.append(mantissa % 2 == 0 if fmt.man_bits else code == 0)
    return np.array(values[:-1]), np.array(even[:-1]), (values[-1], even[-1])


def table_round(x, fmt, mode: str, overflow: str = "saturate") -> np.ndarray:
    """``x`` (any float array) rounded to ``fmt`` element by element from the table of its values (float64)."""
    x = np.asarray(x, dtype=np.float64)
    values, even, (past, past_even) = format_table(dataclasses.replace(fmt, subnormals=True))
    values, even = np.append(values, past), np.append(even, past_even)
    negative = np.signbit(x)
    magnitude = np.abs(np.where(np.isfinite(x), x, 0.0))
    lo = np.clip(np.searchsorted(values, magnitude, side="right") - 1, 0, len(values) - 1)
    hi = np.minimum(lo + 1, len(values) - 1)
    down, up = values[lo], values[hi]
    if mode in ("half_even", "half_away"):
        nearer_down = magnitude - down < up - magnitude
        tie = magnitude - down == up - magnitude
        take_down = nearer_down | (tie & even[lo] if mode == "half_even" else np.zeros_like(tie))
        r = np.where(take_down, down, up)
        to_inf = np.ones_like(negative)                 # overflow: the nearest modes go to inf
    else:
        direction_up = {"to_zero": np.zeros_like(negative), "floor": negative, "ceil": ~negative}[mode]
        r = np.where(direction_up, up, down)
        to_inf = direction_up
    r = np.where(magnitude == down, down, r)
    r = np.where(magnitude >= past, past, r)
    beyond = r > fmt.max
    r = np.where(beyond, np.where(to_inf & (overflow == "inf"), np.inf, fmt.max), r)
    if not fmt.subnormals:
        r = np.where(r < fmt.min_normal, 0.0, r)
    r = np.where(np.isinf(x), fmt.max if overflow == "saturate" else np.inf, r)
    r = np.where(negative, -r, r)
    return np.where(np.isnan(x), np.nan, r)


def assert_same_values(actual, expected) -> None:
    """Equal element by element, NaN where the other is NaN, and zeros of the same sign."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    nan = np.isnan(expected)
    same = (actual == expected) & (np.signbit(actual) == np.signbit(expected)) | (nan & np.isnan(actual))
    if not same.all():
        index = np.flatnonzero(~same.reshape(-1))
        raise AssertionError(f"{index.size} of {same.size} elements differ; first at {index[0]}: "
                             f"{actual.reshape(-1)[index[0]]!r} != {expected.reshape(-1)[index[0]]!r}")
