"""Checks shared by the int8 GEMM tests of the SIMD paths: the prepared C GEMM (requantizing and exact)
against the reference backend, and the epilogues that exercise the int32-lane and the exact paths."""
import numpy as np
import pytest

from fixedpoint.kernels.kinds import gemm_kind
from fixedpoint.kernels.modes import Overflow
from fixedpoint.kernels.reference import backend as ref
from backend_calls import epilogue, gemm_requant

c = pytest.importorskip("fixedpoint.kernels.c_backend")

OVERFLOWS = [Overflow.SATURATE, Overflow.WRAP, Overflow.SATURATE_SYMMETRIC]
# (out_bits, out dtype, relu): full containers and narrower out_bits.
OUTPUTS = [(8, np.int8, True), (5, np.int8, False), (16, np.int16, False), (12, np.int16, True),
           (32, np.int32, False), (20, np.int32, True)]


def lane_shifts(rng, n):
    """Shifts the int32 lanes take (0..127), mostly small so that ties and exact values are frequent; shifts
    above 31 (sign-only results) among them."""
    shift = rng.integers(0, 6, n)
    large = rng.random(n) < 0.25
    shift[large] = rng.integers(6, 32, int(large.sum()))
    huge = rng.random(n) < 0.1
    shift[huge] = rng.choice([32, 33, 40, 64, 127], int(huge.sum()))
    shift[:5] = [0, 31, 1, 32, 127][:n]
    return shift.astype(np.int32)


def epilogues(rng, n, rounding, overflow, out_bits, out_dtype, relu):
    """The int32-lane epilogue and the exact ones: negative shifts, and multipliers."""
    lanes = lane_shifts(rng, n)
    wide = rng.integers(-5, 45, n).astype(np.int32)
    wide[:2] = [-5, 44][:n]
    multiplier = rng.integers(1, 2**31, n, dtype=np.int64)
    return [epilogue(shift, mult, rounding, overflow, out_bits, out_dtype, relu)
            for shift, mult in ((lanes, None), (wide, None), (np.minimum(lanes, 31) + 20, multiplier))]


def check(x, w, bias, epi, threads=1):
    kind = gemm_kind(x.dtype, w.dtype)
    got = np.full((x.shape[0], w.shape[0]), 7, epi.out_dtype)
    want = np.full(got.shape, -7, epi.out_dtype)
    count = c.prepare_gemm(w, bias, kind, epi, threads).gemm_requant(x, got)
    assert count == gemm_requant(ref, x, w, bias, epi, want)
    np.testing.assert_array_equal(got, want)


def check_exact(x, w, bias, threads=1):
    """The exact accumulator (no epilogue) of the prepared and of the unprepared GEMM."""
    kind = gemm_kind(x.dtype, w.dtype)
    want = np.empty((x.shape[0], w.shape[0]), kind.acc)
    ref.gemm(x, w, bias, want)
    got = np.full(want.shape, 7, kind.acc)
    c.prepare_gemm(w, bias, kind, None, threads).gemm(x, got)
    np.testing.assert_array_equal(got, want)
    got[...] = 7
    c.gemm(x, w, bias, got)
    np.testing.assert_array_equal(got, want)
