from fractions import Fraction

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint import FixedArray, QFormat
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from exact_oracle import fit, round_fraction


def _exact(a: FixedArray):
    return [Fraction(int(q), 2**a.fmt.frac) if a.fmt.frac >= 0 else Fraction(int(q) * 2**-a.fmt.frac)
            for q in np.ravel(a.raw)]


def _random(fmt, shape, rng):
    return FixedArray(rng.integers(fmt.qmin, fmt.qmax, size=shape, endpoint=True), fmt)


FORMAT_PAIRS = [
    (QFormat(8, 6), QFormat(8, 7)),
    (QFormat(16, 3), QFormat(8, -2)),
    (QFormat(8, 8, signed=False), QFormat(8, 1)),
    (QFormat(32, 31), QFormat(32, 0)),
    (QFormat(12, 4, signed=False), QFormat(6, 6, signed=False)),
]


@pytest.mark.parametrize("fa, fb", FORMAT_PAIRS, ids=str)
def test_add_sub_mul_are_exact_and_grow_the_format(fa, fb):
    rng = np.random.default_rng(0)
    a, b = _random(fa, (50,), rng), _random(fb, (50,), rng)
    a.raw[:2] = [fa.qmin, fa.qmax]
    b.raw[:2] = [fb.qmin, fb.qmin]
    for result, op in ((a + b, lambda x, y: x + y), (a - b, lambda x, y: x - y), (a * b, lambda x, y: x * y)):
        assert _exact(result) == [op(x, y) for x, y in zip(_exact(a), _exact(b))]
    assert (a + b).fmt.frac == max(fa.frac, fb.frac)
    assert (a * b).fmt.frac == fa.frac + fb.frac
    assert (a - b).fmt.signed


def test_growth_rules_match_the_design():
    a, b = FixedArray(np.int8([1]), QFormat(8, 6)), FixedArray(np.int8([1]), QFormat(8, 7))
    assert (a + b).fmt == QFormat(10, 7)             # max integer bits (2) + 1, frac 7
    assert (a * b).fmt == QFormat(16, 13)
    assert (-a).fmt == QFormat(9, 6)
    k = FixedArray(np.zeros((3, 100), dtype=np.int8), QFormat(8, 6))
    w = FixedArray(np.zeros((100, 2), dtype=np.int8), QFormat(8, 7))
    assert (k @ w).fmt == QFormat(16 + 7, 13)        # + ceil(log2 100) = 7
    assert k.sum().fmt == QFormat(8 + 9, 6)          # 300 elements: + 9
    assert k.sum(axis=1).fmt == QFormat(8 + 7, 6)


def test_extremes_never_overflow():
    fmt = QFormat(8, 0)
    lo = FixedArray(np.full((4, 256), -128, dtype=np.int8), fmt)
    assert (lo @ lo.T).raw.tolist() == [[256 * 16384] * 4] * 4
    assert (-FixedArray(np.int8([-128]), fmt)).raw.tolist() == [128]
    big = FixedArray(np.array([-(2**31)] * 3, dtype=np.int32), QFormat(32, 0))
    square = big * big
    assert square.raw.tolist() == [2**62] * 3 and square.fmt.bits == 64
    fourth = square * square
    assert fourth.raw.tolist() == [2**124] * 3 and fourth.fmt.bits == 128
    assert fourth.cast(QFormat(32, -100)).raw.tolist() == [2**24] * 3


def test_matmul_matches_fractions_and_casts_back():
    rng = np.random.default_rng(3)
    a, b = _random(QFormat(8, 5), (4, 9), rng), _random(QFormat(16, 12), (9, 3), rng)
    c = a @ b
    ea = np.array(_exact(a), dtype=object).reshape(4, 9)
    eb = np.array(_exact(b), dtype=object).reshape(9, 3)
    assert _exact(c) == list((ea @ eb).ravel())
    down = c.cast(QFormat(16, 8), "half_even")
    for got, exact in zip(_exact(down), _exact(c)):
        assert abs(got - exact) <= Fraction(1, 2**9)


def test_broadcasting():
    a = FixedArray(np.arange(6, dtype=np.int8).reshape(2, 3), QFormat(8, 2))
    b = FixedArray(np.int8([1, 2, 3]), QFormat(8, 0))
    assert (a + b).to_float().tolist() == [[1.0, 2.25, 3.5], [1.75, 3.0, 4.25]]
    assert (a * b).shape == (2, 3)


def test_cast_adds_fraction_bits_exactly_and_counts_overflow():
    a = FixedArray(np.int8([3, -3, 100]), QFormat(8, 1))
    stats = fx.OverflowStats()
    b = a.cast(QFormat(8, 4), stats=stats)           # << 3: 100 * 8 overflows
    assert b.raw.tolist() == [24, -24, 127] and stats.overflowed == 1
    c = a.cast(QFormat(16, 4), "jam")                # adding bits: no mode changes values
    assert c.raw.tolist() == [24, -24, 800]


def test_from_float_to_float_and_repr():
    a = FixedArray.from_float([0.5, -0.25, 0.3], QFormat(8, 6))
    assert a.raw.tolist() == [32, -16, 19]
    assert a.to_float().tolist() == [0.5, -0.25, 0.296875]
    assert repr(a) == "FixedArray(Q1.6, [ 0.5     , -0.25    ,  0.296875])"
    assert a[1:].raw.tolist() == [-16, 19]


def test_bad_operands():
    a = FixedArray(np.int8([1, 2]), QFormat(8, 4))
    with pytest.raises(TypeError, match="FixedArray \\+ float"):
        a + 1.5
    with pytest.raises(TypeError, match="must be a FixedArray"):
        a * np.array([1, 2])
    with pytest.raises(TypeError, match="must be a FixedArray"):
        np.array([1, 2]) * a
    with pytest.raises(ValueError, match="inner dimensions"):
        FixedArray(np.zeros((2, 3), np.int8), QFormat(8, 0)) @ FixedArray(np.zeros((2, 3), np.int8), QFormat(8, 0))
    with pytest.raises(ValueError, match="do not fit Q3.4"):
        FixedArray(np.array([200]), QFormat(8, 4))
    with pytest.raises(TypeError, match="raw must be an integer"):
        FixedArray(np.array([0.5]), QFormat(8, 4))
    with pytest.raises(TypeError, match="fmt must be a QFormat"):
        a.cast("Q1.6")
    wide = FixedArray(np.array([1], dtype=object), QFormat(128, 0, wide=True))
    with pytest.raises(ValueError, match="needs 256 bits"):
        wide * wide


@pytest.mark.parametrize("mode", [m.value for m in DETERMINISTIC_ROUNDINGS])
def test_cast_of_unsigned_64_bit_raw_is_exact(mode):
    src = QFormat(64, 3, signed=False, wide=True)
    raw = np.array([2**64 - 1, 2**63, 2**63 - 1, 12, 5, 0], dtype=np.uint64)
    for dst in (QFormat(8, -53, signed=False), QFormat(64, 3, signed=False, wide=True), QFormat(70, 1, wide=True)):
        shift = src.frac - dst.frac
        expected = [fit(round_fraction(Fraction(q, 2**shift), mode, shift > 0), dst.bits, dst.signed, "saturate")[0]
                    for q in raw.tolist()]
        assert FixedArray(raw, src).cast(dst, mode).raw.tolist() == expected, dst


def test_sum_over_axes_and_bad_axes_name_axis_and_ndim():
    a = FixedArray(np.arange(-12, 12, dtype=np.int8).reshape(2, 3, 4), QFormat(8, 2))
    for axis, grown in ((0, 1), (-1, 2), ((0, 2), 3), ((), 0)):   # 2, 4, 8 and 1 summed elements
        s = a.sum(axis=axis)
        assert np.array_equal(s.raw, a.raw.astype(np.int64).sum(axis=axis)) and s.fmt.bits == 8 + grown
    for axis in (3, -4, (0, 5)):
        with pytest.raises(ValueError, match="axis .* out of bounds for array of dimension 3"):
            a.sum(axis=axis)
    with pytest.raises(ValueError, match="repeats an axis"):
        a.sum(axis=(1, -2))
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple of ints"):
        a.sum(axis=1.0)
