"""Regression tests: one rounding rule at every entry point, on every backend and SIMD path.

A mode is a function of the exact value, so ``quantize`` equals the cast of the exact
value from an unbounded source format (DESIGN.md, "One rule for every entry point").
"""
import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint import kernels as K
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS

BACKENDS = K.available()
MODES = [m.value for m in DETERMINISTIC_ROUNDINGS]


def _paths(backend):
    if backend != "c":
        return [None]
    from fixedpoint.kernels import c_backend

    return c_backend.supported_paths()


@pytest.fixture(params=[(b, p) for b in BACKENDS for p in _paths(b)], ids=lambda bp: f"{bp[0]}-{bp[1]}")
def backend(request):
    name, path = request.param
    if path is not None:
        from fixedpoint.kernels import c_backend

        c_backend.force_path(path)
    yield name
    if path is not None:
        c_backend.force_path(None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_of_exact_values_follows_jam_and_mag_trunc(backend, dtype):
    x = np.array([0.0, -2.0, 3.0, -3.0, -0.0, -128.0, 127.0, -129.0], dtype=dtype)
    jam = fx.quantize(x, fx.QFormat(8, 0), "jam", backend=backend)
    mag = fx.quantize(x, fx.QFormat(8, 0), "mag_trunc", backend=backend)
    assert jam.tolist() == [1, -1, 3, -3, 1, -127, 127, -128]
    assert mag.tolist() == [0, -1, 3, -2, 0, -127, 127, -128]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits,frac", [(8, 0), (8, 3), (5, 1), (16, 7), (12, -2)])
def test_quantize_equals_cast_from_a_wide_format(backend, mode, dtype, bits, frac):
    rng = np.random.default_rng(bits * 31 + frac)
    lsb = 2.0**-frac
    grid = np.arange(-2 ** (bits - 1) - 3, 2 ** (bits - 1) + 3) * lsb
    quarters = np.round(rng.uniform(-1, 1, 200) * 2 ** (bits + 1)) / 4    # random multiples of lsb / 4
    x = np.concatenate([grid, grid + lsb / 2, grid + lsb / 4, quarters * lsb]).astype(dtype)
    source = fx.QFormat(32, frac + 12)
    stats_q, stats_c = fx.OverflowStats(), fx.OverflowStats()
    quantized = fx.quantize(x, fx.QFormat(bits, frac), mode, backend=backend, stats=stats_q)
    wide = fx.FixedArray.from_float(x, source)      # exact: x has at most frac + 2 fraction bits
    assert np.array_equal(fx.dequantize(wide.raw, source), x.astype(np.float64))
    cast = wide.cast(fx.QFormat(bits, frac), mode, stats=stats_c)
    np.testing.assert_array_equal(quantized, cast.raw)
    assert stats_q.overflowed == stats_c.overflowed


@pytest.mark.parametrize("mode", ["half_down", "half_odd", "half_away", "half_to_zero", "half_even", "half_up"])
@pytest.mark.parametrize("frac", [0, 3, 20])
def test_quantize_just_above_minus_half_rounds_to_zero(backend, mode, frac):
    x = np.array([np.nextafter(-0.5, 0.0), -0.25, np.nextafter(-0.5, -1.0)]) * 2.0**-frac
    got = fx.quantize(x, fx.QFormat(16, frac), mode, backend=backend)
    assert got.tolist() == [0, 0, -1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pools_propagate_nan_from_any_window_position(backend, dtype):
    for position in range(3):
        window = np.array([1.0, 2.0, 0.5], dtype=dtype)
        window[position] = np.nan
        y2 = K.max_pool2d(window.reshape(1, 1, 3, 1), (1, 3), backend=backend)
        y1 = K.max_pool1d(window.reshape(1, 3, 1), 3, backend=backend)
        assert np.isnan(y2).all() and np.isnan(y1).all()
    y = K.max_pool2d(np.array([1.0, np.nan, 3.0, 2.0], dtype=dtype).reshape(1, 1, 4, 1), (1, 2), backend=backend)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 0] == 3.0
