"""Calibration of clipping ranges (fixedpoint.nn.calibrate)."""

import numpy as np
import pytest

from fixedpoint.nn.calibrate import calibration_range


def _quant_mse(x, clip, bits):
    qmax = 2 ** (bits - 1) - 1
    step = clip / qmax
    return np.mean((np.clip(np.rint(x / step), -qmax - 1, qmax) * step - x) ** 2)


def test_max_and_percentile():
    x = np.concatenate([np.linspace(-1, 1, 10001), [50.0]])
    assert calibration_range(x, "max") == 50.0
    assert calibration_range(x, "percentile", percentile=99.9) == pytest.approx(1.0, abs=1e-3)
    assert calibration_range(np.zeros(4), "mse") == 0.0


def test_mse_clips_outliers_and_beats_max():
    x = np.random.default_rng(1).standard_t(3, size=20000)
    clip = calibration_range(x, "mse", bits=4)
    top = np.abs(x).max()
    assert clip < top
    assert _quant_mse(x, clip, 4) < 0.5 * _quant_mse(x, top, 4)


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "minmax"}, "method must be one of"),
    ({"bits": 1}, "bits must be an int in 2..16"),
    ({"bits": 17}, "bits must be"),
    ({"percentile": 0}, "percentile must be"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        calibration_range(np.ones(3), **kwargs)


@pytest.mark.parametrize("values", [np.array([1 + 5j, 2.0]), np.array([True, False]), np.array(["1.0"])])
def test_values_that_are_not_real_are_a_type_error_naming_them(values):
    with pytest.raises(TypeError, match="values must be a real .*got dtype"):
        calibration_range(values)


def test_non_finite_values_rejected():
    with pytest.raises(ValueError, match="finite"):
        calibration_range([1.0, np.nan])


@pytest.mark.parametrize("exponent", [-1060, -1000, -600, 600, 1000])
def test_mse_range_scales_with_the_values_at_any_magnitude(exponent):
    x = np.rint(np.random.default_rng(2).standard_t(3, size=5000) * 1024) / 1024   # exact at 2**-1060 too
    expected = np.ldexp(calibration_range(x, "mse", bits=6), exponent)
    assert calibration_range(np.ldexp(x, exponent), "mse", bits=6) == expected
