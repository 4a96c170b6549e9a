"""Every kernel op on every available backend: exact against independent oracles and the reference.

Two kinds of checks:

* small inputs against oracles written here from the rules (Python integers,
  ``Fraction`` and explicit loops), on every backend including ``reference`` itself;
* adversarial and larger inputs on each fast backend against the ``reference`` backend,
  bit for bit (integers) or within DESIGN.md's tolerance (floats).
"""
from fractions import Fraction

import numpy as np
import pytest

from exact_oracle import fit, round_fraction
from fixedpoint import kernels as K
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from fixedpoint.kernels.kinds import GEMM_KINDS

BACKENDS = K.available()
FAST = [name for name in BACKENDS if name != "reference"]
MODES = [m.value for m in DETERMINISTIC_ROUNDINGS]
FAST_OVERFLOWS = ["saturate", "wrap", "saturate_symmetric"]
INT_PAIRS = [(k.x.type, k.w.type) for k in GEMM_KINDS if k.integer]
PAIR_IDS = ["i8", "i16", "a16w8"]
ACC = {k.x.type: k.acc.type for k in GEMM_KINDS if k.integer}
DEFAULT_OUT = {np.int8: np.int8, np.int16: np.int16}


def _ints(rng, dtype, shape, extreme_share=0.2):
    """Random integers of ``dtype`` with a share of them at the dtype's min and max."""
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    pick = rng.random(shape)
    a[pick < extreme_share / 2] = info.min
    a[(pick >= extreme_share / 2) & (pick < extreme_share)] = info.max
    return a


def _bias(rng, acc_dtype, n, magnitude=2**20):
    return rng.integers(-magnitude, magnitude, size=n).astype(acc_dtype)


# ----------------------------------------------------------------------------- oracles


def _oracle_acc(x, w, bias):
    """x @ w.T + bias in Python integers (object arrays cannot overflow)."""
    acc = np.asarray(x).astype(object) @ np.asarray(w).astype(object).T
    return acc if bias is None else acc + np.asarray(bias).astype(object)


def _oracle_requant(acc, shift, mult, mode, overflow, bits, relu):
    """Element by element: one rounding of the exact rational, relu, then the overflow rule."""
    acc = np.asarray(acc, dtype=object)
    n = acc.shape[-1]
    shift = np.broadcast_to(np.asarray(shift, dtype=object), (n,))
    mult = np.broadcast_to(np.asarray(1 if mult is None else mult, dtype=object), (n,))
    out, count = np.empty(acc.shape, dtype=object), 0
    for idx in np.ndindex(acc.shape):
        s, m = int(shift[idx[-1]]), int(mult[idx[-1]])
        exact = Fraction(int(acc[idx]) * m, 2**s) if s > 0 else Fraction(int(acc[idx]) * m * 2**-s)
        y = round_fraction(exact, mode, bits_dropped=s > 0)
        y = max(y, 0) if relu else y
        out[idx], over = fit(y, bits, True, overflow)
        count += over
    return out, count


def _oracle_conv2d(x, w, bias, stride, padding):
    """Cross-correlation by explicit loops over Python integers (or float64 for floats)."""
    kind = object if x.dtype.kind in "iu" else np.float64
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x.astype(kind), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    o, kh, kw, _ = w.shape
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, o), dtype=kind)
    wk = w.astype(kind)
    for b in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                window = xp[b, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
                for c in range(o):
                    out[b, i, j, c] = (window * wk[c]).sum() + (0 if bias is None else bias[c])
    return out


def _oracle_pool(x, kernel, stride, reduce):
    kh, kw = kernel
    sh, sw = stride
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), dtype=object)
    for b, i, j, c in np.ndindex(out.shape):
        window = [x[b, i * sh + di, j * sw + dj, c] for di in range(kh) for dj in range(kw)]
        out[b, i, j, c] = reduce(window)
    return out


def _exact_float(v) -> Fraction:
    return Fraction(float(v))


# ----------------------------------------------------------------------------- gemm / linear vs oracles


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", INT_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (3, 5, 7), (4, 2, 33)])
def test_linear_accumulator_equals_python_integers(backend, pair, m, n, k):
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    x, w = _ints(rng, pair[0], (m, k)), _ints(rng, pair[1], (n, k))
    bias = _bias(rng, ACC[pair[0]], n)
    for b in (None, bias):
        y = K.linear(x, w, b, backend=backend)
        assert y.dtype == ACC[pair[0]]
        assert y.tolist() == _oracle_acc(x, w, b).tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("overflow", FAST_OVERFLOWS)
def test_linear_requant_equals_fractions(backend, mode, overflow):
    """int8 per-channel shifts (negative, zero, tie-producing), relu on and off."""
    rng = np.random.default_rng(7)
    x, w = _ints(rng, np.int8, (3, 5)), _ints(rng, np.int8, (6, 5))
    x[0] = 1                                   # with w rows below, acc rows of exact ties
    w[:, 0] = [3, 6, 12, 24, 1, 5]
    w[:, 1:] = np.where(np.arange(6)[:, None] < 4, 0, w[:, 1:])
    shift = np.array([1, 2, 3, 4, 0, -2])
    for relu in (False, True):
        y = K.linear(x, w, shift=shift, rounding=mode, overflow=overflow, relu=relu, backend=backend)
        expected, _ = _oracle_requant(_oracle_acc(x, w, None), shift, None, mode, overflow, 8, relu)
        assert y.dtype == np.int8
        assert y.tolist() == expected.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_int16_multiplier_products_beyond_64_bits(backend, mode):
    """int16 x int16 accumulators near 2**33 times multipliers near 2**31: 64+ bit products."""
    rng = np.random.default_rng(11)
    k = 8
    x = np.full((2, k), -32768, dtype=np.int16)
    x[1] = rng.integers(-32768, 32768, size=k)
    w = np.full((4, k), -32768, dtype=np.int16)
    w[1] = 32767
    w[2:] = rng.integers(-32768, 32768, size=(2, k))
    bias = np.array([2**40 + 1, -(2**40), 12345, -1], dtype=np.int64)
    mult = np.array([2**31 - 1, 2**30 + 1, 1_518_500_250, 3], dtype=np.int64)
    shift = np.array([70, 64, 63, 40])
    stats = _Counter()
    y = K.linear(x, w, bias, shift=shift, multiplier=mult, rounding=mode, out_dtype=np.int32,
                 overflow="wrap", backend=backend, stats=stats)
    expected, count = _oracle_requant(_oracle_acc(x, w, bias), shift, mult, mode, "wrap", 32, False)
    assert y.dtype == np.int32
    assert y.tolist() == expected.tolist()
    assert (stats.overflowed, stats.total) == (count, y.size)


class _Counter:
    def __init__(self):
        self.overflowed = self.total = 0

    def add(self, overflowed, total):
        self.overflowed += overflowed
        self.total += total


# ----------------------------------------------------------------------------- conv vs oracles


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", INT_PAIRS + [(np.float64, np.float64)], ids=PAIR_IDS + ["f64"])
def test_conv2d_equals_explicit_loops(backend, pair):
    rng = np.random.default_rng(3)
    if pair[0] == np.float64:
        x, w = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((4, 3, 2, 3))
        bias = rng.standard_normal(4)
    else:
        x, w = _ints(rng, pair[0], (2, 5, 6, 3)), _ints(rng, pair[1], (4, 3, 2, 3))
        bias = _bias(rng, ACC[pair[0]], 4)
    for stride, padding in (((1, 1), (0, 0)), ((2, 1), (1, 2)), ((3, 2), (2, 0))):
        y = K.conv2d(x, w, bias, stride=stride, padding=padding, backend=backend)
        expected = _oracle_conv2d(x, w, bias, stride, padding)
        if pair[0] == np.float64:
            np.testing.assert_allclose(y, expected.astype(np.float64), rtol=1e-12, atol=1e-12)
        else:
            assert y.tolist() == expected.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["half_even", "floor", "jam"])
def test_conv1d_requant_equals_loops(backend, mode):
    rng = np.random.default_rng(4)
    x, w = _ints(rng, np.int16, (2, 9, 3)), _ints(rng, np.int8, (5, 4, 3))
    shift = np.array([8, 9, 10, 0, -1])
    y = K.conv1d(x, w, stride=2, padding=3, shift=shift, rounding=mode, overflow="wrap", backend=backend)
    acc = _oracle_conv2d(x[:, None], w[:, None], None, (1, 2), (0, 3))[:, 0]
    expected, _ = _oracle_requant(acc, shift, None, mode, "wrap", 16, False)
    assert y.dtype == np.int16 and y.tolist() == expected.tolist()


# ----------------------------------------------------------------------------- pools, add, lut, quantize vs oracles


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_max_pool_equals_loops(backend, dtype):
    rng = np.random.default_rng(5)
    x = _ints(rng, dtype, (2, 7, 5, 3), extreme_share=0.5)
    for kernel, stride in (((2, 2), None), ((3, 2), (2, 1)), ((7, 5), (1, 1))):
        y = K.max_pool2d(x, kernel, stride, backend=backend)
        assert y.tolist() == _oracle_pool(x, kernel, stride or kernel, max).tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
def test_avg_pool_rounds_the_exact_mean(backend, mode):
    rng = np.random.default_rng(6)
    x = _ints(rng, np.int8, (2, 6, 5, 4), extreme_share=0.5)
    x[0, :2, :2, 0] = [[1, 2], [2, 1]]          # mean 1.5: a tie
    x[0, :2, :2, 1] = [[-1, -2], [-2, -1]]      # mean -1.5
    x[0, :2, :2, 2] = -128                      # exact mean of the minimum
    for kernel, stride in (((2, 2), None), ((3, 3), (1, 2)), ((1, 1), None)):
        y = K.avg_pool2d(x, kernel, stride, rounding=mode, backend=backend)
        size = kernel[0] * kernel[1]
        expected = _oracle_pool(
            x, kernel, stride or kernel,
            lambda win: round_fraction(Fraction(sum(int(v) for v in win), size), mode, bits_dropped=size > 1),
        )
        assert y.dtype == np.int8 and y.tolist() == expected.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("overflow", FAST_OVERFLOWS)
def test_add_aligns_exactly_and_rounds_once(backend, mode, overflow):
    rng = np.random.default_rng(8)
    a = _ints(rng, np.int8, (4, 6), extreme_share=0.4)
    b = _ints(rng, np.int16, (4, 6), extreme_share=0.4)
    for a_frac, b_frac, out_frac, out_bits in ((3, 5, 2, 8), (7, 0, 7, 16), (0, 2, 4, 12), (4, 4, 4, 8)):
        y = K.add(a, a_frac, b, b_frac, out_frac, out_bits=out_bits, rounding=mode, overflow=overflow,
                  backend=backend, relu=out_bits == 12)
        expected, count = [], 0
        for av, bv in zip(a.ravel().tolist(), b.ravel().tolist()):
            exact = Fraction(av, 2**a_frac) + Fraction(bv, 2**b_frac)
            shift = max(a_frac, b_frac) - out_frac
            v = round_fraction(exact * 2**out_frac, mode, bits_dropped=shift > 0)
            v, over = fit(max(v, 0) if out_bits == 12 else v, out_bits, True, overflow)
            expected.append(v)
            count += over
        assert y.ravel().tolist() == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, table_dtype", [(np.int8, np.int8), (np.int8, np.float32), (np.int16, np.int16)])
def test_lut_reads_entry_x_minus_min(backend, dtype, table_dtype):
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)
    size = info.max - info.min + 1
    table = rng.integers(-100, 100, size=size).astype(table_dtype)
    x = _ints(rng, dtype, (3, 17), extreme_share=0.5)
    y = K.lut(x, table, backend=backend)
    assert y.dtype == table_dtype
    assert y.tolist() == [[table[v - info.min] for v in row] for row in x.tolist()]


def _quantize_oracle(values, frac, bits, mode):
    out, count = [], 0
    for v in values:
        if np.isinf(v):
            y = 2**40 if v > 0 else -(2**40)
        else:
            exact = _exact_float(v) * Fraction(2) ** frac
            y = round_fraction(exact, mode)  # from an unbounded source: bits are always dropped
        y, over = fit(y, bits, True, "saturate")
        out.append(y)
        count += over
    return out, count


def _representable(values, dtype):
    """The float64 ``values`` that ``dtype`` holds exactly (drops overflow and underflow)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        cast = values.astype(dtype)
    keep = (cast.astype(np.float64) == values) | np.isinf(values)
    return cast[keep]


def _quantize_edge_values(dtype, frac, rng, bits):
    """Ties, near-ties and range ends at this ``frac``, the dtype's extremes, random values."""
    info = np.finfo(dtype)
    lsb = 2.0**-frac
    near = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.25, -0.75, 127.5, -128.5, 32767.5, -32768.5,
            2.0 ** (bits - 1) - 0.5, -(2.0 ** (bits - 1)) - 0.5, 1 + 2.0**-20, -1 - 2.0**-20]
    scaled = [v * lsb for v in near] + list(rng.standard_normal(40) * 2.0 ** (bits - 1) * lsb)
    extremes = [float(info.smallest_subnormal), -float(info.smallest_subnormal), float(info.tiny),
                -float(info.tiny), float(info.max), -float(info.max), np.inf, -np.inf]
    return _representable(scaled + extremes, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype, frac", [(np.float32, 0), (np.float32, 7), (np.float32, -900), (np.float32, 900),
                                         (np.float64, 0), (np.float64, 12), (np.float64, 900)])
@pytest.mark.parametrize("bits", [8, 16, 5])
def test_quantize_equals_fractions_at_the_edges(backend, mode, dtype, frac, bits):
    x = _quantize_edge_values(dtype, frac, np.random.default_rng(10), bits)
    raw, count = K.quantize(x, frac, bits, rounding=mode, backend=backend)
    expected, expected_count = _quantize_oracle(x.tolist(), frac, bits, mode)
    assert raw.dtype == (np.int8 if bits <= 8 else np.int16)
    assert raw.tolist() == expected
    assert count == expected_count


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("acc_dtype", [np.int32, np.int64])
def test_requantize_along_an_axis_equals_fractions(backend, axis, acc_dtype):
    rng = np.random.default_rng(12)
    info = np.iinfo(acc_dtype)
    acc = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(acc_dtype)
    acc[0, 0, :] = [info.min, info.max, 3 * 2**9, -3 * 2**9, 0]
    n = acc.shape[axis]
    shift = (np.arange(n) * 7 % 40) - 3
    mult = np.arange(n) * 300_000_001 % (2**31 - 1) + 1
    y = K.requantize(acc, shift, mult, rounding="half_away", overflow="saturate_symmetric", out_bits=12,
                     axis=axis, backend=backend)
    moved = np.moveaxis(acc, axis, -1)
    expected, _ = _oracle_requant(moved, shift, mult, "half_away", "saturate_symmetric", 12, False)
    assert y.dtype == np.int16
    assert np.moveaxis(y, axis, -1).tolist() == expected.tolist()


# ----------------------------------------------------------------------------- fast backends vs reference


def _same(fn, backend, **kwargs):
    """Run ``fn`` on ``backend`` and on the reference; integer results must be identical."""
    got = fn(backend=backend, **kwargs)
    want = fn(backend="reference", **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    return got


BLOCK_SIZES = [1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("pair", INT_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_gemm_sizes_around_block_edges(backend, pair, size):
    rng = np.random.default_rng(size)
    for m, n, k in ((size, 17, 33), (3, size, 64), (5, 7, size), (size, size, size)):
        x, w = _ints(rng, pair[0], (m, k)), _ints(rng, pair[1], (n, k))
        bias = _bias(rng, ACC[pair[0]], n)
        _same(K.linear, backend, x=x, w=w, bias=bias)
        _same(K.linear, backend, x=x, w=w, bias=bias, shift=np.arange(n) % 20, rounding="half_even")


@pytest.mark.parametrize("backend", FAST)
def test_int8_extreme_sums_at_the_accumulator_bound(backend):
    """K = 65536 products of -128 x -128 (2**30) plus the largest bias allowed: acc = 2**31 - 1."""
    k = 65536
    x = np.full((2, k), -128, dtype=np.int8)
    x[1] = 127
    w = np.full((3, k), -128, dtype=np.int8)
    w[2] = 127
    bias = np.array([2**30 - 1, -(2**30 - 1), 0], dtype=np.int32)
    y = _same(K.linear, backend, x=x, w=w, bias=bias)
    assert y[0].tolist() == [2**31 - 1, 2**30 - (2**30 - 1), -128 * 127 * k]
    for mode in MODES:
        _same(K.linear, backend, x=x, w=w, bias=bias, shift=24, rounding=mode)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pair", INT_PAIRS, ids=PAIR_IDS)
def test_exact_ties_in_every_mode(backend, mode, pair):
    """K = 1 with unit weights makes acc = x + bias exactly: every tie and near-tie per shift."""
    shifts = np.array([1, 2, 3, 5, 8, 13, 0, -1])
    n = shifts.size
    half = np.where(shifts > 0, 2 ** np.maximum(shifts - 1, 0), 0)
    lattice = np.arange(-9, 10)[:, None] * half[None, :] * 2      # multiples of 2**s
    acc = np.concatenate([lattice + half, lattice - half, lattice + 1, lattice - 1, lattice])
    one_x, ones_w = np.ones((1, 1), pair[0]), np.ones((acc.shape[0], 1), pair[1])
    for overflow in FAST_OVERFLOWS:
        for col in range(n):
            bias = (acc[:, col] - 1).astype(ACC[pair[0]])
            _same(K.linear, backend, x=one_x, w=ones_w, bias=bias, shift=int(shifts[col]), rounding=mode,
                  overflow=overflow, out_bits=6)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("pair", INT_PAIRS, ids=PAIR_IDS)
def test_non_contiguous_and_fortran_inputs(backend, pair):
    rng = np.random.default_rng(13)
    big_x = _ints(rng, pair[0], (20, 70))
    big_w = _ints(rng, pair[1], (18, 70))
    cases = [
        (big_x[::2, ::3], big_w[1::3, ::3]),                     # strided views
        (np.asfortranarray(big_x[:, :23]), np.asfortranarray(big_w[:, :23])),
        (big_x.T.copy().T[:, 5:40], big_w[:, 5:40]),            # Fortran-ordered slice
    ]
    for x, w in cases:
        bias = _bias(rng, ACC[pair[0]], w.shape[0])[::-1]      # a negative-stride bias too
        plain = _same(K.linear, backend, x=x, w=w, bias=bias)
        np.testing.assert_array_equal(plain, _oracle_acc(x, w, bias).astype(ACC[pair[0]]))
        _same(K.linear, backend, x=x, w=w, bias=bias, shift=9, multiplier=1_234_567_891, rounding="half_up")
    img = _ints(rng, pair[0], (2, 9, 8, 5))
    kern = _ints(rng, pair[1], (4, 3, 3, 5))
    _same(K.conv2d, backend, x=np.asfortranarray(img), w=kern[..., ::-1], stride=2, padding=1, shift=7)
    _same(K.conv2d, backend, x=img[:, ::2], w=np.asfortranarray(kern), padding=(0, 2))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("overflow", FAST_OVERFLOWS)
def test_per_tensor_and_per_channel_requant_params(backend, mode, overflow):
    rng = np.random.default_rng(14)
    x, w = _ints(rng, np.int16, (9, 40)), _ints(rng, np.int16, (13, 40))
    bias = _bias(rng, np.int64, 13, magnitude=2**50)
    mult_c = rng.integers(1, 2**31, size=13)
    mult_c[:3] = [1, 2**31 - 1, 2**30]
    shift_c = rng.integers(-63, 128, size=13)
    shift_c[:4] = [-63, 127, 0, 62]
    params = [(20, None), (shift_c, None), (31 + 20, 2**31 - 1), (shift_c, mult_c), (-5, 3), (0, mult_c)]
    for shift, mult in params:
        for relu in (False, True):
            for out_dtype, out_bits in ((np.int8, None), (np.int16, 11), (np.int32, 32), (np.int32, 20)):
                _same(K.linear, backend, x=x, w=w, bias=bias, shift=shift, multiplier=mult, rounding=mode,
                      overflow=overflow, relu=relu, out_dtype=out_dtype, out_bits=out_bits)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("pair", INT_PAIRS, ids=PAIR_IDS)
def test_conv_shapes_strides_and_padding(backend, pair):
    rng = np.random.default_rng(15)
    for (b, h, wd, c), (o, kh, kw), stride, padding in (
        ((2, 9, 9, 3), (5, 3, 3), 1, 1),
        ((1, 17, 16, 16), (17, 1, 1), 1, 0),
        ((3, 8, 11, 33), (4, 5, 2), (2, 3), (2, 1)),
        ((2, 4, 4, 1), (2, 4, 4), 1, 0),
        ((1, 2, 2, 2), (3, 3, 3), 2, 1),
    ):
        x, w = _ints(rng, pair[0], (b, h, wd, c)), _ints(rng, pair[1], (o, kh, kw, c))
        bias = _bias(rng, ACC[pair[0]], o)
        _same(K.conv2d, backend, x=x, w=w, bias=bias, stride=stride, padding=padding)
        _same(K.conv2d, backend, x=x, w=w, bias=bias, stride=stride, padding=padding, shift=np.arange(o) + 4,
              rounding="half_odd", relu=True)
    x1, w1 = _ints(rng, pair[0], (3, 31, 7)), _ints(rng, pair[1], (6, 5, 7))
    _same(K.conv1d, backend, x=x1, w=w1, stride=3, padding=2, shift=11, rounding="ceil")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", MODES)
def test_requantize_int32_and_int64_accumulators(backend, mode):
    rng = np.random.default_rng(16)
    for acc_dtype in (np.int32, np.int64):
        info = np.iinfo(acc_dtype)
        acc = rng.integers(info.min, info.max, size=(33, 17), endpoint=True).astype(acc_dtype)
        acc[0, :4] = [info.min, info.max, 0, -1]
        for shift, mult in ((np.arange(17) * 5 % 70 - 6, None), (40, 2**31 - 1), (np.arange(17) + 30, np.arange(17) + 2**30)):
            for overflow in FAST_OVERFLOWS:
                _same(K.requantize, backend, acc=acc, shift=shift, multiplier=mult, rounding=mode,
                      overflow=overflow, out_bits=10, relu=mode == "floor")
        _same(K.requantize, backend, acc=np.asfortranarray(acc), shift=8, rounding=mode, overflow="wrap",
              out_bits=8, axis=0 if acc.shape[0] == 17 else -1)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.float64])
def test_pools_against_reference(backend, dtype):
    rng = np.random.default_rng(17)
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal((2, 13, 11, 19)).astype(dtype)
    else:
        x = _ints(rng, dtype, (2, 13, 11, 19), extreme_share=0.6)
    for kernel, stride in ((2, None), (3, 2), ((2, 3), (1, 2)), ((13, 11), None), (1, 1)):
        _same(K.max_pool2d, backend, x=x, kernel=kernel, stride=stride)
        if np.dtype(dtype).kind == "f":
            got = K.avg_pool2d(x, kernel, stride, backend=backend)
            want = K.avg_pool2d(x.astype(np.float64), kernel, stride, backend="reference")
            np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps * 169, atol=0)
        else:
            for mode in MODES:
                _same(K.avg_pool2d, backend, x=x, kernel=kernel, stride=stride, rounding=mode)
    _same(K.max_pool1d, backend, x=x[:, 0], kernel=3, stride=2)
    if np.dtype(dtype).kind != "f":
        _same(K.avg_pool1d, backend, x=x[:, 0], kernel=4, rounding="half_down")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", MODES)
def test_add_against_reference(backend, mode):
    rng = np.random.default_rng(18)
    a = _ints(rng, np.int16, (5, 67), extreme_share=0.5)
    b = _ints(rng, np.int8, (5, 67), extreme_share=0.5)
    for a_frac, b_frac, out_frac in ((12, 0, 6), (0, 12, 0), (3, 3, 1), (30, -16, 60), (5, 6, 20)):
        for overflow in FAST_OVERFLOWS:
            _same(K.add, backend, a=a, a_frac=a_frac, b=b, b_frac=b_frac, out_frac=out_frac, rounding=mode,
                  overflow=overflow, out_bits=9, relu=a_frac == 3)
    _same(K.add, backend, a=a[:, ::2], a_frac=4, b=b[0, ::2], b_frac=2, out_frac=3, rounding=mode)


@pytest.mark.parametrize("backend", FAST)
def test_lut_full_int16_table(backend):
    table = (np.arange(65536) * 7919 % 65521 - 32768).astype(np.int16)
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256)
    y = _same(K.lut, backend, x=x[:, ::-1], table=table)
    assert y[0, -1] == table[0] and y[-1, 0] == table[-1]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_against_reference_on_random_data(backend, dtype):
    rng = np.random.default_rng(19)
    x = (rng.standard_normal(5003) * 3).astype(dtype)
    x[:6] = [0.5, -0.5, 1.5, -1.5, 1e30, -1e30]
    for mode in MODES:
        for frac, bits in ((4, 8), (6, 8), (10, 16), (0, 3)):
            got = K.quantize(x, frac, bits, rounding=mode, backend=backend)
            want = K.quantize(x, frac, bits, rounding=mode, backend="reference")
            assert got[1] == want[1]
            np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("backend", FAST)
def test_quantize_nan_raises_like_the_reference(backend):
    x = np.array([0.5, np.nan, 2.0, np.nan], dtype=np.float32)
    with pytest.raises(ValueError, match="2 NaN"):
        K.quantize(x, 3, 8, backend=backend)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
def test_stochastic_rounding_gives_the_reference_stream(backend, mode):
    rng = np.random.default_rng(20)
    x, w = _ints(rng, np.int8, (16, 40)), _ints(rng, np.int8, (9, 40))
    got = K.linear(x, w, shift=10, rounding=mode, rng=np.random.default_rng(5), backend=backend)
    want = K.linear(x, w, shift=10, rounding=mode, rng=np.random.default_rng(5), backend="reference")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", FAST)
def test_overflow_error_raises_the_reference_message(backend):
    rng = np.random.default_rng(21)
    x, w = _ints(rng, np.int8, (4, 30)), _ints(rng, np.int8, (5, 30))
    with pytest.raises(OverflowError) as ref_err:
        K.linear(x, w, shift=2, overflow="error", backend="reference")
    with pytest.raises(OverflowError) as fast_err:
        K.linear(x, w, shift=2, overflow="error", backend=backend)
    assert str(fast_err.value) == str(ref_err.value)
    img = _ints(rng, np.int8, (2, 5, 5, 3))
    with pytest.raises(OverflowError, match="elements overflow"):
        K.conv2d(img, _ints(rng, np.int8, (2, 2, 2, 3)), shift=1, overflow="error", backend=backend)
    small = K.linear(x, w, shift=16, overflow="error", backend=backend)
    np.testing.assert_array_equal(small, K.linear(x, w, shift=16, backend="reference"))


# ----------------------------------------------------------------------------- float paths


def _float_tolerance(ref64, k, dtype):
    return 64 * np.finfo(dtype).eps * np.sqrt(k) * np.abs(ref64).max()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (17, 33, 65), (64, 16, 300), (3, 5, 1000)])
def test_float_linear_within_tolerance(backend, dtype, m, n, k):
    rng = np.random.default_rng(m + n + k)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    ref64 = x.astype(np.float64) @ w.astype(np.float64).T + bias
    for xs, ws in ((x, w), (np.asfortranarray(x), w[:, :])):
        y = K.linear(xs, ws, bias, backend=backend)
        assert y.dtype == dtype
        assert np.abs(y - ref64).max() <= _float_tolerance(ref64, k, dtype)
    relu = K.linear(x, w, bias, relu=True, backend=backend)
    assert relu.min() >= 0
    assert np.abs(relu - np.maximum(ref64, 0)).max() <= _float_tolerance(ref64, k, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_conv_within_tolerance(backend, dtype):
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 10, 9, 6)).astype(dtype)
    w = rng.standard_normal((7, 3, 3, 6)).astype(dtype)
    y = K.conv2d(x, w, stride=(2, 1), padding=1, backend=backend)
    ref64 = _oracle_conv2d(x.astype(np.float64), w.astype(np.float64), None, (2, 1), (1, 1))
    assert y.dtype == dtype
    assert np.abs(y - ref64).max() <= _float_tolerance(ref64, 3 * 3 * 6, dtype)
