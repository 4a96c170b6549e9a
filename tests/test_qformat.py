import math
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint import QFormat


@pytest.mark.parametrize(
    "fmt, text, int_bits, qmin, qmax, dtype",
    [
        (QFormat(8, 6), "Q1.6", 1, -128, 127, np.int8),
        (QFormat(8, 7), "Q0.7", 0, -128, 127, np.int8),
        (QFormat(16, 15), "Q0.15", 0, -32768, 32767, np.int16),
        (QFormat(8, 8, signed=False), "UQ0.8", 0, 0, 255, np.uint8),
        (QFormat(8, 9), "Q-2.9", -2, -128, 127, np.int8),
        (QFormat(12, -3), "Q14.-3", 14, -2048, 2047, np.int16),
        (QFormat(32, 16), "Q15.16", 15, -(2**31), 2**31 - 1, np.int32),
        (QFormat(1, 1, signed=False), "UQ0.1", 0, 0, 1, np.uint8),
        (QFormat(17, 0), "Q16.0", 16, -65536, 65535, np.int32),
    ],
)
def test_derived_quantities_and_text_round_trip(fmt, text, int_bits, qmin, qmax, dtype):
    assert str(fmt) == text
    assert QFormat.parse(text) == fmt
    assert fmt.int_bits == int_bits
    assert (fmt.qmin, fmt.qmax) == (qmin, qmax)
    assert fmt.dtype == np.dtype(dtype)
    assert fmt.lsb == 2.0 ** -fmt.frac
    assert (fmt.min, fmt.max) == (qmin * fmt.lsb, qmax * fmt.lsb)


def test_frozen_and_hashable():
    fmt = QFormat(8, 6)
    assert {fmt: 1}[QFormat(8, 6)] == 1
    with pytest.raises(AttributeError):
        fmt.bits = 9


@pytest.mark.parametrize("bits, signed", [(1, True), (33, True), (0, False), (33, False), (-4, True)])
def test_bits_out_of_range(bits, signed):
    with pytest.raises(ValueError, match=f"bits={bits}"):
        QFormat(bits, 0, signed)


def test_wide_formats_for_arithmetic_results():
    wide = QFormat(100, 40, wide=True)
    assert wide.dtype == np.dtype(object)
    assert QFormat(64, 0, wide=True).dtype == np.dtype(np.int64)
    with pytest.raises(ValueError, match="accepted: 2..128"):
        QFormat(129, 0, wide=True)


@pytest.mark.parametrize("bad", [8.0, "8", None, True])
def test_bits_must_be_an_integer(bad):
    with pytest.raises(TypeError, match="bits"):
        QFormat(bad, 0)


@pytest.mark.parametrize("text", ["Q1", "1.6", "q1.6", "Q1.6.2", "", "QA.B"])
def test_parse_rejects_other_text(text):
    with pytest.raises(ValueError, match="not a Q format"):
        QFormat.parse(text)


@pytest.mark.parametrize("max_abs, bits, expected", [(1.0, 8, "Q1.6"), (0.99, 8, "Q0.7"), (127.0, 8, "Q7.0"),
                                                     (128.0, 8, "Q8.-1"), (3.0, 16, "Q2.13"), (0.0, 8, "Q0.7")])
def test_for_range_picks_the_most_fraction_bits_that_hold_the_range(max_abs, bits, expected):
    fmt = QFormat.for_range(max_abs, bits)
    assert str(fmt) == expected
    assert fmt.max >= max_abs


@pytest.mark.parametrize("max_abs", [1e-320, 5e-324, 2.2250738585072014e-308, 1e-306, 1.7976931348623157e308])
@pytest.mark.parametrize("bits, signed", [(8, True), (2, True), (32, True), (1, False), (16, False)])
def test_for_range_is_exact_and_finite_at_the_ends_of_the_float_range(max_abs, bits, signed):
    fmt = QFormat.for_range(max_abs, bits, signed)
    holds = Fraction(fmt.qmax) * Fraction(2) ** -fmt.frac
    assert holds >= Fraction(max_abs) > holds / 2  # one more fraction bit would not hold max_abs
    assert fmt.max >= max_abs


def test_derived_floats_round_to_the_nearest_float_at_extreme_fracs():
    assert QFormat(8, 1080).max == 5e-324 * 2 and QFormat(8, 1080).lsb == 0.0
    assert QFormat(8, -2000).lsb == math.inf and QFormat(8, -2000).min == -math.inf
    assert QFormat(8, 10**20).max == 0.0 and QFormat(8, -10**20).max == math.inf
    assert str(QFormat(8, 10**20)) == f"Q{8 - 10**20 - 1}.{10**20}"
