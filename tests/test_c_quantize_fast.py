"""C quantize (float -> int) on every kernel it has -- scalar, AVX-512 float64 lanes, AVX-512
float32 lanes -- bit-exact against the reference backend: every deterministic mode, ties,
+-inf, saturating values, subnormals, NaN, huge and tiny frac, lengths around the 16/64
block and 4096 chunk sizes."""
import numpy as np
import pytest

from fixedpoint import kernels
from fixedpoint.kernels.modes import DETERMINISTIC_ROUNDINGS
from fixedpoint.kernels.reference import backend as ref

c = pytest.importorskip("fixedpoint.kernels.c_backend")

ROUNDING_CODES = list(DETERMINISTIC_ROUNDINGS)
# (out_bits, container): full-width int8/int16 (saturating packs) and narrower formats (int32 clamp).
WIDTHS = [(8, np.int8), (5, np.int8), (2, np.int8), (16, np.int16), (12, np.int16), (24, np.int32),
          (31, np.int32)]
LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 127, 4095, 4096, 4097, 4096 + 64 + 17, 3 * 4096 - 1]
TINY32 = np.float32(2.0**-149)


@pytest.fixture(params=c.supported_paths())
def path(request):
    c.force_path(request.param)
    yield request.param
    c.force_path(None)


def _check(x, frac, rounding, out_bits, dtype):
    got, want = np.full(x.shape, 99, dtype), np.full(x.shape, -99, dtype)
    counts = c.quantize(x, frac, rounding, out_bits, got)
    expected = ref.quantize(x, frac, rounding, out_bits, want)
    np.testing.assert_array_equal(got, want)
    assert counts == expected
    return counts


def _adversarial(frac, out_bits, rng, n=600):
    """Exact ties and their neighbours, values around the saturation bounds, +-inf, -0.0,
    subnormals and random values spanning the output range, all for scale 2**frac."""
    qmax = 2 ** (out_bits - 1) - 1
    lsb = 2.0**-frac
    ticks = np.concatenate([np.arange(-9, 10) / 4, [qmax - 0.5, qmax, qmax + 0.5, qmax + 1, -qmax - 0.5,
                                                    -qmax - 1, -qmax - 1.5, -qmax - 2, -qmax - 2.5, -qmax - 3]])
    values = [ticks * lsb, np.nextafter(ticks * lsb, np.inf), np.nextafter(ticks * lsb, -np.inf),
              [np.inf, -np.inf, 0.0, -0.0, TINY32, -TINY32, 1e-40, -1e-40, 3e38, -3e38],
              rng.uniform(-1.5, 1.5, n) * qmax * lsb]
    with np.errstate(over="ignore"):
        return np.concatenate(values).astype(np.float32)


def test_kernel_choice_follows_the_path_and_arguments(path):
    code = {mode.value: mode for mode in DETERMINISTIC_ROUNDINGS}
    if path != "avx512vnni":
        assert c.quantize_kernel(np.float32, 4, code["half_even"], 8) == "scalar"
        return
    f32, f64 = "avx512-float32x16", "avx512-float64x8"
    for mode in code.values():
        assert c.quantize_kernel(np.float32, 4, mode, 8) == f32
        assert c.quantize_kernel(np.float32, 4, mode, 16) == f32
        assert c.quantize_kernel(np.float32, 128, mode, 8) == f64
        assert c.quantize_kernel(np.float64, 4, mode, 8) == f64
    # one conversion: up to 31 bits; an adjustment of floor: up to 24 bits
    assert c.quantize_kernel(np.float32, 4, code["half_even"], 31) == f32
    assert c.quantize_kernel(np.float32, 4, code["half_up"], 24) == f32
    assert c.quantize_kernel(np.float32, 4, code["half_up"], 25) == f64
    # negative frac: only where an underflowed product still rounds to the true result (0)
    for name in ("to_zero", "mag_trunc", "half_even", "half_up", "half_down", "half_odd"):
        assert c.quantize_kernel(np.float32, -126, code[name], 8) == f32
        assert c.quantize_kernel(np.float32, -127, code[name], 8) == f64
    for name in ("floor", "ceil", "away", "jam", "jam_unbiased"):
        assert c.quantize_kernel(np.float32, -1, code[name], 8) == f64


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
@pytest.mark.parametrize("out_bits,dtype", WIDTHS)
def test_every_mode_and_width_ties_bounds_and_specials(path, rounding, out_bits, dtype):
    rng = np.random.default_rng(out_bits * 100 + rounding.code)
    for frac in (0, 3, -2, 20):
        x = _adversarial(frac, out_bits, rng)
        saturated, nans = _check(x, frac, rounding, out_bits, dtype)
        assert saturated >= 4 and nans == 0  # +-inf and the +-3e38 always saturate
        _check(x.astype(np.float64), frac, rounding, out_bits, dtype)


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
@pytest.mark.parametrize("n", LENGTHS)
def test_lengths_around_block_and_chunk_sizes(path, rounding, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 50).astype(np.float32)
    x[rng.random(n) < 0.05] = 129.5  # saturates in every mode, at the blocks' edges too
    for out_bits, dtype in ((8, np.int8), (16, np.int16), (6, np.int8), (10, np.int16), (20, np.int32)):
        _check(x, 2, rounding, out_bits, dtype)


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
def test_nan_is_counted_apart_and_written_as_zero(path, rounding):
    rng = np.random.default_rng(7)
    n = 4096 * 2 + 77
    x = (rng.standard_normal(n) * 100).astype(np.float32)
    nan_at = [0, 15, 16, 63, 64, 4095, 4096, 4200, n - 1]
    x[nan_at] = np.nan
    x[[1, 5000]] = [np.inf, -np.inf]
    for out_bits, dtype in ((8, np.int8), (16, np.int16), (7, np.int8), (31, np.int32)):
        saturated, nans = _check(x, 1, rounding, out_bits, dtype)
        assert nans == len(nan_at)
        assert saturated >= 2
    only_nan = np.full(100, np.nan, np.float32)
    assert _check(only_nan, 0, rounding, 8, np.int8) == (0, 100)


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
def test_huge_and_tiny_frac(path, rounding):
    rng = np.random.default_rng(rounding.code)
    x = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-45, 38, 200),
                        [TINY32, -TINY32, 2.0**-126, -(2.0**-126), 3.4e38, -3.4e38, np.inf, -np.inf]])
    x = x.astype(np.float32)
    for frac in (127, 126, 149, 150, 200, 900, -126, -127, -149, -200, -900):
        _check(x, frac, rounding, 8, np.int8)
        _check(x, frac, rounding, 16, np.int16)
    # float64 x: the backend requires frac >= 0 (x * 2**frac exact in float64)
    for frac in (0, 126, 127, 900):
        _check(x.astype(np.float64), frac, rounding, 16, np.int16)


@pytest.mark.parametrize("rounding", ROUNDING_CODES)
def test_subnormal_inputs(path, rounding):
    """Subnormal float32 inputs (and their neighbours) scaled by 2**frac: results -1, 0 or 1 in
    floor/ceil, 0 otherwise; frac >= 128 scales them into the integer range, with ties."""
    k = np.arange(-300, 301, dtype=np.float64)
    x = np.concatenate([k * 2.0**-149, (k + 0.5) * 2.0**-148, k * 2.0**-126 / 301]).astype(np.float32)
    for frac in (0, 64, 126, 127, 145, 149, 150):
        _check(x, frac, rounding, 8, np.int8)
        _check(x, frac, rounding, 16, np.int16)


@pytest.mark.parametrize("mode", DETERMINISTIC_ROUNDINGS, ids=lambda m: m.value)
def test_public_quantize_on_c_matches_reference(path, mode):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(1000) * 3, np.arange(-20, 21) / 8, [np.inf, -np.inf, 9.0, -9.0]])
    x = x.astype(np.float32).reshape(-1, 5)
    for frac, bits in ((4, 8), (3, 8), (12, 16), (0, 4)):
        got, got_count = kernels.quantize(x, frac, bits, rounding=mode, backend="c")
        want, want_count = kernels.quantize(x, frac, bits, rounding=mode, backend="reference")
        assert got.dtype == want.dtype and got.shape == x.shape
        np.testing.assert_array_equal(got, want)
        assert got_count == want_count


def test_public_quantize_on_c_rejects_nan(path):
    x = np.zeros(4097, np.float32)
    x[[3, 4096]] = np.nan
    with pytest.raises(ValueError, match="2 NaN"):
        kernels.quantize(x, 4, 8, backend="c")
