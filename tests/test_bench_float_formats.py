"""The float formats in the harness: model rows, sweep curves at equal width, the sine's float theory line,
and the report sections that show them."""
import math

import numpy as np
import pytest

from fixedpoint.bench import catalog, cli, metrics, model_workloads, results, runner, sweeps, workloads
from results_files import results_file


@pytest.mark.parametrize("man_bits, emin, amplitude", [(3, -6, 1.0), (7, -126, 1.0), (2, -14, 0.7), (10, -14, 3.0),
                                                       (1, -2, 1.0)])
def test_float_sine_theory_is_the_binade_noise_model(man_bits, emin, amplitude):
    theta = (np.arange(2_000_000) + 0.5) * (np.pi / 2 / 2_000_000)        # a quarter period is enough
    x = amplitude * np.sin(theta)
    binade = np.maximum(np.floor(np.log2(x)), emin)
    noise = np.mean(np.exp2(2 * (binade - man_bits)) / 12)
    expected = 10 * math.log10(amplitude ** 2 / 2 / noise)
    assert metrics.float_sine_sqnr_theory_db(man_bits, emin, amplitude) == pytest.approx(expected, abs=0.01)


def test_float_theory_constants_of_the_docstring():
    for m in (3, 7, 10):   # amplitude just below a power of two: about 6.02 (M + 1) + 9.2 dB
        assert metrics.float_sine_sqnr_theory_db(m, -126, 1.0) == pytest.approx(6.02 * (m + 1) + 9.2, abs=0.1)
    # the log-uniform mantissa: E[1/f**2] over [1, 2) with density 1/(f ln 2) is 3 / (8 ln 2); times 4 / 12
    assert 3 / (8 * math.log(2)) * 4 / 12 == pytest.approx(0.180, abs=5e-4)


def test_sqnr_sweep_has_float_rows_per_family_beside_theory():
    rows = runner.sqnr_sweep(range(2, 17))
    floats = [row for row in rows if "format" in row]
    assert {row["exp_bits"] for row in floats} == {4, 5, 8}
    by_format = {row["format"]: row for row in floats}
    assert by_format["E4M3FN"]["bits"] == 8 and by_format["E5M2"]["bits"] == 8
    assert by_format["E8M7"]["bits"] == 16 and by_format["E5M10"]["bits"] == 16 and "E8M-1" not in by_format
    assert all(abs(row["sqnr_db"] - row["theory_db"]) < 1.5 for row in floats)
    fixed8 = next(row for row in rows if row["bits"] == 8 and "format" not in row)
    assert fixed8["sqnr_db"] > by_format["E4M3FN"]["sqnr_db"] + 10       # a full-scale sine favours fixed point


def test_sweep_points_add_float_curves_at_equal_width():
    points = sweeps.sweep_points(["digits-mlp"], [2, 8, 16], [8], variants=())
    floats = [(p.variant, p.weight_bits, p.float_format) for p in points if p.float_format]
    assert floats == [("float E4", 8, "E4M3FN"), ("float E4", 16, "E4M11FN"), ("float E5", 8, "E5M2"),
                      ("float E5", 16, "E5M10"), ("float E8", 16, "E8M7")]
    assert sweeps.float_family_format("float E4", 4) is None
    with pytest.raises(ValueError, match="unknown sweep variant 'float E6'"):
        sweeps.sweep_points(["digits-mlp"], [8], [8], float_families=["float E6"])


def test_a_float_sweep_point_converts_to_its_format():
    point = sweeps.SweepPoint("digits-mlp", 8, 8, "float E4", float_format="E4M3FN")
    record = sweeps.evaluate_point(point, n_test=200)
    assert record["float_format"] == "E4M3FN" and record["variant"] == "float E4" and record["n_test"] == 200
    assert abs(record["accuracy"] - record["float64_accuracy"]) <= 0.02
    fixed = sweeps.evaluate_point(sweeps.SweepPoint("digits-mlp", 8, 8), n_test=200)
    assert "float_format" not in fixed


def test_model_rows_of_the_float_formats_run_on_every_backend():
    specs, _ = catalog.model_plan(["digits-mlp"], ["c", "numba"], fx_precisions=["bf16"], batches=(1,))
    labels = [spec.label for spec in specs if spec.kind == "model"]
    assert labels == ["model digits-mlp batch 1 bf16 c", "model digits-mlp batch 1 bf16 numba"]
    backend = workloads.timed_backends()[0]
    case = model_workloads.model_case("digits-mlp", 4, "fp8e4m3", backend)
    converted = model_workloads.converted("digits-mlp", "fp8e4m3", backend)
    assert case.weight_bytes == converted.weight_bytes == 64 * 128 + 128 * 10 + 4 * (128 + 10)
    assert case.activation_bytes == (4 * 128 + 4 * 128) * 1    # the ReLU: input and output, one byte each
    assert case.extra["accuracy"] == pytest.approx(case.extra["float64_accuracy"], abs=0.01)
    assert np.all(np.isfinite(case.decode(case.call())))
    assert set(workloads.FLOAT_FORMAT_PRECISIONS) | set(workloads.KERNEL_PRECISIONS) == set(workloads.PRECISIONS)
    assert len(workloads.PRECISIONS) == len(set(workloads.PRECISIONS))


@pytest.mark.parametrize("op, dims", [("linear", (3, 40, 17)), ("conv1d", (2, 9, 4, 5, 3)), ("conv2d", (1, 6, 5, 3, 4, 3))])
def test_bf16_kernel_rows_round_once_and_run_the_bf16_kind(op, dims):
    for backend in workloads.timed_backends():
        case = workloads.dot_case(op, dims, "bf16", backend)
        out = case.decode(case.call())
        weights = dims[2] * dims[1] if op == "linear" else np.prod(dims[2:5]) if op == "conv1d" else \
            dims[3] * dims[4] * dims[5] ** 2
        assert out.dtype == np.float32 and case.weight_bytes == 2 * weights
        assert 40 < metrics.sqnr_db(case.reference, out) < 70      # bf16 inputs: about 8 bits of precision
    with pytest.raises(ValueError, match="numpy rows exist for f32 and f64 only"):
        workloads.dot_case("linear", (1, 4, 2), "bf16", workloads.NUMPY)
    specs, _ = catalog.kernel_plan(quick=True, backends=["c"], precisions=["bf16"])
    labels = [spec.label for spec in specs if spec.backend == "c"]
    assert labels[:2] == ["linear 1x784x256 bf16 c", "linear 32x784x256 bf16 c"]
    assert not any(spec.kind in ("quantize", "max_pool2d") for spec in specs)


def _model(task, precision, accuracy, median=1e-3):
    return {"kind": "speed", "op": "model", "workload": f"model {task} batch 256", "task": task, "batch": 256,
            "precision": precision, "backend": "c" if precision != "f32" else "numpy", "median_s": median,
            "accuracy": accuracy}


def _sweep(task, bits, variant, accuracy, float_format=None):
    record = {"kind": "sweep", "task": task, "weight_bits": bits, "activation_bits": bits, "variant": variant,
              "accuracy": accuracy, "float64_accuracy": 0.95, "n_test": 100}
    return record if float_format is None else dict(record, float_format=float_format)


def test_report_shows_the_float_formats(tmp_path):
    records = [_model("a", "f32", 0.950, 2e-3), _model("a", "bf16", 0.949, 1e-3), _model("a", "fp8e4m3", 0.945),
               _model("a", "fp8e5m2", 0.951), _model("a", "i8", 0.94)]
    records += [_sweep("a", 8, "default", 0.94), _sweep("a", 16, "default", 0.95),
                _sweep("a", 8, "float E4", 0.945, "E4M3FN"), _sweep("a", 8, "float E5", 0.93, "E5M2"),
                _sweep("a", 16, "float E5", 0.95, "E5M10"), _sweep("a", 16, "float E8", 0.95, "E8M7")]
    records += [{"kind": "sqnr_sine", "bits": 8, "sqnr_db": 49.9, "theory_db": 49.92},
                {"kind": "sqnr_sine", "bits": 8, "sqnr_db": 33.8, "theory_db": 33.3, "format": "E4M3FN",
                 "exp_bits": 4}]
    path = results_file(tmp_path / "r.json", records)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| f64 ms | f32 ms | bf16 ms | i16 ms | a16w8 ms | fp8e4m3 ms | fp8e5m2 ms | i8 ms |" in text
    assert "bf16 speedup vs best float32" in text and "-/95.0/94.9/-/-/94.5/95.1/94.0" in text
    assert "Its float formats lose at most: bf16 0.1 points (a), fp8e4m3 0.5 points (a), fp8e5m2 none." in text
    assert "| float E4 | float E5 | float E8 |" in text
    assert "| 8-bit int8 | 8-bit E4M3FN | 8-bit E5M2 | 16-bit int16 | 16-bit E5M10 | 16-bit E8M7 |" in text
    assert "| a | 94.0 | 94.5 | 93.0 | 95.0 | 95.0 | 95.0 |" in text
    assert (tmp_path / "out" / "sqnr_vs_bits.png").stat().st_size > 0


def test_results_check_keeps_the_float_fields():
    data = {"format": results.FORMAT, "version": results.VERSION, "context": {},
            "records": [_sweep("a", 8, "float E4", 0.9, "E4M3FN"),
                        {"kind": "sqnr_sine", "bits": 8, "sqnr_db": 1.0, "theory_db": 1.0, "format": "E5M2",
                         "exp_bits": 5},
                        {"kind": "sqnr_sine", "bits": 8, "sqnr_db": 1.0, "theory_db": 1.0, "exp_bits": "5"}]}
    checked, problems = results.check(data)
    assert checked["records"][0]["float_format"] == "E4M3FN" and checked["records"][1]["exp_bits"] == 5
    assert "exp_bits" not in checked["records"][2] and len(problems) == 1


def test_cli_accepts_the_float_format_precisions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--precision", "fp8e3m4"]) == 2
    assert "accepted: f64, f32, i16, a16w8, i8, bf16, fp8e4m3, fp8e5m2" in capsys.readouterr().err
