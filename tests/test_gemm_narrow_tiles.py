"""The int8 AVX-512 VNNI GEMM's register-tile layouts, chosen per packed layer from N (16-column strips
with 24-row tiles for N <= 16, 32 columns with 12-row tiles for N <= 32, else 48 columns with 8-row tiles):
bit-identical with the reference backend at every strip and tile edge, in every epilogue (int32-lane and
exact), for int8 and int16 (a16w8) activations, with any thread count."""
import numpy as np
import pytest

from fixedpoint import kernels
from fixedpoint.kernels.kinds import gemm_kind
from fixedpoint.kernels.modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding
from backend_calls import epilogue, extreme_ints
from gemm_checks import (OUTPUTS, OVERFLOWS, check as _check, check_edges, check_exact as _check_exact,
                         check_rests_near_the_int32_bounds, check_rounding_constant_at_its_bound,
                         epilogues as _epilogues, forced_path)

c = pytest.importorskip("fixedpoint.kernels.c_backend")

NS = [1, 15, 16, 17, 31, 32, 33, 48, 49, 97]   # 49 and 97: several 32-column strips
# Small-M kernels (1..4), 5, MR - 1, MR, MR + 1 of each layout (MR = 24, 12, 8), and last tiles at and one
# past each part kernel (4 and 8 of 12 rows: 16, 17, 20, 21; 4 and 12 of 24: 28, 29, 36, 37).
MS = [1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 16, 17, 20, 21, 23, 24, 25, 28, 29, 36, 37]
KS = [1, 3, 4, 5, 9, 144, 1023]
S8 = gemm_kind(np.int8, np.int8)
A16W8 = gemm_kind(np.int16, np.int8)


@pytest.fixture
def vnni():
    forced_path("avx512vnni", "the narrow tiles are a layout of the AVX-512 VNNI path")
    yield
    c.force_path(None)


@pytest.mark.parametrize("n", NS)
def test_strip_and_tile_edges(vnni, n):
    """Every M and K edge at every N edge: exact int32 out, the int32-lane epilogue and the exact one."""
    check_edges(n, MS, KS, n)


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
@pytest.mark.parametrize("overflow", OVERFLOWS)
def test_every_mode_overflow_and_output(vnni, rounding, overflow):
    """Each deterministic rounding and overflow mode with int8/int16/int32 outputs (and narrower out_bits),
    relu on and off, on one shape per layout with a partial last tile, the small-M kernels among them."""
    rng = np.random.default_rng(rounding.code * 3 + overflow.code)
    for m, n, k in ((53, 16, 9), (3, 13, 9), (29, 32, 144), (2, 27, 5), (19, 49, 144)):
        x, w = extreme_ints(rng, np.int8, (m, k)), extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**16, 2**16, n).astype(np.int32)
        for out_bits, out_dtype, relu in OUTPUTS:
            for epi in _epilogues(rng, n, rounding, overflow, out_bits, out_dtype, relu):
                _check(x, w, bias, epi)


@pytest.mark.parametrize("n", [1, 16, 17, 32, 33])
@pytest.mark.parametrize("value", [-128, 127])
def test_extreme_operands(vnni, n, value):
    """All x and w at -128 or 127 up to K = 65536 (the int8 bound): the corrections and the int32 sums exact;
    a saturating and a wrapping epilogue on those sums."""
    for m, k in ((25, 65536), (4, 65536), (13, 1023), (1, 5)):
        x = np.full((m, k), value, np.int8)
        w = np.full((n, k), -128, np.int8)
        w[::2] = value
        bias = np.full(n, -1, np.int32)
        _check_exact(x, w, bias)
        for overflow in (Overflow.SATURATE, Overflow.WRAP):
            _check(x, w, bias, epilogue(np.full(n, 3), None, Rounding.HALF_EVEN, overflow, 16, np.int16))


@pytest.mark.parametrize("n", [1, 16, 17, 32, 33, 97])
def test_threads_split_every_layout_identically(vnni, n):
    """1..4 threads: the same integers and overflow counts as the reference, on many tiles and on few rows."""
    rng = np.random.default_rng(100 + n)
    for m, k in ((3, 144), (97, 9), (250, 144)):
        x, w = extreme_ints(rng, np.int8, (m, k)), extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**15, 2**15, n).astype(np.int32)
        epis = _epilogues(rng, n, Rounding.HALF_AWAY, Overflow.SATURATE, 8, np.int8, True)
        for threads in (1, 2, 3, 4):
            _check_exact(x, w, bias, threads)
            for epi in epis:
                _check(x, w, bias, epi, threads)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 31, 32, 33, 49])
def test_a16w8_on_the_layout_of_n(vnni, n):
    """int16 x int8 splits x into bytes that run the same packed strips: exact int64 out and epilogues."""
    rng = np.random.default_rng(200 + n)
    for k in (1, 5, 9, 144):
        w = extreme_ints(rng, np.int8, (n, k))
        bias = rng.integers(-2**40, 2**40, n).astype(np.int64)
        for m in (1, 2, 3, 4, 5, 11, 12, 13, 23, 24, 25, 50):
            x = extreme_ints(rng, np.int16, (m, k))
            _check_exact(x, w, bias, threads=1 + m % 3)
            for epi in _epilogues(rng, n, Rounding.HALF_EVEN, Overflow.SATURATE, 16, np.int16, m % 2 == 0):
                _check(x, w, bias, epi, threads=1 + m % 3)


def test_prepared_layers_match_the_reference(vnni):
    """The public prepared linear and conv2d (3x3 on 1 and 16 channels, 16 and 32 filters) on the C backend."""
    rng = np.random.default_rng(5)
    for c_in, c_out in ((1, 16), (16, 32), (3, 8)):
        x = extreme_ints(rng, np.int8, (2, 9, 8, c_in))
        w = extreme_ints(rng, np.int8, (c_out, 3, 3, c_in))
        bias = rng.integers(-3000, 3000, c_out).astype(np.int32)
        call = dict(padding=1, shift=rng.integers(0, 12, c_out), relu=True)
        want = kernels.conv2d(x, w, bias, backend="reference", **call)
        np.testing.assert_array_equal(kernels.prepare_conv2d(w, bias, backend="c", **call)(x), want)
    x, w = extreme_ints(rng, np.int8, (40, 9)), extreme_ints(rng, np.int8, (16, 9))
    for rounding in ("half_even", "jam", "mag_trunc"):
        want = kernels.linear(x, w, shift=7, rounding=rounding, relu=True, backend="reference")
        np.testing.assert_array_equal(kernels.prepare_linear(w, shift=7, rounding=rounding, relu=True,
                                                             backend="c")(x), want)


@pytest.mark.parametrize("k", [1, 9, 144])
def test_packed_bytes_follow_the_layout(vnni, k):
    """fxp_gemm_s8_packed_bytes: header (64) + alignment (64) + the avx512 header (64) + ceil(N / NR)
    strips of kp * NR bytes, NR corrections and 64 bytes of accumulator bound, NR = 16, 32 or 48 from N (32
    wherever its strips pad N less than 48's); packing stays inside it."""
    kp = (k + 3) // 4 * 4
    for n in NS + [96, 97]:
        nr = 16 if n <= 16 else 32 if n <= 32 or -(-n // 32) * 32 < -(-n // 48) * 48 else 48
        size = int(c.lib.fxp_gemm_s8_packed_bytes(n, k))
        assert size == 192 + -(-n // nr) * ((kp + 4) * nr + 64)
        w = np.arange(n * k).reshape(n, k).astype(np.int8)
        buffer = np.full(size + 256, 0xA5, np.uint8)
        c.lib.fxp_gemm_s8_pack(c.ffi.from_buffer("int8_t[]", w), c.ffi.NULL, n, k, c.ffi.from_buffer(buffer))
        assert (buffer[size:] == 0xA5).all()


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_shifts_above_31_on_accumulators_near_the_int32_bounds(vnni, rounding):
    """Shifts 31..127 on accumulators beyond +-2**30 (a bias near the int32 bound), where a shift above 31 leaves
    only the sign to decide: the int32 lanes give the reference's integers."""
    rng = np.random.default_rng(3)
    for n in (16, 32, 48):
        k = 4
        w = extreme_ints(rng, np.int8, (n, k))
        bias = rng.choice([2**31 - 2**16, -2**31 + 2**16, 2**30, -2**30, 1, -1, 0], n).astype(np.int32)
        x = extreme_ints(rng, np.int8, (29, k))
        shift = rng.choice([31, 32, 33, 127], n).astype(np.int32)
        for relu in (False, True):
            _check(x, w, bias, epilogue(shift, None, rounding, Overflow.SATURATE, 8, np.int8, relu))


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_int8_outputs_of_whole_strips_four_vectors_at_a_time(vnni, rounding):
    """int8 outputs of whole 16- and 32-column strips go four vectors at a time through two saturating packs,
    with the overflow count and a narrower range's clamp in int16 lanes: rows (4 or 2 per group) with a
    remainder left to the vector-at-a-time loop, contiguous rows (N = 16, 32) and strided ones (N = 64, 160),
    every overflow mode, relu, out_bits 8 and 5, accumulators far outside the int16 range."""
    rng = np.random.default_rng(rounding.code + 60)
    for n in (16, 32, 64, 160):
        k = 144
        w, bias = extreme_ints(rng, np.int8, (n, k)), rng.integers(-2**22, 2**22, n).astype(np.int32)
        for m in (5, 13, 24, 26, 27, 50):
            x = extreme_ints(rng, np.int8, (m, k))
            for overflow in OVERFLOWS:
                for out_bits, relu in ((8, False), (8, True), (5, False)):
                    _check(x, w, bias, epilogue(rng.integers(0, 20, n), None, rounding, overflow, out_bits, np.int8,
                                                relu))


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_short_k_tiles_requantized_in_registers(vnni, rounding):
    """K <= 16 (one to four quads of k) with int8 outputs runs a kernel that requantizes each group of
    accumulators in registers: whole strips four vectors at a time (N = 16, 32) and part strips (N = 9, 24)
    a vector at a time, row remainders of both, part tiles (M = 12, 28), every overflow mode, relu and a
    narrower range (out_bits 5), accumulators pushed past int16 by the bias; both rounding forms (a strip with
    one shift above 30 takes the threshold form in every column)."""
    rng = np.random.default_rng(rounding.code + 120)
    for k in (1, 4, 5, 8, 9, 12, 13, 16):
        for n in (9, 16, 24, 32):
            w, bias = extreme_ints(rng, np.int8, (n, k)), rng.integers(-2**20, 2**20, n).astype(np.int32)
            for m in (5, 7, 12, 26, 28):
                x = extreme_ints(rng, np.int8, (m, k))
                for overflow in OVERFLOWS:
                    for out_bits, relu in ((8, False), (8, True), (5, False)):
                        shift = rng.integers(0, 16, n)
                        shift[rng.integers(n)] = rng.choice((0, 31, 40))
                        _check(x, w, bias, epilogue(shift, None, rounding, overflow, out_bits, np.int8, relu))


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_short_k_a16w8_tiles_combine_both_halves_in_registers(vnni, rounding):
    """int16 x int8 with K <= 16 and accumulators inside int32: the short-K kernel runs both byte halves and
    forms 256 H + L + bias in registers, for int8 and int16 outputs (int8 four vectors at a time on whole
    strips), whole and part strips, row remainders and part tiles, biases near both ends of what int32 leaves,
    both rounding forms; wrapped outputs take the buffered epilogue."""
    rng = np.random.default_rng(rounding.code + 140)
    for k in (1, 4, 9, 13, 16):
        room = 2**31 - 1 - k * (2**22 + 2**15)
        for n in (9, 16, 32):
            w = extreme_ints(rng, np.int8, (n, k))
            bias = rng.integers(-2**20, 2**20, n).astype(np.int64)
            if k in (4, 13):        # the threshold form (no room for the rounding constant); else the short one
                bias[0], bias[-1] = room, -room
            for m in (7, 12, 26):
                x = extreme_ints(rng, np.int16, (m, k))
                for overflow in OVERFLOWS:
                    for out_bits, out_dtype, relu in ((8, np.int8, False), (5, np.int8, True), (16, np.int16, False),
                                                      (12, np.int16, True)):
                        shift = rng.integers(8, 24, n)
                        shift[rng.integers(n)] = rng.choice((8, 31, 40))
                        _check(x, w, bias, epilogue(shift, None, rounding, overflow, out_bits, out_dtype, relu))


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_rounding_constant_added_in_int32_up_to_its_bound(vnni, rounding):
    check_rounding_constant_at_its_bound(rounding, (16, 32), rounding.code + 80)


@pytest.mark.parametrize("rounding", list(DETERMINISTIC_ROUNDINGS))
def test_every_rest_of_small_shifts_near_the_int32_bounds(vnni, rounding):
    check_rests_near_the_int32_bounds(rounding, (16, 48, 97), rounding.code + 40)
