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
    """Accumulates records and rewrites ``path`` (temp file + rename) after each one."""

    def __init__(self, path, context: dict):
        self.path = Path(path)
        if self.path.exists():
            raise ResultsFileError(f"refusing to overwrite existing results file {self.path}")
        self.data = {"format": FORMAT, "version": VERSION, "context": context, "complete": False, "records": []}
        self._write()

    def add(self, record: dict) -> None:
        self.data["records"].append(record)
        self._write()

    def finish(self, elapsed_s: float) -> None:
        self.data["complete"] = True
        self.data["elapsed_s"] = elapsed_s
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_jsonable(self.data), indent=1, allow_nan=False))
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


def _jsonable(value):
    """Infinite/NaN floats become the strings "inf", "-inf", "nan" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())
    return value
