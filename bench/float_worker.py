"""The float worker: ``python -m fixedpoint.bench.float_worker`` measures the specs it reads on stdin.

Started by ``native_blas.run_worker`` in an environment without the BLAS-pinning variables, it pins its threads
to the request's count as ``fxbench`` does, writes one JSON line describing its BLAS and threads (kind
"worker_info"), then one record per spec (timed as in the main process; a spec that fails becomes a "failed"
record and the worker goes on).
Ctrl-C ends it quietly with status 130.
"""
from __future__ import annotations

import json
import os
import sys

from .threads import pin_environment


def _emit(record: dict) -> None:
    from .results import jsonable

    sys.stdout.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
    sys.stdout.flush()


def main(stdin=None) -> int:
    try:
        request = json.loads((stdin or sys.stdin).read())
        threads = int(request["threads"])
        pin_environment(threads)   # before numpy and the kernels load
        from . import catalog, native_blas, runner
        from .threads import pin_threads, thread_settings

        limiter = pin_threads(threads)  # noqa: F841 (kept alive while the rows run)
        specs = [catalog.Spec.from_dict(item) for item in request["specs"]]
        _emit({"kind": "worker_info", "blas": native_blas.blas_pools(), "threads": thread_settings(),
               "env": {name: os.environ.get(name) for name in native_blas.PIN_VARIABLES}})
        for spec in specs:
            try:
                record = runner.measure_spec(spec, quick=bool(request.get("quick")), peaks=request.get("peaks"))
            except Exception as exc:   # one failed row is reported, the others still run
                record = runner.failure_record(spec.label, exc, spec)
            _emit(dict(record, process="worker"))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
