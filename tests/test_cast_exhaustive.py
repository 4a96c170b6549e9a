"""Every raw value of small formats, cast in every mode and overflow mode, against Fractions."""
from fractions import Fraction

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS, Overflow
from exact_oracle import fit, round_fraction

SRC = fx.QFormat(12, 8)                      # all 4096 raw values
ALL_RAW = np.arange(SRC.qmin, SRC.qmax + 1, dtype=np.int16)
TARGETS = [fx.QFormat(6, 2), fx.QFormat(6, 4), fx.QFormat(5, 3, signed=False), fx.QFormat(16, 10)]


def _expected(raw, src, dst, mode, overflow):
    shift = src.frac - dst.frac
    values, overflowed = [], 0
    for q in raw.tolist():
        y = round_fraction(Fraction(q, 2**shift) if shift > 0 else Fraction(q * 2**-shift), mode, shift > 0)
        v, over = fit(y, dst.bits, dst.signed, overflow)
        values.append(v)
        overflowed += over
    return values, overflowed


@pytest.mark.parametrize("dst", TARGETS, ids=str)
@pytest.mark.parametrize("overflow", [o.value for o in Overflow])
@pytest.mark.parametrize("mode", [m.value for m in DETERMINISTIC_ROUNDINGS])
def test_cast_12_bit_exhaustive(mode, overflow, dst):
    expected, overflowed = _expected(ALL_RAW, SRC, dst, mode, overflow)
    x = fx.FixedArray(ALL_RAW, SRC)
    stats = fx.OverflowStats()
    if overflow == "error" and overflowed:
        with pytest.raises(OverflowError, match=f"{overflowed} of {ALL_RAW.size} elements"):
            x.cast(dst, mode, overflow)
        return
    y = x.cast(dst, mode, overflow, stats=stats)
    assert y.fmt == dst and y.raw.dtype == dst.dtype
    assert y.raw.tolist() == expected
    assert (stats.overflowed, stats.total) == (overflowed, ALL_RAW.size)


@pytest.mark.parametrize("mode", [m.value for m in DETERMINISTIC_ROUNDINGS])
def test_cast_unsigned_source_every_value(mode):
    src = fx.QFormat(10, 5, signed=False)
    raw = np.arange(src.qmin, src.qmax + 1, dtype=np.uint16)
    dst = fx.QFormat(8, 2)
    expected, _ = _expected(raw, src, dst, mode, "saturate")
    assert fx.FixedArray(raw, src).cast(dst, mode).raw.tolist() == expected
