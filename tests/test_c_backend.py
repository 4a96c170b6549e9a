"""C backend: every SIMD path this CPU runs (portable forced too) bit-exact against the reference
backend on random and adversarial inputs, and the path selection itself."""
import numpy as np
import pytest

from fixedpoint.kernels.kinds import GEMM_KINDS
from fixedpoint.kernels.kinds import gemm_kind
from fixedpoint.kernels.modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding
from fixedpoint.kernels.reference import backend as ref
from backend_calls import epilogue, extreme_ints, gemm_requant

c = pytest.importorskip("fixedpoint.kernels.c_backend")

ROUNDING_CODES = list(DETERMINISTIC_ROUNDINGS)
OVERFLOW_CODES = [Overflow.SATURATE, Overflow.WRAP, Overflow.SATURATE_SYMMETRIC]
INT_KINDS = [(k.x.type, k.w.type, k.acc.type) for k in GEMM_KINDS if k.integer]
# Below, at and above the micro-kernel and packing block sizes, K = 1 and K not a multiple of 4.
SHAPES = [(1, 1, 1), (3, 5, 7), (7, 33, 4), (16, 48, 64), (17, 49, 65), (33, 97, 259), (2, 300, 1)]


@pytest.fixture(params=c.supported_paths())
def path(request):
    c.force_path(request.param)
    yield request.param
    c.force_path(None)


def _params(rng, n):
    shift = rng.integers(-3, 40, size=n).astype(np.int32)
    multiplier = rng.integers(1, 2**31, size=n, dtype=np.int64)
    return shift, multiplier


def test_simd_path_reports_the_forced_path(path):
    assert c.simd_path() == path
    assert c.supported_paths()[0] == "portable"


def test_force_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="accepted"):
        c.force_path("sse9")


@pytest.mark.parametrize("xt,wt,acc", INT_KINDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_integer_gemm_exact(path, xt, wt, acc, m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    x, w = extreme_ints(rng, xt, (m, k)), extreme_ints(rng, wt, (n, k))
    bias = extreme_ints(rng, np.int16, (n,)).astype(acc)
    got, want = np.empty((m, n), acc), np.empty((m, n), acc)
    c.gemm(x, w, bias, got)
    ref.gemm(x, w, bias, want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("xt,wt,acc", INT_KINDS)
def test_most_negative_products_sum_exactly(path, xt, wt, acc):
    k = 4096 if xt is np.int16 else 65536
    x = np.full((3, k), np.iinfo(xt).min, xt)
    w = np.full((5, k), np.iinfo(wt).min, wt)
    got = np.empty((3, 5), acc)
    bias = np.full(5, -1, acc) if acc is np.int32 else None
    c.gemm(x, w, bias, got)
    total = k * int(np.iinfo(xt).min) * int(np.iinfo(wt).min) + (-1 if bias is not None else 0)
    assert (got == total).all()


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
@pytest.mark.parametrize("overflow", OVERFLOW_CODES)
@pytest.mark.parametrize("xt,wt,acc", INT_KINDS)
def test_gemm_requant_every_mode(path, rounding, overflow, xt, wt, acc):
    rng = np.random.default_rng(rounding.code * 7 + overflow.code)
    m, n, k = 19, 37, 70
    x, w = extreme_ints(rng, xt, (m, k)), extreme_ints(rng, wt, (n, k))
    bias = extreme_ints(rng, np.int16, (n,)).astype(acc)
    shift, multiplier = _params(rng, n)
    for out_bits, out_dtype, relu in ((8, np.int8, False), (5, np.int8, True), (16, np.int16, False), (32, np.int32, True)):
        got, want = np.empty((m, n), out_dtype), np.empty((m, n), out_dtype)
        epi = epilogue(shift, multiplier, rounding, overflow, out_bits, out_dtype, relu)
        count = gemm_requant(c, x, w, bias, epi, got)
        expected = gemm_requant(ref, x, w, bias, epi, want)
        np.testing.assert_array_equal(got, want)
        assert count == expected


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
def test_requant_ties_wide_products_and_left_shifts(path, rounding):
    ties = np.array([[-5, -3, -1, 1, 3, 5, 7, -7]], np.int64) * 2**19  # odd multiples of 2**19: ties at shift 20
    acc64 = np.concatenate([
        ties,
        np.array([[2**62, -(2**63), 2**63 - 1, -1, 1, 0, 123456789012, -98765432109]], np.int64),
    ])
    shift = np.array([20, 20, 20, 20, 62, 40, -5, 0], np.int32)
    multiplier = np.array([1, 3, 2**31 - 1, 5, 2**31 - 1, 2**30 + 1, 7, 1], np.int64)
    for acc in (acc64, np.clip(acc64, -(2**31), 2**31 - 1).astype(np.int32)):
        for overflow in OVERFLOW_CODES:
            got, want = np.empty(acc.shape, np.int32), np.empty(acc.shape, np.int32)
            epi = epilogue(shift, multiplier, rounding, overflow, 32, np.int32)
            count = c.requant(acc, epi, got)
            expected = ref.requant(acc, epi, want)
            np.testing.assert_array_equal(got, want)
            assert count == expected


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_ties_and_specials(path, rounding, dtype):
    rng = np.random.default_rng(rounding.code)
    x = np.concatenate([
        np.arange(-9, 10) / 4,
        [np.nextafter(0.5, 0.0), np.nextafter(-0.5, 0.0), np.inf, -np.inf, np.nan, 1e30, -1e30, 0.0, -0.0],
        rng.standard_normal(101) * 40,
    ]).astype(dtype)
    for frac, out_bits, out_dtype in ((0, 8, np.int8), (3, 8, np.int8), (1, 16, np.int16), (0, 32, np.int32), (126, 24, np.int32)):
        got, want = np.empty(x.shape, out_dtype), np.empty(x.shape, out_dtype)
        counts = c.quantize(x, frac, rounding, out_bits, got)
        expected = ref.quantize(x, frac, rounding, out_bits, want)
        np.testing.assert_array_equal(got, want)
        assert counts == expected


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_max_pool_channel_vectors_and_edges(path, dtype):
    """Channel counts below, at and past one and two 64-byte vectors, windows and strides of every shape."""
    rng = np.random.default_rng(8)
    for c_in in (1, 15, 32, 33, 64, 65, 130):
        x = extreme_ints(rng, dtype, (2, 5, 7, c_in))
        for kernel, stride in (((1, 1), (1, 1)), ((2, 2), (2, 2)), ((3, 2), (1, 3)), ((5, 7), (1, 1))):
            oh, ow = (5 - kernel[0]) // stride[0] + 1, (7 - kernel[1]) // stride[1] + 1
            got, want = np.full((2, oh, ow, c_in), 7, dtype), np.empty((2, oh, ow, c_in), dtype)
            c.maxpool(x, kernel, stride, got)
            ref.maxpool(x, kernel, stride, want)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
def test_pools_and_add(path, rounding):
    rng = np.random.default_rng(5)
    x = extreme_ints(rng, np.int16, (2, 9, 8, 300))
    for kernel, stride in (((3, 2), (2, 2)), ((9, 8), (1, 1))):
        oh, ow = (9 - kernel[0]) // stride[0] + 1, (8 - kernel[1]) // stride[1] + 1
        got, want = np.empty((2, oh, ow, 300), np.int16), np.empty((2, oh, ow, 300), np.int16)
        c.avgpool(x, kernel, stride, rounding, got)
        ref.avgpool(x, kernel, stride, rounding, want)
        np.testing.assert_array_equal(got, want)
        c.maxpool(x, kernel, stride, got)
        ref.maxpool(x, kernel, stride, want)
        np.testing.assert_array_equal(got, want)
    a, b = extreme_ints(rng, np.int8, (1000,)), extreme_ints(rng, np.int8, (1000,))
    for overflow in OVERFLOW_CODES:
        got, want = np.empty(1000, np.int8), np.empty(1000, np.int8)
        epi = epilogue(2, None, rounding, overflow, 8, np.int8)
        count = c.add_requant(a, b, 3, 0, epi, got)
        assert count == ref.add_requant(a, b, 3, 0, epi, want)
        np.testing.assert_array_equal(got, want)


def test_float_gemm_close_to_float64(path):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((17, 130)), rng.standard_normal((49, 130))
    bias = rng.standard_normal(49)
    want = x @ w.T + bias
    got64 = np.empty((17, 49))
    c.gemm(x, w, bias, got64)
    np.testing.assert_allclose(got64, want, rtol=1e-12, atol=1e-12)
    got32 = np.empty((17, 49), np.float32)
    c.gemm(x.astype(np.float32), w.astype(np.float32), bias.astype(np.float32), got32)
    np.testing.assert_allclose(got32, want, rtol=1e-4, atol=1e-4)


def test_peak_probes_report_positive_rates():
    peaks = c.peak_gops(seconds=0.02)
    assert set(peaks) == {"fp32_fma", "int8_dot"} | ({"bf16_dot"} if c.bf16_supported() else set())
    assert all(value > 0 for value in peaks.values())


@pytest.mark.parametrize("xt", [np.int8, np.int16], ids=["i8", "a16w8"])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 8, 9])
@pytest.mark.parametrize("n,k", [(1, 1), (47, 3), (48, 4), (49, 5), (96, 64), (97, 785), (150, 9)])
def test_int8_weight_tiles_small_m_and_the_register_epilogue(path, xt, m, n, k):
    """Every tile shape (small-M kernels for 1..4 rows, full tiles with masked rows), strip edges,
    and both epilogues: int32 lanes (shifts in [0, 31], no multiplier) and the exact int64 path;
    int16 x int8 runs the same tiles on x split into bytes."""
    rng = np.random.default_rng(m * 7919 + n * 31 + k)
    x, w = extreme_ints(rng, xt, (m, k)), extreme_ints(rng, np.int8, (n, k))
    kind = gemm_kind(xt, np.int8)
    bias = rng.integers(-2**20, 2**20, n).astype(kind.acc)
    acc_got, acc_want = np.empty((m, n), kind.acc), np.empty((m, n), kind.acc)
    prepared = c.prepare_gemm(w, bias, kind, None)
    prepared.gemm(x, acc_got)
    ref.gemm(x, w, bias, acc_want)
    np.testing.assert_array_equal(acc_got, acc_want)
    for rounding in (Rounding.HALF_EVEN, Rounding.JAM, Rounding.MAG_TRUNC, Rounding.HALF_DOWN, Rounding.FLOOR):
        lanes = rng.integers(0, 32, n).astype(np.int32)
        lanes[:2] = [0, 31][: min(2, n)]
        for shift, multiplier in ((lanes, None), (lanes - 3, None), (lanes, rng.integers(1, 2**31, n))):
            for overflow, out_bits, out_dtype, relu in ((Overflow.SATURATE, 8, np.int8, False),
                                                        (Overflow.WRAP, 6, np.int8, True),
                                                        (Overflow.SATURATE_SYMMETRIC, 16, np.int16, False),
                                                        (Overflow.SATURATE, 32, np.int32, True)):
                epi = epilogue(shift, multiplier, rounding, overflow, out_bits, out_dtype, relu)
                got, want = np.full((m, n), 7, out_dtype), np.full((m, n), -7, out_dtype)
                assert gemm_requant(c, x, w, bias, epi, got) == gemm_requant(ref, x, w, bias, epi, want)
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [65536, 65537])
def test_int16_by_int8_extremes_at_the_split_bound(path, k):
    """All -32768 x -128 (and 32767 x -128) sums at the largest K the byte split keeps exact, and one past it
    (which runs the plain int64 kernels)."""
    x = np.full((3, k), -32768, np.int16)
    x[1] = 32767
    w = np.full((2, k), -128, np.int8)
    kind = gemm_kind(np.int16, np.int8)
    got = np.empty((3, 2), np.int64)
    c.prepare_gemm(w, None, kind, None).gemm(x, got)
    assert got[0].tolist() == [k * 32768 * 128] * 2 and got[1].tolist() == [-k * 32767 * 128] * 2
    epi = epilogue(np.full(2, 20), None, Rounding.HALF_EVEN, Overflow.SATURATE, 16, np.int16)
    out, want = np.empty((3, 2), np.int16), np.empty((3, 2), np.int16)
    assert gemm_requant(c, x, w, None, epi, out) == gemm_requant(ref, x, w, None, epi, want)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 127, 128, 129, 255, 256, 257, 785])
@pytest.mark.parametrize("m,n", [(1, 53), (3, 40), (4, 53), (4, 96), (5, 130), (17, 53), (17, 48), (1, 17),
                                 (4, 32), (13, 32), (25, 16)])
def test_int16_gemm_exact_across_its_int32_blocks(path, m, n, k):
    """int16 x int16 (wrapped vpdpwssd sums recovered against high-byte vpdpbusd sums every 128 k):
    blocks at and past their bound, the three strip layouts (32 columns for n = 16, 17, 32; 48 for
    40, 48, 96, 130; 64 for 53), small-batch and tile kernels (12-row tiles: m = 13, 25), extreme
    and random operands, bias, both epilogues."""
    rng = np.random.default_rng(m * 1000 + n * 7 + k)
    x, w = extreme_ints(rng, np.int16, (m, k)), extreme_ints(rng, np.int16, (n, k))
    x[0] = -32768
    w[:3] = np.array([-32768, 32767, -1], np.int16)[:, None]
    kind = gemm_kind(np.int16, np.int16)
    bias = rng.integers(-2**40, 2**40, n).astype(np.int64)
    prepared = c.prepare_gemm(w, bias, kind, None)
    got, want = np.empty((m, n), np.int64), np.empty((m, n), np.int64)
    prepared.gemm(x, got)
    ref.gemm(x, w, bias, want)
    np.testing.assert_array_equal(got, want)
    for shift, multiplier in ((np.full(n, 20), None), (rng.integers(-3, 60, n), rng.integers(1, 2**31, n))):
        epi = epilogue(shift, multiplier, Rounding.HALF_AWAY, Overflow.SATURATE, 16, np.int16)
        out, expected = np.empty((m, n), np.int16), np.empty((m, n), np.int16)
        assert gemm_requant(c, x, w, bias, epi, out) == gemm_requant(ref, x, w, bias, epi, expected)
        np.testing.assert_array_equal(out, expected)


# x = w = -32513 (high byte -128, low byte 255) and x = w = 32767 give the largest per-k gap
# between the exact product and its high-byte part: -16646655 and +16646145; 128 of them are
# the most an int32 block holds.
_GAP_EXTREMES = np.array([-32513, 32767, -32768, -32641, 32512, 255, -1, 0], np.int16)


@pytest.mark.parametrize("k", [127, 128, 129, 256, 257, 1000])
def test_int16_gemm_at_the_bound_of_its_recovery(path, k):
    """Every pair of operands from the extremes of the high-byte gap, constant along k, so each block
    sums the largest gaps one sign can reach; one row and column of alternating extremes too."""
    rows = np.repeat(_GAP_EXTREMES[:, None], k, axis=1)
    x = np.concatenate([rows, np.resize(_GAP_EXTREMES[[0, 1]], (1, k))])
    w = np.concatenate([rows, np.resize(_GAP_EXTREMES[[1, 0]], (1, k))])
    kind = gemm_kind(np.int16, np.int16)
    for m in (1, 3, len(x)):
        got, want = np.empty((m, len(w)), np.int64), np.empty((m, len(w)), np.int64)
        c.prepare_gemm(w, None, kind, None).gemm(x[-m:], got)
        ref.gemm(x[-m:], w, None, want)
        np.testing.assert_array_equal(got, want)
    assert want[0, 0] == k * (-32513) ** 2


@pytest.mark.parametrize("k", [65536, 65537])
def test_int16_gemm_extremes_at_its_largest_k(path, k):
    """All -32768 x -32768 (and 32767 x -32768) sums at the largest K the int32 totals hold, and one past
    it (which runs the plain int64 kernels)."""
    x = np.full((3, k), -32768, np.int16)
    x[1] = 32767
    w = np.full((2, k), -32768, np.int16)
    w[1, ::2] = -32513
    got, want = np.empty((3, 2), np.int64), np.empty((3, 2), np.int64)
    c.prepare_gemm(w, None, gemm_kind(np.int16, np.int16), None).gemm(x, got)
    ref.gemm(x, w, None, want)
    np.testing.assert_array_equal(got, want)
    assert got[0, 0] == k * 2**30


@pytest.mark.parametrize("xt,wt", [(np.int8, np.int8), (np.int16, np.int8), (np.int16, np.int16)])
@pytest.mark.parametrize("m,n,k", [(1, 97, 33), (3, 200, 785), (8, 48, 4), (37, 150, 257), (130, 49, 64)])
def test_threads_give_identical_results(path, xt, wt, m, n, k):
    """Any thread count (1..4, more than the tiles of some shapes) gives the same integers and counts."""
    rng = np.random.default_rng(m + n + k)
    x, w = extreme_ints(rng, xt, (m, k)), extreme_ints(rng, wt, (n, k))
    kind = gemm_kind(xt, wt)
    bias = rng.integers(-2**15, 2**15, n).astype(kind.acc)
    epi = epilogue(rng.integers(0, 30, n), None, Rounding.HALF_EVEN, Overflow.SATURATE, 8, np.int8)
    results = []
    for threads in (1, 2, 3, 4):
        prepared = c.prepare_gemm(w, bias, kind, epi, threads)
        acc, out = np.empty((m, n), kind.acc), np.empty((m, n), np.int8)
        prepared.gemm(x, acc)
        results.append((acc, out, prepared.gemm_requant(x, out)))
    for acc, out, count in results[1:]:
        np.testing.assert_array_equal(acc, results[0][0])
        np.testing.assert_array_equal(out, results[0][1])
        assert count == results[0][2]


def test_threads_keyword_and_environment_default(monkeypatch):
    from fixedpoint import kernels

    x, w = np.ones((4, 8), np.int8), np.ones((3, 8), np.int8)
    assert kernels.prepare_linear(w, shift=1)._gemm.threads == 1
    monkeypatch.setenv("FXBENCH_THREADS", "3")
    assert kernels.prepare_linear(w, shift=1)._gemm.threads == 3
    np.testing.assert_array_equal(kernels.linear(x, w, shift=1, threads=2), kernels.linear(x, w, shift=1))
    for bad in ("0", "two"):
        monkeypatch.setenv("FXBENCH_THREADS", bad)
        with pytest.raises(ValueError, match="FXBENCH_THREADS"):
            kernels.prepare_linear(w, shift=1)
    with pytest.raises(ValueError, match="threads"):
        kernels.prepare_linear(w, shift=1, threads=0)


@pytest.mark.parametrize("xt", [np.int8, np.int16])
def test_a_layer_moved_to_another_path_takes_that_paths_scratch(monkeypatch, xt):
    """A prepared layer called with the same row count on every path in turn: each call gets the scratch the
    library asks for on the path then active (the size is remembered per row count, and forgotten with the
    packing of another path), and the integers of the reference."""
    from fixedpoint import kernels

    rng = np.random.default_rng(7)
    m, k, n = 256, 784, 256             # packed scratch above the shared 64 KB buffer on every VNNI path
    x, w = extreme_ints(rng, xt, (m, k)), extreme_ints(rng, np.int8, (n, k))
    layer = kernels.prepare_linear(w, x_dtype=xt, shift=14, backend="c")
    want = kernels.prepare_linear(w, x_dtype=xt, shift=14, backend="reference")(x)
    asked = []
    real = c._scratch_pointer
    monkeypatch.setattr(c, "_scratch_pointer", lambda nbytes: asked.append(nbytes) or real(nbytes))
    weights, kind = layer.bound.weights, layer.bound.kind
    try:
        for name in reversed(c.supported_paths()):
            c.force_path(name)
            del asked[:]
            np.testing.assert_array_equal(layer(x), want, err_msg=name)
            if weights._packed_for_active_path() is not None:
                size = (c.lib.fxp_gemm_s8_packed_scratch_bytes(m, n, k) if xt is np.int8 else
                        c.lib.fxp_gemm_split_scratch_bytes(kind.code, m, k))
                assert asked == [size], name
    finally:
        c.force_path(None)


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_im2col_wide_rows_on_every_path(path, dtype, channels):
    """Patch rows of images wide enough for whole groups of 16, 8 and 4 pixels (the vpermb path where the
    CPU has it, the strided moves elsewhere): borders on both sides, strides up to 3, kernels up to 5 x 5,
    the last group partial; equal to the reference's."""
    rng = np.random.default_rng(channels * 10 + np.dtype(dtype).itemsize)
    info = np.iinfo(dtype)
    for (h, w), (kh, kw), (sh, sw), (ph, pw) in [((6, 37), (3, 3), (1, 1), (1, 1)), ((5, 28), (3, 3), (1, 2), (0, 1)),
                                                  ((7, 40), (5, 5), (2, 3), (2, 2)), ((3, 33), (1, 7), (1, 1), (0, 3)),
                                                  ((4, 19), (2, 2), (1, 1), (0, 0))]:
        x = rng.integers(info.min, info.max, (3, h, w, channels), endpoint=True).astype(dtype)
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        for rows in ((0, oh), (1, oh - 1)):
            shape = (3 * (rows[1] - rows[0]) * ow, kh * kw * channels)
            got, want = np.full(shape, 7, dtype), np.zeros(shape, dtype)
            c.im2col(x, (kh, kw), (sh, sw), (ph, pw), (oh, ow), rows, got)
            ref.im2col(x, (kh, kw), (sh, sw), (ph, pw), (oh, ow), rows, want)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepared_float_weights_equal_the_unprepared_gemm(path, dtype):
    """Float weights packed once (transposed 32-column strips) give exactly the sums of the call that packs
    them per call, at strip and row-tile edges, with and without bias."""
    rng = np.random.default_rng(np.dtype(dtype).itemsize)
    kind = gemm_kind(dtype, dtype)
    for n in (1, 31, 32, 33, 97):
        for k in (1, 5, 130):
            w = rng.standard_normal((n, k)).astype(dtype)
            for bias in (None, rng.standard_normal(n).astype(dtype)):
                prepared = c.prepare_gemm(w, bias, kind, None)
                for m in (1, 3, 4, 5, 9):
                    x = rng.standard_normal((m, k)).astype(dtype)
                    got, want = np.full((m, n), np.nan, dtype), np.empty((m, n), dtype)
                    prepared.gemm(x, got)
                    c.gemm(x, w, bias, want)
                    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rounding", ROUNDING_CODES, ids=lambda m: m.value)
def test_int64_lanes_with_shifts_up_to_127(path, rounding):
    """int64 accumulators (the int16 GEMMs' epilogue) with shifts 0..127 per column, the lanes above 63 decided
    by the sign alone (and at 64 by INT64_MIN's exact half): equal to the reference at the int64 ends."""
    from fixedpoint import kernels as K

    rng = np.random.default_rng(rounding.code + 90)
    values = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 0, 1, 2**62, -(2**62), 2**46, -(2**46)],
                      np.int64)
    acc = np.concatenate([np.repeat(values[:, None], 24, axis=1),
                          rng.integers(-2**50, 2**50, (7, 24), dtype=np.int64)])
    shift = np.array([0, 1, 31, 32, 62, 63, 64, 65, 66, 100, 126, 127] * 2, np.int32)
    for overflow in ("saturate", "wrap"):
        for relu in (False, True):
            args = dict(rounding=rounding.value, overflow=overflow, out_bits=16, relu=relu)
            got = K.requantize(acc, shift, **args, backend="c")
            want = K.requantize(acc, shift, **args, backend="reference")
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rounding", ROUNDING_CODES, ids=lambda m: m.value)
@pytest.mark.parametrize("wt,bias_scale", [(np.int16, "huge"), (np.int8, "huge"), (np.int8, "int32")],
                         ids=["i16", "a16w8", "a16w8-int32"])
def test_int16_gemms_int64_lane_epilogue_every_mode(path, rounding, wt, bias_scale):
    """The int16 GEMMs' epilogue set up once per strip: per-column shifts 0..127 (63, 64, 65 and 127 among
    them), each overflow mode, output width and relu, on the small-M kernels (two strips at once), full and
    partial tiles and partial vectors of a strip.  Accumulators pushed near +-2**62 by the bias run the int64
    lanes; a16w8 with accumulators that fit int32 (K (2**22 + 2**15) + |bias| < 2**31) runs the int32 lanes."""
    rng = np.random.default_rng(rounding.code + 300)
    kind = gemm_kind(np.int16, wt)
    for m, n, k in ((1, 128, 40), (3, 97, 9), (13, 64, 130), (29, 50, 257)):
        x, w = extreme_ints(rng, np.int16, (m, k)), extreme_ints(rng, wt, (n, k))
        if bias_scale == "huge":
            bias = rng.integers(-2**40, 2**40, n, dtype=np.int64)
            bias[::3] = rng.choice([2**62, -(2**62), 2**61 + 1, -(2**61) - 1], len(bias[::3]))
        else:
            room = 2**31 - 1 - k * (2**22 + 2**15)
            bias = rng.integers(-room, room + 1, n, dtype=np.int64)
            bias[:2] = [room, -room]
        shift = rng.integers(0, 20, n).astype(np.int32)
        shift[:8] = [0, 1, 62, 63, 64, 65, 100, 127][:n]
        shift[8::5] = rng.choice([31, 32, 46, 63, 64, 127], len(shift[8::5]))
        for overflow in OVERFLOW_CODES:
            for out_bits, out_dtype, relu in ((8, np.int8, False), (5, np.int8, True), (16, np.int16, True),
                                              (32, np.int32, False)):
                epi = epilogue(shift, None, rounding, overflow, out_bits, out_dtype, relu)
                got = np.full((m, n), 7, out_dtype)
                want = np.full((m, n), -7, out_dtype)
                count = c.prepare_gemm(w, bias, kind, epi, 1).gemm_requant(x, got)
                assert count == gemm_requant(ref, x, w, bias, epi, want)
                np.testing.assert_array_equal(got, want)
