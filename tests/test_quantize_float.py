"""quantize_float, to_bits and from_bits against independent oracles.

- exhaustive: every float16 and every bfloat16 bit pattern through the 8-bit formats, in every
  deterministic mode and overflow mode, against the table oracle of ``float_oracle``;
- exact: random float64 inputs (every exponent, float64 subnormals, values at and around the format's
  limits, exact ties) against the ``fractions.Fraction`` oracle, for 8- to 64-bit formats;
- ml_dtypes (and numpy's float16): their casts round half to even from float32 and float16 inputs, so
  they must agree bit for bit where they define the same overflow.  ml_dtypes casts float64 through
  float32 (a double rounding: 1 + 2**-8 + 2**-40 becomes bfloat16 1.0, not 1 + 2**-7), so float64
  inputs are compared with the Fraction oracle only.
"""
import dataclasses

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint.floatformat import FloatFormat

from float_oracle import assert_same_values, fraction_round, table_round

ml_dtypes = pytest.importorskip("ml_dtypes")
# the test's own casts of NaN patterns and of values beyond a dtype's range warn; the library's must not
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:test_quantize_float",
                                        "ignore::RuntimeWarning:float_oracle")

DIRECTED = ("half_even", "half_away", "to_zero", "floor", "ceil")
ALL_FLOAT16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
ALL_BFLOAT16 = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)   # bf16 patterns as float32
EIGHT_BIT = [fx.FP8_E4M3, fx.FP8_E5M2, FloatFormat(4, 3), FloatFormat(3, 4), FloatFormat(4, 3, subnormals=False),
             FloatFormat(5, 2, bias=11, finite_only=True), FloatFormat(2, 5, bias=-1), FloatFormat(6, 0, bias=40)]


def _overflows(fmt):
    return ("saturate", "inf") if fmt.has_inf else ("saturate",)


@pytest.mark.parametrize("fmt", EIGHT_BIT, ids=str)
@pytest.mark.parametrize("inputs", [ALL_FLOAT16, ALL_BFLOAT16], ids=["float16", "bfloat16"])
def test_every_float16_and_bfloat16_input_rounds_as_the_table_oracle(fmt, inputs):
    x = inputs if fmt.has_nan else inputs[~np.isnan(inputs)]
    for mode in DIRECTED:
        for overflow in _overflows(fmt):
            got = fx.quantize_float(x, fmt, rounding=mode, overflow=overflow)
            assert got.dtype == np.float32
            assert_same_values(got, table_round(x, fmt, mode, overflow))


def _random_float64(fmt, rng, n=600):
    """Random bit patterns (every exponent), float64 subnormals, log-uniform values over the format's range,
    exact ties and their neighbours, the limits, and signed zeros."""
    patterns = rng.integers(0, 2**63, n, dtype=np.int64).view(np.float64) * rng.choice([-1.0, 1.0], n)
    subnormal64 = rng.integers(1, 2**52, n // 6, dtype=np.int64).view(np.float64)
    low, high = np.log2(fmt.min_subnormal) - 3, np.log2(fmt.max) + 2
    spread = np.exp2(rng.uniform(low, high, n)) * rng.choice([-1.0, 1.0], n)
    # ties: (odd integer) / 2 ulps of a random binade, at the binade's ulp (subnormal binade included)
    t = rng.integers(fmt.emin - 1, fmt.emax + 1, n // 2)
    ulp = np.exp2(np.maximum(t, fmt.emin) - fmt.man_bits)
    steps = rng.integers(1 << fmt.man_bits, 1 << (fmt.man_bits + 1), n // 2).astype(np.float64)
    ties = (steps + 0.5) * ulp
    ties = np.concatenate([ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf)])
    limits = np.array([fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.min_subnormal / 2, fmt.max * (1 + fmt.eps / 2),
                       fmt.max * (1 + fmt.eps / 4), np.finfo(np.float64).max, np.finfo(np.float64).tiny, 0.0, -0.0,
                       5e-324])
    values = np.concatenate([patterns, subnormal64, spread, ties, -ties, limits, -limits])
    return values[np.isfinite(values)]


EXACT_FORMATS = [fx.BF16, fx.FP16, fx.FP8_E4M3, fx.FP8_E5M2, FloatFormat(8, 23), FloatFormat(11, 52),
                 FloatFormat(11, 40, subnormals=False), FloatFormat(3, 2, bias=-5, finite_only=True),
                 FloatFormat(8, 7, subnormals=False), FloatFormat(10, 0), FloatFormat(6, 30, bias=100)]


@pytest.mark.parametrize("fmt", EXACT_FORMATS, ids=str)
def test_random_float64_inputs_round_as_the_fraction_oracle(fmt):
    rng = np.random.default_rng(fmt.bits * 131 + fmt.man_bits)
    x = _random_float64(fmt, rng)
    for mode in DIRECTED:
        for overflow in _overflows(fmt):
            got = fx.quantize_float(x, fmt, rounding=mode, overflow=overflow)
            expected = [fraction_round(float(v), fmt, mode, overflow) for v in x]
            assert_same_values(got, expected)


def test_integer_inputs_round_exactly_at_every_width():
    values = [0, 1, -3, 255, 2**24 + 1, -(2**53 + 1), 2**62 + 2**39 + 1, -(2**63), 2**63 - 1]
    for fmt in (fx.BF16, fx.FP16, FloatFormat(11, 52), FloatFormat(8, 23)):
        for mode in DIRECTED:
            got = fx.quantize_float(np.array(values, dtype=np.int64), fmt, rounding=mode)
            assert_same_values(got, [fraction_round(v, fmt, mode) for v in values])
    top = np.array([2**64 - 1, 2**63 + 2**40 + 1], dtype=np.uint64)
    assert_same_values(fx.quantize_float(top, FloatFormat(11, 52), rounding="floor"),
                       [fraction_round(int(v), FloatFormat(11, 52), "floor") for v in top])


def test_float64_itself_and_float32_are_the_identity_and_numpys_cast():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2**64, 20000, dtype=np.uint64).view(np.float64)
    assert_same_values(fx.quantize_float(x, FloatFormat(11, 52)), x)
    with np.errstate(over="ignore"):
        assert_same_values(fx.quantize_float(x, FloatFormat(8, 23), overflow="inf"), x.astype(np.float32))
    x16 = rng.standard_normal(20000) * 3e4
    assert_same_values(fx.quantize_float(x16, fx.FP16, overflow="inf"), x16.astype(np.float16))


def _float32_cases(rng):
    """Every bf16 pattern, random float32 bit patterns, and float32 ties of the 8- and 16-bit formats."""
    patterns = rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    ties = np.concatenate([(ALL_BFLOAT16.view(np.uint32) | np.uint32(bit)).view(np.float32)
                           for bit in (1 << 15, 1 << 19, 1 << 20, 1 << 12, 1 << 13)])
    return np.concatenate([ALL_BFLOAT16, patterns, ties, ALL_FLOAT16.astype(np.float32)])


@pytest.mark.parametrize("fmt, dtype", [(fx.BF16, "bfloat16"), (fx.FP8_E5M2, "float8_e5m2"),
                                        (FloatFormat(4, 3), "float8_e4m3"), (FloatFormat(3, 4), "float8_e3m4"),
                                        (fx.FP16, np.float16)], ids=str)
def test_formats_with_infinities_match_ml_dtypes_and_numpy_casts(fmt, dtype):
    dtype = getattr(ml_dtypes, dtype) if isinstance(dtype, str) else dtype
    x = _float32_cases(np.random.default_rng(1))
    with np.errstate(over="ignore"):
        expected = x.astype(dtype).astype(np.float32)
    assert_same_values(fx.quantize_float(x, fmt, overflow="inf"), expected)
    x16 = ALL_FLOAT16 if fmt != fx.FP16 else ALL_FLOAT16.astype(np.float32)
    assert_same_values(fx.quantize_float(x16, fmt, overflow="inf"), x16.astype(dtype).astype(np.float32))


def test_e4m3fn_matches_ml_dtypes_where_it_does_not_overflow_and_saturates_where_it_gives_nan():
    x = np.concatenate([_float32_cases(np.random.default_rng(2)), ALL_FLOAT16.astype(np.float32)])
    expected = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    got = fx.quantize_float(x, fx.FP8_E4M3)
    overflow = np.isnan(expected) & ~np.isnan(x)
    assert overflow.any()
    assert_same_values(got[~overflow], expected[~overflow])
    assert np.all(np.abs(x[overflow]) > 464) and np.all(np.abs(got[overflow]) == 448)
    assert_same_values(np.sign(got[overflow]), np.sign(x[overflow]))


def test_overflow_boundaries_and_ieee_directions():
    e4m3, e5m2 = fx.FP8_E4M3, fx.FP8_E5M2
    x = np.array([464.0, 464.0001, 479.9, -1e30, np.inf, -np.inf])
    assert fx.quantize_float(x, e4m3).tolist() == [448, 448, 448, -448, 448, -448]
    x = np.array([61440.0, 61439.9, 1e9, -1e9])    # 57344 + half an ulp ties to even: inf (max is odd)
    assert fx.quantize_float(x, e5m2, overflow="inf").tolist() == [np.inf, 57344, np.inf, -np.inf]
    assert fx.quantize_float(x, e5m2, rounding="to_zero", overflow="inf").tolist() == [57344, 57344, 57344, -57344]
    assert fx.quantize_float(x, e5m2, rounding="floor", overflow="inf").tolist() == [57344, 57344, 57344, -np.inf]
    assert fx.quantize_float(x, e5m2, rounding="ceil", overflow="inf").tolist() == [np.inf, np.inf, np.inf, -57344]
    assert fx.quantize_float(x, e5m2).tolist() == [57344, 57344, 57344, -57344]


def test_subnormals_honoured_or_flushed_after_rounding():
    ftz = dataclasses.replace(fx.FP8_E4M3, subnormals=False)
    tiny = np.array([2.0**-9, 2.0**-10, 2.0**-10 * 1.01, 0.99 * 2.0**-6, 0.999 * 2.0**-6, -3 * 2.0**-9])
    assert fx.quantize_float(tiny, fx.FP8_E4M3).tolist() == [2**-9, 0, 2**-9, 2**-6, 2**-6, -3 * 2**-9]
    stats = fx.FloatStats()
    got = fx.quantize_float(tiny, ftz, stats=stats)
    assert got.tolist() == [0, 0, 0, 2**-6, 2**-6, 0] and np.signbit(got[-1])
    assert (stats.overflowed, stats.flushed, stats.total) == (0, 4, 6)


def test_signed_zero_nan_and_infinities():
    x = np.array([-0.0, 0.0, -1e-30, 1e-30, np.nan, -np.nan, np.inf])
    got = fx.quantize_float(x, fx.BF16, overflow="inf")
    assert np.signbit(got).tolist()[:4] == [True, False, True, False]
    assert np.isnan(got[4:6]).all() and got[6] == np.inf
    stats = fx.FloatStats()
    got = fx.quantize_float(x, fx.FP8_E5M2, rounding="ceil", stats=stats)
    assert got[3] == 2**-16 and got[2] == 0 and np.signbit(got[2]) and got[6] == 57344
    assert (stats.overflowed, stats.flushed, stats.total) == (1, 1, 7)


def test_counts_accumulate_over_calls():
    stats = fx.FloatStats()
    for _ in range(2):
        fx.quantize_float(np.array([1e6, -1e6, 1e-12, 1.0, np.inf]), fx.FP8_E5M2, stats=stats)
    assert (stats.overflowed, stats.flushed, stats.total) == (6, 2, 10)
    fx.quantize_float(np.array([1e6, np.inf]), fx.FP8_E5M2, overflow="inf", stats=stats)
    assert stats.overflowed == 7
    stats.reset()
    assert (stats.overflowed, stats.flushed, stats.total) == (0, 0, 0)


def test_representable_values_are_unchanged_in_every_mode():
    values = fx.from_bits(np.arange(256, dtype=np.uint8), fx.FP8_E4M3)
    values = values[~np.isnan(values)]
    for mode in DIRECTED + ("stochastic",):
        assert_same_values(fx.quantize_float(values, fx.FP8_E4M3, rounding=mode, seed=0), values)


def test_stochastic_rounding_picks_a_neighbour_with_the_right_probability_and_is_seeded():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000) * 3
    a = fx.quantize_float(x, fx.FP8_E4M3, rounding="stochastic", seed=7)
    assert_same_values(a, fx.quantize_float(x, fx.FP8_E4M3, rounding="stochastic", seed=7))
    assert not np.array_equal(a, fx.quantize_float(x, fx.FP8_E4M3, rounding="stochastic", seed=8))
    down = fx.quantize_float(x, fx.FP8_E4M3, rounding="floor")
    up = fx.quantize_float(x, fx.FP8_E4M3, rounding="ceil")
    assert np.all((a == down) | (a == up))
    value = np.full(200_000, 1 + 0.3 * 0.125)         # 0.3 of an ulp above 1 in E4M3
    share = np.mean(fx.quantize_float(value, fx.FP8_E4M3, rounding="stochastic", seed=1) == 1.125)
    assert abs(share - 0.3) < 5 * np.sqrt(0.3 * 0.7 / value.size)
    generator = np.random.default_rng(11)
    b = fx.quantize_float(x, fx.BF16, rounding="stochastic", seed=generator)
    assert_same_values(b, fx.quantize_float(x, fx.BF16, rounding="stochastic", seed=np.random.default_rng(11)))


def test_result_dtype_shape_and_byte_order():
    assert fx.quantize_float(np.float64(0.3), fx.BF16).shape == ()
    assert fx.quantize_float(np.ones((2, 3)), "E11M52").dtype == np.float64
    assert fx.quantize_float(np.ones(2), FloatFormat(8, 7, bias=100)).dtype == np.float64
    big_endian = np.array([0.3, 1e6], dtype=">f8")
    assert_same_values(fx.quantize_float(big_endian, fx.FP16), fx.quantize_float(big_endian.astype("<f8"), fx.FP16))
    assert fx.quantize_float([1, 2.5], "fp8e4m3").tolist() == [1.0, 2.5]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(rounding="jam"), ValueError, "rounding='jam' is not a float-format rounding; accepted: 'half_even'"),
    (dict(rounding="nearest"), ValueError, "rounding='nearest' is not a known Rounding mode"),
    (dict(overflow="wrap"), ValueError, "overflow='wrap' is not a float-format overflow mode; accepted: 'saturate', "
                                        "'inf'"),
    (dict(fmt="E4M3FN", overflow="inf"), ValueError, "overflow='inf' needs a format with infinities; E4M3FN has "
                                                     "none"),
    (dict(fmt="E4M3X"), ValueError, "fmt='E4M3X' is not a float format"),
    (dict(fmt="E0M3"), ValueError, "exp_bits=0 is out of range"),
    (dict(fmt=8), TypeError, "fmt must be a FloatFormat or its text"),
    (dict(x=np.array([1 + 2j])), TypeError, "x must be a real float or integer array"),
    (dict(x=np.array([1.0], dtype=np.longdouble)), TypeError, "x must be a float16, float32, float64 or integer"),
    (dict(x=np.array([np.nan]), fmt="E5M0"), ValueError, "1 NaN value.* E5M0 has no NaN encoding"),
    (dict(rounding="stochastic", seed="x"), TypeError, "seed must be an int"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    arguments = dict(x=np.array([1.0]), fmt=fx.BF16) | kwargs
    if np.dtype(np.longdouble) == np.float64 and arguments["x"].dtype == np.longdouble:
        pytest.skip("longdouble is float64 here")
    with pytest.raises(error, match=message):
        fx.quantize_float(arguments.pop("x"), arguments.pop("fmt"), **arguments)


@pytest.mark.parametrize("fmt, dtype", [(fx.BF16, "bfloat16"), (fx.FP16, np.float16), (fx.FP8_E4M3, "float8_e4m3fn"),
                                        (fx.FP8_E5M2, "float8_e5m2"), (FloatFormat(4, 3), "float8_e4m3")], ids=str)
def test_bits_decode_as_ml_dtypes_and_encode_back(fmt, dtype):
    dtype = getattr(ml_dtypes, dtype) if isinstance(dtype, str) else dtype
    codes = np.arange(1 << fmt.bits, dtype=fmt.container)
    values = fx.from_bits(codes, fmt)
    assert values.dtype == np.float32
    assert_same_values(values, codes.view(dtype).astype(np.float32))
    back = fx.to_bits(values, fmt)
    assert back.dtype == fmt.container
    canonical = ~np.isnan(values)
    np.testing.assert_array_equal(back[canonical], codes[canonical])
    assert_same_values(fx.from_bits(back, fmt), values)


def test_bits_of_float32_and_float64_are_their_own_bit_patterns():
    rng = np.random.default_rng(9)
    x64 = rng.integers(0, 2**64, 5000, dtype=np.uint64).view(np.float64)
    x64 = np.concatenate([x64[~np.isnan(x64)], [0.0, -0.0, np.inf, -np.inf, 5e-324]])
    np.testing.assert_array_equal(fx.to_bits(x64, FloatFormat(11, 52)), x64.view(np.uint64))
    assert_same_values(fx.from_bits(x64.view(np.uint64), "E11M52"), x64)
    x32 = x64.astype(np.float32)
    np.testing.assert_array_equal(fx.to_bits(x32, FloatFormat(8, 23)), x32.view(np.uint32))
    assert fx.to_bits(np.array([np.nan, -np.nan]), fx.FP16).tolist() == [0x7E00, 0xFE00]


def test_bits_of_formats_without_subnormals_and_with_other_biases():
    ftz = FloatFormat(4, 3, subnormals=False)
    assert fx.from_bits(np.array([1, 0x81, 8]), ftz).tolist() == [0.0, -0.0, 2.0**-6]
    with pytest.raises(ValueError, match="not values of E4M3FTZ"):
        fx.to_bits(np.array([2.0**-8]), ftz)
    biased = FloatFormat(5, 2, bias=11, finite_only=True)
    codes = np.arange(256, dtype=np.uint8)
    values = fx.from_bits(codes, biased)
    assert_same_values(values[np.isfinite(values)], table_round(values[np.isfinite(values)], biased, "half_even"))
    assert biased.max == 2.0**20 * 1.5 and np.isnan(values[127]) and np.isnan(values[255])


@pytest.mark.parametrize("call, error, message", [
    (lambda: fx.to_bits(np.array([0.1]), fx.FP8_E4M3), ValueError, "1 element.* not values of E4M3FN .*0.1"),
    (lambda: fx.to_bits(np.array([np.inf]), fx.FP8_E4M3), ValueError, "not values of E4M3FN"),
    (lambda: fx.to_bits(np.array([np.nan]), "E5M0"), ValueError, "not values of E5M0"),
    (lambda: fx.to_bits(np.array([500.0]), fx.FP8_E4M3), ValueError, "not values of E4M3FN"),
    (lambda: fx.to_bits(np.array([1e-300]), FloatFormat(3, 1, bias=-900)), ValueError, "not values"),
    (lambda: fx.to_bits(np.array([1]), fx.BF16), TypeError, "values must be a float16, float32 or float64 array"),
    (lambda: fx.from_bits(np.array([256]), fx.FP8_E4M3), ValueError, r"bits must hold 8-bit encodings of E4M3FN, "
                                                                       r"in \[0, 255\]"),
    (lambda: fx.from_bits(np.array([-1]), fx.FP8_E4M3), ValueError, "bits must hold 8-bit encodings"),
    (lambda: fx.from_bits(np.array([1.0]), fx.FP8_E4M3), TypeError, "bits must be an integer array"),
])
def test_bad_bits_and_values_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
