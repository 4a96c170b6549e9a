"""Numba backend edges: its blocking, its 128-bit requantization and its mode masks.

Cross-backend behaviour is covered by test_kernels_exact.py; here every check is
against the reference backend (the specification), bit for bit.
"""
import numpy as np
import pytest

from fixedpoint import kernels
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS, Overflow, Rounding
from fixedpoint.kernels.kinds import gemm_kind
from fixedpoint.kernels.reference import backend as ref
from backend_calls import epilogue, gemm_requant
from fixedpoint.kernels.reference import round_shift

nk = pytest.importorskip("fixedpoint.kernels.numba_kernels")
from fixedpoint.kernels.numba_kernels.gemm import KC, MC, MR, NC, NR  # noqa: E402
from fixedpoint.kernels.numba_kernels.rounding import rounding_mask  # noqa: E402

CODES = list(DETERMINISTIC_ROUNDINGS)
OVERFLOW_CODES = [Overflow.SATURATE, Overflow.WRAP, Overflow.SATURATE_SYMMETRIC]


def _ints(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _both(fn_name, *args, out):
    """Run a protocol function on numba and reference with separate outputs; return both."""
    out_ref = np.zeros_like(out)
    got = getattr(nk, fn_name)(*args, out)
    want = getattr(ref, fn_name)(*args, out_ref)
    return (got, out), (want, out_ref)


def _assert_same(pair):
    (got, out), (want, out_ref) = pair
    assert got == want
    np.testing.assert_array_equal(out, out_ref)


@pytest.mark.parametrize("code", CODES)
def test_mode_mask_matches_reference_round_shift(code):
    """Every (value, shift) situation the mask distinguishes, from shift 1 to 3."""
    values = np.arange(-17, 18, dtype=np.int64)
    for s in (1, 2, 3):
        want = round_shift(values, s, code)
        acc = values.reshape(-1, 1)
        out = np.zeros(acc.shape, np.int32)
        nk.requant(acc, epilogue(s, None, code, Overflow.SATURATE, 32, np.int32), out)
        np.testing.assert_array_equal(out[:, 0], want)


def test_stochastic_codes_are_refused():
    with pytest.raises(ValueError, match="deterministic"):
        rounding_mask(Rounding.STOCHASTIC)


@pytest.mark.parametrize("code", CODES)
def test_ties_every_mode_int32_and_int64_acc(code):
    acc = np.arange(-40, 41, dtype=np.int64).reshape(-1, 1).repeat(5, axis=1)
    shift = np.array([1, 2, 3, 0, -2], np.int32)
    for acc_dtype in (np.int32, np.int64):
        _assert_same(_both("requant", acc.astype(acc_dtype), epilogue(shift, None, code, Overflow.SATURATE, 8, np.int8),
                           out=np.zeros(acc.shape, np.int8)))


@pytest.mark.parametrize("code", CODES)
def test_requant_wide_products_and_extreme_shifts(code):
    """int64 accumulators near +-2**62 and +-2**63 times multipliers up to 2**31 - 1
    (products of up to 94 bits), shifts -63..127: both rounding and left shifts."""
    rng = np.random.default_rng(code.code)
    edges = np.array([-2**63, 2**63 - 1, -2**62, 2**62, 2**62 - 1, -2**62 - 1, 0, 1, -1,
                      3 << 40, -(3 << 40), 2**31, -2**31], dtype=np.int64)
    acc = np.concatenate([edges, rng.integers(-2**63, 2**63 - 1, 51, dtype=np.int64, endpoint=True),
                          rng.integers(-2**20, 2**20, 32, dtype=np.int64)]).reshape(-1, 1)
    shifts = np.array([-63, -40, -31, -1, 0, 1, 31, 32, 62, 63, 64, 65, 93, 94, 95, 126, 127], np.int32)
    acc = np.repeat(acc, shifts.size, axis=1)
    mults = rng.integers(1, 2**31, shifts.size).astype(np.int64)
    mults[:3] = [2**31 - 1, 1, 2**30]
    for multiplier in (None, mults):
        for overflow in OVERFLOW_CODES:
            for bits, dtype in ((8, np.int8), (17, np.int32), (32, np.int32)):
                epi = epilogue(shifts, multiplier, code, overflow, bits, dtype,
                               overflow is Overflow.SATURATE_SYMMETRIC)
                _assert_same(_both("requant", acc, epi, out=np.zeros(acc.shape, dtype)))


def _gemm_case(rng, x_dtype, w_dtype, m, n, k, code=Rounding.HALF_EVEN, overflow=Overflow.SATURATE,
               with_multiplier=False):
    x, w = _ints(rng, x_dtype, (m, k)), _ints(rng, w_dtype, (n, k))
    acc_dtype = gemm_kind(x_dtype, w_dtype).acc
    bias = rng.integers(-2**20, 2**20, n).astype(acc_dtype)
    _assert_same(_both("gemm", x, w, bias, out=np.zeros((m, n), acc_dtype)))
    if with_multiplier:
        multiplier = rng.integers(2**30, 2**31, n).astype(np.int64)
        shift = rng.integers(31, 60, n).astype(np.int32)
    else:
        multiplier, shift = None, rng.integers(-1, 24, n).astype(np.int32)
    epi = epilogue(shift, multiplier, code, overflow, 8, np.int8, overflow is Overflow.WRAP)
    got, want = np.zeros((m, n), np.int8), np.zeros((m, n), np.int8)
    assert gemm_requant(nk, x, w, bias, epi, got) == gemm_requant(ref, x, w, bias, epi, want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("m", [1, MR - 1, MR + 1, MC - 1, MC, MC + 1])
def test_gemm_row_block_boundaries(m):
    rng = np.random.default_rng(m)
    _gemm_case(rng, np.int8, np.int8, m, NR + 3, 37)
    _gemm_case(rng, np.int16, np.int8, m, 5, 19, code=Rounding.FLOOR, overflow=Overflow.SATURATE_SYMMETRIC,
               with_multiplier=True)


@pytest.mark.parametrize("n", [1, NR - 1, NR + 1, NC - 1, NC, NC + 1])
def test_gemm_column_block_boundaries(n):
    rng = np.random.default_rng(100 + n)
    _gemm_case(rng, np.int8, np.int8, 6, n, 23, code=Rounding.HALF_UP, overflow=Overflow.WRAP)
    _gemm_case(rng, np.int16, np.int16, 3, n, 11, code=Rounding.JAM, with_multiplier=True)


@pytest.mark.parametrize("k", [1, 2, KC - 1, KC, KC + 1, 2 * KC + 3])
def test_gemm_depth_block_boundaries(k):
    rng = np.random.default_rng(200 + k)
    _gemm_case(rng, np.int8, np.int8, 5, 6, k, with_multiplier=True)
    _gemm_case(rng, np.int16, np.int16, 5, 3, k, code=Rounding.AWAY)


def test_gemm_int8_all_min_at_largest_k():
    """-128 x -128 summed 65536 times is 2**30: the int32 accumulator's worst case."""
    x = np.full((MR + 1, 65536), -128, np.int8)
    w = np.full((2, 65536), -128, np.int8)
    out = np.zeros((MR + 1, 2), np.int32)
    nk.gemm(x, w, None, out)
    assert (out == 2**30).all()


def test_gemm_int16_extremes_sum_beyond_int32():
    x = np.full((3, 300), -32768, np.int16)
    w = np.full((5, 300), -32768, np.int16)
    _assert_same(_both("gemm", x, w, None, out=np.zeros((3, 5), np.int64)))


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("shifts", [(0, 0, 1), (3, 0, 2), (0, 0, -3), (46, 10, 50), (40, 46, 1), (46, 46, -5)])
def test_add_requant_alignment_up_to_the_int64_limit(code, shifts):
    """Alignment shifts up to limits.ADD_INT64_MAX_LSHIFT sum exactly in int64."""
    rng = np.random.default_rng(code.code)
    a, b = _ints(rng, np.int16, 200), _ints(rng, np.int16, 200)
    a[:4], b[:4] = [-32768, 32767, 0, -1], [-32768, -32768, 1, 1]
    a_lshift, b_lshift, shift = shifts
    for overflow in OVERFLOW_CODES:
        epi = epilogue(shift, None, code, overflow, 12, np.int16, code is Rounding.AWAY)
        _assert_same(_both("add_requant", a, b, a_lshift, b_lshift, epi, out=np.zeros(200, np.int16)))


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("fracs", [(47, 0, 10), (60, 0, -2), (0, 63, 10), (73, 10, 0), (0, 200, 90), (10**9, 0, 10**9)])
def test_add_beyond_the_int64_alignment_matches_the_reference(code, fracs):
    """Larger alignments go to the exact reference path (clamped where the result no longer changes)."""
    rng = np.random.default_rng(code.code)
    a, b = _ints(rng, np.int16, 200), _ints(rng, np.int8, 200)
    a[:4], b[:4] = [-32768, 32767, 0, -1], [-128, 127, 1, 0]
    for overflow in ("saturate", "wrap", "saturate_symmetric"):
        kw = dict(out_bits=12, rounding=code, overflow=overflow)
        want = kernels.add(a, fracs[0], b, fracs[1], fracs[2], backend="reference", **kw)
        np.testing.assert_array_equal(kernels.add(a, fracs[0], b, fracs[1], fracs[2], backend="numba", **kw), want)


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_ties_saturation_and_nan(code, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 127.5, -128.5, 127.49, 128.0, -129.0, 1e30, -1e30,
                  *(np.arange(-24, 25) / 8)], dtype=dtype)
    for frac, bits, out_dtype in ((0, 8, np.int8), (2, 8, np.int8), (-1, 5, np.int8), (3, 16, np.int16),
                                  (1, 32, np.int32)):
        _assert_same(_both("quantize", x, frac, code, bits, out=np.zeros(x.shape, out_dtype)))


@pytest.mark.parametrize("code", CODES)
def test_avgpool_round_div_ties(code):
    """Windows of 2 and 4 give exact halves and quarters; 3 x 1 windows give thirds."""
    x = np.arange(-36, 36, dtype=np.int8).reshape(1, 6, 4, 3)
    for kernel, stride in (((2, 1), (1, 1)), ((2, 2), (2, 2)), ((3, 1), (1, 1)), ((1, 1), (1, 1))):
        oh, ow = (6 - kernel[0]) // stride[0] + 1, (4 - kernel[1]) // stride[1] + 1
        out = np.zeros((1, oh, ow, 3), np.int8)
        (_, got), (_, want) = _both("avgpool", x, kernel, stride, code, out=out)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32])
def test_maxpool_and_float_avgpool(dtype):
    x = np.random.default_rng(5).normal(0, 40, (2, 7, 5, 3)).astype(dtype)
    out = np.zeros((2, 3, 4, 3), dtype)
    (_, got), (_, want) = _both("maxpool", x, (3, 2), (2, 1), out=out)
    np.testing.assert_array_equal(got, want)
    (_, got), (_, want) = _both("avgpool", x, (3, 2), (2, 1), Rounding.HALF_EVEN, out=out)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_lut_covers_the_whole_table(dtype):
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype)
    table = np.random.default_rng(7).integers(-100, 100, x.size).astype(np.int16)
    (_, got), (_, want) = _both("lut", x, table, out=np.zeros(x.size, np.int16))
    np.testing.assert_array_equal(got, want)


def test_float_gemm_within_tolerance():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((9, 70)).astype(np.float32), rng.standard_normal((5, 70)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    out = np.zeros((9, 5), np.float32)
    nk.gemm(x, w, bias, out)
    exact = x.astype(np.float64) @ w.T.astype(np.float64) + bias
    tolerance = 64 * np.finfo(np.float32).eps * np.sqrt(70) * np.abs(exact).max()
    assert np.abs(out - exact).max() <= tolerance


def test_out_bits_beyond_32_are_refused():
    out = np.zeros((1, 1), np.int8)
    with pytest.raises(ValueError, match="out_bits"):
        nk.requant(np.zeros((1, 1), np.int32), epilogue(0, None, Rounding.HALF_EVEN, Overflow.SATURATE, 33, np.int8),
                   out)
