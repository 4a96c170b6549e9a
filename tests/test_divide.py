"""kernels.divide (the rounded quotient behind the fixed-point softmax) on every backend, against Fractions."""
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint import kernels as K
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from exact_oracle import fit, round_fraction


@pytest.fixture(params=K.available())
def backend(request):
    return request.param


def _cases(rng):
    num = np.concatenate([np.arange(-20, 21), rng.integers(-2**40, 2**40, 200), [2**62, -(2**62), 0, 1, -1]])
    den = np.concatenate([np.full(41, 4), rng.integers(1, 2**20, 200), [3, 7, 2**62, 1, 2]])
    return num.astype(np.int64), den.astype(np.int64)


@pytest.mark.parametrize("mode", [m.value for m in DETERMINISTIC_ROUNDINGS])
@pytest.mark.parametrize("overflow", ["saturate", "wrap", "saturate_symmetric"])
def test_divide_is_one_exact_rounding(backend, mode, overflow):
    num, den = _cases(np.random.default_rng(1))
    stats = type("Stats", (), {"add": lambda self, o, t: setattr(self, "seen", (o, t))})()
    got = K.divide(num, den, out_bits=12, rounding=mode, overflow=overflow, backend=backend, stats=stats)
    expected = [fit(round_fraction(Fraction(int(n), int(d)), mode, bits_dropped=int(d) > 1), 12, True, overflow)
                for n, d in zip(num.tolist(), den.tolist())]
    assert got.dtype == np.int16
    assert got.tolist() == [v for v, _ in expected]
    assert stats.seen == (sum(o for _, o in expected), num.size)


@pytest.mark.parametrize("mode", ["stochastic", "stochastic_equal"])
def test_stochastic_divide_follows_the_seed_on_every_backend(backend, mode):
    num, den = _cases(np.random.default_rng(2))
    got = K.divide(num, den, out_bits=16, rounding=mode, rng=7, backend=backend)
    want = K.divide(num, den, out_bits=16, rounding=mode, rng=7, backend="reference")
    np.testing.assert_array_equal(got, want)
    floor = num // den
    assert np.all((got == np.clip(floor, -2**15, 2**15 - 1)) | (got == np.clip(floor + 1, -2**15, 2**15 - 1)))


def test_divide_broadcasts_and_checks_its_arguments(backend):
    e = np.array([[8, 4, 4], [1, 1, 2]], np.int64)
    y = K.divide(e << 4, e.sum(axis=-1, keepdims=True), out_bits=8, backend=backend)
    assert y.shape == (2, 3) and y.tolist() == [[8, 4, 4], [4, 4, 8]]
    with pytest.raises(ValueError, match="denominator"):
        K.divide(np.ones(3, np.int64), np.zeros(3, np.int64), out_bits=8, backend=backend)
    with pytest.raises(TypeError, match="numerator"):
        K.divide(np.ones(3), np.ones(3, np.int64), out_bits=8, backend=backend)
    with pytest.raises(OverflowError):
        K.divide(np.array([1000], np.int64), np.array([1], np.int64), out_bits=8, overflow="error", backend=backend)
    assert K.divide(np.zeros((0, 2), np.int64), np.ones(2, np.int64), out_bits=8, backend=backend).shape == (0, 2)
