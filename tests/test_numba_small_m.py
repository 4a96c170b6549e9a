"""The Numba GEMM's small-M dot-product path (fewer than ``SMALL_M`` x rows) against the reference backend:
bit-identical accumulators, requantized outputs and overflow counts at M = 1 .. SMALL_M (both sides of the
switch), odd K/N, all-extreme operands, every precision pair, plain and prepared (fused) calls."""
import sys

import numpy as np
import pytest

from fixedpoint.kernels.kinds import GEMM_KINDS, gemm_kind
from fixedpoint.kernels.modes import Overflow, Rounding
from fixedpoint.kernels.reference import backend as ref
from backend_calls import epilogue, gemm_requant

nk = pytest.importorskip("fixedpoint.kernels.numba_kernels")
gemm_module = sys.modules["fixedpoint.kernels.numba_kernels.gemm"]
SMALL_M = gemm_module.SMALL_M

PAIRS = [(k.x.type, k.w.type) for k in GEMM_KINDS if k.integer]
ROWS = sorted({1, 2, SMALL_M - 1, SMALL_M})
SHAPES = [(1, 1), (7, 13), (33, 131), (256, 784)]   # (N, K): odd sizes and the batch-1 MNIST layer


def _acc_dtype(x_dtype, w_dtype):
    return gemm_kind(x_dtype, w_dtype).acc


def _ints(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _operands(rng, pair, m, n, k):
    x_dtype, w_dtype = pair
    x, w = _ints(rng, x_dtype, (m, k)), _ints(rng, w_dtype, (n, k))
    bias = _ints(rng, np.int16, n).astype(_acc_dtype(*pair))
    return x, w, bias


def test_switch_is_between_one_and_a_full_tile():
    assert 1 < SMALL_M <= gemm_module.MR


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{np.dtype(p[0])}x{np.dtype(p[1])}")
@pytest.mark.parametrize("m", ROWS)
@pytest.mark.parametrize("n,k", SHAPES)
def test_gemm_plain_and_prepared_match_reference(pair, m, n, k):
    x, w, bias = _operands(np.random.default_rng(m * 1000 + n + k), pair, m, n, k)
    want = np.zeros((m, n), dtype=_acc_dtype(*pair))
    ref.gemm(x, w, bias, want)
    got = np.zeros_like(want)
    nk.gemm(x, w, bias, got)
    np.testing.assert_array_equal(got, want)
    prepared = nk.prepare_gemm(w, None, gemm_kind(x.dtype, w.dtype), None)
    got_unbiased = np.zeros_like(want)
    prepared.gemm(x, got_unbiased)
    np.testing.assert_array_equal(got_unbiased + bias, want)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{np.dtype(p[0])}x{np.dtype(p[1])}")
@pytest.mark.parametrize("m", ROWS)
def test_all_minimum_operands_sum_exactly(pair, m):
    """-min * -min at every k: the largest positive sum (2**30 at int8 K = 65536, beyond int32 for int16)."""
    x_dtype, w_dtype = pair
    k = 65536 if pair == (np.int8, np.int8) else 4099
    x = np.full((m, k), np.iinfo(x_dtype).min, dtype=x_dtype)
    w = np.full((3, k), np.iinfo(w_dtype).min, dtype=w_dtype)
    got = np.zeros((m, 3), dtype=_acc_dtype(*pair))
    nk.gemm(x, w, None, got)
    expected = int(np.iinfo(x_dtype).min) * int(np.iinfo(w_dtype).min) * k
    assert (got == expected).all()


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{np.dtype(p[0])}x{np.dtype(p[1])}")
@pytest.mark.parametrize("m", ROWS)
@pytest.mark.parametrize("multiplied", [False, True])
@pytest.mark.parametrize("overflow", [Overflow.SATURATE, Overflow.WRAP, Overflow.SATURATE_SYMMETRIC])
def test_fused_requant_matches_reference(pair, m, multiplied, overflow):
    n, k = 37, 61
    rng = np.random.default_rng(m + 10 * overflow.code + 100 * multiplied)
    x, w, bias = _operands(rng, pair, m, n, k)
    shift = rng.integers(-2, 20, size=n).astype(np.int32)
    multiplier = rng.integers(1, 2**31, size=n).astype(np.int64) if multiplied else None
    for rounding, relu in ((Rounding.HALF_EVEN, False), (Rounding.FLOOR, True), (Rounding.MAG_TRUNC, False)):
        epi = epilogue(shift, multiplier, rounding, overflow, 8, np.int8, relu)
        want = np.zeros((m, n), dtype=np.int8)
        count_want = gemm_requant(ref, x, w, bias, epi, want)
        got = np.zeros_like(want)
        count_got = gemm_requant(nk, x, w, bias, epi, got)
        np.testing.assert_array_equal(got, want)
        assert count_got == count_want
