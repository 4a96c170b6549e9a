"""Permute, Pad, average pools with uncounted padding and Softmax over several axes: float and fixed point."""

import math

import numpy as np
import pytest

from fixedpoint import QFormat, kernels, nn
from fixedpoint.nn.fixed_layers import FixedPool, Run

rng = np.random.default_rng(11)


def test_permute_reorders_axes_into_a_contiguous_copy():
    x = rng.normal(size=(2, 3, 4, 5))
    y = nn.Permute((0, 2, 3, 1))(x)
    assert y.flags.c_contiguous and np.array_equal(y, x.transpose(0, 2, 3, 1))
    assert nn.Permute((0, 2, 1))(x[:, :, 0].astype(np.float32)).dtype == np.float32
    for axes in [(1, 0, 2), (0, 1, 1), (0,)]:
        with pytest.raises(ValueError, match="Permute: axes"):
            nn.Permute(axes)
    with pytest.raises(ValueError, match="Permute: expected an input with 3 axes"):
        nn.Permute((0, 2, 1))(x)


def test_pad_fills_the_spatial_axes_only():
    x = rng.normal(size=(2, 3, 4, 2))
    y = nn.Pad(((1, 0), (0, 2)))(x)
    assert np.array_equal(y, np.pad(x, ((0, 0), (1, 0), (0, 2), (0, 0))))
    low = nn.Pad(((2, 1),), value=-math.inf)(x[:, 0])
    assert low.shape == (2, 7, 2) and np.all(low[:, :2] == -np.inf) and np.array_equal(low[:, 2:6], x[:, 0])
    for pads, value, match in [(((1, -1),), 0.0, "pads"), ((), 0.0, "pads"), (((1, 1),), 1.0, "value")]:
        with pytest.raises(ValueError, match=f"Pad: {match}"):
            nn.Pad(pads, value)
    with pytest.raises(ValueError, match="Pad: expected input"):
        nn.Pad(((1, 1),))(x)


@pytest.mark.parametrize("padding", [((1, 0), (0, 2)), 1, (0, 1)])
def test_avg_pool_padding_is_not_counted(padding):
    pool = nn.AvgPool2d(3, 2, padding=padding)
    x = rng.normal(size=(2, 5, 6, 3))
    y = pool(x)
    (top, bottom), (left, right) = pool.padding
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=np.nan)
    assert y.shape == (2, (5 + top + bottom - 3) // 2 + 1, (6 + left + right - 3) // 2 + 1, 3)
    for b, i, j, c in np.ndindex(y.shape):
        window = padded[b, 2 * i:2 * i + 3, 2 * j:2 * j + 3, c]
        assert np.isclose(y[b, i, j, c], np.nanmean(window))


def test_avg_pool1d_padding_and_bad_padding():
    x = rng.normal(size=(1, 4, 2))
    y = nn.AvgPool1d(2, 2, padding=(1, 1))(x)
    np.testing.assert_allclose(y, np.stack([x[:, 0], x[:, 1:3].mean(axis=1), x[:, 3]], axis=1))
    for bad in [-1, (1, 2, 3), "a"]:
        with pytest.raises(ValueError, match="AvgPool1d: padding"):
            nn.AvgPool1d(2, padding=bad)
    with pytest.raises(ValueError, match="AvgPool2d: padding"):
        nn.AvgPool2d(2, padding=((1, 1),))


def test_softmax_over_several_trailing_axes():
    x = rng.normal(size=(2, 3, 4)) * 5
    joint = np.exp(x) / np.exp(x).sum(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(nn.Softmax(n_axes=2)(x), joint)
    np.testing.assert_allclose(nn.Softmax()(x), np.exp(x) / np.exp(x).sum(axis=2, keepdims=True))
    with pytest.raises(ValueError, match="n_axes"):
        nn.Softmax(0)
    with pytest.raises(ValueError, match="more than 3 axes"):
        nn.Softmax(3)(x)


def _layout_model():
    """Channels-first input through every layout layer, converted as a whole."""
    def w(*shape):
        return rng.normal(0, 0.4, shape)

    return nn.Sequential([
        nn.Permute((0, 2, 3, 1)), nn.Pad(((0, 1), (1, 0))), nn.Conv2d(w(4, 3, 3, 2), w(4)), nn.ReLU(),
        nn.Pad(((1, 1), (0, 1)), value=-math.inf), nn.MaxPool2d(2, 1),
        nn.AvgPool2d(3, 2, padding=((1, 0), (1, 1))), nn.Permute((0, 3, 1, 2)), nn.Softmax(n_axes=3),
    ])


@pytest.mark.parametrize("precision", ["i8", "a16w8"])
def test_layout_layers_convert_and_agree_on_every_backend(precision):
    model = _layout_model()
    calib, x = rng.normal(size=(64, 2, 7, 6)), rng.normal(size=(8, 2, 7, 6))
    fixed = nn.quantize_model(model, calib, precision)
    kinds = [row["layer"] for row in fixed.formats()]
    assert kinds[1:4] == ["0:Permute", "1:Pad", "2:Conv2d+ReLU"] and kinds[-1] == "8:Softmax"
    raw, fmt = fixed.with_backend("reference")(x, raw=True)
    for backend in kernels.available():
        other, other_fmt = fixed.with_backend(backend)(x, raw=True)
        assert other_fmt == fmt
        np.testing.assert_array_equal(other, raw, err_msg=backend)
    reference = model(x)
    assert raw.shape == reference.shape
    np.testing.assert_allclose(fixed(x), reference, atol={"i8": 0.05, "a16w8": 0.01}[precision])


def test_fixed_pad_fills_with_the_lowest_value_before_a_max_pool():
    model = nn.Sequential([nn.Pad(((1, 1),), value=-math.inf), nn.MaxPool1d(2, 1)])
    calib = -rng.uniform(0.5, 1, (16, 3, 1))              # every input negative: zero padding would win the max
    fixed = nn.quantize_model(model, calib, "i8")
    assert fixed.layers[0].fill == fixed.layers[0].in_fmt.qmin
    np.testing.assert_allclose(fixed(calib), model(calib), atol=fixed.output_format.lsb)


@pytest.mark.parametrize("rounding", ["half_even", "floor", "half_away"])
def test_padded_average_integers_round_the_exact_mean_once(rounding):
    fmt = QFormat(8, 4)
    layer = FixedPool("pool", "AvgPool2d", fmt, np.int8, (2, 3), (2, 2), ((1, 0), (1, 1)))
    raw = rng.integers(-128, 128, (3, 5, 4, 2)).astype(np.int8)
    y = layer.forward(raw, Run("reference", rounding, None))
    padded = np.pad(raw.astype(float), ((0, 0), (1, 0), (1, 1), (0, 0)), constant_values=np.nan)
    mode = {"half_even": np.rint, "floor": np.floor, "half_away": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)}
    for b, i, j, c in np.ndindex(y.shape):
        assert y[b, i, j, c] == mode[rounding](np.nanmean(padded[b, 2 * i:2 * i + 2, 2 * j:2 * j + 3, c]))
