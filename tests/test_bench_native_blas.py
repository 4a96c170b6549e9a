"""Float rows at the BLAS's own core: a worker process without the pinning variables, bounded and reported.

The pinning variable is only ever set in the environment of a subprocess started here (a fake pinned
environment); this process, like CI, runs with the environment it was given.
"""
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from fixedpoint.bench import catalog, native_blas, report, results, verdict, workloads

ENVIRONMENT_AT_START = {name: os.environ.get(name) for name in native_blas.PIN_VARIABLES}
SHAPE = (8, 64, 16)


def test_the_worker_environment_lacks_exactly_the_pinning_variables():
    env = {"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "OMP_NUM_THREADS": "1"}
    assert native_blas.pins(env) == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    assert native_blas.worker_environment(env) == {"PATH": "/bin", "OMP_NUM_THREADS": "1"}
    assert native_blas.pins({"OPENBLAS_CORETYPE": ""}) == {}
    assert env["OPENBLAS_CORETYPE"] == "Haswell"   # the caller's mapping is left as it was


def _pinned_run(tmp_path, extra_specs=""):
    """A small run in a subprocess whose environment pins OpenBLAS to Haswell: main-process rows, then the worker."""
    path = tmp_path / "results.json"
    code = textwrap.dedent(f"""
        import sys
        from fixedpoint.bench import catalog, results, runner
        from fixedpoint.bench.threads import pin_threads
        limiter = pin_threads(1)
        specs = [catalog.Spec("dot", "linear", {SHAPE!r}, "f32", "numpy"),
                 catalog.Spec("dot", "linear", {SHAPE!r}, "i8", {workloads.timed_backends()[0]!r}){extra_specs}]
        writer = results.ResultsWriter({str(path)!r}, {{"cpu": "Test CPU", "node": "box"}})
        runner._time_cases(writer, specs, quick=True, progress=False, desc="kernels")
        runner.native_float_rows(writer, specs, quick=True, progress=False)
        writer.finish(0.0)
    """)
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return results.load(path)


def test_float_rows_run_again_without_the_pinned_core_and_the_verdict_takes_the_native_figure(tmp_path):
    data = _pinned_run(tmp_path)
    records = data["records"]
    speed = [r for r in records if r["kind"] == "speed"]
    pinned = [r for r in speed if r.get("blas_setting") == "pinned"]
    native = [r for r in speed if r.get("blas_setting") == "native"]
    assert [(r["backend"], r["precision"]) for r in pinned] == [("numpy", "f32")]
    assert [(r["backend"], r["precision"], r["process"]) for r in native] == [("numpy", "f32", "worker")]
    assert pinned[0]["blas_pins"] == {"OPENBLAS_CORETYPE": "Haswell"}
    assert "blas" not in next(r for r in speed if r["precision"] == "i8")   # an integer row names no BLAS
    (worker,) = [r for r in records if r["kind"] == "blas_worker"]
    assert worker["status"] == "ok" and worker["rows"] == worker["of"] == 1
    assert worker["removed"] == {"OPENBLAS_CORETYPE": "Haswell"}
    assert worker["env"] == {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}   # the worker's own environment
    if platform.machine() == "x86_64" and pinned[0]["blas"] and pinned[0]["blas"][0]["library"] == "openblas":
        assert pinned[0]["blas"][0]["core"] == "Haswell"
        assert native[0]["blas"] == worker["blas"]
    (row,) = [row for row in verdict.rows(records) if row["workload"] == f"linear {'x'.join(map(str, SHAPE))}"]
    assert row["classes"]["float32"] is native[0] or row["classes"]["float32"] == native[0]
    assert [r["blas_setting"] for r in row["ranked"]["float32"]] == ["native"]
    assert verdict.pinned_pairs(records) == [(pinned[0], native[0])]
    text = report.answer(report.verdict_rows(records), "Test CPU", records)
    assert text.startswith("The environment pins the BLAS core (OPENBLAS_CORETYPE=Haswell")
    assert "the 1 float rows were measured again in a worker process started without it" in text


def test_a_worker_that_hangs_is_stopped_and_reported(tmp_path):
    added = []
    spec = catalog.Spec("dot", "linear", SHAPE, "f32", "numpy")
    summary = native_blas.run_worker([spec], added.append, quick=True, timeout=1.0,
                                     command=[sys.executable, "-c", "import time; time.sleep(60)"],
                                     env={"PATH": os.environ.get("PATH", ""), "OPENBLAS_CORETYPE": "Haswell"})
    assert summary["status"] == "failed" and summary["reason"] == "timed out after 1 s with 0 of 1 rows measured"
    assert added == [{"kind": "failed", "label": native_blas.WORKER_LABEL, "reason": summary["reason"]}]
    assert summary["removed"] == {"OPENBLAS_CORETYPE": "Haswell"} and summary["elapsed_s"] < 30


@pytest.mark.parametrize("script, reason", [
    ("import sys; print('worker broke', file=sys.stderr); sys.exit(3)",
     "exited with status 3 after 0 of 1 rows (worker broke)"),
    ("print('hello')", "wrote a line that is not JSON: 'hello'"),
    ("print('{\"kind\": \"speed\", \"workload\": \"w\"}')", "ended without describing its BLAS"),
    ("import sys; sys.stdin.read(); sys.exit(0)", "ended without describing its BLAS"),
])
def test_a_worker_that_fails_becomes_a_failed_record_and_keeps_what_it_measured(script, reason):
    added = []
    spec = catalog.Spec("dot", "linear", SHAPE, "f32", "numpy")
    summary = native_blas.run_worker([spec], added.append, quick=True, timeout=60,
                                     command=[sys.executable, "-c", script])
    assert summary["status"] == "failed" and summary["reason"] == reason
    assert added[-1] == {"kind": "failed", "label": native_blas.WORKER_LABEL, "reason": reason}
    assert [r for r in added if r["kind"] != "failed"] == ([{"kind": "speed", "workload": "w"}]
                                                           if "speed" in script else [])


def test_a_failed_worker_is_said_in_the_answer_and_the_pinned_figures_stand():
    pinned = {"kind": "speed", "op": "linear", "workload": "linear 1x2x3", "precision": "f32", "backend": "numpy",
              "median_s": 2e-3, "blas": [{"library": "openblas", "core": "Haswell"}], "blas_setting": "pinned",
              "blas_pins": {"OPENBLAS_CORETYPE": "Haswell"}}
    worker = {"kind": "blas_worker", "status": "failed", "reason": "timed out after 60 s with 0 of 1 rows measured",
              "removed": {"OPENBLAS_CORETYPE": "Haswell"}, "rows": 0, "of": 1}
    records = [pinned, worker]
    (row,) = verdict.rows(records)
    assert row["classes"]["float32"] is pinned
    assert ("the worker process that measures the float rows without it failed (timed out after 60 s with 0 of 1 "
            "rows measured)") in verdict.blas_sentence(records)


def test_the_native_record_wins_even_when_slower_and_the_pinned_table_shows_both():
    def record(setting, median, core):
        return {"kind": "speed", "op": "linear", "workload": "linear 1x2x3", "precision": "f32", "backend": "numpy",
                "median_s": median, "blas": [{"library": "openblas", "core": core}], "blas_setting": setting,
                "implementation": "numpy @", "contender": "numpy",
                **({"blas_pins": {"OPENBLAS_CORETYPE": "Haswell"}} if setting == "pinned" else {})}

    pinned, native = record("pinned", 1e-3, "Haswell"), record("native", 2e-3, "SkylakeX")
    (row,) = verdict.rows([pinned, native])
    assert row["classes"]["float32"] is native
    assert verdict.who(native) == "numpy @ [openblas SkylakeX]"
    lines = verdict.pinned_lines([pinned, native])
    assert "| linear 1x2x3 | f32 | numpy @ | 1 | openblas Haswell | 2 | openblas SkylakeX | 0.50 |" in lines


def test_this_process_never_changed_the_pinning_variables():
    assert {name: os.environ.get(name) for name in native_blas.PIN_VARIABLES} == ENVIRONMENT_AT_START


def test_info_names_the_core_chosen_without_the_pinning_variable(tmp_path):
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    done = subprocess.run([sys.executable, "-m", "fixedpoint.bench.cli", "info"], env=env, capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (blas,) = [line for line in done.stdout.splitlines() if line.startswith("BLAS")]
    assert "pinned by OPENBLAS_CORETYPE=Haswell; without it: " in blas
    assert json.loads(subprocess.run([sys.executable, "-m", "fixedpoint.bench.cli", "info", "--json"], env=env,
                                     capture_output=True, text=True, timeout=180,
                                     check=True).stdout)["blas_pins"] == {"OPENBLAS_CORETYPE": "Haswell"}
