import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS, Overflow, Rounding, as_overflow, as_rounding
from fixedpoint.kernels.reference import round_div, round_shift

# DESIGN.md's table (one fraction bit dropped, v = raw / 2) plus the modes it leaves out.
VALUES = [-2.5, -2.0, -1.5, -0.5, 0.5, 1.5, 2.0, 2.5]
GOLDEN = {
    "floor":        [-3, -2, -2, -1, 0, 1, 2, 2],
    "ceil":         [-2, -2, -1, 0, 1, 2, 2, 3],
    "to_zero":      [-2, -2, -1, 0, 0, 1, 2, 2],
    "away":         [-3, -2, -2, -1, 1, 2, 2, 3],
    "mag_trunc":    [-2, -1, -1, 0, 0, 1, 2, 2],
    "half_up":      [-2, -2, -1, 0, 1, 2, 2, 3],
    "half_down":    [-3, -2, -2, -1, 0, 1, 2, 2],
    "half_to_zero": [-2, -2, -1, 0, 0, 1, 2, 2],
    "half_away":    [-3, -2, -2, -1, 1, 2, 2, 3],
    "half_even":    [-2, -2, -2, 0, 0, 2, 2, 2],
    "half_odd":     [-3, -2, -1, -1, 1, 1, 2, 3],
    "jam":          [-3, -1, -1, -1, 1, 1, 3, 3],
    "jam_unbiased": [-3, -2, -1, -1, 1, 1, 2, 3],
}
# Two fraction bits dropped (v = raw / 4): quarter values are not ties.
QUARTERS = [-1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75]
GOLDEN_QUARTERS = {
    "floor":        [-2, -2, -1, -1, 0, 0, 1, 1],
    "ceil":         [-1, -1, 0, 0, 1, 1, 2, 2],
    "half_up":      [-2, -1, -1, 0, 0, 1, 1, 2],
    "half_even":    [-2, -1, -1, 0, 0, 1, 1, 2],
    "half_to_zero": [-2, -1, -1, 0, 0, 1, 1, 2],
    "jam":          [-1, -1, -1, -1, 1, 1, 1, 1],
    "mag_trunc":    [-1, -1, 0, 0, 0, 0, 1, 1],
}


def test_every_deterministic_mode_has_a_golden_row():
    assert set(GOLDEN) == {m.value for m in DETERMINISTIC_ROUNDINGS}


@pytest.mark.parametrize("mode", sorted(GOLDEN))
def test_golden_table_one_bit_dropped(mode):
    raw = np.array([int(v * 2) for v in VALUES], dtype=np.int64)
    assert round_shift(raw, 1, mode).tolist() == GOLDEN[mode]
    # the same rule through the public cast
    x = fx.FixedArray(raw.astype(np.int8), fx.QFormat(8, 1))
    assert x.cast(fx.QFormat(8, 0), mode).raw.tolist() == GOLDEN[mode]
    # and through division by a general divisor
    assert round_div(raw, 2, mode).tolist() == GOLDEN[mode]


@pytest.mark.parametrize("mode", sorted(GOLDEN_QUARTERS))
def test_golden_table_two_bits_dropped(mode):
    raw = np.array([int(v * 4) for v in QUARTERS], dtype=np.int64)
    assert round_shift(raw, 2, mode).tolist() == GOLDEN_QUARTERS[mode]


@pytest.mark.parametrize("mode", list(Rounding))
def test_no_bits_dropped_is_identity(mode):
    raw = np.array([-128, -3, -2, 0, 1, 2, 127], dtype=np.int64)
    assert round_shift(raw, 0, mode, np.random.default_rng(0)).tolist() == raw.tolist()


def test_mode_names_round_trip_and_codes_are_stable():
    assert [m.code for m in Rounding] == list(range(15))
    assert [m.code for m in Overflow] == list(range(4))
    for m in Rounding:
        assert as_rounding(m.value) is m and str(m) == m.value
    assert as_overflow("wrap") is Overflow.WRAP


def test_unknown_mode_names_list_the_accepted_ones():
    with pytest.raises(ValueError, match="half_even") as info:
        as_rounding("nearest")
    assert "rounding='nearest'" in str(info.value)
    with pytest.raises(ValueError, match="saturate_symmetric"):
        as_overflow("clamp")
    with pytest.raises(ValueError, match="rounding"):
        fx.quantize(np.zeros(3), fx.QFormat(8, 4), rounding="bankers")
    with pytest.raises(ValueError, match="overflow"):
        fx.quantize(np.zeros(3), fx.QFormat(8, 4), overflow=3)


def test_round_shift_beyond_64_bits_of_shift():
    v = np.array([-1, 1, 0, -(2**63), 2**63 - 1], dtype=np.int64)
    assert round_shift(v, 200, "floor").tolist() == [-1, 0, 0, -1, 0]
    assert round_shift(v, 200, "ceil").tolist() == [0, 1, 0, 0, 1]
    assert round_shift(v, 200, "half_even").tolist() == [0, 0, 0, 0, 0]
    assert round_shift(v, 64, "half_up").tolist() == [0, 0, 0, 0, 0]
    assert round_shift(v, 63, "half_up").tolist() == [0, 0, 0, -1, 1]
