"""Prepared layers (weights bound and packed once) against the reference backend: bit-identical results and
overflow counts on every backend and every C SIMD path, reused across calls, paths and copies; bad x refused."""
import copy

import numpy as np
import pytest

from fixedpoint import OverflowStats, kernels
from fixedpoint.kernels.kinds import GEMM_KINDS, gemm_kind
from fixedpoint.kernels.modes import DETERMINISTIC_ROUNDINGS
from backend_calls import extreme_ints

BACKENDS = kernels.available()
PAIRS = [(k.x.type, k.w.type) for k in GEMM_KINDS if k.integer]
# M = 1 and K = 1, odd sizes, sizes around the C strips (48 and 24 columns, 8 and 4 rows).
SHAPES = [(1, 1, 1), (1, 256, 784), (1, 50, 13), (3, 5, 7), (9, 49, 65), (17, 97, 3)]


def _c_paths():
    try:
        from fixedpoint.kernels import c_backend
    except ImportError:
        return [None]
    return c_backend.supported_paths()


@pytest.fixture(params=[(b, p) for b in BACKENDS for p in (_c_paths() if b == "c" else [None])],
                ids=lambda bp: bp[0] if bp[1] is None else f"c-{bp[1]}")
def backend(request):
    name, path = request.param
    if path is None:
        yield name
        return
    from fixedpoint.kernels import c_backend
    c_backend.force_path(path)
    yield name
    c_backend.force_path(None)


def _ints(rng, dtype, shape):
    return extreme_ints(rng, dtype, shape, fraction=1 / 4)


def _layer(rng, x_dtype, w_dtype, n, k):
    acc = gemm_kind(x_dtype, w_dtype).acc
    w = _ints(rng, w_dtype, (n, k))
    bias = rng.integers(-5000, 5000, size=n).astype(acc)
    shift = rng.integers(0, 20 if x_dtype == np.int8 else 34, size=n).astype(np.int32)
    multiplier = rng.integers(1, 2**16, size=n, dtype=np.int64)
    return w, bias, shift, multiplier


def _spec(kw):
    """The same keywords on the reference backend: the specification every prepared layer must match."""
    return dict(kw, backend="reference")


def _same(prepared, x, reference, **call):
    """prepared(x) equals reference(x) in values, dtype and overflow counts, twice in a row (weights reused)."""
    expected_stats, stats = OverflowStats(), OverflowStats()
    expected = reference(x, stats=expected_stats, **call)
    for _ in range(2):
        got = prepared(x, stats=stats, **call)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    assert (stats.overflowed, stats.total) == (2 * expected_stats.overflowed, 2 * expected_stats.total)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{np.dtype(p[0])}x{np.dtype(p[1])}")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_linear_per_channel_requant_relu(backend, pair, shape):
    rng = np.random.default_rng(hash(shape) % 2**32)
    m, n, k = shape
    w, bias, shift, multiplier = _layer(rng, pair[0], pair[1], n, k)
    kw = dict(shift=shift, multiplier=multiplier, rounding="half_up", relu=True, out_bits=7, backend=backend)
    prepared = kernels.prepare_linear(w, bias, x_dtype=pair[0], **kw)
    x = _ints(rng, pair[0], (m, k))
    _same(prepared, x, lambda x, **c: kernels.linear(x, w, bias, **_spec(kw), **c))
    _same(prepared, x[0], lambda x, **c: kernels.linear(x, w, bias, **_spec(kw), **c))


@pytest.mark.parametrize("mode", DETERMINISTIC_ROUNDINGS, ids=lambda m: m.value)
@pytest.mark.parametrize("overflow", ["saturate", "wrap", "saturate_symmetric"])
def test_int8_linear_every_rounding_and_overflow(backend, mode, overflow):
    rng = np.random.default_rng(7)
    w, bias, shift, multiplier = _layer(rng, np.int8, np.int8, 51, 37)
    kw = dict(shift=shift, multiplier=multiplier, rounding=mode, overflow=overflow, out_bits=6, backend=backend)
    x = _ints(rng, np.int8, (10, 37))
    _same(kernels.prepare_linear(w, bias, **kw), x, lambda x, **c: kernels.linear(x, w, bias, **_spec(kw), **c))
    scalar = dict(kw, shift=9, multiplier=None, out_dtype=np.int16, out_bits=None)
    _same(kernels.prepare_linear(w, None, **scalar), x, lambda x, **c: kernels.linear(x, w, None, **_spec(scalar), **c))


def test_exact_accumulator_and_float_layers(backend):
    rng = np.random.default_rng(3)
    w8, x8 = _ints(rng, np.int8, (30, 19)), _ints(rng, np.int8, (5, 19))
    _same(kernels.prepare_linear(w8, backend=backend), x8,
          lambda x, **c: kernels.linear(x, w8, backend="reference", **c))
    for dtype in (np.float32, np.float64):
        w, x, b = (rng.standard_normal(s).astype(dtype) for s in ((30, 19), (5, 19), (30,)))
        prepared = kernels.prepare_linear(w, b, relu=True, backend=backend)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(prepared(x), kernels.linear(x, w, b, relu=True, backend="reference"),
                                   rtol=tol, atol=tol)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{np.dtype(p[0])}x{np.dtype(p[1])}")
def test_conv2d_and_conv1d(backend, pair):
    rng = np.random.default_rng(11)
    w, bias, shift, multiplier = _layer(rng, pair[0], pair[1], 13, 3 * 2 * 5)
    kw = dict(shift=shift, multiplier=multiplier, rounding="half_even", relu=True, backend=backend)
    w4 = w.reshape(13, 3, 2, 5)
    conv = dict(kw, stride=(2, 1), padding=(1, 0))
    x = _ints(rng, pair[0], (2, 7, 6, 5))
    _same(kernels.prepare_conv2d(w4, bias, x_dtype=pair[0], **conv), x,
          lambda x, **c: kernels.conv2d(x, w4, bias, **_spec(conv), **c))
    w3 = w.reshape(13, 6, 5)
    conv1 = dict(kw, stride=2, padding=1)
    x1 = _ints(rng, pair[0], (3, 9, 5))
    _same(kernels.prepare_conv1d(w3, bias, x_dtype=pair[0], **conv1), x1,
          lambda x, **c: kernels.conv1d(x, w3, bias, **_spec(conv1), **c))


def test_stochastic_rounding_and_overflow_error(backend):
    rng = np.random.default_rng(5)
    w, bias, shift, _ = _layer(rng, np.int8, np.int8, 20, 16)
    x = _ints(rng, np.int8, (4, 16))
    kw = dict(shift=shift, rounding="stochastic", backend=backend)
    prepared = kernels.prepare_linear(w, bias, **kw)
    np.testing.assert_array_equal(prepared(x, rng=3), kernels.linear(x, w, bias, rng=3, **_spec(kw)))
    with pytest.raises(ValueError, match="rng"):
        prepared(x)
    strict = dict(shift=0, overflow="error", backend=backend)
    with pytest.raises(OverflowError):
        kernels.prepare_linear(w, bias, **strict)(x)


def test_packed_weights_follow_the_active_c_path_and_copies():
    c_backend = pytest.importorskip("fixedpoint.kernels.c_backend")
    rng = np.random.default_rng(9)
    w, bias, shift, multiplier = _layer(rng, np.int8, np.int8, 50, 70)
    x = _ints(rng, np.int8, (9, 70))
    kw = dict(shift=shift, multiplier=multiplier, backend="c")
    prepared = kernels.prepare_linear(w, bias, **kw)
    expected = kernels.linear(x, w, bias, **kw)
    try:
        for path in c_backend.supported_paths() + c_backend.supported_paths()[::-1]:
            c_backend.force_path(path)
            np.testing.assert_array_equal(prepared(x), expected)
            np.testing.assert_array_equal(copy.deepcopy(prepared)(x), expected)
    finally:
        c_backend.force_path(None)


def test_bad_x_is_refused():
    w = np.ones((4, 6), dtype=np.int8)
    prepared = kernels.prepare_linear(w, shift=1)
    with pytest.raises(ValueError, match="K=5"):
        prepared(np.ones((2, 5), dtype=np.int8))
    with pytest.raises(TypeError, match="int8"):
        prepared(np.ones((2, 6), dtype=np.int16))
    with pytest.raises(TypeError, match="int8"):
        prepared(np.ones((2, 6), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        prepared(np.ones((2, 3, 6), dtype=np.int8))
    conv = kernels.prepare_conv2d(np.ones((4, 3, 3, 2), dtype=np.int8), shift=1)
    with pytest.raises(ValueError, match="C=3"):
        conv(np.ones((1, 5, 5, 3), dtype=np.int8))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv(np.ones((1, 2, 5, 2), dtype=np.int8))
    with pytest.raises(ValueError, match="shape"):
        conv(np.ones((5, 5, 2), dtype=np.int8))


def test_bad_weights_and_keywords_are_refused_at_prepare():
    with pytest.raises(TypeError, match="accepted"):
        kernels.prepare_linear(np.ones((4, 6), dtype=np.int8), x_dtype=np.float32)
    with pytest.raises(ValueError, match="shift"):
        kernels.prepare_linear(np.ones((4, 6), dtype=np.int8), shift=[1, 2])
    with pytest.raises(ValueError, match="bias"):
        kernels.prepare_linear(np.ones((4, 6), dtype=np.int8), np.zeros(3, dtype=np.int32), shift=1)
    with pytest.raises(ValueError, match="K=70000"):
        kernels.prepare_linear(np.ones((1, 70000), dtype=np.int8), shift=1)


@pytest.mark.parametrize("precision", ["i8", "a16w8", "i16"])
def test_converted_model_reuses_prepared_layers_and_survives_copies(precision):
    from fixedpoint import nn

    rng = np.random.default_rng(2)
    model = nn.Sequential([nn.Conv1d(rng.standard_normal((6, 3, 2)), rng.standard_normal(6), padding=1), nn.ReLU(),
                           nn.Flatten(), nn.Linear(rng.standard_normal((3, 60)), rng.standard_normal(3))])
    x = rng.standard_normal((7, 10, 2))
    fixed = nn.quantize_model(model, x, precision)
    first = fixed(x[:1], raw=True)[0]
    report = fixed.overflow_report()
    for other in (fixed.with_backend(b) for b in BACKENDS):
        np.testing.assert_array_equal(other(x[:1], raw=True)[0], first)
        assert other.overflow_report() == report
    copied = copy.deepcopy(fixed)
    np.testing.assert_array_equal(copied(x, raw=True)[0], fixed(x, raw=True)[0])
    np.testing.assert_array_equal(fixed(x[:1], raw=True)[0], first)
