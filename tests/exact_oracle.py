"""An independent statement of the rounding and overflow rules, in Python's exact Fractions.

Written from DESIGN.md's table, not from the library's code, so tests can compare the
two.  ``bits_dropped`` says whether the operation drops fraction bits at all: a cast
or requantization with a positive shift does (even when they are zero, which is what
separates ``jam`` from ``jam_unbiased``), and so does quantize (a cast from an unbounded
source format); a value that is already an integer with no bits dropped is never changed.
"""
from fractions import Fraction
import math

HALF = Fraction(1, 2)


def round_fraction(v: Fraction, mode: str, bits_dropped: bool = True) -> int:
    if not bits_dropped:
        assert v.denominator == 1
        return int(v)
    q = math.floor(v)
    r = v - q
    neg = v < 0
    if mode == "floor":
        return q
    if mode == "ceil":
        return q + (r > 0)
    if mode == "to_zero":
        return q + (r > 0 and neg)
    if mode == "away":
        return q + (r > 0 and not neg)
    if mode == "mag_trunc":
        return q + neg
    if mode == "half_up":
        return q + (r >= HALF)
    if mode == "half_down":
        return q + (r > HALF)
    if mode == "half_to_zero":
        return q + (r > HALF or (r == HALF and neg))
    if mode == "half_away":
        return q + (r > HALF or (r == HALF and not neg))
    if mode == "half_even":
        return q + (r > HALF or (r == HALF and q % 2 == 1))
    if mode == "half_odd":
        return q + (r > HALF or (r == HALF and q % 2 == 0))
    if mode == "jam":
        return q | 1
    if mode == "jam_unbiased":
        return q | 1 if r > 0 else q
    raise ValueError(mode)


def fit(y: int, bits: int, signed: bool, overflow: str):
    """(value, overflowed) of the exact integer ``y`` in ``bits`` bits; None value for 'error'."""
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    lo = -qmax if (overflow == "saturate_symmetric" and signed) else qmin
    over = not lo <= y <= qmax
    if overflow == "wrap":
        return (y - qmin) % (1 << bits) + qmin, over
    if overflow == "error":
        return (None if over else y), over
    return min(max(y, lo), qmax), over
