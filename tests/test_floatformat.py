"""FloatFormat: the named formats, their limits, the text form and the checks of bad arguments."""
import itertools
import math

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint.floatformat import FloatFormat


def _values(fmt):
    """Every finite non-negative value of an up-to-16-bit format, from the encoding rules of the docstring."""
    top = (1 << fmt.exp_bits) - 1
    values = []
    for field in range(top + 1):
        for mantissa in range(1 << fmt.man_bits):
            if field == top and not fmt.finite_only:
                continue                                    # inf and NaN
            if field == top and mantissa == (1 << fmt.man_bits) - 1:
                continue                                    # the NaN of finite_only formats
            if field == 0:
                if fmt.subnormals or mantissa == 0:
                    values.append(math.ldexp(mantissa, 1 - fmt.bias - fmt.man_bits))
            else:
                values.append(math.ldexp((1 << fmt.man_bits) + mantissa, field - fmt.bias - fmt.man_bits))
    return values


@pytest.mark.parametrize("fmt, text, maximum, min_normal, min_subnormal, eps", [
    (fx.BF16, "E8M7", float(np.finfo(np.float32).max) * (1 - 2**-8) / (1 - 2**-24), 2.0**-126, 2.0**-133, 2.0**-7),
    (fx.FP16, "E5M10", 65504.0, 2.0**-14, 2.0**-24, 2.0**-10),
    (fx.FP8_E4M3, "E4M3FN", 448.0, 2.0**-6, 2.0**-9, 0.125),
    (fx.FP8_E5M2, "E5M2", 57344.0, 2.0**-14, 2.0**-16, 0.25),
])
def test_named_formats(fmt, text, maximum, min_normal, min_subnormal, eps):
    assert str(fmt) == text and fmt.bits == (16 if fmt in (fx.BF16, fx.FP16) else 8)
    assert (fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.eps) == (maximum, min_normal, min_subnormal, eps)
    assert fmt.dtype == np.float32 and fmt.container == (np.uint16 if fmt.bits == 16 else np.uint8)


def test_limits_agree_with_numpy_and_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    pairs = [(fx.BF16, ml_dtypes.bfloat16), (fx.FP16, np.float16), (fx.FP8_E4M3, ml_dtypes.float8_e4m3fn),
             (fx.FP8_E5M2, ml_dtypes.float8_e5m2), (FloatFormat(4, 3), ml_dtypes.float8_e4m3),
             (FloatFormat(3, 4), ml_dtypes.float8_e3m4), (FloatFormat(8, 23), np.float32),
             (FloatFormat(11, 52), np.float64)]
    for fmt, dtype in pairs:
        info = ml_dtypes.finfo(dtype)
        assert (fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.eps) == (
            float(info.max), float(info.tiny), float(info.smallest_subnormal), float(info.eps)), fmt


@pytest.mark.parametrize("fmt", [fx.FP8_E4M3, fx.FP8_E5M2, FloatFormat(3, 2, bias=1), FloatFormat(2, 3, subnormals=False),
                                 FloatFormat(1, 4, finite_only=True), FloatFormat(5, 0), FloatFormat(3, 4, bias=-2)])
def test_limits_are_those_of_the_enumerated_values(fmt):
    values = _values(fmt)
    positive = [v for v in values if v > 0]
    assert fmt.max == max(values) and fmt.min_subnormal == min(positive)
    assert fmt.min_normal == math.ldexp(1.0, 1 - fmt.bias) and fmt.emin == 1 - fmt.bias
    assert fmt.max == math.ldexp(1.0, fmt.emax) * (max(values) / math.ldexp(1.0, fmt.emax))
    assert math.frexp(fmt.max)[1] - 1 == fmt.emax
    assert fmt.has_nan == (fmt.finite_only or fmt.man_bits > 0) and fmt.has_inf == (not fmt.finite_only)


def _all_formats():
    for exp_bits, man_bits in itertools.product(range(1, 12), range(0, 53)):
        for finite_only, subnormals in itertools.product((False, True), (True, False)):
            if 1 + exp_bits + man_bits > 64 or (exp_bits == 1 and not finite_only) or (
                    exp_bits == 1 and man_bits == 0):
                continue
            default = (1 << (exp_bits - 1)) - 1
            for bias in (None, default - 3, default + 2, -1):
                try:
                    yield FloatFormat(exp_bits, man_bits, bias=bias, subnormals=subnormals, finite_only=finite_only)
                except ValueError as exc:
                    assert "outside float64" in str(exc)


def test_text_round_trips_for_every_format():
    count = 0
    for fmt in _all_formats():
        text = str(fmt)
        assert FloatFormat.parse(text) == fmt and FloatFormat.parse(text.lower()) == fmt, text
        assert ("FN" in text) == fmt.finite_only and ("FTZ" in text) == (not fmt.subnormals)
        assert ("B" in text) == (fmt.bias != fmt.default_bias)
        count += 1
    assert count > 4000


def test_text_examples_and_precision_names():
    assert str(FloatFormat(4, 3, bias=11)) == "E4M3B11" and str(FloatFormat(5, 2, bias=-3)) == "E5M2B-3"
    assert str(FloatFormat(8, 7, subnormals=False)) == "E8M7FTZ"
    assert str(FloatFormat(3, 2, bias=5, finite_only=True, subnormals=False)) == "E3M2B5FNFTZ"
    for name, fmt in (("bf16", fx.BF16), ("FP16", fx.FP16), ("fp8e4m3", fx.FP8_E4M3), ("fp8e5m2", fx.FP8_E5M2),
                      ("e4m3fn", fx.FP8_E4M3), (" E8M7 ", fx.BF16)):
        assert FloatFormat.parse(name) == fmt
    assert FloatFormat(4, 3, bias=7) == FloatFormat(4, 3) and FloatFormat(4, 3).bias == 7


def test_formats_are_frozen_and_hashable():
    with pytest.raises(AttributeError):
        fx.BF16.man_bits = 3
    assert len({fx.BF16, FloatFormat(8, 7), fx.FP16}) == 2


def test_result_dtype_is_float32_only_when_every_value_is_a_float32():
    assert FloatFormat(8, 23).dtype == np.float32 and FloatFormat(8, 24).dtype == np.float64
    assert FloatFormat(9, 7).dtype == np.float64 and FloatFormat(8, 7, bias=126).dtype == np.float64
    assert FloatFormat(8, 7, bias=128).dtype == np.float32 and FloatFormat(8, 23, bias=128).dtype == np.float64
    assert FloatFormat(11, 52).container == np.uint64 and FloatFormat(8, 23).container == np.uint32


@pytest.mark.parametrize("kwargs, message", [
    (dict(exp_bits=0, man_bits=3), "exp_bits=0 is out of range; accepted: 1..11"),
    (dict(exp_bits=12, man_bits=3), "exp_bits=12 is out of range"),
    (dict(exp_bits=1, man_bits=3), "2..11 otherwise"),
    (dict(exp_bits=4, man_bits=-1), "man_bits=-1 is out of range; accepted: 0..52"),
    (dict(exp_bits=4, man_bits=53), "man_bits=53"),
    (dict(exp_bits=11, man_bits=53), "man_bits=53"),
    (dict(exp_bits=11, man_bits=52, bias=1024), "bias=1024 .* accepted: 1023..1023"),
    (dict(exp_bits=8, man_bits=7, bias=-1000), "bias=-1000 puts values of E8M7 outside float64"),
    (dict(exp_bits=1, man_bits=0, finite_only=True), "only zero and NaN"),
])
def test_bad_arguments_name_the_argument_and_the_accepted_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FloatFormat(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(exp_bits=4.0, man_bits=3), "exp_bits must be an integer"),
    (dict(exp_bits=True, man_bits=3), "exp_bits must be an integer"),
    (dict(exp_bits=4, man_bits=3, bias="7"), "bias must be an integer"),
    (dict(exp_bits=4, man_bits=3, subnormals=1), "subnormals must be True or False"),
    (dict(exp_bits=4, man_bits=3, finite_only=None), "finite_only must be True or False"),
])
def test_wrong_types_are_type_errors(kwargs, message):
    with pytest.raises(TypeError, match=message):
        FloatFormat(**kwargs)


@pytest.mark.parametrize("text", ["E4M3X", "e4", "M3E4", "E4M3FTZFN", "bf17", "", "E4M3B", 7])
def test_parse_rejects_text_that_is_not_a_format(text):
    with pytest.raises(ValueError, match="text=.* is not a float format; expected E<E>M<M>"):
        FloatFormat.parse(text)


def test_parse_reports_the_range_of_a_well_formed_but_invalid_format():
    with pytest.raises(ValueError, match="man_bits=60 is out of range"):
        FloatFormat.parse("E4M60")
