"""The verdict from the best of each precision class, drawn from results records only.

Per workload: the fastest record of each class of ``classes.PRECISION_CLASSES`` over fxbench's backends and
every contender (numpy, torch, onnxruntime), who it is, the ratios between the classes, and fxbench's own
fastest record of the subject class (int8) against the fastest contender of that class.  Float rows measured
twice (the environment pinned the BLAS core, a worker process measured them at the BLAS's own core) enter
with their native figure.  Every sentence of the answer is computed here from the records.
"""
from __future__ import annotations

from collections import Counter

from .classes import PRECISION_CLASSES, SUBJECT_CLASS, class_of

NAIVE = "naive-numba"
# backends of results files written before contender rows carried a "contender" field
CONTENDER_BACKENDS = ("torch", "onnxruntime")
# backends whose float rows run on numpy's BLAS (fxbench's Numba float GEMM calls np.matmul)
NUMPY_BLAS_BACKENDS = ("numpy", "numba")
NATIVE, PINNED = "native", "pinned"


def is_contender(record: dict) -> bool:
    """A row of another library (numpy's own operators included; fxbench's float models on numpy are not)."""
    if record.get("contender"):
        return True
    if record["backend"] in CONTENDER_BACKENDS or record["backend"].startswith("onnxruntime"):
        return True
    return record["backend"] == "numpy" and not record["workload"].startswith("model ")


def blas_name(record: dict) -> str | None:
    """"openblas SkylakeX" of a float record that ran on numpy's BLAS, else None."""
    if record["backend"] not in NUMPY_BLAS_BACKENDS or not record.get("blas"):
        return None
    names = [" ".join(str(p) for p in (pool.get("library"), pool.get("core")) if p) for pool in record["blas"]]
    return ", ".join(n for n in names if n) or None


def who(record: dict, with_blas: bool = True) -> str:
    """What ran the row: the contender's implementation or "fxbench <backend>", with the BLAS core of rows on
    numpy's BLAS."""
    name = record.get("implementation") or f"fxbench {record['backend']}"
    blas = blas_name(record) if with_blas else None
    return f"{name} [{blas}]" if blas else name


def _key(record: dict) -> tuple:
    return record["workload"], record["precision"], record["backend"], record.get("quantized_as")


def speed_records(records: list[dict]) -> list[dict]:
    """The speed records the verdict reads: the naive loop left out, and of a row measured both at a pinned BLAS
    core and at the native one, the native record only."""
    speed = [r for r in records if r.get("kind") == "speed" and r["backend"] != NAIVE]
    native = {_key(r) for r in speed if r.get("blas_setting") == NATIVE}
    return [r for r in speed if not (r.get("blas_setting") == PINNED and _key(r) in native)]


def pinned_pairs(records: list[dict]) -> list[tuple[dict, dict]]:
    """(pinned record, native record) of every row measured at both BLAS cores."""
    speed = [r for r in records if r.get("kind") == "speed"]
    native = {_key(r): r for r in speed if r.get("blas_setting") == NATIVE}
    return [(r, native[_key(r)]) for r in speed if r.get("blas_setting") == PINNED and _key(r) in native]


def group_of(record: dict) -> str:
    """The kernel class (the op) of a kernel row, "whole models at batch N" of a model row."""
    if record["workload"].startswith("model "):
        return f"whole models at batch {record.get('batch', record['workload'].rsplit(' ', 1)[-1])}"
    return record.get("op") or record["workload"].split(" ", 1)[0]


def _fastest(table: dict, key, record: dict) -> None:
    if key not in table or record["median_s"] < table[key]["median_s"]:
        table[key] = record


def rows(records: list[dict]) -> list[dict]:
    """One row per workload: "best" (fxbench's own fastest record per precision), "classes" (the fastest of all
    per class), "ranked" (each class's records, fastest first), "fxbench" (fxbench's fastest per class),
    "absent" (per class, the contenders not installed or failed: (what, state)), "speedup" (per fxbench
    precision, the best float32's median over its median) and "group"."""
    out = {}
    for r in speed_records(records):
        row = out.setdefault(r["workload"], {"workload": r["workload"], "group": group_of(r), "best": {},
                                             "classes": {}, "ranked": {}, "fxbench": {}, "absent": {}})
        contender = is_contender(r)
        if not contender:
            _fastest(row["best"], r["precision"], r)
        name = class_of(r["precision"])
        if name is not None:
            _fastest(row["classes"], name, r)
            row["ranked"].setdefault(name, []).append(r)
            if not contender:
                _fastest(row["fxbench"], name, r)
    for r in records:
        if r.get("kind") not in ("not_installed", "failed") or r.get("workload") not in out:
            continue
        name = class_of(r.get("precision", ""))
        if name is None:
            continue
        what = r.get("implementation") or f"{r.get('backend')} {r.get('precision')}"
        state = "not installed" if r["kind"] == "not_installed" else f"failed: {r.get('reason', '?')}"
        out[r["workload"]]["absent"].setdefault(name, []).append((what, state))
    for row in out.values():
        for ranked in row["ranked"].values():
            ranked.sort(key=lambda r: r["median_s"])
        f32 = row["classes"].get("float32")
        row["speedup"] = {p: (f32["median_s"] / r["median_s"] if f32 else None) for p, r in row["best"].items()}
    return list(out.values())


def ratio(row: dict, faster: str, slower: str) -> float | None:
    """Speed of class ``faster``'s best over class ``slower``'s best (> 1: ``faster`` is faster), or None."""
    a, b = row["classes"].get(faster), row["classes"].get(slower)
    return b["median_s"] / a["median_s"] if a and b else None


def fxbench_vs_contenders(row: dict, name: str = SUBJECT_CLASS) -> tuple[dict, dict, float] | None:
    """(fxbench's fastest record of class ``name``, the fastest contender's, contender median / fxbench median:
    > 1 when fxbench is ahead), or None when either is missing."""
    mine = row["fxbench"].get(name)
    others = [r for r in row["ranked"].get(name, []) if is_contender(r)]
    if mine is None or not others:
        return None
    return mine, others[0], others[0]["median_s"] / mine["median_s"]


# ----------------------------------------------------------------------------- tables


def _ms(record) -> str:
    return f"{record['median_s'] * 1e3:.3g}" if record else "-"


def _x(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _class_cell(row: dict, name: str) -> str:
    record = row["classes"].get(name)
    if record is not None:
        return f"{_ms(record)} ({who(record)})"
    absent = row["absent"].get(name)
    if absent:
        return "; ".join(f"{what}: {state}" for what, state in absent)
    return "-"


def _accuracy_cell(row: dict) -> str:
    values = [(name, row["classes"].get(name, {}).get("accuracy")) for name in PRECISION_CLASSES]
    values = [(name, value) for name, value in values if isinstance(value, (int, float))]
    return " / ".join(f"{name} {100 * value:.1f}" for name, value in values) or "-"


def class_table(rows_: list[dict]) -> list[str]:
    """The verdict table: per workload the best of each class (ms, who), the subject class against each other,
    fxbench's own best of the subject class against the best contender, and test accuracy for models."""
    others = [name for name in PRECISION_CLASSES if name != SUBJECT_CLASS]
    head = (["workload"] + [f"best {name} ms (who)" for name in PRECISION_CLASSES]
            + [f"best {SUBJECT_CLASS} vs best {name}" for name in others]
            + [f"fxbench {SUBJECT_CLASS} ms (backend)", f"fxbench {SUBJECT_CLASS} vs best other {SUBJECT_CLASS}",
               "test accuracy % of each best"])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for row in rows_:
        mine = row["fxbench"].get(SUBJECT_CLASS)
        versus = fxbench_vs_contenders(row)
        cells = ([row["workload"]] + [_class_cell(row, name) for name in PRECISION_CLASSES]
                 + [_x(ratio(row, SUBJECT_CLASS, name)) for name in others]
                 + [f"{_ms(mine)} ({mine['backend']})" if mine else "-", _x(versus[2] if versus else None),
                    _accuracy_cell(row)])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table_legend() -> str:
    others = [name for name in PRECISION_CLASSES if name != SUBJECT_CLASS]
    return (f"Ratios are speeds (> 1: the first is faster): best {SUBJECT_CLASS} vs best "
            + ", ".join(others) + f"; fxbench's own fastest {SUBJECT_CLASS} vs the fastest other library's "
            f"(> 1: fxbench ahead). Classes: " + "; ".join(f"{name} = {', '.join(precisions)}"
                                                           for name, precisions in PRECISION_CLASSES.items())
            + ". \"-\": no row of that class for this workload; rows that stop at the int32 accumulator say "
              "\"int32 out\"; [library core] is the BLAS of rows on numpy's BLAS.")


def contender_lines(records: list[dict]) -> list[str]:
    """Every contender beside fxbench's fastest per class, one column per (backend, precision): median ms,
    "not installed" or "failed"; then how each matched fxbench's reference."""
    speed = [r for r in speed_records(records) if class_of(r["precision"])]
    absent = [r for r in records if r.get("kind") in ("not_installed", "failed") and r.get("workload")
              and r.get("precision") and r.get("backend") and class_of(r["precision"])]
    columns = list(dict.fromkeys((r["backend"], r["precision"]) for r in speed + absent
                                 if is_contender(r) or r.get("kind") != "speed"))
    if not columns:
        return []
    table_rows = rows(records)
    fx_columns = [name for name in PRECISION_CLASSES if any(name in row["fxbench"] for row in table_rows)]
    head = (["workload"] + [f"fxbench {name}" for name in fx_columns]
            + [f"{backend} {precision}" for backend, precision in columns])
    lines = ["### Every contender, side by side", "",
             f"Median ms of one call, {threads_text(records)} (fxbench: its fastest backend of each class). Rows of "
             "another library are checked against fxbench's reference result before they are timed.", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for row in table_rows:
        cells = [row["workload"]] + [_ms(row["fxbench"].get(name)) for name in fx_columns]
        for backend, precision in columns:
            measured = [r for r in speed if r["workload"] == row["workload"] and r["backend"] == backend
                        and r["precision"] == precision and is_contender(r)]
            missing = [r for r in absent if r["workload"] == row["workload"] and r["backend"] == backend
                       and r["precision"] == precision]
            if measured:
                cells.append(_ms(min(measured, key=lambda r: r["median_s"])))
            elif missing:
                cells.append("not installed" if missing[0]["kind"] == "not_installed" else "failed")
            else:
                cells.append("-")
        if any(cell != "-" for cell in cells[1 + len(fx_columns):]):
            lines.append("| " + " | ".join(cells) + " |")
    implementations = {}
    for r in speed + absent:
        if (r["backend"], r["precision"]) in columns and r.get("implementation") and (
                r["kind"] != "speed" or is_contender(r)):
            implementations.setdefault(f"{r['backend']} {r['precision']}", set()).add(r["implementation"])
    lines += ["", "Columns: " + "; ".join(f"{column}: {', '.join(sorted(names))}"
                                          for column, names in implementations.items()) + ".", ""]
    lines += _check_sentences(speed, records)
    reasons = sorted({(r.get("contender") or r["backend"], r["reason"]) for r in absent
                      if r["kind"] == "not_installed"})
    if reasons:
        lines += ["Not installed: " + "; ".join(f"{library}: {reason}" for library, reason in reasons) + ".", ""]
    return lines


def _check_sentences(speed, records) -> list[str]:
    exact = [r for r in speed if r.get("reference_check") == "exact"]
    within = [r for r in speed if r.get("reference_check") == "within tolerance"]
    mismatched = [r for r in records if r.get("kind") == "failed" and "ReferenceMismatch" in r.get("reason", "")]
    parts = []
    if exact:
        parts.append(f"{len(exact)} int8 kernel rows matched it exactly")
    if within:
        worst = max(within, key=lambda r: r.get("reference_error", 0) / (r.get("reference_tolerance") or 1))
        parts.append(f"{len(within)} rows (float, and int8 model sessions against the float64 model) stayed within "
                     f"their relative-RMS tolerance, the nearest to its bound at {worst.get('reference_error', 0):.2g} "
                     f"of {worst.get('reference_tolerance', 0):g} ({worst['workload']} {worst['backend']} "
                     f"{worst['precision']})")
    if mismatched:
        parts.append(f"{len(mismatched)} rows did not match and are listed as failed")
    return ["Against fxbench's reference: " + "; ".join(parts) + ".", ""] if parts else []


def pinned_lines(records: list[dict]) -> list[str]:
    """The float rows measured at both BLAS cores: the pinned figure, the native one, and their ratio."""
    pairs = pinned_pairs(records)
    if not pairs:
        return []
    pins = pairs[0][0].get("blas_pins") or {}
    lines = ["### Float rows at the pinned BLAS core", "",
             "The environment sets " + ", ".join(f"{k}={v}" for k, v in pins.items()) + "; these rows were "
             "measured in this process (pinned) and again in a worker process started without "
             + ", ".join(pins) + " (native). The verdict uses the native figures.", "",
             "| workload | precision | who | pinned ms | BLAS of the process | native ms | BLAS of the worker "
             "| native vs pinned speed |",
             "|---" * 8 + "|"]
    for pinned, native in pairs:
        lines.append(f"| {pinned['workload']} | {pinned['precision']} | {who(pinned, with_blas=False)} "
                     f"| {_ms(pinned)} | {_blas_text(pinned)} | {_ms(native)} | {_blas_text(native)} "
                     f"| {pinned['median_s'] / native['median_s']:.2f} |")
    return lines + [""]


def _blas_text(record) -> str:
    names = [" ".join(str(p) for p in (pool.get("library"), pool.get("core")) if p) for pool in record.get("blas", [])]
    return ", ".join(n for n in names if n) or "-"


# ----------------------------------------------------------------------------- the answer


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"


def _who_counts(records: list[dict]) -> str:
    counts = Counter(who(r) for r in records)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{name} on {n}" for name, n in counts.most_common())


def _absent_text(group_rows, name) -> str | None:
    absent = sorted({f"{what}: {state.split(':', 1)[0]}" for row in group_rows
                     for what, state in row["absent"].get(name, [])})
    return "; ".join(absent) if absent else None


def _group_sentence(group: str, group_rows: list[dict]) -> str | None:
    """One sentence on a kernel class or a batch of whole models (None when it has no row of the subject class)."""
    subject = [row for row in group_rows if SUBJECT_CLASS in row["classes"]]
    if not subject:
        return None
    measured, missing, none = [], [], []
    for name in PRECISION_CLASSES:
        if name == SUBJECT_CLASS:
            continue
        pairs = [(row, ratio(row, SUBJECT_CLASS, name)) for row in subject if ratio(row, SUBJECT_CLASS, name)]
        if pairs:
            faster = sum(1 for _, value in pairs if value > 1.0)
            measured.append(f"{_span([v for _, v in pairs])} the speed of the best {name} "
                            f"({_who_counts([row['classes'][name] for row, _ in pairs])}; faster on {faster} of "
                            f"{len(pairs)})")
        elif _absent_text(group_rows, name):
            missing.append(f"no {name} row was measured ({_absent_text(group_rows, name)})")
        else:
            none.append(name)
    if measured and none:   # beside a measured comparison, say which class has no row at all here
        missing.append(f"no {' or '.join(none)} row exists for these workloads")
    n = len(subject)
    name = f"{group[0].upper()}{group[1:]}" if group.startswith("whole models") else f"Kernel class {group}"
    text = (f"{name} ({n} workload{'s' if n != 1 else ''}): the best {SUBJECT_CLASS} "
            f"({_who_counts([row['classes'][SUBJECT_CLASS] for row in subject])})")
    text += (" runs at " + "; at ".join(measured)) if measured else " has no other class measured beside it"
    text += "".join(f"; {part}" for part in missing)
    versus = [v for v in (fxbench_vs_contenders(row) for row in subject) if v]
    if versus:
        ahead = sum(1 for _, _, value in versus if value > 1.0)
        text += (f"; fxbench's own {SUBJECT_CLASS} runs at {_span([v for _, _, v in versus])} the speed of the "
                 f"fastest other library's ({_who_counts([other for _, other, _ in versus])}), ahead on {ahead} of "
                 f"{len(versus)}")
    drops = [100 * (row["classes"]["float32"]["accuracy"] - row["classes"][SUBJECT_CLASS]["accuracy"])
             for row in subject if _has_accuracy(row["classes"].get("float32"))
             and _has_accuracy(row["classes"][SUBJECT_CLASS])]
    if drops:
        worst = max(drops)
        text += (f"; the best {SUBJECT_CLASS}'s test accuracy is at most {worst:.1f} points below the best "
                 "float32's" if worst > 0 else f"; the best {SUBJECT_CLASS}'s test accuracy is nowhere below the "
                 "best float32's")
    return text + "."


def _has_accuracy(record) -> bool:
    return bool(record) and isinstance(record.get("accuracy"), (int, float))


def groups(rows_: list[dict]) -> list[tuple[str, list[dict]]]:
    """Rows by kernel class (in order of appearance), then the whole models by batch."""
    kernels = {}
    models = {}
    for row in rows_:
        target = models if row["group"].startswith("whole models") else kernels
        target.setdefault(row["group"], []).append(row)
    batches = sorted(models, key=lambda g: int(g.rsplit(" ", 1)[-1]) if g.rsplit(" ", 1)[-1].isdigit() else 0)
    return list(kernels.items()) + [(g, models[g]) for g in batches]


def blas_sentence(records: list[dict]) -> str:
    """Which BLAS core the float figures of the verdict come from, from the float records and the worker's."""
    workers = [r for r in records if r.get("kind") == "blas_worker"]
    floats = [r for r in records if r.get("kind") == "speed" and r.get("blas")]
    if workers:
        worker = workers[-1]
        pins = ", ".join(f"{k}={v}" for k, v in (worker.get("removed") or {}).items())
        pinned = next((r for r in floats if r.get("blas_setting") == PINNED), None)
        pinned_core = f": {_blas_text(pinned)}" if pinned else ""
        if worker.get("status") == "ok":
            native = _blas_text({"blas": worker.get("blas", [])})
            return (f"The environment pins the BLAS core ({pins}{pinned_core}): the {worker.get('rows', 0)} float rows "
                    f"were measured again in a worker process started without it, at the BLAS's own choice "
                    f"({native}), and the verdict uses those figures; the pinned ones are listed under \"Float rows "
                    "at the pinned BLAS core\".")
        return (f"The environment pins the BLAS core ({pins}{pinned_core}), and the worker process that measures the "
                f"float rows without it failed ({worker.get('reason', 'no reason given')}); the verdict uses the "
                f"native figures of the {worker.get('rows', 0)} rows it measured and the pinned ones of the others.")
    if floats:
        pinned = [r for r in floats if r.get("blas_setting") == PINNED]
        if pinned:
            pins = ", ".join(f"{k}={v}" for k, v in (pinned[0].get("blas_pins") or {}).items())
            return (f"The environment pins the BLAS core ({pins}, {_blas_text(pinned[0])}) and no float row was "
                    "measured without it: the float figures are the pinned ones.")
        return (f"The environment pins no BLAS core: float rows ran at the BLAS's own choice "
                f"({_blas_text(floats[0])}).")
    return ""


def thread_counts(records: list[dict]) -> list[int]:
    """The thread counts the speed records were timed at, smallest first (1 for records without the field,
    written before runs took a count)."""
    return sorted({r.get("threads", 1) for r in records if r.get("kind") == "speed"})


def threads_text(records: list[dict]) -> str:
    """"one thread", "2 threads" or "1 and 2 threads": what the speed records were timed at."""
    counts = thread_counts(records) or [1]
    if counts == [1]:
        return "one thread"
    *first, last = (str(n) for n in counts)
    return f"{', '.join(first)} and {last} threads" if first else f"{last} threads"


def thread_sentence(records: list[dict]) -> str:
    """What the thread count of the records means, when a row ran at more than one ("" otherwise)."""
    counts = thread_counts(records)
    if not counts or max(counts) == 1:
        return ""
    if len(counts) > 1:
        return (f"The rows were timed at {threads_text(records)} (each record's \"threads\"): ratios between rows "
                "of different counts compare thread counts as well as implementations.")
    return (f"Every row was timed at {counts[0]} threads: the BLAS (under numpy's rows, fxbench's float models and "
            "its Numba float GEMMs), onnxruntime and torch may use them all, as do fxbench's C integer GEMMs on the "
            "AVX-512 path; fxbench's other kernels run on one.")


def answer_parts(rows_: list[dict], machine: str, records: list[dict]) -> tuple[str, list[str]]:
    """(the opening: which BLAS core the float figures come from, the thread count when it is above one, and
    the machine; one sentence per kernel class and per batch of whole models: the best int8 against the best of
    every other class, fxbench's own int8 against the fastest other library's int8)."""
    body = [s for s in (_group_sentence(group, group_rows) for group, group_rows in groups(rows_)) if s]
    opening = " ".join(s for s in (blas_sentence(records), thread_sentence(records), f"On {machine}:" if body else "")
                       if s)
    return opening, body


def answer(rows_: list[dict], machine: str, records: list[dict]) -> str:
    """The answer as one paragraph (see ``answer_parts``)."""
    opening, body = answer_parts(rows_, machine, records)
    return " ".join(s for s in (opening, *body) if s)
