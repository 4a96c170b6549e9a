"""quantize/dequantize: exact rational rounding of floats at any magnitude."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fixedpoint as fx
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from fixedpoint.kernels.reference.quantize import quantize_float
from exact_oracle import fit, round_fraction

MODES = [m.value for m in DETERMINISTIC_ROUNDINGS]


def _expected(x: float, fmt: fx.QFormat, mode: str, overflow: str = "saturate"):
    value = Fraction(x) * Fraction(2) ** fmt.frac
    y = round_fraction(value, mode)  # from an unbounded source: bits are always dropped
    return fit(y, fmt.bits, fmt.signed, overflow)


formats = st.builds(
    fx.QFormat,
    bits=st.integers(2, 32),
    frac=st.integers(-40, 80),
    signed=st.booleans(),
).filter(lambda f: f.bits >= 2 or not f.signed)


@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8),
    fmt=formats,
    mode=st.sampled_from(MODES),
    overflow=st.sampled_from(["saturate", "wrap", "saturate_symmetric"]),
)
def test_reference_quantize_is_the_exact_rational_rounding(xs, fmt, mode, overflow):
    raw, count = quantize_float(np.array(xs), fmt.frac, fmt.bits, fmt.signed, mode, overflow)
    expected = [_expected(x, fmt, mode, overflow) for x in xs]
    assert raw.dtype == fmt.dtype
    assert raw.tolist() == [v for v, _ in expected]
    assert count == sum(over for _, over in expected)


@settings(max_examples=150, deadline=None)
@given(
    xs=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=8),
    fmt=st.builds(fx.QFormat, bits=st.sampled_from([4, 8, 12, 16]), frac=st.integers(-4, 20)),
    mode=st.sampled_from(MODES),
)
def test_public_quantize_of_float32_is_exact(xs, fmt, mode):
    raw = fx.quantize(np.array(xs, dtype=np.float32), fmt, mode)
    assert raw.tolist() == [_expected(float(np.float32(x)), fmt, mode)[0] for x in xs]


EDGE_VALUES = np.array(
    [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5,
     np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0), 1.7976931348623157e308, -1.7976931348623157e308,
     2.0**62, -(2.0**63), 2.0**-1074 * 3, 127.5, -128.5, 127.49999999999999]
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("frac", [-60, -1, 0, 1, 7, 30, 1074, 1100])
def test_extreme_magnitudes(mode, frac):
    fmt = fx.QFormat(8, frac) if abs(frac) < 1000 else fx.QFormat(32, frac)
    raw = fx.quantize(EDGE_VALUES, fmt, mode)
    assert raw.tolist() == [_expected(float(x), fmt, mode)[0] for x in EDGE_VALUES]


INTEGER_EDGES = [np.array([2**63 - 1, -(2**63), 1, -1, 0], dtype=np.int64), np.array([2**64 - 1, 1], dtype=np.uint64)]


@pytest.mark.parametrize("overflow", ["saturate", "wrap", "saturate_symmetric"])
@pytest.mark.parametrize("mode", MODES)
def test_any_frac_is_exact_at_and_beyond_the_cheap_range(mode, overflow):
    """fracs near +-2048 against the oracle; huge ones against the oracle at +-2100 (the same exact results:
    every nonzero input is a multiple of 2**900 or below 2**-900 in magnitude at both)."""
    for frac, oracle_frac in [(f, f) for f in (-2100, -2049, -2048, -2047, 2047, 2048, 2049, 2100)] + [
            (10**9, 2100), (10**20, 2100), (-(10**9), -2100), (-(10**20), -2100)]:
        fmt, oracle_fmt = fx.QFormat(16, frac), fx.QFormat(16, oracle_frac)
        for x in [EDGE_VALUES, *INTEGER_EDGES]:
            stats = fx.OverflowStats()
            raw = fx.quantize(x, fmt, mode, overflow, stats=stats)
            expected = [_expected(int(v) if x.dtype.kind in "iu" else float(v), oracle_fmt, mode, overflow)
                        for v in x]
            assert raw.tolist() == [v for v, _ in expected], frac
            assert stats.overflowed == sum(over for _, over in expected)


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
def test_stochastic_quantize_at_a_huge_frac_draws_like_frac_2100(mode):
    x = np.concatenate([EDGE_VALUES] * 20)
    for frac in (-(10**20), 10**20):
        expected = fx.quantize(x, fx.QFormat(8, 2100 if frac > 0 else -2100), mode, seed=5)
        assert fx.quantize(x, fx.QFormat(8, frac), mode, seed=5).tolist() == expected.tolist()


def test_dequantize_at_any_frac_is_the_nearest_float():
    raw = np.array([127, -128, 1, 0], dtype=np.int8)
    for frac in (1074, 1080, 2048, 10**20):
        expected = [math.ldexp(q, -frac) for q in raw.tolist()]   # exact rounding, 0.0 beyond the range
        assert fx.dequantize(raw, fx.QFormat(8, frac)).tolist() == expected
    with np.errstate(over="ignore"):
        for frac in (-1030, -2049, -(10**20)):
            assert fx.dequantize(raw, fx.QFormat(8, frac)).tolist() == [math.inf, -math.inf, math.inf, 0.0]
    huge = fx.FixedArray(raw, fx.QFormat(8, 10**20))
    assert huge.to_float().tolist() == [0.0] * 4 and repr(huge).startswith("FixedArray(Q-")


def test_integer_inputs_are_exact():
    x = np.array([2**62 + 1, -(2**63), 7, -7, 0], dtype=np.int64)
    fmt = fx.QFormat(32, -3)
    assert fx.quantize(x, fmt, "half_even").tolist() == [2**31 - 1, -(2**31), 1, -1, 0]
    assert fx.quantize(x, fmt, "floor", "wrap").tolist() == [
        fit(int(v) >> 3, 32, True, "wrap")[0] for v in x
    ]


def test_nan_raises_and_infinities_follow_the_overflow_mode():
    fmt = fx.QFormat(8, 4)
    with pytest.raises(ValueError, match="2 NaN"):
        fx.quantize(np.array([1.0, np.nan, np.nan]), fmt)
    assert fx.quantize(np.array([np.inf, -np.inf]), fmt).tolist() == [127, -128]
    assert fx.quantize(np.array([np.inf, -np.inf]), fmt, overflow="saturate_symmetric").tolist() == [127, -127]
    for overflow in ("wrap", "error"):
        with pytest.raises(OverflowError, match="infinite"):
            fx.quantize(np.array([np.inf]), fmt, overflow=overflow)


def test_error_mode_reports_count_and_worst_value():
    with pytest.raises(OverflowError, match=r"2 of 4 elements.*worst raw value -1600"):
        fx.quantize(np.array([0.0, 9.0, -100.0, 1.0]), fx.QFormat(8, 4), overflow="error")


def test_stats_count_saturated_and_wrapped_elements():
    stats = fx.OverflowStats()
    x = np.array([0.0, 7.9, 8.0, -8.0, -8.1, 100.0])
    fx.quantize(x, fx.QFormat(8, 4), stats=stats)
    assert (stats.overflowed, stats.total) == (3, 6)
    fx.quantize(x, fx.QFormat(8, 4), overflow="wrap", stats=stats)
    assert (stats.overflowed, stats.total) == (6, 12)
    assert stats.fraction == 0.5


def test_saturate_symmetric_never_produces_the_most_negative_code():
    raw = fx.quantize(np.array([-1.0, -0.999, 0.999]), fx.QFormat(8, 7), overflow="saturate_symmetric")
    assert raw.tolist() == [-127, -127, 127]


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
def test_stochastic_modes_are_reproducible_under_a_seed(mode):
    x = np.linspace(-3, 3, 1001)
    fmt = fx.QFormat(8, 2)
    a = fx.quantize(x, fmt, mode, seed=42)
    b = fx.quantize(x, fmt, mode, seed=np.random.default_rng(42))
    c = fx.quantize(x, fmt, mode, seed=43)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    floor = fx.quantize(x, fmt, "floor")
    assert np.all((a == floor) | (a == floor + 1))
    exact = fx.quantize(np.array([0.25, -0.5, 1.0]), fmt, mode, seed=1)
    assert exact.tolist() == [1, -2, 4]          # representable values never move


def test_stochastic_rounding_is_unbiased_in_expectation():
    # v = x * 4 has fractional part 0.3, so E[round(v)] = v.  With n = 200_000 draws the
    # mean of the Bernoulli(0.3) round-ups has std sqrt(0.21 / n) = 0.00102; a 6-sigma bound
    # (0.0062) fails by chance with probability about 2e-9.
    n = 200_000
    x = np.full(n, 1.325)                         # 5.3 LSB at frac = 2
    raw = fx.quantize(x, fx.QFormat(8, 2), "stochastic", seed=7).astype(np.float64)
    assert abs(raw.mean() - 5.3) < 6 * np.sqrt(0.21 / n)
    # stochastic_equal rounds an inexact value up with probability 1/2 (std 0.00112)
    raw = fx.quantize(x, fx.QFormat(8, 2), "stochastic_equal", seed=7).astype(np.float64)
    assert abs(raw.mean() - 5.5) < 6 * np.sqrt(0.25 / n)


def test_stochastic_probability_is_exact_for_tiny_remainders():
    # 1 + 2**-40 LSB: rounds up with probability 2**-40, so never in 1000 draws ...
    fmt = fx.QFormat(16, 0)
    assert fx.quantize(np.full(1000, 1 + 2.0**-40), fmt, "stochastic", seed=0).tolist() == [1] * 1000
    # ... and 2 - 2**-40 essentially always rounds up.
    assert fx.quantize(np.full(1000, 2 - 2.0**-40), fmt, "stochastic", seed=0).tolist() == [2] * 1000


def test_dequantize_is_exact_and_checks_its_input():
    fmt = fx.QFormat(16, 12)
    raw = np.arange(fmt.qmin, fmt.qmax + 1, dtype=np.int16)
    values = fx.dequantize(raw, fmt)
    assert values.dtype == np.float64
    assert np.array_equal(fx.quantize(values, fmt), raw)
    with pytest.raises(TypeError, match="raw"):
        fx.dequantize(np.array([0.5]), fmt)


@pytest.mark.parametrize("bad", [np.array(["a"]), np.array([1 + 2j]), np.array([object()], dtype=object)])
def test_non_numeric_input_raises_type_error(bad):
    with pytest.raises(TypeError, match="x must be a real"):
        fx.quantize(bad, fx.QFormat(8, 4))


def test_seed_type_is_checked():
    with pytest.raises(TypeError, match="seed"):
        fx.quantize(np.zeros(2), fx.QFormat(8, 4), "stochastic", seed="abc")
