"""The 256-bit int8 GEMM of the AVX2 path (vpmaddwd on sign-extended int16 pairs) and the AVX-VNNI path
(vpdpbusd on x + 128 with the -128 * sum w correction; its EVEX twin where the CPU has AVX-512 VNNI but not
AVX-VNNI): one driver, 6 x 16 register tiles, x packed once per call, the int32-lane epilogue in threshold
form.  Bit-identical with the reference backend at every tile, strip and k-group edge, in every rounding
and overflow mode and output width, prepared and unprepared, with any thread count."""
import numpy as np
import pytest

from fixedpoint.kernels.modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding
from backend_calls import extreme_ints
from gemm_checks import (OUTPUTS, OVERFLOWS, c, check, check_edges, check_exact, check_rests_near_the_int32_bounds,
                         check_rounding_constant_at_its_bound, epilogues, forced_path)

# MR - 1, MR, MR + 1 of the 6-row tiles and two tiles and a bit; NR = 16 columns per strip; k at and past
# the pairs (AVX2) and quads (AVX-VNNI) of a 32-bit lane and the 16-k packing chunks.
MS = [1, 2, 5, 6, 7, 12, 13, 40]
NS = [1, 15, 16, 17, 33, 48]
KS = [1, 2, 3, 4, 5, 15, 16, 17, 33, 784]


@pytest.fixture(params=["avx2", "avxvnni"])
def ymm_path(request):
    forced_path(request.param, f"this machine does not run the {request.param} path")
    yield
    c.force_path(None)


@pytest.mark.parametrize("n", NS)
def test_edges_exact_and_requantized(ymm_path, n):
    check_edges(n, MS, KS, n)


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_every_mode_overflow_and_output(ymm_path, rounding, overflow):
    rng = np.random.default_rng(rounding.code * 3 + overflow.code + 500)
    for m, n, k in ((13, 16, 9), (3, 17, 9), (7, 33, 144)):
        x, w = extreme_ints(rng, np.int8, (m, k)), extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**16, 2**16, n).astype(np.int32)
        for out_bits, out_dtype, relu in OUTPUTS:
            for epi in epilogues(rng, n, rounding, overflow, out_bits, out_dtype, relu):
                check(x, w, bias, epi)


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_every_rest_of_small_shifts_near_the_int32_bounds(ymm_path, rounding):
    check_rests_near_the_int32_bounds(rounding, (33,), rounding.code + 700)


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_rounding_constant_added_in_int32_up_to_its_bound(ymm_path, rounding):
    check_rounding_constant_at_its_bound(rounding, (16, 33), rounding.code + 520)


def test_extreme_operands_at_the_largest_k(ymm_path):
    """All -128 (and 127) operands at K = 65536: every pair sum at its extreme, the int32 sums exact."""
    for value in (-128, 127):
        x = np.full((7, 65536), value, np.int8)
        w = np.full((17, 65536), -128, np.int8)
        w[::2] = value
        check_exact(x, w, np.full(17, -1, np.int32))


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_threads_split_tiles_identically(ymm_path, threads):
    """(strip, tile) pairs over 2..4 threads: the reference's integers and overflow counts, on few and on many
    tiles."""
    rng = np.random.default_rng(threads)
    for m, n, k in ((5, 17, 33), (61, 50, 144), (7, 3, 9)):
        x, w = extreme_ints(rng, np.int8, (m, k)), extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**15, 2**15, n).astype(np.int32)
        check_exact(x, w, bias, threads)
        for epi in epilogues(rng, n, Rounding.HALF_EVEN, Overflow.SATURATE, 8, np.int8, False):
            check(x, w, bias, epi, threads)
