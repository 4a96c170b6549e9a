"""``fxbench run --threads N``: the option, and every kind of row built and timed at N (asserted on the objects and
arguments that carry the count, never on timing)."""
import os
import sys
import types

import pytest

from fixedpoint import kernels
from fixedpoint.bench import (catalog, classes, cli, contenders, info, model_workloads, native_blas, ort_sessions,
                              report, results, runner, verdict, workloads)
from fixedpoint.bench.threads import timed_threads
from fixedpoint.bench.timing import measure
from fixedpoint.kernels.args import THREADS_VARIABLE
from thread_variables import restore_pools, restore_thread_variables  # noqa: F401  (fixtures; the second is autouse)

SHAPE = (2, 16, 8)
needs_onnxruntime = pytest.mark.skipif(classes.missing_library("onnxruntime") is not None,
                                       reason="onnxruntime is not installed (the data extra)")


@pytest.fixture
def fresh_models():
    """Converted task models and onnxruntime sessions are cached per process; a run at another count builds its
    own (their layers and sessions take the count when they are made)."""
    for cached in (model_workloads.converted, model_workloads.contender_session):
        cached.cache_clear()
    yield
    for cached in (model_workloads.converted, model_workloads.contender_session):
        cached.cache_clear()


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_threads_must_be_an_integer_of_at_least_one(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", "--threads", value])
    assert stopped.value.code == 2
    assert f"fxbench run: error: argument --threads: must be an integer >= 1, got {value!r}" in capsys.readouterr().err


def test_threads_parses_counts():
    assert cli.thread_count("2") == 2 and cli.thread_count("16") == 16


def test_the_cli_sets_fxbench_s_own_count_and_the_context_records_it(tmp_path, monkeypatch, restore_pools):
    seen = []
    monkeypatch.setattr(runner, "run", lambda writer, **kwargs: seen.append(
        (os.environ[THREADS_VARIABLE], writer.data["context"]["threads"]["count"])))
    assert cli.main(["run", "--quick", "--out", str(tmp_path / "two"), "--threads", "2"]) == 0
    assert cli.main(["run", "--quick", "--out", str(tmp_path / "one")]) == 0
    assert seen == [("2", 2), ("1", 1)]


def _recording(monkeypatch, module, name, record):
    """Wrap ``module.name`` so that ``record(result, *args)`` sees each call's arguments and result."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        record(result, *args, **kwargs)
        return result

    monkeypatch.setattr(module, name, wrapper)


@needs_onnxruntime
def test_a_run_at_two_threads_builds_and_records_every_row_at_two(tmp_path, monkeypatch, restore_pools,
                                                                     fresh_models):
    """fxbench's prepared layers (its own cases and the converted model's) reach the backend with threads=2, every
    onnxruntime session (kernel contenders and model sessions) has 2 intra-op threads and 1 inter-op thread, Numba
    and the BLAS pools run at 2, and the context, every speed record and the report say 2."""
    import numba
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(workloads, "QUICK_SHAPES", {"linear": [SHAPE]})
    backend = workloads.timed_backends()[0]
    gemms, sessions = [], []
    _recording(monkeypatch, kernels.get_backend(backend), "prepare_gemm",
               lambda result, w, bias, kind, epilogue, threads=1: gemms.append((w.shape, threads)))
    _recording(monkeypatch, ort_sessions, "session", lambda result, proto: sessions.append(result))
    assert cli.main(["run", "--quick", "--threads", "2", "--out", str(tmp_path), "--backend", backend,
                     "--task", "digits-mlp", "--precision", "i8"]) == 0

    assert (SHAPE[2], SHAPE[1]) in [shape for shape, _ in gemms]          # the harness's linear case
    assert (128, 64) in [shape for shape, _ in gemms]                     # the converted model's first layer
    assert {threads for _, threads in gemms} == {2}
    assert len(sessions) >= 4   # QLinearMatMul, MatMulInteger, the QOperator and the QDQ model sessions
    assert {(s.get_session_options().intra_op_num_threads, s.get_session_options().inter_op_num_threads)
            for s in sessions} == {(2, 1)}
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {2}  # as it left them
    assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    (run_dir,) = tmp_path.iterdir()
    data = results.load(run_dir / "results.json")
    assert data["context"]["threads"]["count"] == 2
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    assert speed and {r["threads"] for r in speed} == {2}
    text = (run_dir / "report.md").read_text()
    assert "; threads: 2; commit" in text and "Every row was timed at 2 threads" in text
    assert "taken against 2 cores' peak" in text or not data["context"]["peak_gops"]


def test_the_float_worker_runs_at_the_count_it_is_given(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)   # the count reaches the worker in its request only
    added = []
    spec = catalog.Spec("dot", "linear", SHAPE, "f32", "numpy")
    summary = native_blas.run_worker([spec], added.append, quick=True, threads=2)
    assert summary["status"] == "ok", summary.get("reason")
    settings = summary["threads"]
    assert settings["count"] == 2 and settings["env"][THREADS_VARIABLE] == "2"
    assert {pool["num_threads"] for pool in settings["threadpools"] if pool["user_api"] == "blas"} == {2}
    import numba

    assert settings["numba_threads"] == min(2, numba.config.NUMBA_NUM_THREADS)
    (record,) = added
    assert record["kind"] == "speed" and record["process"] == "worker" and record["threads"] == 2


def test_the_runner_hands_its_count_to_the_float_worker(tmp_path, monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    monkeypatch.setattr(native_blas, "pins", lambda env=None: {"OPENBLAS_CORETYPE": "Haswell"})
    calls = []
    monkeypatch.setattr(native_blas, "run_worker", lambda specs, add, **kwargs: calls.append(kwargs) or
                        {"kind": "blas_worker", "status": "ok"})
    writer = results.ResultsWriter(tmp_path / "results.json", {"peak_gops": {}})
    runner.native_float_rows(writer, [catalog.Spec("dot", "linear", SHAPE, "f32", "numpy")], quick=True,
                             progress=False)
    assert [call["threads"] for call in calls] == [2]


def test_torch_takes_the_count_within_an_operator_and_one_thread_between(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(set_num_threads=lambda n: calls.append(("intra", n)),
                                 set_num_interop_threads=lambda n: calls.append(("inter", n)))
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    assert contenders._torch() is fake
    assert calls == [("intra", 2), ("inter", 1)]


@needs_onnxruntime
def test_onnxruntime_sessions_take_the_count_within_an_operator(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    options = ort_sessions.session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    monkeypatch.delenv(THREADS_VARIABLE)
    assert ort_sessions.session_options().intra_op_num_threads == timed_threads() == 1


def test_percent_of_peak_is_of_one_core_per_thread(monkeypatch):
    case = workloads.dot_case("linear", SHAPE, "i8", workloads.timed_backends()[0])
    timing = measure(case.call, min_time=0.01, max_time=0.1)
    peaks = {"int8_dot": 100.0}
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    one = runner.case_record(case, timing, peaks)
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    two = runner.case_record(case, timing, peaks)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert one["pct_of_peak"] / two["pct_of_peak"] == pytest.approx(runner.peak_cores(2))
    assert runner.peak_cores(2) == min(2, os.cpu_count())


def _speed(workload, precision, median, threads):
    return {"kind": "speed", "op": "linear", "workload": workload, "precision": precision, "backend": "c",
            "median_s": median, "threads": threads}


def test_the_verdict_names_the_count_only_above_one():
    at_one = [_speed("linear 1x2x3", "f32", 2e-3, 1), _speed("linear 1x2x3", "i8", 1e-3, 1)]
    at_two = [dict(r, threads=2) for r in at_one]
    assert "thread" not in report.answer(report.verdict_rows(at_one), "Test CPU", at_one)
    assert "Every row was timed at 2 threads" in report.answer(report.verdict_rows(at_two), "Test CPU", at_two)
    mixed = at_one[:1] + at_two[1:]
    assert "The rows were timed at 1 and 2 threads" in verdict.thread_sentence(mixed)
    assert [verdict.threads_text(r) for r in (at_one, at_two, mixed, [])] == [
        "one thread", "2 threads", "1 and 2 threads", "one thread"]
    assert verdict.thread_counts([{k: v for k, v in at_one[0].items() if k != "threads"}]) == [1]


def test_results_check_reads_the_counts_and_leaves_out_bad_ones():
    data = {"format": results.FORMAT, "version": results.VERSION, "context": {"threads": {"count": 0}},
            "records": [_speed("linear 1x2x3", "i8", 1e-3, 2), _speed("linear 1x2x3", "f32", 2e-3, "two")]}
    checked, problems = results.check(data)
    assert "threads" not in checked["context"] and "threads" not in checked["records"][1]
    assert checked["records"][0]["threads"] == 2 and len(problems) == 2
    assert all("'threads'" in problem for problem in problems)


def test_the_report_names_each_machine_s_count_when_one_is_above_one(tmp_path):
    def dataset(count):
        return {"format": results.FORMAT, "version": results.VERSION, "complete": True,
                "context": {"cpu": "Test CPU", "node": "box", "threads": {"count": count}},
                "records": [_speed("linear 1x2x3", "f32", 2e-3, count), _speed("linear 1x2x3", "i8", 1e-3, count)]}

    text = report.write_report([dataset(1), dataset(2)], tmp_path).read_text()
    assert "machine 1: Test CPU (box) at 1 thread, machine 2: Test CPU (box) at 2 threads." in text
    text = report.write_report([dataset(1), dataset(1)], tmp_path).read_text()
    assert "machine 1: Test CPU (box), machine 2: Test CPU (box)." in text


def test_info_shows_the_count_and_whether_the_c_kernels_can_split():
    line = info.threads_line({"count": 2, "env": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": None},
                              "numba_threads": 2}, c_openmp=True)
    assert line == ("2 threads for fxbench's measurements (fxbench run --threads N); OMP_NUM_THREADS=2; numba 2; "
                    "C integer GEMMs can split over OpenMP threads (AVX-512 path)")
    assert info.threads_line({}, c_openmp=False).startswith("1 thread for fxbench's measurements")
    assert info.threads_line({}, c_openmp=False).endswith("C kernels built without OpenMP (one thread)")
