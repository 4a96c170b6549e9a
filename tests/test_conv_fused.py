"""int8 convolutions whose patch rows the C backend packs into the GEMM's register tiles straight from the image
(``fxp_conv_requant_s8_packed``: AVX-512 VNNI path, channels a multiple of 16 or patch rows of at most 16 bytes
with VBMI; int16 images into both byte tiles of the a16w8 GEMM, ``fxp_conv_requant_s16s8_packed``), on the
prepared layers and in
compiled models: bit-identical with the reference backend, overflow counts included, at image borders, strides,
paddings, kernels wider and taller than the image, one and several weight strips, the small-M kernels, partial
tiles and several threads; and layers the fusion does not cover still match."""
import numpy as np
import pytest

from fixedpoint import OverflowStats, kernels
from fixedpoint.kernels.kinds import gemm_kind
from backend_calls import extreme_ints
from gemm_checks import c, forced_path


@pytest.fixture
def vnni():
    forced_path("avx512vnni", "the fused patch packing is a part of the AVX-512 VNNI path")
    yield
    c.force_path(None)


def _same(layer, reference, x):
    want_stats, got_stats = OverflowStats(), OverflowStats()
    want = reference(x, stats=want_stats)
    got = layer(x, stats=got_stats)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert (got_stats.overflowed, got_stats.total) == (want_stats.overflowed, want_stats.total)


# (batch, height, width, channels, filters, kernel, stride, padding): borders and interiors, 1x1 and
# non-square kernels, a kernel as wide as the padded image, outputs of 1..4 pixels (small-M kernels),
# filters on one strip (<= 32) and on several (33, 64, 100).  16..48 channels: whole 16-byte pixels;
# 1..4 channels with patch rows of at most 16 bytes: vpermb groups of 16, 8 and 4 pixels (runs cut at the
# ends of output rows and of tiles, rows narrower than a group), and geometries whose spans do not fit a
# register (those build patch rows as before).
CONV2D = [
    (2, 9, 8, 16, 32, (3, 3), 1, 1),
    (1, 5, 7, 32, 17, (3, 2), (2, 1), (2, 0)),
    (3, 6, 6, 16, 64, (1, 1), 2, 0),
    (1, 2, 2, 48, 33, (3, 3), 1, 1),
    (1, 1, 3, 16, 16, (3, 3), 1, (1, 0)),
    (2, 4, 11, 16, 100, (2, 5), (1, 3), 2),
    (5, 7, 5, 32, 8, (5, 5), 1, 2),
    (3, 28, 28, 1, 16, (3, 3), 1, 1),
    (2, 13, 29, 1, 17, (3, 3), 2, 1),
    (2, 9, 10, 2, 40, (2, 2), 1, 0),
    (1, 7, 31, 4, 16, (2, 2), 1, (1, 0)),
    (4, 5, 5, 3, 8, (1, 5), 1, (0, 2)),
    (2, 12, 40, 1, 16, (3, 3), 3, 1),
    (1, 6, 6, 1, 16, (5, 5), 1, 2),
    (1, 3, 2, 1, 33, (3, 3), 1, 1),
    (2, 8, 8, 5, 16, (3, 3), 1, 1),
    (1, 9, 20, 4, 16, (2, 2), 3, 0),
]


@pytest.mark.parametrize("case", CONV2D, ids=str)
def test_conv2d_matches_the_reference(vnni, case):
    b, h, w, ch, o, kernel, stride, padding = case
    rng = np.random.default_rng(h * 100 + w * 10 + ch)
    x = extreme_ints(rng, np.int8, (b, h, w, ch))
    wt = extreme_ints(rng, np.int8, (o, *kernel, ch))
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    for rounding, relu, out_dtype in (("half_even", False, np.int8), ("floor", True, np.int16),
                                      ("half_away", True, np.int8)):
        call = dict(stride=stride, padding=padding, shift=rng.integers(0, 14, o), rounding=rounding, relu=relu,
                    out_dtype=out_dtype)
        for threads in (1, 3):
            layer = kernels.prepare_conv2d(wt, bias, backend="c", threads=threads, **call)
            _same(layer, lambda v, stats: kernels.conv2d(v, wt, bias, backend="reference", stats=stats, **call), x)


@pytest.mark.parametrize("length,ch,o,k,stride,padding", [(40, 16, 32, 5, 1, 2), (9, 32, 48, 3, 2, 0),
                                                           (3, 16, 16, 5, 1, 2), (61, 64, 20, 1, 1, 0)])
def test_conv1d_matches_the_reference(vnni, length, ch, o, k, stride, padding):
    rng = np.random.default_rng(length + ch + o)
    x = extreme_ints(rng, np.int8, (4, length, ch))
    wt = extreme_ints(rng, np.int8, (o, k, ch))
    call = dict(stride=stride, padding=padding, shift=9, overflow="wrap", out_bits=6)
    layer = kernels.prepare_conv1d(wt, None, backend="c", **call)
    _same(layer, lambda v, stats: kernels.conv1d(v, wt, None, backend="reference", stats=stats, **call), x)


# a16w8 (int16 images): the same geometries (plus one whose K takes the int64 route of the a16w8 tiles),
# each with whether its patch rows pack into both byte tiles straight from the image: whole 16-channel
# pixels, or patch rows of at most 16 elements whose spans of 2-byte elements fit one zmm (groups of 8 or
# 4 pixels; the others build patch rows).
A16W8_CONV2D = [
    (CONV2D[0], True), (CONV2D[1], True), (CONV2D[2], True), (CONV2D[3], True), (CONV2D[4], True),
    (CONV2D[5], True), (CONV2D[6], True), (CONV2D[7], True), (CONV2D[8], True), (CONV2D[9], True),
    (CONV2D[10], False), (CONV2D[11], True), (CONV2D[12], False), (CONV2D[13], False), (CONV2D[14], True),
    (CONV2D[15], False), ((1, 4, 4, 64, 20, (3, 3), 1, 1), True), ((2, 6, 9, 1, 16, (2, 3), 1, 1), True),
]


@pytest.fixture
def patch_rows_built(monkeypatch):
    """How many times the layers built patch rows (0: every call packed its tiles from the image)."""
    from fixedpoint.kernels import layers

    calls = []
    real = layers.im2col_chunks
    monkeypatch.setattr(layers, "im2col_chunks", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


@pytest.mark.parametrize("case,fuses", A16W8_CONV2D, ids=str)
def test_a16w8_conv2d_matches_the_reference(vnni, patch_rows_built, case, fuses):
    b, h, w, ch, o, kernel, stride, padding = case
    rng = np.random.default_rng(h * 100 + w * 10 + ch + 1)
    x = extreme_ints(rng, np.int16, (b, h, w, ch))
    wt = extreme_ints(rng, np.int8, (o, *kernel, ch))
    for bias, rounding, relu, out_dtype, overflow in (
            (rng.integers(-2**20, 2**20, o), "half_even", False, np.int16, "saturate"),
            (rng.integers(-5000, 5000, o), "floor", True, np.int8, "wrap"),
            (None, "half_away", True, np.int16, "saturate_symmetric")):
        call = dict(stride=stride, padding=padding, shift=rng.integers(6, 22, o), rounding=rounding, relu=relu,
                    out_dtype=out_dtype, overflow=overflow)
        bias = None if bias is None else bias.astype(np.int64)
        want_stats = OverflowStats()
        want = kernels.conv2d(x, wt, bias, backend="reference", stats=want_stats, **call)
        for threads in (1, 3):
            layer = kernels.prepare_conv2d(wt, bias, backend="c", threads=threads, x_dtype=np.int16, **call)
            del patch_rows_built[:]
            got_stats = OverflowStats()
            np.testing.assert_array_equal(layer(x, stats=got_stats), want)
            assert (got_stats.overflowed, got_stats.total) == (want_stats.overflowed, want_stats.total)
            assert (not patch_rows_built) == fuses


def test_a16w8_conv1d_matches_the_reference(vnni, patch_rows_built):
    rng = np.random.default_rng(5)
    for length, ch, o, k, stride, padding in [(40, 16, 32, 5, 1, 2), (9, 32, 48, 3, 2, 0), (30, 2, 16, 5, 1, 2)]:
        x = extreme_ints(rng, np.int16, (4, length, ch))
        wt = extreme_ints(rng, np.int8, (o, k, ch))
        call = dict(stride=stride, padding=padding, shift=13, overflow="wrap", out_bits=10)
        want = kernels.conv1d(x, wt, None, backend="reference", **call)
        del patch_rows_built[:]
        np.testing.assert_array_equal(kernels.prepare_conv1d(wt, None, backend="c", x_dtype=np.int16, **call)(x), want)
        assert not patch_rows_built


def test_many_images_split_into_chunks(vnni):
    """A batch whose patch rows span several of the layer's image chunks (each one fused call)."""
    rng = np.random.default_rng(3)
    x = extreme_ints(rng, np.int8, (23, 28, 28, 16))
    wt = extreme_ints(rng, np.int8, (40, 3, 3, 16))
    call = dict(padding=1, shift=10)
    layer = kernels.prepare_conv2d(wt, backend="c", **call)
    _same(layer, lambda v, stats: kernels.conv2d(v, wt, backend="reference", stats=stats, **call), x)


@pytest.mark.parametrize("precision", ["i8", "a16w8"])
@pytest.mark.parametrize("batch", [1, 3, 40])
def test_compiled_model_conv_steps(vnni, batch, precision):
    """A converted CNN (int8, or int16 activations with int8 weights) whose first conv has one input channel
    and second 16: its compiled plan packs both convs' patch rows from the image; raw integers and overflow
    reports equal the layer-by-layer reference backend's."""
    from fixedpoint import nn

    rng = np.random.default_rng(11)
    model = nn.Sequential([
        nn.Conv2d(rng.standard_normal((16, 3, 3, 1)) * 0.3, rng.standard_normal(16) * 0.1, padding=1),
        nn.ReLU(),
        nn.Conv2d(rng.standard_normal((32, 3, 3, 16)) * 0.1, rng.standard_normal(32) * 0.1, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(rng.standard_normal((10, 32 * 5 * 5)) * 0.05, np.zeros(10)),
    ])
    calib = rng.standard_normal((16, 10, 10, 1))
    fixed = nn.quantize_model(model, calib, precision, backend="c")
    kind = gemm_kind(np.int8 if precision == "i8" else np.int16, np.int8).code
    assert c.lib.fxp_conv_packs_tiles(kind, 1, 3, 3, 1) and c.lib.fxp_conv_packs_tiles(kind, 16, 3, 3, 2)
    x = (rng.standard_normal((batch, 10, 10, 1)) * 2).astype(np.float32)
    raw, fmt = fixed(x, raw=True)
    assert fixed.plan_status(np.float32) == "compiled"
    layers = fixed.with_backend("reference")
    expected, expected_fmt = layers(x, raw=True)
    assert fmt == expected_fmt
    np.testing.assert_array_equal(raw, expected)
    assert fixed.overflow_report() == layers.overflow_report()
