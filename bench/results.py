"""One JSON results file per run: a context block then records, rewritten atomically after each record.

A run never overwrites an earlier one (a fresh numbered file name), and an interrupted run
leaves the records measured so far in a complete, readable file.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path

FORMAT = "fxbench-results"
VERSION = 1


class ResultsFileError(ValueError):
    """A results file that is missing, unreadable or not written by fxbench."""


def new_run_dir(parent) -> Path:
    """A fresh directory ``parent/run-YYYYmmdd-HHMMSS[-n]`` that did not exist before."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = parent / (f"run-{stamp}" if n == 0 else f"run-{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ResultsFileError(f"could not create a fresh run directory under {parent}")


class ResultsWriter:
    """Accumulates records and rewrites ``path`` (temp file + rename) after each one.

    ``before_add`` (optional) is called before each record is added; the CLI stops an interrupted run there.
    """

    def __init__(self, path, context: dict, before_add=None):
        self.path = Path(path)
        self._before_add = before_add
        if self.path.exists():
            raise ResultsFileError(f"refusing to overwrite existing results file {self.path}")
        self.data = {"format": FORMAT, "version": VERSION, "context": context, "complete": False, "records": []}
        self._write()

    def add(self, record: dict) -> None:
        if self._before_add is not None:
            self._before_add()
        self.data["records"].append(record)
        self._write()

    def finish(self, elapsed_s: float) -> None:
        self.data["complete"] = True
        self.data["elapsed_s"] = elapsed_s
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(jsonable(self.data), indent=1, allow_nan=False))
        os.replace(tmp, self.path)


def load(path) -> dict:
    """Read and check a results file; ResultsFileError with a one-line reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path} is not a readable JSON file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("records"), list):
        raise ResultsFileError(f"{path} is not an fxbench results file")
    if data.get("version") != VERSION:
        raise ResultsFileError(f"{path} has results format version {data.get('version')}, expected {VERSION}")
    return data


NON_FINITE = ("inf", "-inf", "nan")   # how the writer stores non-finite floats

# What each field the report reads must hold: (test, description).
_VALUES = {
    "text": (lambda v: isinstance(v, str), "a string"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (lambda v: _finite(v), "a finite number"),
    "number or null": (lambda v: v is None or _finite(v), "a finite number or null"),
    "positive": (lambda v: _finite(v) and v > 0, "a positive number"),
    "count": (lambda v: _finite(v) and v >= 0, "a non-negative number"),
    "figure": (lambda v: v is None or v in NON_FINITE or _finite(v), 'a number, "inf", "-inf", "nan" or null'),
    "texts": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "text or null": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "numbers": (lambda v: isinstance(v, dict) and all(_finite(x) for x in v.values()),
                "an object of finite numbers"),
    "backends": (lambda v: isinstance(v, dict) and _VALUES["texts"][0](v.get("available", [])),
                 'an object whose "available" is a list of strings'),
    "objects": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v), "a list of objects"),
    "text object": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                    "an object of strings"),
    "thread count": (lambda v: _thread_count(v), "an integer >= 1"),
    "thread settings": (lambda v: isinstance(v, dict) and _thread_count(v.get("count", 1)),
                        'an object whose "count" is an integer >= 1'),
}
# Per record kind: (required fields, optional fields).  A record missing a required field, or holding a bad
# value in one, is left out of the report; a bad optional field is dropped from its record.
RECORD_FIELDS = {
    "speed": ({"workload": "text", "precision": "text", "backend": "text", "median_s": "positive"},
              {"op": "text", "task": "text", "batch": "integer", "weight_bytes": "count", "activation_bytes": "count",
               "allocation_peak_bytes": "count", "pct_of_peak": "number", "accuracy": "number",
               "sqnr_db": "figure", "implementation": "text", "contender": "text", "blas": "objects",
               "blas_setting": "text", "blas_pins": "text object", "reference_error": "number",
               "reference_tolerance": "number", "threads": "thread count"}),
    # a user model's sweep without labels has no accuracy (null) but an SQNR of its outputs
    "sweep": ({"task": "text", "weight_bits": "integer", "activation_bits": "integer", "variant": "text",
               "accuracy": "number or null", "float64_accuracy": "number or null"},
              {"n_test": "integer", "sqnr_db": "figure", "float_format": "text"}),
    "sqnr_sine": ({"bits": "integer", "sqnr_db": "number", "theory_db": "number"},
                  {"format": "text", "exp_bits": "integer"}),
    "not_available": ({"section": "text", "reason": "text"}, {}),
    "failed": ({"label": "text", "reason": "text"}, {"workload": "text", "precision": "text", "backend": "text"}),
    # a contender whose library is missing here: a labelled cell of the report
    "not_installed": ({"workload": "text", "precision": "text", "backend": "text", "reason": "text"},
                      {"implementation": "text", "contender": "text"}),
    # the worker process that measured the float rows at the BLAS's own core
    "blas_worker": ({"status": "text"}, {"reason": "text", "removed": "text object", "blas": "objects",
                                         "rows": "integer"}),
    "memory": ({"peak_rss_bytes": "count"}, {}),
}
CONTEXT_FIELDS = {"cpu": "text", "node": "text", "isa_flags": "texts", "backends": "backends",
                  "git_commit": "text or null", "started_utc": "text", "peak_gops": "numbers",
                  "threads": "thread settings"}


def check(data: dict) -> tuple[dict, list[str]]:
    """What the report can read of loaded results ``data``, and one line per problem.

    Returns a copy whose records and context hold only well-formed fields (see ``RECORD_FIELDS``;
    records of other kinds pass unchanged) and the problems, each naming the record (its index in
    "records") or the context, the field, its value and what it must hold.
    """
    problems = []
    context = data.get("context")
    if not isinstance(context, dict):
        problems.append(f"context is {_short(context)}, expected an object; left out")
        context = {}
    context = dict(context)
    for name, what in CONTEXT_FIELDS.items():
        problem = _field_problem(context, name, what, required=False)
        if problem:
            problems.append(f"context: {problem}; field left out")
            del context[name]
    records = []
    for index, record in enumerate(data["records"]):
        record, record_problems = _checked_record(record)
        problems += [f"records[{index}] {p}" for p in record_problems]
        if record is not None:
            records.append(record)
    return {**data, "context": context, "records": records}, problems


def _checked_record(record):
    """(the record as the report reads it, or None; its problems)."""
    if not isinstance(record, dict):
        return None, [f"is {_short(record)}, expected an object; record left out"]
    kind = record.get("kind")
    if not isinstance(kind, str):
        return None, [f"(no kind): field 'kind' is {_short(kind)}, expected a string; record left out"]
    if kind not in RECORD_FIELDS:
        return record, []
    required, optional = RECORD_FIELDS[kind]
    label = f"(kind {kind!r})"
    missing = [p for name, what in required.items() if (p := _field_problem(record, name, what, required=True))]
    if missing:
        return None, [f"{label}: {', '.join(missing)}; record left out"]
    record = {key: _canonical(value) for key, value in record.items()}
    problems = []
    for name, what in optional.items():
        problem = _field_problem(record, name, what, required=False)
        if problem:
            problems.append(f"{label}: {problem}; field left out")
            del record[name]
    return record, problems


def _field_problem(mapping: dict, name: str, what: str, required: bool) -> str | None:
    if name not in mapping:
        return f"field {name!r} is missing" if required else None
    test, description = _VALUES[what]
    value = _canonical(mapping[name])
    return None if test(value) else f"field {name!r} is {_short(value)}, expected {description}"


def _canonical(value):
    """Non-finite floats (a bare NaN in the file) as the writer's strings."""
    return jsonable(value) if isinstance(value, float) else value


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _thread_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def jsonable(value):
    """Infinite/NaN floats become the strings "inf", "-inf", "nan" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return jsonable(value.item())
    return value
