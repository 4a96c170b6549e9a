"""Tests of the whole-model workloads, the sweep grid, the naive baseline and the report sections they feed."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fixedpoint import kernels, nn
from fixedpoint.bench import (catalog, classes, cli, contenders, model_workloads, naive, report, results, sweeps,
                              workloads)
from results_files import results_file

needs_quantize_model = pytest.mark.skipif(model_workloads.quantize_model_function()[0] is None,
                                          reason="fixedpoint.nn.quantize_model is not in this version")


def test_naive_loop_matches_the_library_linear():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (3, 37), dtype=np.int8)
    w = rng.integers(-128, 128, (5, 37), dtype=np.int8)
    for shift in (0, 3, 9):
        expected = kernels.linear(x, w, shift=shift, out_dtype=np.int8, backend="reference")
        np.testing.assert_array_equal(naive.naive_linear_i8(x, w, shift), expected)
    with pytest.raises(ValueError, match="int8"):
        naive.naive_linear_i8(x.astype(np.int16), w, 0)


def test_naive_case_has_the_library_error():
    case = workloads.naive_linear_case((4, 32, 8))
    tuned = workloads.dot_case("linear", (4, 32, 8), "i8", "reference")
    np.testing.assert_array_equal(case.call(), tuned.call())
    assert case.backend == workloads.NAIVE and case.ops == 2 * 4 * 32 * 8


def _tiny_model():
    return nn.Sequential([nn.Linear(np.ones((3, 4)), np.zeros(3)), nn.ReLU(), nn.Linear(np.ones((2, 3)))])


def test_layer_profile_counts_multiply_adds_and_the_largest_layer():
    model = _tiny_model()
    ops, largest = model_workloads.layer_profile(model, np.ones((5, 4)))
    assert ops == 2 * 5 * (4 * 3 + 3 * 2)
    assert largest == 5 * 4 + 5 * 3  # first layer: input + output elements


def test_batch_input_repeats_a_small_test_set():
    from fixedpoint.bench import tasks

    task = tasks.get("digits-mlp")
    x = model_workloads.batch_input(task, 1000)
    assert x.shape == (1000, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(x[task.x_test.shape[0]], task.x_test[0])


def test_float_model_case_reports_the_trained_accuracy():
    from fixedpoint.bench import tasks

    task = tasks.get("digits-mlp")
    case = model_workloads.model_case("digits-mlp", 1, "f32", workloads.NUMPY)
    assert case.workload == "model digits-mlp batch 1"
    assert case.extra["accuracy"] == pytest.approx(task.info["test_accuracy"], abs=0.005)
    assert case.weight_bytes == (64 * 128 + 128 + 128 * 10 + 10) * 4
    assert case.call().dtype == np.float32
    with pytest.raises(ValueError, match="numpy"):
        model_workloads.forward_function("digits-mlp", "f32", "c")
    with pytest.raises(ValueError, match="precision"):
        model_workloads.forward_function("digits-mlp", "i4", "c")


def test_model_plan_puts_float_rows_on_numpy_only_then_the_contenders(monkeypatch):
    specs, missing = catalog.model_plan(["digits-mlp"], ["c", "numba"], ["f32", "i8"])
    sessions = [] if classes.missing_library("onnxruntime") else [
        "f32 onnxruntime", "i8 onnxruntime-qoperator", "i8 onnxruntime-qdq"]
    assert [spec.label for spec in specs] == [
        f"model digits-mlp batch {b} {row}" for b in (1, 256) for row in ["f32 numpy", "i8 c", "i8 numba", *sessions]]
    assert len(missing) == 6 - 2 * len(sessions)
    monkeypatch.setattr(classes, "missing_library", lambda library: f"{library} not installed")
    specs, missing = catalog.model_plan(["digits-mlp"], ["c"], None, fx_precisions=["f32"])
    assert [spec.label for spec in specs] == [f"model digits-mlp batch {b} f32 numpy" for b in (1, 256)]
    assert [(r["kind"], r["workload"], r["backend"], r["reason"]) for r in missing][:3] == [
        ("not_installed", "model digits-mlp batch 1", c.backend, "onnxruntime not installed")
        for c in model_workloads.MODEL_CONTENDERS]


@pytest.mark.parametrize("text, expected", [("4", [4]), ("2-5", [2, 3, 4, 5]), ("8,4,8", [4, 8])])
def test_parse_bits(text, expected):
    assert sweeps.parse_bits(text, "--weight-bits") == expected


@pytest.mark.parametrize("text", ["1-4", "8-17", "x", ""])
def test_parse_bits_rejects_widths_outside_2_to_16(text):
    with pytest.raises(ValueError, match="--activation-bits"):
        sweeps.parse_bits(text, "--activation-bits")


def test_container_precision_follows_the_widths():
    assert sweeps.container_precision(8, 8) == "i8"
    assert sweeps.container_precision(4, 12) == "a16w8"
    assert sweeps.container_precision(12, 4) == "i16"


def test_sweep_points_grid_then_variants():
    points = sweeps.sweep_points(["digits-mlp"], [2, 8], [4, 8, 16])
    grid = [p for p in points if p.variant == "default"]
    assert [(p.weight_bits, p.activation_bits) for p in grid] == [(2, 4), (2, 8), (2, 16), (8, 4), (8, 8), (8, 16)]
    per_tensor = [p for p in points if p.variant == "per-tensor"]
    assert [(p.weight_bits, p.activation_bits, p.per_channel) for p in per_tensor] == [(2, 2, False), (8, 8, False)]
    assert {p.rounding for p in points if p.variant == "stochastic"} == {"stochastic"}
    with pytest.raises(ValueError, match="variant"):
        sweeps.sweep_points(["digits-mlp"], [8], [8], ["nearest"])


def _model_record(task, batch, precision, backend, median, peak, accuracy):
    return {"kind": "speed", "op": "model", "workload": f"model {task} batch {batch}", "task": task, "batch": batch,
            "precision": precision, "backend": backend, "median_s": median, "weight_bytes": 400 if precision == "f32"
            else 100, "activation_bytes": 64, "allocation_peak_bytes": peak, "accuracy": accuracy}


def _sweep_record(task, w, a, variant, accuracy):
    return {"kind": "sweep", "task": task, "weight_bits": w, "activation_bits": a, "variant": variant,
            "accuracy": accuracy, "float64_accuracy": 0.95, "n_test": 100}


def _stored(tmp_path, name, records, cpu="Test CPU"):
    return results_file(tmp_path / name, records, {"cpu": cpu, "node": "box"})


def test_report_task_rows_memory_target_naive_and_sweeps(tmp_path):
    records = [_model_record("a", 256, "f32", "numpy", 4e-3, 1000, 0.95),
               dict(_model_record("a", 256, "i8", "c", 1e-3, 300, 0.94), arena_bytes=100),
               _model_record("b", 256, "f32", "numpy", 4e-3, 1000, 0.90),
               _model_record("b", 256, "i8", "c", 2e-3, 600, 0.90),
               {"kind": "speed", "op": "linear", "workload": "linear 1x2x3", "precision": "i8", "backend": "numba",
                "median_s": 1e-3, "weight_bytes": 6},
               {"kind": "speed", "op": "linear", "workload": "linear 1x2x3", "precision": "i8",
                "backend": workloads.NAIVE, "median_s": 6e-3, "weight_bytes": 6},
               {"kind": "speed", "op": "linear", "workload": "linear 1x2x3", "precision": "i8",
                "backend": contenders.ONNXRUNTIME, "median_s": 2e-3, "weight_bytes": 6, "contender": "onnxruntime",
                "implementation": "onnxruntime MatMulInteger (int32 out)"},
               {"kind": "call_overhead", "model": "Linear 1 -> 1, int8, C backend, batch 1", "execution": "compiled",
                "median_s": 1.5e-6}]
    records += [_sweep_record("a", w, a, "default", 0.95 if min(w, a) >= 4 else 0.3)
                for w in (2, 4, 8) for a in (2, 4, 8)]
    records += [_sweep_record("a", b, b, "per-tensor", 0.95 if b >= 8 else 0.2) for b in (2, 4, 8)]
    path = _stored(tmp_path, "r.json", records)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| model a batch 256 |" in text and "| 4.00 |" in text
    assert "-/95.0/-/-/-/-/-/94.0" in text
    assert "| a | c | 400 | 100 | 64 | 64 | 1.0 | 0.3 | 0.1 | 0.40 | met |" in text   # peak + arena: 0.4 KiB
    assert "(Linear 1 -> 1, int8, C backend, batch 1, compiled): 1.50 us per call" in text
    assert "allocates 0.40-0.60x the float32 peak; the target of at most 0.5x is met on 1 of 2 task models" in text
    assert "| 0.60 | not met |" in text
    assert "| linear 1x2x3 | numba | 6 | 1 | 6.0 | met |" in text
    assert "| linear 1x2x3 | - | 1 | 2 |" in text  # the contender beside fxbench's fastest int8
    assert "| a | 100 | 4 | 8 | - | - | - |" in text
    assert "the best int8 (fxbench c) runs at 2.00-4.00x the speed of the best float32 (fxbench numpy" in text
    assert "fxbench's own int8 runs at 2.00x the speed of the fastest other library's" in text
    assert "the best int8's test accuracy is at most 1.0 points below the best float32's" in text
    assert "Its int8 test accuracy is at most 1.0 points below its float32 (a)." in text
    assert (tmp_path / "out" / "accuracy_vs_bits.png").stat().st_size > 0
    assert (tmp_path / "out" / "bits_heatmap.png").stat().st_size > 0
    rows = report.verdict_rows(records)
    assert {workloads.NAIVE, contenders.ONNXRUNTIME}.isdisjoint(r["backend"] for row in rows
                                                                for r in row["best"].values())
    linear = next(row for row in rows if row["workload"] == "linear 1x2x3")
    assert linear["classes"]["int8"]["backend"] == "numba" and workloads.NAIVE not in str(linear["ranked"])


def test_report_puts_two_machines_side_by_side(tmp_path):
    first = _stored(tmp_path, "a.json", [_model_record("a", 1, "f32", "numpy", 2e-3, 10, 0.9),
                                         _model_record("a", 1, "i8", "c", 1e-3, 5, 0.9)], cpu="CPU one")
    second = _stored(tmp_path, "b.json", [_model_record("a", 1, "f32", "numpy", 3e-3, 10, 0.9),
                                          _model_record("a", 1, "i8", "c", 1e-3, 5, 0.9)], cpu="CPU two")
    assert cli.main(["report", str(first), str(second), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "machine 1: CPU one (box), machine 2: CPU two (box)" in text
    assert "| model a batch 1 | 2.00 | 3.00 |" in text


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--task", "nope"], "unknown task 'nope'"),
    (["sweep", "--weight-bits", "1-8"], "--weight-bits widths must lie in 2..16"),
    (["sweep", "--backend", "gpu"], "unknown backend 'gpu'"),
    (["sweep", "--test-samples", "0"], "--test-samples"),
    (["run", "--task", "nope"], "unknown task 'nope'"),
])
def test_sweep_and_task_bad_input(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_info_works_without_optional_packages():
    hide = ["numba", "threadpoolctl", "torch", "onnxruntime", "sklearn", "mnist1d", "mlxtend", "cffi", "tqdm",
            "fixedpoint.kernels._fxp_c"]
    code = ("import json, sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in hide)
            + "from fixedpoint.bench.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", code, "info", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    context = json.loads(done.stdout)
    assert context["backends"]["available"] == ["reference"]
    assert "numba" in context["backends"]["unavailable"]
    done = subprocess.run([sys.executable, "-c", code, "info"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert lines["Backends"].startswith("reference (default)") and "numba (" in lines["Backends"]
    assert "torch: torch not installed" in lines["Contenders"] and "onnxruntime: onnxruntime" in lines["Contenders"]
    assert lines["BLAS"].startswith("none loaded") and lines["Peaks"].startswith("unknown")


@needs_quantize_model
def test_sweep_point_on_a_test_subset():
    record = sweeps.evaluate_point(sweeps.SweepPoint("digits-mlp", 8, 8), n_test=50)
    assert record["n_test"] == 50 and record["kind"] == "sweep"
    assert record["accuracy"] >= record["float64_accuracy"] - 0.06


@needs_quantize_model
def test_int8_model_case_keeps_accuracy_and_shrinks_weights():
    backend = workloads.timed_backends()[0]
    case = model_workloads.model_case("digits-mlp", 1, "i8", backend)
    f32 = model_workloads.model_case("digits-mlp", 1, "f32", workloads.NUMPY)
    assert case.weight_bytes < f32.weight_bytes / 2
    assert case.extra["accuracy"] >= f32.extra["accuracy"] - 0.02
    assert case.call().shape == (1, 10)


def test_failing_model_case_and_sweep_point_become_failed_records(tmp_path, monkeypatch):
    from fixedpoint.bench import runner

    writer = results.ResultsWriter(tmp_path / "r.json", {"cpu": "Test CPU"})

    def broken():
        raise ValueError("layer not supported")

    runner._time_cases(writer, [("model x batch 1 i8 c", broken)], quick=True, progress=False, desc="models",
                       keep_going=True)
    with pytest.raises(ValueError):
        runner._time_cases(writer, [("model x batch 1 i8 c", broken)], quick=True, progress=False, desc="m")
    monkeypatch.setattr(sweeps, "evaluate_point", lambda point, **kwargs: broken())
    sweeps.run_sweep([sweeps.SweepPoint("digits-mlp", 2, 2)], writer.add, progress=False)
    failed = [r for r in writer.data["records"] if r["kind"] == "failed"]
    assert len(failed) == 2 and failed[0]["reason"] == "ValueError: layer not supported"
    report.write_report([writer.data], tmp_path / "out")
    assert "- model x batch 1 i8 c: ValueError: layer not supported" in (tmp_path / "out" / "report.md").read_text()


@needs_quantize_model
def test_sweep_command_writes_sweep_only_results_and_report(tmp_path):
    assert cli.main(["sweep", "--task", "digits-mlp", "--weight-bits", "4,8", "--activation-bits", "8",
                     "--test-samples", "60", "--out", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    data = results.load(run_dir / "results.json")
    points = [r for r in data["records"] if r["kind"] == "sweep"]
    assert len(points) == 2 + 4 * 2 + 2 and all(p["n_test"] == 60 for p in points)   # E4M3FN, E5M2 at 8 bits
    assert {p["variant"] for p in points} == {"default", *sweeps.VARIANTS, "float E4", "float E5"}
    text = (run_dir / "report.md").read_text()
    assert "### Accuracy vs bit width" in text and "### Verdict" not in text and "Peak RSS" in text
    assert (run_dir / "bits_heatmap.png").stat().st_size > 0
