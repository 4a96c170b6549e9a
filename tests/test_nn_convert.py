"""Conversion to fixed point (fixedpoint.nn.quantize_model) and the integer layers it builds."""

import numpy as np
import pytest

from fixedpoint import QFormat, kernels, nn
from fixedpoint.kernels.modes import Rounding
from fixedpoint.nn.fixed_layers import FixedSoftmax, Run

BACKENDS = kernels.available()
RNG = np.random.default_rng(5)


def _w(*shape, scale=0.5):
    return RNG.normal(0, scale, shape)


def _bn(channels):
    return nn.BatchNorm(RNG.uniform(0.5, 2, channels), RNG.normal(0, 0.3, channels),
                        RNG.normal(0, 0.3, channels), RNG.uniform(0.5, 2, channels))


MODELS = {
    "mlp": (lambda: nn.Sequential([nn.Linear(_w(16, 8), _w(16)), nn.ReLU(), nn.Linear(_w(5, 16), _w(5)),
                                   nn.Softmax()]), (8,)),
    "conv1d": (lambda: nn.Sequential([nn.Conv1d(_w(6, 3, 2), _w(6), padding=1), _bn(6), nn.ReLU6(),
                                      nn.MaxPool1d(2), nn.Conv1d(_w(4, 3, 6), None, stride=2), nn.Tanh(),
                                      nn.AvgPool1d(2), nn.Flatten(), nn.Linear(_w(3, 4), _w(3))]), (12, 2)),
    "conv2d": (lambda: nn.Sequential([nn.Conv2d(_w(4, 3, 3, 2), _w(4), padding=1), nn.ReLU(),
                                      nn.Residual([nn.Conv2d(_w(4, 3, 3, 4), _w(4), padding=1), nn.ReLU()]),
                                      nn.AvgPool2d(2), nn.MaxPool2d((1, 2)), nn.Sigmoid(), nn.Flatten(),
                                      nn.Linear(_w(3, 16), _w(3))]), (4, 8, 2)),
}


def _build(name):
    """Model `name` with the same random weights every time."""
    global RNG
    RNG = np.random.default_rng(5)
    return MODELS[name][0]()


def _data(shape, n=64, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n,) + shape).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_case(request):
    shape = MODELS[request.param][1]
    return _build(request.param), _data(shape), _data(shape, 16, seed=1)


@pytest.mark.parametrize("precision", ["i8", "i16", "a16w8"])
def test_every_backend_gives_the_same_integers_and_outputs_track_float(model_case, precision):
    model, calib, x = model_case
    fixed = nn.quantize_model(model, calib, precision)
    outputs = {name: fixed.with_backend(name)(x, raw=True) for name in BACKENDS}
    raw, fmt = outputs[BACKENDS[0]]
    for name, (other, other_fmt) in outputs.items():
        assert other_fmt == fmt and other.dtype == raw.dtype, name
        np.testing.assert_array_equal(other, raw, err_msg=name)
    assert raw.dtype == (np.int8 if precision == "i8" else np.int16)
    reference = model(x.astype(np.float64))
    tolerance = {"i8": 0.15, "a16w8": 0.05, "i16": 0.01}[precision] * np.abs(reference).max()
    np.testing.assert_allclose(fixed(x), reference, atol=tolerance)


def test_linear_integers_match_an_independent_computation():
    weight, bias = _w(6, 5), _w(6)
    model = nn.Sequential([nn.Linear(weight, bias)])
    calib = _data((5,))
    fixed = nn.quantize_model(model, calib, "i8")
    x = _data((5,), 8, seed=3)
    raw, out_fmt = fixed(x, raw=True)
    in_fmt = QFormat.for_range(np.abs(calib).max(), 8)
    x_raw = np.clip(np.rint(np.ldexp(x.astype(np.float64), in_fmt.frac)), -128, 127).astype(np.int64)
    w_frac = np.array([QFormat.for_range(np.abs(row).max(), 8).frac for row in weight])
    w_raw = np.rint(np.ldexp(weight, w_frac[:, None])).astype(np.int64)
    b_raw = np.rint(np.ldexp(bias, in_fmt.frac + w_frac)).astype(np.int64)
    acc = x_raw @ w_raw.T + b_raw
    shift = in_fmt.frac + w_frac - out_fmt.frac
    expected = np.array([[int(np.rint(a / 2.0 ** s)) for a, s in zip(row, shift)] for row in acc])
    np.testing.assert_array_equal(raw, np.clip(expected, -128, 127))
    assert out_fmt == QFormat.for_range(np.abs(model(calib.astype(np.float64))).max(), 8)


@pytest.mark.parametrize("options", [{"scale": "multiplier"}, {"per_channel": False},
                                     {"scale": "multiplier", "per_channel": False},
                                     {"method": "percentile"}, {"method": "mse"}])
def test_variants_convert_and_agree_across_backends(model_case, options):
    model, calib, x = model_case
    fixed = nn.quantize_model(model, calib, "i16", **options)
    results = [fixed.with_backend(name)(x) for name in BACKENDS]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    reference = model(x.astype(np.float64))
    np.testing.assert_allclose(results[0], reference, atol=0.02 * np.abs(reference).max())
    scales = {row["scale"] for row in fixed.formats() if row["weight"] is not None}
    assert scales == {options.get("scale", "pow2")}


def test_multipliers_are_int32_in_the_tflite_range():
    fixed = nn.quantize_model(_build("mlp"), _data((8,)), "i8", scale="multiplier")
    gemm = fixed.layers[0]
    assert gemm.multiplier.min() >= 2**30 and gemm.multiplier.max() < 2**31
    # a shared weight scale gives one multiplier value for every channel
    shared = nn.quantize_model(_build("mlp"), _data((8,)), "i8", scale="multiplier", per_channel=False)
    assert np.unique(shared.layers[0].multiplier).size == 1


@pytest.mark.parametrize("weight_bits, activation_bits, act_dtype, w_dtype", [
    (4, 6, np.int8, np.int8), (2, 16, np.int16, np.int8), (12, 5, np.int16, np.int16), (16, 16, np.int16, np.int16)])
def test_bit_width_overrides(weight_bits, activation_bits, act_dtype, w_dtype):
    model, shape = _build("conv1d"), MODELS["conv1d"][1]
    fixed = nn.quantize_model(model, _data(shape), "i8", weight_bits=weight_bits, activation_bits=activation_bits)
    assert fixed.precision == f"w{weight_bits}a{activation_bits}"
    assert nn.quantize_model(model, _data(shape), "i16", weight_bits=16).precision == "i16"
    raw, fmt = fixed(_data(shape, 8, seed=2), raw=True)
    assert raw.dtype == act_dtype and fmt.bits == activation_bits
    assert -(1 << (activation_bits - 1)) <= raw.min() and raw.max() < 1 << (activation_bits - 1)
    gemm = fixed.layers[0]
    assert gemm.weight.dtype == w_dtype and np.abs(gemm.weight).max() <= 1 << (weight_bits - 1)
    for row in fixed.formats():
        assert QFormat.parse(row["output"]).bits == activation_bits


@pytest.mark.parametrize("rounding", [mode.value for mode in Rounding])
def test_every_rounding_mode_runs_on_every_backend(rounding):
    model, shape = _build("conv2d"), MODELS["conv2d"][1]
    fixed = nn.quantize_model(model, _data(shape, 32), "i8", rounding=rounding, seed=11)
    x = _data(shape, 4, seed=4)
    results = [fixed.with_backend(name)(x) for name in BACKENDS]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    reference = model(x.astype(np.float64))
    np.testing.assert_allclose(results[0], reference, atol=0.3 * np.abs(reference).max())


def test_stochastic_rounding_is_reproducible_from_the_seed():
    model, shape = _build("mlp"), MODELS["mlp"][1]
    calib, x = _data(shape), _data(shape, 32, seed=6)
    first = nn.quantize_model(model, calib, "i8", rounding="stochastic", seed=3)
    again = nn.quantize_model(model, calib, "i8", rounding="stochastic", seed=3)
    other = nn.quantize_model(model, calib, "i8", rounding="stochastic", seed=4)
    np.testing.assert_array_equal(first(x, raw=True)[0], again(x, raw=True)[0])
    np.testing.assert_array_equal(first(x, raw=True)[0], first(x, raw=True)[0])
    assert not np.array_equal(first.layers[0].weight, other.layers[0].weight)


def test_batchnorm_is_folded_into_the_layer_before_it():
    conv, bn = nn.Conv1d(_w(4, 3, 2), _w(4), padding=1), _bn(4)
    scale, offset = bn.scale_offset()
    folded = nn.Conv1d(conv.weight * scale[:, None, None], conv.bias * scale + offset, padding=1)
    calib, x = _data((10, 2)), _data((10, 2), 8, seed=9)
    with_bn = nn.quantize_model(nn.Sequential([conv, bn, nn.ReLU()]), calib, "i8")
    by_hand = nn.quantize_model(nn.Sequential([folded, nn.ReLU()]), calib, "i8")
    np.testing.assert_array_equal(with_bn(x, raw=True)[0], by_hand(x, raw=True)[0])
    assert [row["layer"] for row in with_bn.formats()] == ["input", "0:Conv1d+ReLU"]


def _softmax_errors(in_fmt, out_fmt, rows, rounding="half_even"):
    layer = FixedSoftmax("softmax", in_fmt, out_fmt, out_fmt.dtype)
    raw = layer.forward(rows.astype(out_fmt.dtype), Run("reference", rounding, None))
    values = np.ldexp(rows.astype(np.float64), -in_fmt.frac)
    exact = np.exp(values - values.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    return np.abs(raw - np.ldexp(exact, out_fmt.frac)).max()


@pytest.mark.parametrize("rounding, rounding_error", [("half_even", 0.5), ("half_away", 0.5), ("floor", 1.0),
                                                     ("to_zero", 1.0)])
@pytest.mark.parametrize("in_frac", [0, 4, 7])
def test_softmax_error_bound_exhaustively_over_int8_pairs(in_frac, rounding, rounding_error):
    values = np.arange(-128, 128)
    rows = np.stack(np.meshgrid(values, values), axis=-1).reshape(-1, 2)
    out_fmt = QFormat.for_range(1.0, 8)
    error = _softmax_errors(QFormat(8, in_frac), out_fmt, rows, rounding)
    assert rounding_error - 0.1 < error <= rounding_error + 3 * 2.0 ** (out_fmt.frac - 31)


@pytest.mark.parametrize("in_frac", [8, 12])
def test_softmax_error_bound_exhaustively_over_int16_differences(in_frac):
    d = np.arange(-32768, 32768)
    rows = np.stack([np.zeros_like(d), d, d // 2], axis=1)
    out_fmt = QFormat.for_range(1.0, 16)
    assert _softmax_errors(QFormat(16, in_frac), out_fmt, rows) <= 0.5 + 4 * 2.0 ** (out_fmt.frac - 31)


def test_overflow_report_counts_saturation_per_layer():
    model = nn.Sequential([nn.Linear(np.diag([1.0, 2.0, 3.0, 5.0]), np.zeros(4)), nn.ReLU()])
    calib = np.random.default_rng(2).uniform(-1, 1, (500, 4))
    calib[0] = 1.0
    fixed = nn.quantize_model(model, calib, "i8")
    assert [(row["input"], row["output"]) for row in fixed.formats()] == [("Q1.6", "Q1.6"), ("Q1.6", "Q3.4")]
    assert all(row["total"] == 0 for row in fixed.overflow_report())
    # input range +-1.98: 3.0, -3.0 and 2.5 saturate; Q3.4 holds up to 7.94: 5 * 1.98 = 9.9 saturates
    fixed(np.array([[1.5, 1.5, 1.5, 1.5], [3.0, -3.0, 0.5, 2.5]]))
    assert fixed.overflow_report() == [{"layer": "input", "saturated": 3, "total": 8},
                                       {"layer": "0:Linear+ReLU", "saturated": 1, "total": 8}]
    fixed(np.full((3, 4), 0.25))
    assert [row["saturated"] for row in fixed.overflow_report()] == [0, 0]
    assert [row["total"] for row in fixed.overflow_report()] == [12, 12]


def test_formats_table_and_weight_bytes():
    model = nn.Sequential([nn.Linear(_w(16, 8), _w(16)), nn.ReLU(), nn.Linear(_w(5, 16), _w(5))])
    fixed = nn.quantize_model(model, _data((8,)), "i8")
    rows = fixed.formats()
    assert [row["layer"] for row in rows] == ["input", "0:Linear+ReLU", "2:Linear"]
    assert set(rows[1]) >= {"layer", "input", "weight", "output", "scale"} and rows[0]["weight"] is None
    assert rows[1]["input"] == rows[0]["output"] and rows[2]["input"] == rows[1]["output"]
    text = str(fixed)
    assert "0:Linear+ReLU" in text and rows[2]["output"] in text
    # int8 weights, int32 biases, one shift byte per output channel
    assert fixed.weight_bytes == (16 * 8 + 5 * 16) + 4 * (16 + 5) + (16 + 5)
    assert model.weight_bytes(np.float32) == 4 * (16 * 8 + 16 + 5 * 16 + 5)
    assert model.weight_bytes(np.float64) == 2 * model.weight_bytes(np.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        model.weight_bytes(np.int8)
    wide = nn.quantize_model(model, _data((8,)), "i16", scale="multiplier")
    assert wide.weight_bytes == 2 * (16 * 8 + 5 * 16) + 8 * (16 + 5) + 5 * (16 + 5)


def test_backend_selection():
    model = _build("mlp")
    fixed = nn.quantize_model(model, _data((8,)), "i8", backend="reference")
    assert fixed.backend == "reference" and fixed.with_backend(BACKENDS[0]).backend == BACKENDS[0]
    with pytest.raises(ValueError, match="backend"):
        fixed.with_backend("gpu")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"precision": "i4"}, ValueError, "precision must be one of \\('i8', 'i16', 'a16w8'\\)"),
    ({"method": "minmax"}, ValueError, "method must be one of"),
    ({"scale": "log"}, ValueError, "scale must be one of \\('pow2', 'multiplier'\\)"),
    ({"rounding": "nearest"}, ValueError, "rounding='nearest'.*accepted"),
    ({"weight_bits": 1}, ValueError, "weight_bits must be an int in 2..16"),
    ({"activation_bits": 17}, ValueError, "activation_bits must be an int in 2..16"),
    ({"backend": "gpu"}, ValueError, "backend"),
    ({"per_channel": "yes"}, TypeError, "per_channel"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.quantize_model(_build("mlp"), _data((8,)), **kwargs)


@pytest.mark.parametrize("data", [_data((8,)) * (1 + 1j), (_data((8,)) * 1j).astype(np.complex64),
                                  _data((8,)) > 0])
def test_calibration_data_that_is_not_real_is_a_type_error_naming_it(data):
    with pytest.raises(TypeError, match="calibration_data must be a real .*got dtype"):
        nn.quantize_model(_build("mlp"), data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_endian_input_gives_the_native_order_results(dtype):
    fixed = nn.quantize_model(_build("conv1d"), _data((12, 2)), "i8")
    x = _data((12, 2), n=5, seed=1).astype(dtype)
    for backend in BACKENDS:
        raw, fmt = fixed.with_backend(backend)(x.astype(x.dtype.newbyteorder(">")), raw=True)
        expected, expected_fmt = fixed.with_backend(backend)(x, raw=True)
        np.testing.assert_array_equal(raw, expected)
        assert fmt == expected_fmt and raw.dtype.isnative
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        fixed(x.astype(">f2"))


def test_bad_shapes_name_the_layer():
    model = nn.Sequential([nn.Linear(_w(16, 8), _w(16)), nn.ReLU(), nn.Linear(_w(5, 15), _w(5))])
    with pytest.raises(ValueError, match="at layer 2:Linear"):
        nn.quantize_model(model, _data((8,)))
    with pytest.raises(ValueError, match="at layer 0:Linear"):
        nn.quantize_model(_build("mlp"), _data((7,)))
    with pytest.raises(ValueError, match="calibration_data"):
        nn.quantize_model(_build("mlp"), np.zeros(8))
    fixed = nn.quantize_model(_build("mlp"), _data((8,)))
    with pytest.raises(ValueError, match="x must have shape \\(B, 8\\)"):
        fixed(_data((9,)))
    with pytest.raises(TypeError, match="float32 or float64"):
        fixed(np.zeros((2, 8), dtype=np.int8))
    with pytest.raises(ValueError, match="BatchNorm"):
        nn.quantize_model(nn.Sequential([_bn(8), nn.Linear(_w(2, 8))]), _data((8,)))


def test_chunked_batch_gives_the_same_integers_and_counts(monkeypatch):
    from fixedpoint.nn import fixed_model

    model, shape = _build("conv1d"), MODELS["conv1d"][1]
    fixed = nn.quantize_model(model, _data(shape), "i8", backend="reference")   # layer by layer: chunked in Python
    x = 3 * _data(shape, 20, seed=8)
    whole = fixed(x, raw=True)[0]
    whole_report = fixed.overflow_report()
    for per_chunk in (2, 3, 7):                    # at most this many 24-byte samples per chunk
        monkeypatch.setattr(fixed_model, "_CHUNK_BYTES", per_chunk * 12 * 2 + 1)
        np.testing.assert_array_equal(fixed(x, raw=True)[0], whole)
        assert fixed.overflow_report() == whole_report and whole_report[0]["saturated"] > 0
        np.testing.assert_array_equal(fixed(x[:5], raw=True)[0], whole[:5])


def test_bias_beyond_the_accumulator_saturates_and_is_counted():
    model = nn.Sequential([nn.Linear([[0.5, -0.25], [0.5, 0.25]], [3e6, 0.1])])
    fixed = nn.quantize_model(model, _data((2,)), "i8")
    row = fixed.formats()[1]
    assert row["bias_saturated"] == 1 and row["weight"] == "Q0.7"
    limit = (1 << 31) - 1 - 2 * (1 << 14)          # room left for K = 2 int8 x int8 products
    assert fixed.layers[0].bias.dtype == np.int32 and fixed.layers[0].bias[0] == limit


def test_residual_join_rounds_once_and_is_reported():
    calib = np.random.default_rng(3).uniform(-1, 0.2, (200, 6))   # x + relu(x) within +-1: output Q1.6
    fixed = nn.quantize_model(nn.Sequential([nn.Residual([nn.ReLU()])]), calib, "i8")
    assert [row["layer"] for row in fixed.formats()] == ["input", "0:Residual.0:ReLU", "0:Residual.add"]
    x = np.random.default_rng(4).uniform(-3, 3, (5, 6))
    raw, out_fmt = fixed(x, raw=True)
    in_fmt = QFormat.for_range(np.abs(calib).max(), 8)
    x_raw = np.clip(np.rint(np.ldexp(x, in_fmt.frac)), -128, 127)
    total = np.ldexp(x_raw + np.maximum(x_raw, 0), out_fmt.frac - in_fmt.frac)
    expected = np.clip(np.rint(total), -128, 127)
    np.testing.assert_array_equal(raw, expected)
    report = {row["layer"]: row["saturated"] for row in fixed.overflow_report()}
    assert report["0:Residual.add"] == np.count_nonzero((np.rint(total) > 127) | (np.rint(total) < -128)) > 0


@pytest.mark.parametrize("precision", ["i8", "i16"])
@pytest.mark.parametrize("scale", ["pow2", "multiplier"])
@pytest.mark.parametrize("tiny", ["weights", "data"])
def test_tiny_weights_or_data_give_the_integers_of_their_power_of_two_multiple(tiny, scale, precision):
    """Weights or calibration data 2**-1016 times smaller (below 1e-306; exact in float64) convert to the
    same integers, with 1016 more fraction bits."""
    rng = np.random.default_rng(8)
    w1, b1 = rng.integers(-512, 512, (6, 4)) / 1024, rng.integers(-512, 512, 6) / 1024
    w2, x = rng.integers(-512, 512, (3, 6)) / 1024, rng.integers(-256, 256, (32, 4)) / 256

    def convert(factor):   # the layer's output, bias included, scales with the weights or the data
        w_factor, x_factor = (factor, 1.0) if tiny == "weights" else (1.0, factor)
        model = nn.Sequential([nn.Linear(w1 * w_factor, b1 * factor), nn.ReLU6(), nn.Linear(w2)])
        return nn.quantize_model(model, x * x_factor, precision, scale=scale)(x * x_factor, raw=True)

    raw, fmt = convert(2.0 ** -1016)
    base_raw, base_fmt = convert(1.0)
    np.testing.assert_array_equal(raw, base_raw)
    assert fmt.frac == base_fmt.frac + 1016 and np.abs(base_raw).max() > 0


def test_int16_bias_beyond_32_bits_is_kept_in_the_int64_accumulator():
    model = nn.Sequential([nn.Linear(np.full((2, 3), 0.004), [3.0, 0.001])])   # 3.0 needs ~2**35 at w_frac 22
    x = _data((3,))
    fixed = nn.quantize_model(model, x, "i16")
    layer = fixed.layers[0]
    acc_frac = fixed.layers[0].in_fmt.frac + 22
    assert fixed.formats()[1]["bias_saturated"] == 0
    assert layer.bias.dtype == np.int64 and layer.bias[0] == round(3.0 * 2**acc_frac) > 2**31
    y = model(x)
    assert 10 * np.log10(np.sum(y**2) / np.sum((y - fixed(x))**2)) > 60


def test_int8_bias_beyond_the_int32_accumulator_is_counted_as_saturated():
    model = nn.Sequential([nn.Linear(np.full((2, 3), 0.004), [1e5, 0.001])])   # 1e5 needs ~2**36 at w_frac 14
    fixed = nn.quantize_model(model, _data((3,)), "i8")
    limit = (1 << 31) - 1 - 3 * (1 << 14)
    assert fixed.formats()[1]["bias_saturated"] == 1
    assert fixed.layers[0].bias[0] == limit
