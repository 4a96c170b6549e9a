"""Checks shared by the int8 GEMM tests of the SIMD paths: the prepared C GEMM (requantizing and exact)
against the reference backend, and the epilogues that exercise the int32-lane and the exact paths."""
import numpy as np
import pytest

from fixedpoint.kernels.kinds import gemm_kind
from fixedpoint.kernels.modes import Overflow, Rounding
from fixedpoint.kernels.reference import backend as ref
from backend_calls import epilogue, extreme_ints, gemm_requant

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


def forced_path(name, reason):
    """Run under SIMD path ``name`` (skip with ``reason`` where this machine lacks it), then back to the default."""
    if name not in c.supported_paths():
        pytest.skip(reason)
    c.force_path(name)


def check_edges(n, ms, ks, seed):
    """Every M and K edge of a path's tiles at one N: exact int32 out, the int32-lane epilogue and the exact one."""
    rng = np.random.default_rng(seed)
    for k in ks:
        w = extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**20, 2**20, n).astype(np.int32)
        for m in ms:
            x = extreme_ints(rng, np.int8, (m, k))
            check_exact(x, w, bias)
            for epi in epilogues(rng, n, Rounding.HALF_EVEN, Overflow.SATURATE, 8, np.int8, m % 2 == 1):
                check(x, w, bias, epi)


def check_rests_near_the_int32_bounds(rounding, ns, seed):
    """Shifts 1..31 on accumulators q * 2**s + r for rests 0, 1, half - 1, half, half + 1 and 2**s - 1 and
    quotients at the int32 ends, 0 and -1 (x = 0, so each accumulator is its column's bias): the rounding
    of every (odd, sign, rest) case, where the sum r + c of the threshold form is largest."""
    rng = np.random.default_rng(seed)
    for n in ns:
        shift = rng.integers(1, 32, n)
        unit = 2 ** shift.astype(np.int64)
        half = unit // 2
        rest = np.choose(rng.integers(0, 6, n), [0 * unit, 1 + 0 * unit, half - 1, half, half + 1, unit - 1])
        top, bottom = (2**31 - 1 - rest) // unit, -(2**31) // unit
        quotient = np.choose(rng.integers(0, 5, n), [top, bottom, 0 * unit, -1 + 0 * unit, top - 1])
        bias = (quotient * unit + rest).astype(np.int32)
        x, w = np.zeros((19, 8), np.int8), extreme_ints(rng, np.int8, (n, 8))
        for overflow in OVERFLOWS:
            for relu in (False, True):
                for out_bits, out_dtype in ((8, np.int8), (16, np.int16)):
                    check(x, w, bias, epilogue(shift.astype(np.int32), None, rounding, overflow, out_bits, out_dtype,
                                               relu))


def check_rounding_constant_at_its_bound(rounding, ns, seed):
    """A strip whose accumulators provably stay within bound = max |bias| + 128 sum |w| adds the rounding
    constant c <= 2**s in int32 lanes when bound + 2**s <= INT32_MAX: at that edge (the largest accumulator,
    all x and w at -128, is INT32_MAX - 2**s) and one to 2**s past it (the rests near the top), both forms give
    the reference's integers."""
    rng = np.random.default_rng(seed)
    k, s = 16, 20
    top = 2**31 - 1 - 2**s - 128 * 128 * k
    x = np.full((26, k), -128, np.int8)
    x[1::2, :] = rng.integers(-128, 128, (13, k))
    x[2, :3] = -127, -126, -125
    for n in ns:
        w = np.full((n, k), -128, np.int8)
        for past in (0, 1, 2**s // 2, 2**s - 1, 2**s):
            bias = np.full(n, top + past, np.int32)
            for overflow in (Overflow.SATURATE, Overflow.WRAP):
                check(x, w, bias, epilogue(np.full(n, s), None, rounding, overflow, 16, np.int16))
                check(x, w, bias, epilogue(rng.integers(0, s + 1, n), None, rounding, overflow, 8, np.int8, True))
