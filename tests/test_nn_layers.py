"""Float layers and containers of fixedpoint.nn against direct loop implementations."""

import numpy as np
import pytest

from fixedpoint.nn import (Add, AvgPool1d, AvgPool2d, BatchNorm, Conv1d, Conv2d, Flatten, Linear, MaxPool1d,
                           MaxPool2d, ReLU, ReLU6, Residual, Sequential, Sigmoid, Softmax, Tanh)

rng = np.random.default_rng(0)


def naive_conv2d(x, w, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    o, kh, kw, _ = w.shape
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            y[:, i, j, :] = np.einsum("bijc,oijc->bo", patch, w)
    return y + (0 if b is None else b)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_matches_loops(stride, padding):
    x = rng.normal(size=(2, 7, 8, 3))
    w, b = rng.normal(size=(4, 3, 2, 3)), rng.normal(size=4)
    layer = Conv2d(w, b, stride=stride, padding=padding)
    s = (stride, stride) if np.ndim(stride) == 0 else stride
    p = (padding, padding) if np.ndim(padding) == 0 else padding
    np.testing.assert_allclose(layer(x), naive_conv2d(x, w, b, s, p), rtol=1e-12, atol=1e-12)


def test_conv1d_is_conv2d_with_unit_height():
    x = rng.normal(size=(3, 11, 2))
    w = rng.normal(size=(5, 3, 2))
    y = Conv1d(w, None, stride=2, padding=1)(x)
    ref = naive_conv2d(x[:, None], w[:, None], None, (1, 2), (0, 1))[:, 0]
    assert y.shape == (3, 6, 5)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_linear_and_dtype_preserved():
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    x = rng.normal(size=(4, 5))
    np.testing.assert_allclose(Linear(w, b)(x), x @ w.T + b)
    y32 = Linear(w, b)(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, x @ w.T + b, rtol=1e-5, atol=1e-5)


def test_pools_match_loops():
    x = rng.normal(size=(2, 6, 7, 3))
    mp = MaxPool2d(2)(x)
    assert mp.shape == (2, 3, 3, 3)
    assert mp[1, 2, 1, 2] == x[1, 4:6, 2:4, 2].max()
    ap = AvgPool2d((3, 2), stride=(1, 2))(x)
    assert ap.shape == (2, 4, 3, 3)
    assert np.isclose(ap[0, 3, 2, 1], x[0, 3:6, 4:6, 1].mean())
    x1 = rng.normal(size=(2, 9, 4))
    assert np.array_equal(MaxPool1d(3, 2)(x1)[:, 1], x1[:, 2:5].max(axis=1))
    np.testing.assert_allclose(AvgPool1d(3)(x1)[:, 2], x1[:, 6:9].mean(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride", [((2, 2), None), ((3, 2), (1, 2)), ((3, 3), (2, 1)), ((1, 4), (3, 3))])
def test_every_pooled_element_equals_its_window(kernel, stride, dtype):
    x = rng.normal(size=(2, 7, 9, 3)).astype(dtype)
    step = kernel if stride is None else stride
    for layer, reduce in ((MaxPool2d(kernel, stride), np.max), (AvgPool2d(kernel, stride), np.mean)):
        y = layer(x)
        assert y.dtype == dtype and y.shape == (2, (7 - kernel[0]) // step[0] + 1, (9 - kernel[1]) // step[1] + 1, 3)
        for b, i, j, c in np.ndindex(y.shape):
            window = x[b, i * step[0]:i * step[0] + kernel[0], j * step[1]:j * step[1] + kernel[1], c]
            assert np.isclose(y[b, i, j, c], reduce(window.astype(np.float64)), rtol=1e-6, atol=1e-6)
    x1 = x[:, :, 0, :]
    for layer, reduce in ((MaxPool1d(kernel[0], step[0]), np.max), (AvgPool1d(kernel[0], step[0]), np.mean)):
        y = layer(x1)
        assert y.dtype == dtype and y.shape == (2, (7 - kernel[0]) // step[0] + 1, 3)
        for b, i, c in np.ndindex(y.shape):
            window = x1[b, i * step[0]:i * step[0] + kernel[0], c].astype(np.float64)
            assert np.isclose(y[b, i, c], reduce(window), rtol=1e-6, atol=1e-6)


def test_activations_flatten_batchnorm():
    x = np.linspace(-800, 800, 17)[None]
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-np.clip(x, -700, 700))), atol=1e-300)
    np.testing.assert_allclose(Tanh()(x), np.tanh(x))
    assert np.array_equal(ReLU()(x), np.maximum(x, 0))
    assert ReLU6()(x).max() == 6
    s = Softmax()(rng.normal(size=(3, 4)) * 50)
    np.testing.assert_allclose(s.sum(axis=-1), 1)
    x3 = rng.normal(size=(2, 3, 4))
    assert np.array_equal(Flatten()(x3)[1, 4 + 2], x3[1, 1, 2])
    g, bt, m, v = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)
    np.testing.assert_allclose(BatchNorm(g, bt, m, v)(x3),
                               (x3 - m) / np.sqrt(v + 1e-5) * g + bt)


def test_sequential_residual_and_repr():
    body = Sequential([Conv2d(rng.normal(size=(3, 3, 3, 3)), padding=1), ReLU()])
    model = Sequential([Residual(body), MaxPool2d(2), Flatten(), Linear(rng.normal(size=(2, 12)))])
    x = rng.normal(size=(5, 4, 4, 3))
    ref = x + np.maximum(naive_conv2d(x, body.layers[0].weight, None, (1, 1), (1, 1)), 0)
    ref = ref.reshape(5, 2, 2, 2, 2, 3).max(axis=(2, 4)).reshape(5, 12) @ model.layers[3].weight.T
    np.testing.assert_allclose(model(x), ref, rtol=1e-12, atol=1e-12)
    assert model(x.astype(np.float32)).dtype == np.float32
    text = repr(model)
    assert "Residual" in text and "Linear(in=12, out=2" in text and "(3, 3, 3, 3)" in text
    assert np.array_equal(Add()(x, x), 2 * x)


@pytest.mark.parametrize("make,match", [
    (lambda: Linear(np.zeros(3)), "Linear: weight must have 2"),
    (lambda: Linear(np.zeros((2, 3)), np.zeros(3)), r"Linear: bias must have shape \(2,\)"),
    (lambda: Conv2d(np.zeros((2, 3, 3))), "Conv2d: weight must have 4"),
    (lambda: Conv2d(np.zeros((2, 3, 3, 1)), stride=0), "Conv2d: stride"),
    (lambda: BatchNorm(np.ones(3), np.ones(2), np.ones(3), np.ones(3)), "BatchNorm: beta"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_shape_names_layer():
    with pytest.raises(ValueError, match=r"Linear: expected input \(\.\.\., 3\)"):
        Linear(np.zeros((2, 3)))(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="Conv1d: expected input NLC"):
        Conv1d(np.zeros((2, 3, 1)))(np.zeros((1, 5, 2)))
    with pytest.raises(TypeError, match="Sequential: layers"):
        Sequential([1])


def test_float32_casts_of_parameters_are_cached_and_follow_reassignment():
    w = rng.normal(size=(4, 3))
    layer = Linear(w, np.zeros(4))
    x = rng.normal(size=(2, 3)).astype(np.float32)
    first = layer.param_in("weight", np.float32)
    assert first.dtype == np.float32 and layer.param_in("weight", np.float32) is first
    assert layer.param_in("weight", np.float64) is layer.weight
    np.testing.assert_array_equal(layer(x), x @ w.astype(np.float32).T + np.float32(0))
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0, 0] = 1.0          # in-place edits would leave the cached cast stale
    w[0, 0] = 5.0                         # the layer holds its own copy
    assert layer.weight[0, 0] != 5.0
    layer.weight = layer.weight * 2
    np.testing.assert_array_equal(layer.param_in("weight", np.float32), layer.weight.astype(np.float32))


@pytest.mark.parametrize("bad", [np.ones((2, 3)) * 1j, np.array([["a", "b", "c"], ["d", "e", "f"]])])
def test_parameters_that_are_not_real_are_refused(bad):
    with pytest.raises(TypeError, match="weight"):
        Linear(bad)
    with pytest.raises(TypeError, match="bias"):
        Linear(np.ones((2, 3)), bad[0, :2])
