"""Compiled models (fixedpoint.nn.compiled, kernels/c_plan.py): one native call per forward on the C backend,
bit-identical with layer-by-layer execution, the same overflow counts, clear errors."""

import math
import tracemalloc

import numpy as np
import pytest

from fixedpoint import kernels, nn

pytestmark = pytest.mark.skipif("c" not in kernels.available(), reason="the C backend is not built")

if "c" in kernels.available():
    from fixedpoint.kernels import c_backend, c_plan
    from fixedpoint.nn.compiled import NotCompilable, PlanError

RNG = np.random.default_rng(11)
DETERMINISTIC = [mode.value for mode in kernels.modes.Rounding if not mode.is_stochastic]


def _w(*shape, scale=0.5):
    return RNG.normal(0, scale, shape)


def _models():
    """Every layer kind the converter produces, in small models: (float model, sample shape)."""
    return {
        "mlp": (nn.Sequential([nn.Linear(_w(16, 8), _w(16)), nn.ReLU(), nn.Linear(_w(5, 16), _w(5)),
                               nn.Softmax()]), (8,)),
        "conv1d": (nn.Sequential([nn.Conv1d(_w(6, 3, 2), _w(6), padding=1), nn.ReLU6(), nn.MaxPool1d(2),
                                  nn.Conv1d(_w(4, 3, 6), None, stride=2), nn.Tanh(), nn.AvgPool1d(2),
                                  nn.AvgPool1d(2, 1, padding=(1, 0)), nn.Flatten(), nn.Linear(_w(3, 4), _w(3))]),
                   (12, 2)),
        "conv2d": (nn.Sequential([nn.Conv2d(_w(4, 3, 3, 2), _w(4), padding=1), nn.ReLU(),
                                  nn.Residual([nn.Conv2d(_w(4, 3, 3, 4), _w(4), padding=1), nn.ReLU()]),
                                  nn.AvgPool2d(2), nn.MaxPool2d((1, 2)), nn.Sigmoid(), nn.Flatten(),
                                  nn.Linear(_w(3, 16), _w(3))]), (4, 8, 2)),
        "layout": (nn.Sequential([nn.Permute((0, 2, 3, 1)), nn.Pad(((0, 1), (1, 0))), nn.Conv2d(_w(4, 3, 3, 2), _w(4)),
                                  nn.ReLU(), nn.Pad(((1, 1), (0, 1)), value=-math.inf), nn.MaxPool2d(2, 1),
                                  nn.AvgPool2d(3, 2, padding=((1, 0), (1, 1))), nn.Permute((0, 3, 1, 2)),
                                  nn.Softmax(n_axes=3)]), (2, 7, 6)),
    }


MODELS = _models()


def _data(shape, n, seed, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(0, 1, (n,) + shape)).astype(np.float32)


def _convert(name, precision="i8", **options):
    model, shape = MODELS[name]
    return nn.quantize_model(model, _data(shape, 64, 0), precision, backend="c", **options)


def _assert_same_as_layers(fixed, x):
    """The compiled call and the reference backend's layer-by-layer call: same raw integers, same counts."""
    raw, fmt = fixed(x, raw=True)
    assert fixed.plan_status(x.dtype) == "compiled"
    report = fixed.overflow_report()
    layers = fixed.with_backend("reference")
    expected, expected_fmt = layers(x, raw=True)
    assert fmt == expected_fmt and raw.dtype == expected.dtype
    np.testing.assert_array_equal(raw, expected)
    assert report == layers.overflow_report()
    np.testing.assert_array_equal(fixed(x), layers(x))
    return report


@pytest.mark.parametrize("precision", ["i8", "i16", "a16w8"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_layer_kind_is_bit_identical_at_every_batch_size(name, precision):
    fixed = _convert(name, precision)
    shape = MODELS[name][1]
    for batch in (1, 2, 7, 64, 257):
        _assert_same_as_layers(fixed, _data(shape, batch, batch, scale=2.0))


@pytest.mark.parametrize("tile_bytes", [1, 3000, 20000])
def test_batch_tiles_at_their_edges_give_the_same_integers(monkeypatch, tile_bytes):
    monkeypatch.setattr(c_plan, "ARENA_BYTES", tile_bytes)
    fixed = _convert("conv2d").compile()
    tile = fixed._plan(np.dtype(np.float32)).plan.tile_samples
    assert tile < 64
    for batch in (tile - 1, tile, tile + 1, 3 * tile + 2):
        if batch:
            _assert_same_as_layers(fixed, _data(MODELS["conv2d"][1], batch, batch, scale=3.0))


@pytest.mark.parametrize("rounding", DETERMINISTIC)
def test_every_deterministic_rounding_mode(rounding):
    for name in ("conv1d", "conv2d"):
        _assert_same_as_layers(_convert(name, rounding=rounding), _data(MODELS[name][1], 9, 3, scale=2.0))


@pytest.mark.parametrize("precision", ["i8", "a16w8"])
def test_multiplier_scales(precision):
    for name in ("mlp", "conv2d"):
        _assert_same_as_layers(_convert(name, precision, scale="multiplier"), _data(MODELS[name][1], 33, 4))


def test_overflow_counts_are_exact_and_nonzero_on_saturating_input():
    fixed = _convert("conv2d")
    report = _assert_same_as_layers(fixed, _data(MODELS["conv2d"][1], 40, 5, scale=6.0))
    assert report[0]["layer"] == "input" and report[0]["saturated"] > 0
    assert sum(row["saturated"] for row in report[1:]) > 0
    assert all(row["total"] > 0 for row in report)


@pytest.mark.parametrize("tile_bytes", [3000, c_plan.ARENA_BYTES if "c" in kernels.available() else 0])
def test_thread_counts_give_identical_results_and_counts(monkeypatch, tile_bytes):
    """Tiles split over threads (several tiles), or one tile's GEMMs split (batch 1): the same integers and
    overflow counts for any count."""
    monkeypatch.setattr(c_plan, "ARENA_BYTES", tile_bytes)
    fixed = _convert("conv2d")
    layers = fixed.with_backend("reference")
    for batch in (1, 5, 50):
        x = _data(MODELS["conv2d"][1], batch, 6, scale=4.0)
        expected = layers(x, raw=True)[0]
        report = layers.overflow_report()
        for threads in (1, 2, 3, 4):
            np.testing.assert_array_equal(fixed.compile(threads=threads)(x, raw=True)[0], expected)
            assert fixed.overflow_report() == report


def test_float64_and_non_contiguous_and_big_endian_input():
    fixed = _convert("conv1d")
    x = _data(MODELS["conv1d"][1], 12, 7, scale=2.0).astype(np.float64)
    _assert_same_as_layers(fixed, x)
    np.testing.assert_array_equal(fixed(x[::2]), fixed(np.ascontiguousarray(x[::2])))
    np.testing.assert_array_equal(fixed(x.astype(">f8")), fixed(x))


def test_bad_input_is_refused_before_native_code():
    fixed = _convert("mlp")
    x = _data((8,), 4, 8)
    fixed(x)
    with pytest.raises(ValueError, match=r"shape \(B, 8\)"):
        fixed(x[:, :7])
    with pytest.raises(TypeError, match="float32 or float64"):
        fixed(x.astype(np.int32))
    with pytest.raises(ValueError, match="at least one sample"):
        fixed(x[:0])
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        fixed(bad)


def test_changed_parameters_are_detected():
    fixed = _convert("mlp")
    x = _data((8,), 4, 9)
    before = fixed(x)
    layer = fixed.layers[0]
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0, 0] += 1
    layer.shift = layer.shift + 1
    with pytest.raises(PlanError, match=r"layer '0:Linear\+ReLU' changed \(shift\)"):
        fixed(x)
    layer._kernels.clear()
    np.testing.assert_array_equal(fixed.compile()(x), fixed.with_backend("reference")(x))
    assert not np.array_equal(fixed(x), before)
    fixed.layers.append(fixed.layers[-1])
    with pytest.raises(PlanError, match="layer list changed"):
        fixed(x)


def test_other_simd_paths_compile_again():
    fixed = _convert("conv2d")
    x = _data(MODELS["conv2d"][1], 10, 10, scale=2.0)
    expected = fixed.with_backend("reference")(x, raw=True)[0]
    np.testing.assert_array_equal(fixed(x, raw=True)[0], expected)
    try:
        for path in c_backend.supported_paths():
            c_backend.force_path(path)
            np.testing.assert_array_equal(fixed(x, raw=True)[0], expected, err_msg=path)
    finally:
        c_backend.force_path(None)
    np.testing.assert_array_equal(fixed(x, raw=True)[0], expected)


def test_what_runs_layer_by_layer_says_why():
    fixed = _convert("mlp", rounding="stochastic", seed=3)
    x = _data((8,), 5, 12)
    assert "stochastic" in fixed.plan_status()
    with pytest.raises(NotCompilable, match="stochastic"):
        fixed.compile()
    np.testing.assert_array_equal(fixed(x, raw=True)[0], fixed.with_backend("reference")(x, raw=True)[0])
    assert "C backend" in _convert("mlp").with_backend("reference").plan_status()


def test_a_call_allocates_only_its_output():
    fixed = _convert("conv2d")
    x = _data(MODELS["conv2d"][1], 64, 13)
    y = fixed(x)
    tracemalloc.start()
    try:
        fixed(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < y.nbytes + 4096
    assert fixed._plan(np.dtype(np.float32)).plan.arena_bytes(64) > 0


def test_plan_builder_refuses_what_it_cannot_run():
    builder = c_plan.PlanBuilder((4,), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        c_plan.PlanBuilder((4,), np.int8)
    with pytest.raises(TypeError, match="int8 or int16"):
        builder.clamp(builder.input, 0, 1)
    x = builder.quantize(builder.input, 4, 8, kernels.modes.Rounding.HALF_EVEN, np.int8, "input")
    with pytest.raises(ValueError, match="permute axes"):
        builder.permute(x, (1,))
    with pytest.raises(ValueError, match="cannot reshape"):
        builder.reshape(x, (3,))


def _random_model(rng):
    """A random small CNN or MLP: (float model, sample shape)."""
    def w(*shape):
        return rng.normal(0, rng.choice([0.05, 0.5, 3.0]), shape)

    if rng.random() < 0.4:
        widths = [int(v) for v in rng.integers(1, 40, rng.integers(2, 5))]
        layers = []
        for k, n in zip(widths, widths[1:]):
            layers += [nn.Linear(w(n, k), w(n) if rng.random() < 0.7 else None)]
            layers += [rng.choice([nn.ReLU, nn.ReLU6, nn.Tanh])()] if rng.random() < 0.7 else []
        return nn.Sequential(layers), (widths[0],)
    two_d = rng.random() < 0.5
    size, channels = int(rng.integers(4, 12)), int(rng.integers(1, 5))
    conv, pool = (nn.Conv2d, nn.MaxPool2d) if two_d else (nn.Conv1d, nn.MaxPool1d)
    kernel = int(rng.integers(1, 4))
    out = int(rng.integers(1, 20))
    shape_w = (out, kernel, kernel, channels) if two_d else (out, kernel, channels)
    layers = [conv(w(*shape_w), w(out), stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 3))), nn.ReLU()]
    if rng.random() < 0.5:
        layers.append(pool(2, 1))
    layers.append(nn.Flatten())
    shape = (size, size, channels) if two_d else (size, channels)
    flat = int(np.prod(nn.Sequential(layers)(np.zeros((1,) + shape)).shape[1:]))
    layers.append(nn.Linear(w(3, flat), w(3)))
    return nn.Sequential(layers), shape


@pytest.mark.parametrize("seed", range(12))
def test_random_models_and_inputs_are_bit_identical(seed):
    rng = np.random.default_rng(100 + seed)
    model, shape = _random_model(rng)
    precision = ["i8", "i16", "a16w8"][seed % 3]
    rounding = DETERMINISTIC[seed % len(DETERMINISTIC)]
    fixed = nn.quantize_model(model, _data(shape, 32, seed), precision, backend="c", rounding=rounding,
                              scale=["pow2", "multiplier"][seed % 2])
    for batch in (1, int(rng.integers(2, 40))):
        _assert_same_as_layers(fixed, _data(shape, batch, seed + batch, scale=float(rng.choice([0.1, 1.0, 20.0]))))
