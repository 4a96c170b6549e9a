"""Regression tests of the kernel front's edges on every backend: empty shapes, 0-d inputs, huge
arguments with known results, argument types, and copies of prepared layers."""
import copy
import pickle
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint import kernels as K
from fixedpoint.kernels.kinds import gemm_kind
from exact_oracle import fit, round_fraction

BACKENDS = K.available()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def _same_on_reference(call, backend):
    got, want = call(backend), call("reference")
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (0,), (2, 0, 4)])
@pytest.mark.parametrize("multiplier", [None, 2**30])
def test_requantize_of_empty_arrays(backend, shape, multiplier):
    for dtype in (np.int32, np.int64):
        y = K.requantize(np.zeros(shape, dtype), 1, multiplier, rounding="half_even", overflow="saturate",
                         out_bits=8, backend=backend)
        assert y.shape == shape and y.dtype == np.int8


@pytest.mark.parametrize("call", [
    lambda be: K.conv2d(np.ones((1, 4, 4, 2), np.int8), np.ones((0, 3, 3, 2), np.int8), shift=1, backend=be),
    lambda be: K.conv2d(np.ones((0, 4, 4, 2), np.int8), np.ones((3, 3, 3, 2), np.int8), shift=1, backend=be),
    lambda be: K.conv1d(np.ones((1, 4, 2), np.int16), np.ones((0, 3, 2), np.int16), shift=1, backend=be),
    lambda be: K.conv1d(np.ones((1, 4, 2), np.float64), np.ones((0, 3, 2), np.float64), backend=be),
    lambda be: K.linear(np.ones((0, 5), np.int8), np.ones((3, 5), np.int8), shift=1, backend=be),
    lambda be: K.linear(np.ones((2, 5), np.int16), np.ones((0, 5), np.int8), backend=be),
    lambda be: K.max_pool2d(np.ones((1, 4, 4, 0), np.int8), 2, backend=be),
    lambda be: K.avg_pool1d(np.ones((0, 4, 3), np.float32), 2, backend=be),
    lambda be: K.add(np.ones((0, 3), np.int8), 2, np.ones((0, 3), np.int8), 3, 1, backend=be),
    lambda be: K.lut(np.ones((0,), np.int8), np.zeros(256, np.int8), backend=be),
], ids=["conv2d-O0", "conv2d-B0", "conv1d-O0", "conv1d-O0-float", "linear-M0", "linear-N0", "maxpool-C0",
        "avgpool1d-B0", "add", "lut"])
def test_size_zero_batches_and_channels(backend, call):
    assert _same_on_reference(call, backend).size == 0


@pytest.mark.parametrize("x_dtype,w_dtype", [(np.int8, np.int8), (np.int16, np.int16), (np.int16, np.int8)])
def test_no_input_channels_leave_the_requantized_bias(backend, x_dtype, w_dtype):
    acc = gemm_kind(x_dtype, w_dtype).acc
    bias = np.array([-300, -7, 0, 5, 300], acc)
    for shift, rounding in ((1, "half_even"), (2, "floor"), (0, "jam")):
        y = _same_on_reference(lambda be: K.conv2d(np.ones((2, 3, 3, 0), x_dtype), np.ones((5, 1, 1, 0), w_dtype),
                                                   bias, shift=shift, rounding=rounding, backend=be), backend)
        want = K.requantize(bias, shift, rounding=rounding, overflow="saturate", out_bits=8 * y.itemsize,
                            backend="reference")
        np.testing.assert_array_equal(y, np.broadcast_to(want, y.shape))
    plain = K.linear(np.ones((2, 0), x_dtype), np.ones((5, 0), w_dtype), bias, backend=backend)
    np.testing.assert_array_equal(plain, np.broadcast_to(bias, (2, 5)))


def test_zero_dimensional_inputs_keep_their_shape(backend):
    y = K.requantize(np.int32(301), 1, rounding="half_even", overflow="saturate", out_bits=8, backend=backend)
    assert y.shape == () and int(y) == 127
    table = np.arange(256, dtype=np.int16) - 128
    assert K.lut(np.int8(-3), table, backend=backend).shape == ()
    assert int(K.lut(np.int8(-3), table, backend=backend)) == -3


@pytest.mark.parametrize("table_dtype", [np.float16, np.float32, np.float64, np.int64, np.uint8])
def test_lut_takes_any_numeric_table(backend, table_dtype):
    x = np.arange(-128, 128, dtype=np.int8)[::-3]
    table = (np.arange(256) % 97).astype(table_dtype)
    got = K.lut(x, table, backend=backend)
    assert got.dtype == table_dtype
    np.testing.assert_array_equal(got, table[x.astype(np.int64) + 128])


@pytest.mark.parametrize("relu", ["no", 1, None, np.array([True])])
def test_relu_must_be_a_bool(relu):
    with pytest.raises(TypeError, match="relu"):
        K.linear(np.ones((2, 5), np.int8), np.ones((3, 5), np.int8), shift=1, relu=relu)
    with pytest.raises(TypeError, match="relu"):
        K.requantize(np.ones(3, np.int32), 1, rounding="floor", overflow="saturate", out_bits=8, relu=relu)


def test_pool_strides_beyond_the_input_are_one_window(backend):
    x = np.arange(2 * 4 * 5 * 3, dtype=np.int16).reshape(2, 4, 5, 3)
    for stride in (2**64, (4, 2**70), 10**30):
        y = _same_on_reference(lambda be: K.max_pool2d(x, 2, stride=stride, backend=be), backend)
        assert y.shape[1] == 1
        np.testing.assert_array_equal(y[:, 0, 0], x[:, :2, :2].max(axis=(1, 2)))
    y = K.avg_pool1d(x[:, 0], 3, stride=2**65, backend=backend)
    assert y.shape == (2, 1, 3)


def _exact_add(a, a_frac, b, b_frac, out_frac, rounding, overflow, bits=8):
    """The exact sum of a * 2**-a_frac and b * 2**-b_frac in out_frac fraction bits (Fractions)."""
    out = []
    for va, vb in zip(a.tolist(), b.tolist()):
        value = (Fraction(va, 2**a_frac) + Fraction(vb, 2**b_frac)) * Fraction(2) ** out_frac
        dropped = max(a_frac, b_frac) > out_frac
        out.append(fit(round_fraction(value, rounding, bits_dropped=dropped), bits, True, overflow)[0])
    return out


@pytest.mark.parametrize("shift", [-63, -5, 0, 1, 30, 127])
@pytest.mark.parametrize("rounding", ["floor", "half_even", "away", "mag_trunc", "jam", "half_to_zero"])
def test_huge_add_alignments_are_exact_and_cheap(backend, shift, rounding):
    """Alignments far beyond the output move one operand 2**64+ LSBs away: the result is the exact one
    (checked at alignments just past the clamp bound) whatever the alignment, 10**9 bits included."""
    a = np.array([-128, -1, 0, 1, 127, 5, 0], np.int8)
    b = np.array([1, -1, 0, -3, 0, 2, -1], np.int8)
    bound = max(shift, 0) + 64
    for overflow in ("saturate", "wrap", "saturate_symmetric"):
        kw = dict(rounding=rounding, overflow=overflow, backend=backend)
        want = _exact_add(a, bound + 40, b, 0, bound + 40 - shift, rounding, overflow)
        assert K.add(a, bound + 40, b, 0, bound + 40 - shift, **kw).tolist() == want
        assert K.add(a, bound, b, 0, bound - shift, **kw).tolist() == _exact_add(a, bound, b, 0, bound - shift,
                                                                                 rounding, overflow)
        assert K.add(a, 10**9, b, 0, 10**9 - shift, **kw).tolist() == want
        swapped = _exact_add(b, 0, a, bound + 40, bound + 40 - shift, rounding, overflow)
        assert K.add(b, 0, a, 2**80, 2**80 - shift, **kw).tolist() == swapped


def test_huge_quantize_fractions_give_the_known_result(backend):
    x = np.array([0.0, 1e-300, -1e-300, 3.5, -2.0, 1e300])
    high = K.quantize(x, 10**20, 8, backend=backend)[0]
    assert high.tolist() == [0, 127, -128, 127, -128, 127]
    low = K.quantize(x, -10**20, 8, rounding="floor", backend=backend)[0]
    assert low.tolist() == [0, 0, -1, 0, -1, 0]
    assert K.quantize(x, -10**20, 8, rounding="ceil", backend=backend)[0].tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("precision", [(np.int8, np.int8), (np.int16, np.int8), (np.float32, np.float32)])
def test_prepared_layers_copy_and_pickle(backend, precision):
    x_dtype, w_dtype = precision
    rng = np.random.default_rng(1)
    integer = np.dtype(w_dtype).kind == "i"
    w = (rng.integers(-100, 100, (6, 2, 2, 3)) if integer else rng.standard_normal((6, 2, 2, 3))).astype(w_dtype)
    x = (rng.integers(-100, 100, (2, 5, 5, 3)) if integer else rng.standard_normal((2, 5, 5, 3))).astype(x_dtype)
    kw = dict(shift=4) if integer else {}
    conv = K.prepare_conv2d(w, stride=2, padding=1, x_dtype=x_dtype, backend=backend, **kw)
    linear = K.prepare_linear(w.reshape(6, -1), x_dtype=x_dtype, backend=backend, **kw)
    for layer, arg in ((conv, x), (linear, x.reshape(2, -1)[:, :12])):
        want = layer(arg)
        for copied in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer)), copy.copy(layer)):
            np.testing.assert_array_equal(copied(arg), want)


def test_quantize_error_names_the_input_beyond_the_int64_range(backend):
    with pytest.raises(OverflowError, match=r"1 of 2 elements.*worst raw value 1e\+300 \* 2\*\*0, beyond 2\*\*62"):
        K.quantize(np.array([1e300, 3.0]), 0, 8, overflow="error", backend=backend)
    with pytest.raises(OverflowError, match="worst raw value -300$"):
        K.quantize(np.array([200.0, -300.0]), 0, 8, overflow="error", backend=backend)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_zero_dimensional_add_with_an_alignment_past_int64(backend, relu, overflow):
    """0-d operands aligned beyond 64 bits (Python integers inside the reference) stay exact."""
    a, b = np.array(89, np.int8), np.array(35, np.int8)
    got = K.add(a, 0, b, -64, 0, rounding="floor", overflow=overflow, relu=relu, backend=backend)
    assert got.shape == () and int(got) == (127 if overflow == "saturate" else 89)
    got = K.add(a, 1, b, -64, -64, rounding="floor", overflow=overflow, relu=relu, backend=backend)
    assert int(got) == 35


def test_zero_dimensional_wide_cast():
    import fixedpoint as fx

    x = fx.FixedArray(np.array(7948370527, dtype=np.uint64), fx.QFormat(33, 0, signed=False, wide=True))
    assert x.cast(fx.QFormat(1, 1, signed=False), "floor").raw.tolist() == 1


def _unaligned(values, dtype):
    """A C-contiguous view of ``values`` at an odd byte address (numpy marks it unaligned)."""
    values = np.asarray(values, dtype=dtype)
    buffer = np.zeros(values.nbytes + 1, np.uint8)
    buffer[1:] = values.view(np.uint8).reshape(-1)
    return np.frombuffer(buffer, dtype, values.size, 1).reshape(values.shape)


def test_unaligned_inputs_are_copied_before_native_code(backend):
    from fixedpoint.kernels.args import c_array

    rng = np.random.default_rng(3)
    x, w = rng.integers(-500, 500, (3, 4)), rng.integers(-100, 100, (5, 4))
    ux, uw = _unaligned(x, np.int16), _unaligned(w, np.int16)
    assert not ux.flags.aligned and c_array(ux).flags.aligned
    want = K.linear(x.astype(np.int16), w.astype(np.int16), shift=3, backend="reference")
    np.testing.assert_array_equal(K.linear(ux, uw, shift=3, backend=backend), want)
    np.testing.assert_array_equal(K.lut(_unaligned(x.ravel()[:8] % 100, np.int16), np.arange(65536, dtype=np.int32),
                                        backend=backend), x.ravel()[:8] % 100 + 32768)
    acc = _unaligned(rng.integers(-10**6, 10**6, (4, 6)), np.int32)
    np.testing.assert_array_equal(
        K.requantize(acc, 4, rounding="floor", overflow="saturate", out_bits=8, backend=backend),
        K.requantize(np.array(acc), 4, rounding="floor", overflow="saturate", out_bits=8, backend="reference"))


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_im2col_patches_of_every_backend(backend, dtype, channels):
    """Every backend's patch rows equal the reference's: kernels wider than the image, padding past the
    kernel, strides that skip columns, and row bands of one image."""
    be = K.registry.get_backend(backend)
    ref = K.registry.get_backend("reference")
    rng = np.random.default_rng(channels)
    for (h, w), (kh, kw), (sh, sw), (ph, pw) in [((5, 4), (3, 3), (1, 1), (1, 1)), ((3, 7), (5, 2), (2, 3), (3, 0)),
                                                  ((1, 6), (1, 4), (1, 2), (0, 2)), ((4, 4), (4, 4), (1, 1), (0, 0))]:
        x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (2, h, w, channels), endpoint=True).astype(dtype)
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        for rows in ((0, oh), (oh // 2, oh), (0, 1)):
            shape = (2 * (rows[1] - rows[0]) * ow, kh * kw * channels)
            got, want = np.full(shape, 7, dtype), np.zeros(shape, dtype)
            be.im2col(x, (kh, kw), (sh, sw), (ph, pw), (oh, ow), rows, got)
            ref.im2col(x, (kh, kw), (sh, sw), (ph, pw), (oh, ow), rows, want)
            np.testing.assert_array_equal(got, want)
