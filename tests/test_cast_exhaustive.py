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


# Cast shifts at and beyond the bounds that keep them cheap (src.bits + 64 dropped bits, dst.bits added
# bits).  A huge shift is checked against the oracle at a moderate shift past the same bound: the exact
# results agree (|value| < 2**-62 once every bit is dropped; a nonzero value is 0 mod 2**8 and out of range
# once 8 or more bits are added).
BOUND_SOURCES = {"6-bit": (fx.QFormat(6, 0), np.arange(-32, 32, dtype=np.int8)),
                 "128-bit": (fx.QFormat(128, 0, wide=True),
                             np.array([-(2**127), 2**127 - 1, -1, 0, 1, 3 << 90, -(5 << 70)], dtype=object))}
HUGE_SHIFTS = (10**9, 10**20)


def _bound_cases(src_bits, dst_bits=8):
    right = [(s, s) for s in [src_bits + d for d in (61, 62, 63, 64, 65)] + [300]]
    left = [(-k, -k) for k in (dst_bits - 1, dst_bits, dst_bits + 1, 200)]
    return right + left + [(s, 300) for s in HUGE_SHIFTS] + [(-k, -200) for k in HUGE_SHIFTS]


@pytest.mark.parametrize("source", BOUND_SOURCES)
@pytest.mark.parametrize("overflow", [o.value for o in Overflow])
@pytest.mark.parametrize("mode", [m.value for m in DETERMINISTIC_ROUNDINGS])
def test_cast_shifts_at_and_beyond_their_bounds(mode, overflow, source):
    src, raw = BOUND_SOURCES[source]
    x = fx.FixedArray(raw, src)
    for shift, oracle_shift in _bound_cases(src.bits):
        dst = fx.QFormat(8, src.frac - shift)
        expected, overflowed = _expected(raw, src, fx.QFormat(8, src.frac - oracle_shift), mode, overflow)
        if overflow == "error" and overflowed:
            with pytest.raises(OverflowError, match=f"{overflowed} of {raw.size} elements .* worst raw value"):
                x.cast(dst, mode, overflow)
            continue
        stats = fx.OverflowStats()
        y = x.cast(dst, mode, overflow, stats=stats)
        assert y.raw.tolist() == expected and stats.overflowed == overflowed, shift


@pytest.mark.parametrize("source", BOUND_SOURCES)
@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
def test_stochastic_cast_beyond_the_bound_draws_like_an_exact_shift(mode, source):
    src, raw = BOUND_SOURCES[source]
    x = fx.FixedArray(np.concatenate([raw] * 50), src)
    exact = x.cast(fx.QFormat(8, src.frac - (src.bits + 62)), mode, seed=3).raw   # below the bound
    for shift in (src.bits + 63, src.bits + 64, src.bits + 65, 500, *HUGE_SHIFTS):
        assert x.cast(fx.QFormat(8, src.frac - shift), mode, seed=3).raw.tolist() == exact.tolist(), shift
