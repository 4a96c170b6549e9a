"""The bf16 GEMM kind on every backend and every SIMD path of the C backend (vdpbf16ps where AVX512_BF16
exists, the float32 conversion elsewhere), against float64 on the same bf16 inputs.

Tolerance (DESIGN.md, float paths): |out - ref64| <= 64 * eps * sqrt(K) * max|ref| per element, with K
counted in bf16 elements (not the pairs vdpbf16ps takes at once) and eps = 2**-23, the unit of the float32
sums: every product of two bf16 values is exact in float32, so the sums are the only rounding.
"""
import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint import kernels
from fixedpoint.kernels import bf16
from fixedpoint.kernels.kinds import gemm_kind

BACKENDS = kernels.available()
EPS32 = 2.0**-23
# around the 8-row and 32-column tiles, the 128-pair K blocks and odd K
SHAPES = [(1, 1, 1), (1, 2, 3), (3, 5, 7), (8, 32, 32), (9, 33, 31), (7, 255, 64), (16, 256, 65), (17, 257, 100),
          (2, 513, 33), (33, 1000, 17), (8, 257, 48), (16, 514, 49), (9, 511, 97), (24, 3, 47), (8, 256, 96)]


@pytest.fixture(params=["default"] + [p for p in ("portable", "avx2", "avx512vnni")])
def c_path(request):
    """Each SIMD path of the C backend this CPU supports (the other backends run once, under "default")."""
    if request.param == "default":
        yield None
        return
    c = pytest.importorskip("fixedpoint.kernels.c_backend")
    if request.param not in c.supported_paths():
        pytest.skip(f"path {request.param} is not supported here")
    c.force_path(request.param)
    yield request.param
    c.force_path(None)


def _bf16(rng, shape, scale=1.0):
    """Random bf16 bit patterns: normal values over a few binades, exact zeros, both signs."""
    values = rng.standard_normal(shape) * scale * np.exp2(rng.integers(-4, 5, shape))
    values[rng.random(shape) < 0.05] = 0.0
    return fx.to_bits(fx.quantize_float(values, fx.BF16), fx.BF16)


def _reference(x, w, bias=None):
    ref = bf16.to_float32(x).astype(np.float64) @ bf16.to_float32(w).astype(np.float64).T
    return ref if bias is None else ref + bias.astype(np.float64)


def _within_tolerance(out, ref, k):
    assert out.dtype == np.float32
    tolerance = 64 * EPS32 * np.sqrt(k) * np.abs(ref).max()
    assert np.all(np.abs(out.astype(np.float64) - ref) <= tolerance)


def _backends(c_path):
    return ["c"] if c_path is not None else BACKENDS


@pytest.mark.parametrize("m, k, n", SHAPES)
def test_linear_is_within_tolerance_of_float64(c_path, m, k, n):
    rng = np.random.default_rng(m * 7919 + k * 31 + n)
    x, w = _bf16(rng, (m, k)), _bf16(rng, (n, k))
    bias = rng.standard_normal(n).astype(np.float32)
    for backend in _backends(c_path):
        for b in (None, bias):
            _within_tolerance(kernels.linear(x, w, b, backend=backend), _reference(x, w, b), k)
        layer = kernels.prepare_linear(w, bias, relu=True, x_dtype=np.uint16, backend=backend)
        out = layer(x)
        _within_tolerance(out, np.maximum(_reference(x, w, bias), 0), k)
        assert np.all(out >= 0)


@pytest.mark.parametrize("m, k, n", SHAPES[::2])
def test_backend_gemm_without_prepared_weights(c_path, m, k, n):
    rng = np.random.default_rng(k)
    x, w = _bf16(rng, (m, k)), _bf16(rng, (n, k))
    bias = rng.standard_normal(n).astype(np.float32)
    for backend in _backends(c_path):
        out = np.empty((m, n), dtype=np.float32)
        kernels.registry.get_backend(backend).gemm(x, w, bias, out)
        _within_tolerance(out, _reference(x, w, bias), k)


def test_exact_sums_are_exact_on_every_path(c_path):
    """Small integers: every partial sum is exact in float32, so every path must give the exact result."""
    rng = np.random.default_rng(2)
    x = fx.to_bits(rng.integers(-8, 9, (19, 301)).astype(np.float32), fx.BF16)
    w = fx.to_bits(rng.integers(-8, 9, (45, 301)).astype(np.float32), fx.BF16)
    bias = rng.integers(-100, 100, 45).astype(np.float32)
    for backend in _backends(c_path):
        np.testing.assert_array_equal(kernels.linear(x, w, bias, backend=backend), _reference(x, w, bias))


# the C kernel's blocking (m, k, n): 1..4 rows over groups of 4, 4, 3 and 2 panels, 7/8/9 rows and
# partial tiles at a panel edge, two 2048-pair K blocks (even and odd K), panel groups of 128 KiB
# (2 panels at K = 784, 10 at K = 200) with a partial last group
BLOCKING_SHAPES = [(1, 9, 129), (2, 9, 160), (3, 65, 97), (3, 5, 192), (4, 64, 160), (4, 3, 31), (7, 40, 33),
                   (8, 41, 64), (9, 40, 95), (1, 4097, 65), (2, 4100, 129), (4, 4100, 33), (13, 4099, 70),
                   (9, 784, 95), (17, 200, 330)]


@pytest.mark.parametrize("m, k, n", BLOCKING_SHAPES)
def test_c_kernel_blocking_edges_are_exact(c_path, m, k, n):
    """Small integers: exact sums, so a product lost or added at a tile, panel or block edge shows."""
    pytest.importorskip("fixedpoint.kernels.c_backend")
    rng = np.random.default_rng(m * 131 + k + n)
    x = fx.to_bits(rng.integers(-8, 9, (m, k)).astype(np.float32), fx.BF16)
    w = fx.to_bits(rng.integers(-8, 9, (n, k)).astype(np.float32), fx.BF16)
    bias = rng.integers(-100, 100, n).astype(np.float32)
    expected = _reference(x, w, bias)
    np.testing.assert_array_equal(kernels.linear(x, w, bias, backend="c"), expected)
    layer = kernels.prepare_linear(w, bias, x_dtype=np.uint16, backend="c")
    np.testing.assert_array_equal(layer(x), expected)
    np.testing.assert_array_equal(kernels.prepare_linear(w, x_dtype=np.uint16, backend="c")(x), _reference(x, w))


def test_single_rows_and_prepared_weights_follow_the_path(c_path):
    rng = np.random.default_rng(3)
    x, w = _bf16(rng, (5, 70)), _bf16(rng, (40, 70))
    for backend in _backends(c_path):
        layer = kernels.prepare_linear(w, x_dtype=np.uint16, backend=backend)
        single = layer(x[2])
        assert single.shape == (40,)
        _within_tolerance(single, _reference(x[2:3], w)[0], 70)
        _within_tolerance(layer(x), _reference(x, w), 70)


@pytest.mark.parametrize("op", ["conv1d", "conv2d"])
def test_convolutions_run_on_the_bf16_kernel(c_path, op):
    rng = np.random.default_rng(4)
    if op == "conv2d":
        x, w, options = _bf16(rng, (2, 7, 6, 5)), _bf16(rng, (9, 3, 3, 5)), {"padding": 1, "stride": (1, 2)}
    else:
        x, w, options = _bf16(rng, (3, 11, 4)), _bf16(rng, (6, 5, 4)), {"padding": 2}
    conv = getattr(kernels, op)
    expected = conv(bf16.to_float32(x).astype(np.float64), bf16.to_float32(w).astype(np.float64),
                    backend="reference", **options)
    k = int(np.prod(w.shape[1:]))
    for backend in _backends(c_path):
        _within_tolerance(conv(x, w, backend=backend, **options), expected, k)


def test_infinities_and_nan_propagate(c_path):
    x = fx.to_bits(np.array([[1.0, 2.0], [np.inf, 1.0], [np.nan, 0.0]], dtype=np.float32), fx.BF16)
    w = fx.to_bits(np.array([[1.0, 1.0], [0.5, -1.0]], dtype=np.float32), fx.BF16)
    for backend in _backends(c_path):
        with np.errstate(invalid="ignore"):   # numpy's matmul warns about the NaN row
            out = kernels.linear(x, w, backend=backend)
        assert out[0].tolist() == [3.0, -1.5] and out[1].tolist() == [np.inf, np.inf]
        assert np.isnan(out[2]).all()


def test_the_kind_and_its_argument_checks():
    kind = gemm_kind(np.uint16, np.uint16)
    assert (kind.name, kind.acc, kind.integer) == ("bf16", np.dtype(np.float32), False)
    w = np.zeros((3, 4), dtype=np.uint16)
    with pytest.raises(TypeError, match="x must have dtype uint16"):
        kernels.prepare_linear(w, x_dtype=np.uint16)(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="bias must be in the accumulator dtype float32"):
        kernels.prepare_linear(w, np.zeros(3), x_dtype=np.uint16)
    with pytest.raises(ValueError, match="shift must be None for float inputs"):
        kernels.prepare_linear(w, shift=3, x_dtype=np.uint16)
    with pytest.raises(TypeError, match=r"does not take \(x, w\) dtypes \(uint16, int8\)"):
        kernels.prepare_linear(w.astype(np.int8), x_dtype=np.uint16)


def test_bit_pattern_conversions_are_exact_for_bf16_values():
    codes = np.arange(1 << 16, dtype=np.uint16)
    values = bf16.to_float32(codes)
    np.testing.assert_array_equal(values.view(np.uint32) >> 16, codes)
    np.testing.assert_array_equal(bf16.from_float32(values), codes)
    np.testing.assert_array_equal(values[np.isfinite(values)],
                                  fx.from_bits(codes, fx.BF16)[np.isfinite(values)])


def test_the_c_backend_reports_bf16_support_and_its_peak():
    c = pytest.importorskip("fixedpoint.kernels.c_backend")
    peaks = c.peak_gops(0.02)
    assert ("bf16_dot" in peaks) == c.bf16_supported()
    if c.bf16_supported():
        assert peaks["bf16_dot"] > 0
