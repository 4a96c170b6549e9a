"""The reference requantization primitive against exact Python integers."""
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from fixedpoint.kernels.reference import requantize
from exact_oracle import fit, round_fraction

MODES = [m.value for m in DETERMINISTIC_ROUNDINGS]


def _expected(acc, shift, mult, mode, bits, overflow, relu):
    out, count = [], 0
    for row in acc.tolist():
        for j, a in enumerate(row):
            s = int(shift[j]) if np.ndim(shift) else int(shift)
            m = 1 if mult is None else (int(mult[j]) if np.ndim(mult) else int(mult))
            exact = Fraction(a * m) / 2**s if s > 0 else Fraction(a * m * 2**-s)
            y = round_fraction(exact, mode, bits_dropped=s > 0)
            y = max(y, 0) if relu else y
            v, over = fit(y, bits, True, overflow)
            out.append(v)
            count += over
    return out, count


@pytest.mark.parametrize("mode", MODES)
def test_multiplier_products_beyond_64_bits(mode):
    rng = np.random.default_rng(1)
    acc = rng.integers(-(2**62), 2**62, size=(5, 4), dtype=np.int64)
    acc[0] = [2**62, -(2**62), -(2**63), 2**63 - 1]
    mult = np.array([2**31 - 1, 2**30, 1_518_500_250, 3], dtype=np.int64)
    shift = np.array([93, 70, 127, 40])
    for overflow in ("saturate", "wrap", "saturate_symmetric"):
        y, count = requantize(acc, shift, mult, rounding=mode, overflow=overflow, bits=32)
        expected, expected_count = _expected(acc, shift, mult, mode, 32, overflow, False)
        assert y.ravel().tolist() == expected
        assert count == expected_count


@pytest.mark.parametrize("mode", MODES)
def test_per_channel_shifts_negative_shifts_and_relu(mode):
    rng = np.random.default_rng(2)
    acc = rng.integers(-(2**20), 2**20, size=(7, 6)).astype(np.int32)
    acc[0, :] = 3 * 2**11  # exact ties for shift 12
    shift = np.array([12, 0, -3, 1, 25, 12])
    for relu in (False, True):
        y, count = requantize(acc, shift, rounding=mode, bits=8, relu=relu, overflow="wrap")
        expected, expected_count = _expected(acc, shift, None, mode, 8, "wrap", relu)
        assert y.dtype == np.int8
        assert y.ravel().tolist() == expected and count == expected_count


def test_left_shift_of_wide_accumulator_is_exact():
    acc = np.array([[2**62 + 5, -3, 1]], dtype=np.int64)
    y, count = requantize(acc, -30, bits=32, overflow="wrap")
    assert y.ravel().tolist() == [((a << 30) + 2**31) % 2**32 - 2**31 for a in (2**62 + 5, -3, 1)]
    assert count == 2
    y, count = requantize(acc, -30, bits=32, overflow="saturate")
    assert y.ravel().tolist() == [2**31 - 1, -(2**31), 2**30] and count == 2


def test_parameter_validation():
    acc = np.zeros((2, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="shift"):
        requantize(acc, 200)
    with pytest.raises(ValueError, match="multiplier"):
        requantize(acc, 3, 2**31)
    with pytest.raises(ValueError, match="length 3"):
        requantize(acc, np.array([1, 2]))
    with pytest.raises(TypeError, match="acc"):
        requantize(acc.astype(np.float32), 1)
    with pytest.raises(TypeError, match="shift"):
        requantize(acc, 1.5)


def test_error_mode_names_count_and_worst_value():
    acc = np.array([[100, 5000, -70000]], dtype=np.int64)
    with pytest.raises(OverflowError, match=r"2 of 3 elements.*worst raw value -70000"):
        requantize(acc, 0, bits=8, overflow="error")
