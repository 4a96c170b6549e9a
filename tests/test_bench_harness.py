"""Unit tests of the fxbench harness: metric formulas, results JSON, report, CLI bad input, a tiny run."""
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fixedpoint.bench import cli, metrics, report, results, runner, workloads
from fixedpoint.bench.timing import measure
from thread_variables import restore_thread_variables  # noqa: F401  (autouse)
from results_files import results_file


def test_gops_counts_operations_per_second():
    assert metrics.gops(2e9, 0.5) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="seconds"):
        metrics.gops(1.0, 0.0)


def test_sqnr_and_errors_against_hand_computed_values():
    ref = np.array([3.0, 4.0])
    approx = np.array([3.0, 3.0])  # signal 25, noise 1
    assert metrics.sqnr_db(ref, approx) == pytest.approx(10 * math.log10(25))
    assert metrics.sqnr_db(ref, ref) == math.inf
    assert metrics.max_error_lsb(ref, approx, 0.25) == pytest.approx(4.0)
    assert metrics.relative_rms(ref, approx) == pytest.approx(math.sqrt(0.5) / math.sqrt(12.5))


def test_sine_theory_and_measured_sweep_agree():
    assert metrics.sine_sqnr_theory_db(8) == pytest.approx(49.92)
    for row in runner.sqnr_sweep(range(6, 13)):
        assert abs(row["sqnr_db"] - row["theory_db"]) < 1.5


def test_predicted_dot_sqnr_uses_lsb_squared_over_twelve():
    ref = np.ones(4)
    x, w = np.ones((4, 3)), np.ones((5, 3))
    # noise = (3*(1*1 + 1*1) + 1)/12 = 7/12
    assert metrics.predicted_dot_sqnr_db(ref, x, w, 3, 1.0, 1.0, 1.0) == pytest.approx(10 * math.log10(12 / 7))


def test_frac_for_fits_the_peak():
    assert workloads.frac_for(np.array([0.9, -0.5]), 8) == 7
    assert workloads.frac_for(np.array([1.0]), 8) == 6
    assert workloads.frac_for(np.zeros(3), 8) == 7


def test_measure_counts_its_own_rounds():
    calls = []
    timing = measure(lambda: calls.append(1), min_time=0.0, min_rounds=3, max_rounds=3, min_round=0.0)
    assert timing.rounds == 3 and timing.loops == 1
    assert len(calls) == 1 + 1 + 3  # warm-up, calibration, rounds
    assert timing.median >= 0


def test_int8_linear_error_matches_noise_model():
    case = workloads.dot_case("linear", (8, 64, 16), "i8", workloads.timed_backends()[0])
    record = runner.case_record(case, measure(case.call, min_time=0.0, min_rounds=1, max_rounds=1))
    assert abs(record["sqnr_db"] - record["predicted_sqnr_db"]) < 3
    assert record["weight_bytes"] == 16 * 64


def test_unknown_precision_is_a_value_error():
    with pytest.raises(ValueError, match="precision"):
        workloads.dot_case("linear", (1, 4, 2), "i4", "numba")


def test_results_round_trip_and_never_overwrite(tmp_path):
    run_dir = results.new_run_dir(tmp_path)
    assert results.new_run_dir(tmp_path) != run_dir
    writer = results.ResultsWriter(run_dir / "results.json", {"cpu": "test CPU"})
    writer.add({"kind": "speed", "sqnr_db": math.inf})
    loaded = results.load(writer.path)  # readable before finish, like an interrupted run
    assert loaded["complete"] is False and loaded["records"][0]["sqnr_db"] == "inf"
    with pytest.raises(results.ResultsFileError, match="overwrite"):
        results.ResultsWriter(run_dir / "results.json", {})


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(results.ResultsFileError, match="not found"):
        results.load(tmp_path / "nope.json")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": 1}))
    with pytest.raises(results.ResultsFileError, match="not an fxbench"):
        results.load(foreign)


def _record(workload, precision, median, weight_bytes, sqnr=None):
    return {"kind": "speed", "workload": workload, "precision": precision, "backend": "c", "median_s": median,
            "weight_bytes": weight_bytes, "sqnr_db": sqnr}


def test_report_from_stored_results(tmp_path):
    data = {"format": results.FORMAT, "version": results.VERSION, "complete": True,
            "context": {"cpu": "Test CPU", "node": "box"},
            "records": [_record("linear 1x2x3", "f32", 2e-3, 400), _record("linear 1x2x3", "i8", 1e-3, 100, 30.0),
                        {"kind": "sqnr_sine", "bits": 8, "sqnr_db": 49.9, "theory_db": 49.92}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert cli.main(["report", str(path), str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| linear 1x2x3 |" in text and "| 2.00 |" in text and "| 0.25 |" in text
    assert ("Kernel class linear (1 workload): the best int8 (fxbench c) runs at 2.00x the speed of the best float32 "
            "(fxbench c; faster on 1 of 1)") in text
    assert (tmp_path / "out" / "speedup-1.png").stat().st_size > 0
    assert (tmp_path / "out" / "sqnr_vs_bits-2.png").stat().st_size > 0
    assert report.verdict_rows(data["records"])[0]["speedup"]["i8"] == pytest.approx(2.0)


@pytest.mark.parametrize("argv, message", [
    (["run", "--backend", "gpu"], "unknown backend 'gpu'"),
    (["run", "--precision", "i4"], "unknown precision 'i4'"),
    (["report", "missing.json", "--out", "x"], "not found"),
])
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_tiny_run_writes_results_and_report(tmp_path, monkeypatch):
    monkeypatch.setattr(workloads, "QUICK_SHAPES", {"linear": [(2, 16, 8)]})
    backend = workloads.timed_backends()[0]
    assert cli.main(["run", "--quick", "--out", str(tmp_path), "--backend", backend, "--task", "digits-mlp",
                     "--precision", "f32", "--precision", "i8"]) == 0
    (run_dir,) = tmp_path.iterdir()
    data = results.load(run_dir / "results.json")
    assert data["complete"] and data["context"]["cpu"] and data["context"]["threads"]["count"] == 1
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    assert {r["precision"] for r in speed} == {"f32", "i8"} and {r["threads"] for r in speed} == {1}
    assert all(r["ratio_vs_numpy_f32"] > 0 for r in speed if r["workload"].startswith("linear"))
    text = (run_dir / "report.md").read_text()
    assert text.startswith("# fxbench report") and "; threads: 1; commit" in text and "timed at" not in text


def test_interrupted_run_leaves_readable_partial_results(tmp_path, monkeypatch):
    def interrupted(writer, **kwargs):
        writer.add({"kind": "speed", "workload": "linear 1x2x3", "precision": "f32", "backend": "c",
                    "median_s": 1e-3, "weight_bytes": 24})
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert cli.main(["run", "--quick", "--out", str(tmp_path)]) == 130
    (run_dir,) = tmp_path.iterdir()
    data = results.load(run_dir / "results.json")
    assert data["complete"] is False and len(data["records"]) == 1
    assert cli.main(["report", str(run_dir / "results.json"), "--out", str(tmp_path / "rep")]) == 0
    assert "partial results" in (tmp_path / "rep" / "report.md").read_text()


class _InterruptedInFinalizer:
    """Ctrl-C arriving while Python runs a finalizer (as tqdm's __del__): Python prints it and drops it."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def _case_whose_cleanup_replaces_the_interrupt():
    try:
        signal.raise_signal(signal.SIGINT)
    finally:
        raise RuntimeError("cleanup failed")   # a keep-going loop records this as a failed case


@pytest.mark.parametrize("swallow", ["finalizer", "other exception"])
def test_a_swallowed_interrupt_still_ends_the_run_with_130(tmp_path, monkeypatch, capsys, swallow):
    def interrupted(writer, **kwargs):
        writer.add({"kind": "memory", "peak_rss_bytes": 1})
        if swallow == "finalizer":
            _InterruptedInFinalizer()
            writer.add({"kind": "memory", "peak_rss_bytes": 2})
        else:
            runner._time_cases(writer, [("case", _case_whose_cleanup_replaces_the_interrupt)], quick=True,
                               progress=False, desc="models", keep_going=True)
        raise AssertionError("the run went on after Ctrl-C")

    monkeypatch.setattr(runner, "run", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    assert cli.main(["run", "--quick", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("interrupted: partial results in") and err.count("\n") == 1
    (run_dir,) = tmp_path.iterdir()
    assert results.load(run_dir / "results.json")["records"] == [{"kind": "memory", "peak_rss_bytes": 1}]
    assert signal.getsignal(signal.SIGINT) is handler   # restored for the caller


def test_ctrl_c_at_several_points_of_a_quick_run_exits_130_without_a_traceback(tmp_path):
    """SIGINT to `fxbench run --quick` after each delay (from thread pinning and the context block to the
    timed cases): status 130, one message, no traceback.  The first delay leaves the interpreter time to
    import the package (about 0.2 s) and reach the CLI's handler."""
    for delay in (0.8, 1.3, 2.0, 3.0, 4.5):
        out = tmp_path / str(delay)
        process = subprocess.Popen([sys.executable, "-m", "fixedpoint.bench.cli", "run", "--quick", "--out",
                                    str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        last = err.rstrip().splitlines()[-1].split("\r")[-1]
        assert process.returncode == 130 and "Traceback" not in err, (delay, err[-2000:])
        assert last == "fxbench: interrupted" or last.startswith("interrupted: partial results in"), (delay, last)
        for path in out.glob("run-*/results.json"):
            assert results.load(path)["complete"] is False




def test_report_leaves_out_unreadable_records_and_fields_names_them_and_exits_2(tmp_path, capsys):
    good = [_record("linear 1x2x3", "f32", 2e-3, 400), _record("linear 1x2x3", "i8", 1e-3, 100, 30.0)]
    no_median = {k: v for k, v in _record("conv 1", "i8", 1e-3, 10).items() if k != "median_s"}
    bad = [no_median, _record("conv 2", "i8", "nan", 10), _record("conv 3", "f32", 1e-3, "nan"),
           {"kind": "sweep", "task": "a"}, {"kind": "sqnr_sine", "bits": 8, "sqnr_db": "nan", "theory_db": 49.9},
           dict(_record("linear 1x2x3", "i16", 1.5e-3, 200), pct_of_peak=float("nan")), 7, {"median_s": 1.0}]
    path = results_file(tmp_path / "r.json", good + bad,
                         {"cpu": "Test CPU", "node": "box", "peak_gops": {"int8_dot": "nan"}, "isa_flags": "avx2"})
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "r.json: context: field 'isa_flags' is \"avx2\"" in err
    assert "9 more problems (all listed in" in err
    text = (tmp_path / "out" / "report.md").read_text()
    drawn = text.split("### Left out")[0]
    assert "| linear 1x2x3 |" in drawn and "| 2.00 |" in drawn and "| conv 3 |" in drawn   # without its bytes
    assert "conv 1" not in drawn and "conv 2" not in drawn
    listed = text.split("### Left out of this report")[1]
    for line in ("- context: field 'peak_gops' is {\"int8_dot\": \"nan\"}, expected an object of finite numbers",
                 "- context: field 'isa_flags' is \"avx2\", expected a list of strings",
                 "- records[2] (kind 'speed'): field 'median_s' is missing; record left out",
                 "- records[3] (kind 'speed'): field 'median_s' is \"nan\", expected a positive number",
                 "- records[4] (kind 'speed'): field 'weight_bytes' is \"nan\", expected a non-negative number; "
                 "field left out",
                 "- records[5] (kind 'sweep'): field 'weight_bits' is missing",
                 "- records[6] (kind 'sqnr_sine'): field 'sqnr_db' is \"nan\"",
                 "- records[7] (kind 'speed'): field 'pct_of_peak' is \"nan\", expected a finite number",
                 "- records[8] is 7, expected an object", "- records[9] (no kind)"):
        assert line in listed, line
    assert (tmp_path / "out" / "speedup.png").stat().st_size > 0
    assert not (tmp_path / "out" / "sqnr_vs_bits.png").exists()   # its only record was left out


def test_report_out_must_be_a_directory(tmp_path, capsys):
    path = results_file(tmp_path / "r.json", [_record("linear 1x2x3", "f32", 2e-3, 400)])
    (tmp_path / "file").write_text("mine")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        assert cli.main(["report", str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fxbench: --out {out}") and err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "mine"


def test_redrawing_removes_only_the_plots_the_earlier_report_drew(tmp_path):
    sine = {"kind": "sqnr_sine", "bits": 8, "sqnr_db": 49.9, "theory_db": 49.92}
    both = results_file(tmp_path / "both.json", [_record("linear 1x2x3", "f32", 2e-3, 400),
                                                  _record("linear 1x2x3", "i8", 1e-3, 100, 30.0), sine])
    sine_only = results_file(tmp_path / "sine.json", [sine])
    out = tmp_path / "out"
    out.mkdir()
    mine = {"notes.md": "mine", "speedup-3.png": "mine too", "photo.png": "mine as well"}
    for name, text in mine.items():
        (out / name).write_text(text)
    assert cli.main(["report", str(both), str(both), "--out", str(out)]) == 0
    drawn = {"speedup-1.png", "speedup-2.png", "sqnr_vs_bits-1.png", "sqnr_vs_bits-2.png"}
    assert drawn <= {p.name for p in out.iterdir()}
    assert cli.main(["report", str(sine_only), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"report.md", "sqnr_vs_bits.png", *mine}
    assert all((out / name).read_text() == text for name, text in mine.items())
    (out / "report.md").write_text("# my notes\n![speedup](speedup.png)\n")   # not a report: nothing removed
    (out / "speedup.png").write_text("mine")
    assert cli.main(["report", str(sine_only), "--out", str(out)]) == 0
    assert (out / "speedup.png").read_text() == "mine"
