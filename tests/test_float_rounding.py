"""The bit-pattern rounding of float-format models against quantize_float, the reference, bit for bit."""
import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint.float_rounding import DETERMINISTIC, descaled_exponent_range, round_scaled
from fixedpoint.floatformat import FloatFormat

from float_oracle import assert_same_values

FORMATS = [fx.BF16, fx.FP16, fx.FP8_E4M3, fx.FP8_E5M2, FloatFormat(4, 3, subnormals=False), FloatFormat(8, 23),
           FloatFormat(5, 0), FloatFormat(3, 2, bias=-4, finite_only=True), FloatFormat(8, 3, bias=130)]


def _inputs(rng):
    all16 = np.arange(1 << 16, dtype=np.uint32)
    patterns = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    x32 = np.concatenate([(all16 << 16), all16.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32),
                          patterns, (all16 << 16) | np.uint32(1 << 15), (all16 << 16) | np.uint32(1 << 20)])
    x64 = np.concatenate([rng.standard_normal(50_000) * np.exp2(rng.integers(-140, 120, 50_000)),
                          rng.integers(0, 2**64, 20_000, dtype=np.uint64).view(np.float64)])
    return x32.view(np.float32), x64



@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_round_scaled_is_quantize_float_bit_for_bit(fmt):
    rng = np.random.default_rng(fmt.bits + fmt.man_bits)
    x32, x64 = _inputs(rng)
    low, high = descaled_exponent_range(fmt)
    for k in sorted({0, max(low, -5), min(high, 7), low, high}):
        for x in (x32, x64 if k == 0 else x64[:50_000]):
            x = x if fmt.has_nan else x[~np.isnan(x)]
            for mode in DETERMINISTIC:
                stats, expected_stats = fx.FloatStats(), fx.FloatStats()
                got = round_scaled(x, fmt, mode, k, stats=stats)
                with np.errstate(over="ignore"):
                    expected = _reference_counted(x, fmt, mode, k, expected_stats)
                assert got.dtype == np.float32
                assert_same_values(got, expected)
                assert stats == expected_stats, (fmt, mode, k, x.dtype)


def _reference_counted(x, fmt, mode, k, stats):
    with np.errstate(invalid="ignore"):
        scaled = np.ldexp(x.astype(np.float64), k)
    values = fx.quantize_float(scaled, fmt, rounding=mode, stats=stats)
    return np.ldexp(values.astype(np.float64), -k).astype(np.float32)


def test_round_scaled_refuses_what_it_cannot_do_exactly():
    with pytest.raises(ValueError, match="exponent in 0..16"):
        round_scaled(np.ones(2, np.float32), fx.BF16, fx.Rounding.HALF_EVEN, -1)
    with pytest.raises(ValueError, match="format of float32 values"):
        round_scaled(np.ones(2, np.float32), FloatFormat(11, 52), fx.Rounding.HALF_EVEN)
    with pytest.raises(ValueError, match="1 NaN value.* E5M0 has no NaN"):
        round_scaled(np.array([np.nan, 1.0], np.float32), FloatFormat(5, 0), fx.Rounding.HALF_EVEN)
    with pytest.raises(ValueError, match="deterministic float roundings"):
        round_scaled(np.ones(2, np.float32), fx.BF16, fx.Rounding.STOCHASTIC)
