"""Float rows at the BLAS's own core: the environment's pinning variables, and the worker process without them.

``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) make OpenBLAS use the kernels of another CPU than its own
choice, which can halve numpy's float32 speed.  They are read when the library loads, so they cannot be
undone inside a running process and this module never changes them here: when the environment sets them,
``run_worker`` starts ``python -m fixedpoint.bench.float_worker`` with a copy of the environment that lacks
them, sends it the float rows' specs and the run's thread count on stdin and reads one JSON record per line
back (the first one describes the worker's BLAS and threads).  The worker is bounded in time; a worker that
times out, exits with an error or writes something unreadable is reported as a "failed" record, and the
records it measured before are kept.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from .context import BLAS_PIN_VARIABLES as PIN_VARIABLES

WORKER_MODULE = "fixedpoint.bench.float_worker"
WORKER_LABEL = "float rows at the BLAS's own core (worker process)"
NATIVE, PINNED = "native", "pinned"


def pins(env=None) -> dict:
    """The pinning variables set (non-empty) in ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    return {name: env[name] for name in PIN_VARIABLES if env.get(name)}


def worker_environment(env=None) -> dict:
    """A copy of ``env`` (default: this process's) without the pinning variables."""
    env = os.environ if env is None else env
    return {name: value for name, value in env.items() if name not in PIN_VARIABLES}


def worker_timeout(n_specs: int, quick: bool) -> float:
    """Seconds the worker may take for ``n_specs`` rows: start-up and task data, then a bound per row well above
    what one row needs (its timing stops after 2 s; building a model row evaluates its test accuracy)."""
    return 60.0 + n_specs * (4.0 if quick else 10.0)


def blas_pools() -> list[dict]:
    """The BLAS libraries loaded in this process (threadpoolctl): library, core ("architecture"), version."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": pool.get("internal_api"), "core": pool.get("architecture"), "version": pool.get("version")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


@functools.cache
def _process_pools() -> tuple:
    import numpy  # noqa: F401  (threadpoolctl lists only loaded libraries)

    return tuple(tuple(sorted(pool.items())) for pool in blas_pools())


def blas_fields() -> dict:
    """What a float record says of its BLAS: the libraries and cores of this process, whether the environment
    pins the core ("pinned", with the variables) or the BLAS chose it ("native")."""
    pinned = pins()
    fields = {"blas": [dict(pool) for pool in _process_pools()], "blas_setting": PINNED if pinned else NATIVE}
    if pinned:
        fields["blas_pins"] = pinned
    return fields


def describe(pools) -> str:
    """"openblas SkylakeX" from the pools of a record ("unknown BLAS" without any)."""
    names = [" ".join(str(part) for part in (pool.get("library"), pool.get("core")) if part) for pool in pools or []]
    return ", ".join(name for name in names if name) or "unknown BLAS"


def run_worker(specs, add, *, quick: bool, peaks=None, threads: int = 1, timeout: float | None = None,
               command=None, env=None) -> dict:
    """Measure ``specs`` (``catalog.Spec``) at ``threads`` threads in a worker process without the pinning variables.

    Each record the worker sends goes to ``add`` as it arrives; returns the "blas_worker" record (status "ok" or
    "failed" with the reason; the worker's BLAS pools, thread settings and pinning variables).  A failure also
    reaches ``add`` as a "failed" record.  ``command`` and ``env`` replace the worker's command line and base
    environment (tests).
    """
    command = list(command) if command else [sys.executable, "-m", WORKER_MODULE]
    timeout = worker_timeout(len(specs), quick) if timeout is None else timeout
    removed = pins(os.environ if env is None else env)
    summary = {"kind": "blas_worker", "status": "ok", "removed": removed, "rows": 0, "of": len(specs),
               "timeout_s": timeout}
    request = json.dumps({"specs": [spec.as_dict() for spec in specs], "quick": quick, "peaks": peaks or {},
                          "threads": threads})
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as stderr:
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                       text=True, env=worker_environment(os.environ if env is None else env))
        except OSError as exc:
            return _failed(summary, add, f"could not start {command[0]}: {exc}")
        expired = threading.Event()

        def expire():
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        problem = None
        try:
            try:
                process.stdin.write(request)
                process.stdin.close()
            except (BrokenPipeError, OSError):
                pass   # the worker ended before reading: its exit status says why
            for line in process.stdout:
                problem = _take(line, summary, add)
                if problem:
                    process.kill()
                    break
            status = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:   # interrupted (Ctrl-C) or add() raised: no orphan worker
                process.kill()
                process.wait()
        summary["elapsed_s"] = time.perf_counter() - started
        if expired.is_set():
            return _failed(summary, add, f"timed out after {timeout:.0f} s with {summary['rows']} of {len(specs)} "
                                         "rows measured")
        if problem:
            return _failed(summary, add, problem)
        if status != 0:
            stderr.seek(0)
            lines = [line.strip() for line in stderr.read().splitlines() if line.strip()]
            last = lines[-1] if lines else "no message"
            return _failed(summary, add, f"exited with status {status} after {summary['rows']} of {len(specs)} rows "
                                         f"({last})")
        if "blas" not in summary:
            return _failed(summary, add, "ended without describing its BLAS")
    return summary


def _take(line: str, summary: dict, add) -> str | None:
    """Handle one output line of the worker; a problem's description ends the worker."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return f"wrote a line that is not JSON: {line.strip()[:80]!r}"
    if not isinstance(record, dict):
        return f"wrote {line.strip()[:80]!r}, not a record"
    if record.get("kind") == "worker_info":
        summary["blas"] = record.get("blas", [])
        summary["env"] = record.get("env", {})
        summary["threads"] = record.get("threads")
        return None
    summary["rows"] += 1
    add(record)
    return None


def _failed(summary: dict, add, reason: str) -> dict:
    summary.update(status="failed", reason=reason)
    add({"kind": "failed", "label": WORKER_LABEL, "reason": reason})
    return summary
