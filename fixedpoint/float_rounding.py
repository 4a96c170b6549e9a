"""Fast rounding of float32/float64 arrays to a float format, on their bit patterns: the layer boundaries
of float-format models.

``round_scaled(x, fmt, rounding, exponent)`` is ``quantize_float(x * 2**exponent, fmt, rounding) *
2**-exponent`` (overflow="saturate") for the deterministic float roundings, computed without any
float arithmetic on the values: each element's bit pattern gives its integer significand ``sig`` and
exponent ``e`` (``x = sig * 2**e`` exactly); scaling adds ``exponent`` to ``e``; the one rounding is
an integer shift of ``sig`` (in int32 for float32 inputs, int64 for float64) to the ulp of the
scaled value's binade, with the round-up decision of the mode; the result is
``rounded * 2**(ulp exponent - exponent)``.  ``tests/test_float_rounding.py`` checks it bit for bit
against :func:`~fixedpoint.quantize_float`, the reference.  The caller chooses ``exponent`` so that the
descaled values are float32 numbers (:func:`descaled_exponent_range`).
"""
from __future__ import annotations

import numpy as np

from .float_conversion import FLOAT_ROUNDINGS
from .floatformat import FloatFormat
from .kernels.modes import Rounding
from .stats import FloatStats

_LAYOUT = {  # input dtype -> (unsigned view, signed work type, mantissa bits, exponent bias, exponent field mask)
    np.dtype(np.float32): (np.uint32, np.int32, 23, 127, 0xFF),
    np.dtype(np.float64): (np.uint64, np.int64, 52, 1023, 0x7FF),
}
DETERMINISTIC = tuple(mode for mode in FLOAT_ROUNDINGS if not mode.is_stochastic)


def descaled_exponent_range(fmt: FloatFormat) -> tuple[int, int]:
    """The scale exponents ``k`` for which every value of ``fmt`` times ``2**-k`` is a float32 number."""
    return fmt.emax - 127, fmt.emin - fmt.man_bits + 149


def round_scaled(x: np.ndarray, fmt: FloatFormat, rounding: Rounding, exponent: int = 0,
                 stats: FloatStats | None = None) -> np.ndarray:
    """``quantize_float(x * 2**exponent, fmt, rounding) * 2**-exponent`` (saturating) as float32.

    ``x``: a native-order float32 or float64 array; ``rounding``: one of :data:`DETERMINISTIC`;
    ``exponent`` within :func:`descaled_exponent_range`.  ``stats`` receives the overflowed and
    flushed counts of the scaled values.
    """
    low_exponent, high_exponent = descaled_exponent_range(fmt)
    if fmt.dtype != np.float32 or not low_exponent <= exponent <= high_exponent:
        raise ValueError(f"round_scaled needs a format of float32 values and exponent in "
                         f"{low_exponent}..{high_exponent}; got {fmt} and exponent={exponent}")
    unsigned, work, man, bias, field_mask = _LAYOUT[x.dtype]
    bits = np.ascontiguousarray(x).view(unsigned)
    negative = (bits >> unsigned(8 * x.itemsize - 1)).astype(bool)
    field = ((bits >> unsigned(man)) & unsigned(field_mask)).astype(work)
    fraction = (bits & unsigned((1 << man) - 1)).astype(work)
    special = field == field_mask
    significand = np.where(field > 0, fraction | work(1 << man), fraction)
    low = np.maximum(field, 1) - (bias + man) + exponent                  # x * 2**exponent = significand * 2**low
    with np.errstate(divide="ignore"):
        top = np.frexp(x)[1].astype(work) - 1 + exponent                  # floor(log2 |x * 2**exponent|)
    ulp = np.maximum(top, fmt.emin) - fmt.man_bits
    # at man + 2 dropped bits the significand is below half an ulp: every larger shift rounds alike
    drop = np.minimum(ulp - low, man + 2)
    doubled = significand << 1                                            # one more bit: drop + 1 >= 1
    kept = doubled >> (drop + 1)
    rest = doubled & ((work(2) << drop) - 1)
    half = work(1) << drop
    up = _rounds_up(rounding, kept, rest, half, negative)
    with np.errstate(over="ignore"):                                        # a carry past 2**127: overflowed
        value = np.ldexp((kept + up).astype(np.float32 if man == 23 else np.float64), ulp - exponent)
    magnitude = np.where(special, np.nan, value)
    beyond = (magnitude > fmt.max * 2.0**-exponent) | (special & (fraction == 0))
    value = np.where(beyond, np.float32(fmt.max * 2.0**-exponent), value)
    if not fmt.subnormals:
        value = np.where(value < fmt.min_normal * 2.0**-exponent, 0, value)
    nan = special & (fraction != 0)
    if not fmt.has_nan and nan.any():
        raise ValueError(f"x contains {int(nan.sum())} NaN value(s) and {fmt} has no NaN encoding "
                         "(IEEE-style formats with man_bits=0 have none)")
    if stats is not None:
        flushed = (value == 0) & (significand != 0) & ~special
        stats.add(int(np.count_nonzero(beyond)), int(np.count_nonzero(flushed)), x.size)
    value = np.where(nan, np.nan, value).astype(np.float32)
    return np.where(negative, -value, value)


def _rounds_up(rounding: Rounding, kept, rest, half, negative):
    """1 where ``rounding`` turns the kept magnitude into kept + 1 (``rest``: the dropped bits against
    ``half``, half an ulp), else 0."""
    work = kept.dtype.type
    if rounding is Rounding.HALF_EVEN:
        up = (rest > half) | ((rest == half) & ((kept & 1) == 1))
    elif rounding is Rounding.HALF_AWAY:
        up = rest >= half
    elif rounding is Rounding.TO_ZERO:
        return work(0)
    elif rounding is Rounding.FLOOR:
        up = (rest != 0) & negative
    elif rounding is Rounding.CEIL:
        up = (rest != 0) & ~negative
    else:
        raise ValueError(f"round_scaled takes the deterministic float roundings, not {rounding.value!r}")
    return up.astype(kept.dtype)
