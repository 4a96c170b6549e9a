"""Conversion to float formats (quantize_model with a float precision) and the FloatModel it returns."""

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint import kernels, nn
from fixedpoint.floatformat import FloatFormat
from fixedpoint.nn.float_model import FloatModel

from float_oracle import assert_same_values
from test_nn_convert import MODELS, _build, _data

BACKENDS = kernels.available()


def _mlp():
    rng = np.random.default_rng(3)
    return nn.Sequential([nn.Linear(rng.normal(0, 0.6, (12, 6)), rng.normal(0, 0.2, 12)), nn.ReLU(),
                          nn.Linear(rng.normal(0, 0.4, (4, 12)), rng.normal(0, 0.2, 4))])


def _by_hand(model, x, fmt, rounding="half_even"):
    """The MLP of `_mlp` in a float format from its definition: every tensor rounded, float32 products and sums."""
    q = lambda v: fx.quantize_float(v, fmt, rounding).astype(np.float32)  # noqa: E731
    first, _, second = model.layers
    h = q(x)
    h = np.maximum(h @ q(first.weight).T + first.bias.astype(np.float32), 0)
    return q(q(h) @ q(second.weight).T + second.bias.astype(np.float32))


@pytest.mark.parametrize("precision, fmt", [("bf16", fx.BF16), ("fp16", fx.FP16), ("fp8e4m3", fx.FP8_E4M3),
                                            ("fp8e5m2", fx.FP8_E5M2), ("e3m4", FloatFormat(3, 4)),
                                            ("E4M3FNFTZ", FloatFormat(4, 3, finite_only=True, subnormals=False))])
def test_reference_backend_is_the_definition(precision, fmt):
    model, x = _mlp(), _data((6,), 200, seed=2) * 3
    converted = nn.quantize_model(model, None, precision, backend="reference")
    assert isinstance(converted, FloatModel) and converted.fmt == fmt
    assert converted.precision == (precision if precision in fx.floatformat.NAMED else str(fmt))
    y = converted(x)
    assert y.dtype == np.float64
    assert_same_values(y, _by_hand(model, x, fmt))
    assert_same_values(fx.quantize_float(y, fmt), y)          # outputs are values of the format
    assert_same_values(converted(x.astype(np.float64)), y)    # float32 inputs are exact in float64


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("precision", ["bf16", "fp8e4m3", "fp8e5m2"])
def test_every_backend_agrees_with_the_reference_to_an_ulp_and_tracks_float(name, precision):
    model, shape = _build(name), MODELS[name][1]
    x = _data(shape, 32, seed=1)
    reference = nn.quantize_model(model, _data(shape), precision, backend="reference")
    y_ref = reference(x)
    fmt = reference.fmt
    for backend in BACKENDS:
        y = reference.with_backend(backend)(x)
        ulp = np.exp2(np.floor(np.log2(np.maximum(np.abs(y_ref), fmt.min_normal))) - fmt.man_bits)
        assert np.all(np.abs(y - y_ref) <= ulp), backend       # float32 sums in another order
        assert np.mean(y == y_ref) > 0.9
    exact = model(x.astype(np.float64))
    tolerance = {"bf16": 0.03, "fp8e4m3": 0.2, "fp8e5m2": 0.35}[precision] * np.abs(exact).max()
    assert np.abs(y_ref - exact).max() <= tolerance


def test_formats_table_names_every_layer_like_the_fixed_model():
    model, shape = _build("conv2d"), MODELS["conv2d"][1]
    converted = nn.quantize_model(model, _data(shape), "fp8e4m3")
    fixed = nn.quantize_model(model, _data(shape), "i8")
    assert [row["layer"] for row in converted.formats()] == [row["layer"] for row in fixed.formats()]
    rows = {row["layer"]: row for row in converted.formats()}
    assert rows["input"]["input"] == rows["input"]["output"] == "E4M3FN"
    assert rows["0:Conv2d+ReLU"]["weight"] == "E4M3FN" and rows["0:Conv2d+ReLU"]["scale"] == "none"
    assert rows["2:Residual.add"]["input"] == "E4M3FN + E4M3FN"
    assert rows["3:AvgPool2d"]["weight"] is None
    assert [row["layer"] for row in converted.overflow_report()] == list(rows)
    assert "FloatModel precision=fp8e4m3 format=E4M3FN" in str(converted)


def test_overflow_report_counts_saturated_and_flushed_elements():
    model = nn.Sequential([nn.Linear(np.diag([256.0, 1e-6, 1.0]))])
    converted = nn.quantize_model(model, None, "fp8e4m3")
    assert all(row["total"] == 0 for row in converted.overflow_report())
    converted(np.array([[2.0, 1.0, 1.0], [-2.0, 0.0, 0.5]], dtype=np.float32))
    report = {row["layer"]: row for row in converted.overflow_report()}
    assert report["input"] == {"layer": "input", "saturated": 0, "flushed": 0, "total": 6}
    # 1e-6 rounds to 0 as a weight (products of 0 are exact zeros); outputs +-512 saturate at +-448
    assert report["0:Linear"] == {"layer": "0:Linear", "saturated": 2, "flushed": 0, "total": 6}
    tiny = nn.quantize_model(nn.Sequential([nn.Linear(np.array([[1e-4]]))]), None, "fp8e5m2")
    tiny(np.array([[0.01], [1.0]], dtype=np.float32))
    assert tiny.overflow_report()[1]["flushed"] == 1


def test_prescale_picks_power_of_two_scales_from_calibration_and_avoids_saturation():
    rng = np.random.default_rng(0)
    model = nn.Sequential([nn.Linear(rng.normal(0, 300, (8, 4)), np.zeros(8)), nn.ReLU(),
                           nn.Linear(rng.normal(0, 1e-3, (2, 8)))])
    calib, x = rng.normal(0, 1, (256, 4)), rng.normal(0, 1, (64, 4)).astype(np.float32)
    plain = nn.quantize_model(model, calib, "fp8e4m3")
    scaled = nn.quantize_model(model, calib, "fp8e4m3", prescale=True)
    exact = model(x.astype(np.float64))
    error = {name: np.abs(m(x) - exact).max() for name, m in (("plain", plain), ("scaled", scaled))}
    assert error["scaled"] < error["plain"] / 4
    assert sum(row["saturated"] for row in plain.overflow_report()) > 0
    assert sum(row["saturated"] for row in scaled.overflow_report()) == 0
    rows = scaled.formats()
    first_max = np.abs(model.layers[0].weight).max()
    w_exp = int(np.floor(np.log2(448 / first_max)))
    assert rows[1]["weight"] == f"E4M3FN*2^{-w_exp}" and rows[1]["scale"] == "pow2"
    assert first_max * 2.0**w_exp <= 448 < first_max * 2.0 ** (w_exp + 1)
    for row in rows:
        for key in ("input", "output"):
            text = row[key]
            if "*2^" in text:
                assert int(text.split("*2^")[1]) != 0
    assert scaled.weight_bytes == plain.weight_bytes + 2 * 2


def test_prescale_exponents_keep_scaled_back_values_float32():
    model = nn.Sequential([nn.Linear(np.array([[1e-30]]))])
    scaled = nn.quantize_model(model, np.ones((4, 1)), "bf16", prescale=True)
    assert scaled.formats()[1]["weight"] == "E8M7*2^-16"      # bf16 takes at most 2**16 (float32 subnormals)
    y = scaled(np.ones((1, 1), np.float32))
    assert y[0, 0] == pytest.approx(1e-30, rel=2**-7)


def test_weight_bytes_per_format():
    model = _mlp()
    n_weights, n_bias = 12 * 6 + 4 * 12, 12 + 4
    for precision, itemsize in (("bf16", 2), ("fp16", 2), ("fp8e4m3", 1), ("e3m2", 1), ("e8m23", 4)):
        assert nn.quantize_model(model, None, precision).weight_bytes == n_weights * itemsize + 4 * n_bias


def test_stochastic_rounding_is_seeded_and_every_call_starts_afresh():
    model, x = _mlp(), _data((6,), 100, seed=4)
    a = nn.quantize_model(model, None, "fp8e4m3", rounding="stochastic", seed=3)
    b = nn.quantize_model(model, None, "fp8e4m3", rounding="stochastic", seed=3)
    assert_same_values(a(x), b(x))
    assert_same_values(a(x), a(x))
    c = nn.quantize_model(model, None, "fp8e4m3", rounding="stochastic", seed=4)
    assert not np.array_equal(a(x), c(x))
    nearest = nn.quantize_model(model, None, "fp8e4m3")(x)
    assert np.abs(a(x) - nearest).max() <= 0.25 * np.abs(nearest).max()


def test_directed_rounding_reaches_every_layer():
    model, x = _mlp(), _data((6,), 50, seed=5)
    assert_same_values(nn.quantize_model(model, None, "bf16", rounding="floor", backend="reference")(x),
                       _by_hand(model, x, fx.BF16, "floor"))


def test_models_copy_and_keep_their_backend():
    import copy
    import pickle

    model, x = _mlp(), _data((6,), 20)
    converted = nn.quantize_model(model, x, "fp8e5m2", backend="reference")
    assert converted.backend == "reference" and converted.with_backend(BACKENDS[0]).backend == BACKENDS[0]
    for clone in (copy.deepcopy(converted), pickle.loads(pickle.dumps(converted))):
        assert_same_values(clone(x), converted(x))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(precision="fp9"), ValueError, r"precision must be one of \('i8', 'i16', 'a16w8'\) or a float format "
                                        r"\('bf16', 'fp16', 'fp8e4m3', 'fp8e5m2' or 'e<E>m<M>"),
    (dict(precision="e4m60"), ValueError, "precision='e4m60': man_bits=60 is out of range; accepted: 0..52"),
    (dict(precision=8), ValueError, "precision must be one of"),
    (dict(precision="bf16", weight_bits=8), ValueError, "weight_bits applies to the fixed-point precisions"),
    (dict(precision="bf16", activation_bits=8), ValueError, "activation_bits applies"),
    (dict(precision="bf16", scale="multiplier"), ValueError, "scale='multiplier' applies to the fixed-point"),
    (dict(precision="bf16", scale="log"), ValueError, "scale must be one of"),
    (dict(precision="i8", prescale=True), ValueError, "prescale applies to float-format precisions"),
    (dict(precision="bf16", method="mse"), ValueError, r"method must be one of \('max', 'percentile'\) for float"),
    (dict(precision="bf16", rounding="jam"), ValueError, "rounding='jam' is not a float-format rounding"),
    (dict(precision="bf16", prescale=1), TypeError, "prescale must be True or False"),
    (dict(precision="bf16", prescale=True, calibration_data=None), ValueError, "prescale=True needs calibration_data"),
    (dict(precision="bf16", calibration_data=np.ones((0, 6))), ValueError, "calibration_data must be a non-empty"),
    (dict(precision="bf16", calibration_data=np.ones((4, 5))), ValueError, "calibration_data does not fit the model"),
    (dict(precision="bf16", backend="gpu"), ValueError, "backend"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    arguments = dict(calibration_data=np.ones((4, 6))) | kwargs
    with pytest.raises(error, match=message):
        nn.quantize_model(_mlp(), arguments.pop("calibration_data"), **arguments)


def test_bad_inputs_at_run_time():
    converted = nn.quantize_model(_mlp(), np.ones((4, 6)), "bf16")
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        converted(np.ones((2, 6), dtype=np.int32))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 6\)"):
        converted(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="at least one sample"):
        converted(np.ones((0, 6), dtype=np.float32))
    assert_same_values(converted(np.ones((2, 6), dtype=">f4")), converted(np.ones((2, 6), dtype=np.float32)))


def test_gemms_run_on_the_bf16_kind_where_every_operand_is_a_bf16_number():
    from fixedpoint.nn.float_layers import FloatGemm

    for precision, bf16 in (("bf16", True), ("fp8e4m3", True), ("fp8e5m2", True), ("e3m4", True), ("fp16", False),
                            ("e8m10", False), ("e9m3", False)):
        converted = nn.quantize_model(_mlp(), None, precision)
        assert [layer.bf16 for layer in converted.layers if isinstance(layer, FloatGemm)] == [bf16, bf16], precision
    tiny = nn.quantize_model(nn.Sequential([nn.Linear(np.array([[1e-30]]))]), np.ones((4, 1)), "bf16", prescale=True)
    assert not tiny.layers[0].bf16          # scaled by 2**-16 the weights leave bf16's range: the float32 kind


def test_a_loaded_onnx_cnn_converts_to_float_formats():
    """A graph loaded from ONNX converts to the float formats (a channels-first graph's Permute is covered by
    the user-model sweep test)."""
    onnx = pytest.importorskip("onnx")  # noqa: F841
    from fixedpoint import nn, onnx as fx_onnx

    rng = np.random.default_rng(4)
    model = nn.Sequential([nn.Conv1d(rng.standard_normal((4, 3, 2)) / 2, rng.standard_normal(4), padding=1),
                           nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(rng.standard_normal((3, 20)) / 4)])
    loaded = fx_onnx.load(fx_onnx.export(model, (10, 2)))
    x_ncl = rng.standard_normal((6, 10, 2))   # the exported graph takes the model's own channels-last input
    reference = loaded(x_ncl)
    for precision, tolerance in (("bf16", 0.05), ("fp8e4m3", 0.3)):
        converted = nn.quantize_model(loaded, x_ncl, precision)
        error = np.abs(converted(x_ncl) - reference).max() / np.abs(reference).max()
        assert error < tolerance
