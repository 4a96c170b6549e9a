"""report.md and plots from one or more results files (never from live measurements)."""
from __future__ import annotations

import re
from pathlib import Path

from . import plots, results, user_report, verdict

TABLE_PRECISIONS = ("f64", "f32", "bf16", "i16", "a16w8", "fp8e4m3", "fp8e5m2", "i8")
FLOAT_FORMATS = ("bf16", "fp8e4m3", "fp8e5m2")
NAIVE = verdict.NAIVE
MEMORY_TARGET = 0.5  # i8 allocation peak of a batch-256 model forward <= this x the f32 one (C backend)
SPEEDUP_TARGET = 5.0  # Numba int8 linear >= this x the naive i-k-j loop


def verdict_rows(records: list[dict]) -> list[dict]:
    """Per workload: the best of each precision class over fxbench and the contenders, fxbench's own best per
    precision, and its speedups vs the best float32 (see ``verdict.rows``)."""
    return verdict.rows(records)


def _ms(record):
    return f"{record['median_s'] * 1e3:.3g}" if record else "-"


def _fmt(value, spec):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def _accuracies(best) -> str:
    """"98.2/98.2/-/98.0/98.2/-/-/97.9" from the rows' test accuracies, "-" where a precision has none."""
    values = [best.get(p, {}).get("accuracy") for p in TABLE_PRECISIONS]
    if all(v is None for v in values):
        return "-"
    return "/".join("-" if v is None else f"{100 * v:.1f}" for v in values)


def verdict_table(rows) -> list[str]:
    """fxbench's own precisions per workload (its backends; its float models on numpy), their speedup vs the best
    float32 of all (contenders included), bytes, errors and accuracy."""
    head = ("| workload | " + " | ".join(f"{p} ms" for p in TABLE_PRECISIONS)
            + " | i8 speedup vs best float32 | i16 speedup vs best float32 | bf16 speedup vs best float32"
            " | i8/f32 weight bytes | i8/f32 allocation peak | i8 SQNR dB | i16 SQNR dB"
            f" | test accuracy % ({'/'.join(TABLE_PRECISIONS)}) |")
    lines = [head, "|---" * (len(TABLE_PRECISIONS) + 9) + "|"]
    for row in rows:
        best = row["best"]
        if not best:
            continue
        f32, i8, i16 = best.get("f32"), best.get("i8"), best.get("i16")
        mem = (i8["weight_bytes"] / f32["weight_bytes"]
               if i8 and f32 and f32.get("weight_bytes") and "weight_bytes" in i8 else None)
        cells = [_ms(best.get(p)) for p in TABLE_PRECISIONS]
        alloc = (i8["allocation_peak_bytes"] / f32["allocation_peak_bytes"]
                 if i8 and f32 and f32.get("allocation_peak_bytes") and "allocation_peak_bytes" in i8 else None)
        cells += [_fmt(row["speedup"].get("i8"), ".2f"), _fmt(row["speedup"].get("i16"), ".2f"),
                  _fmt(row["speedup"].get("bf16"), ".2f"), _fmt(mem, ".2f"),
                  _fmt(alloc, ".2f"),
                  _fmt(i8 and i8.get("sqnr_db"), ".1f"), _fmt(i16 and i16.get("sqnr_db"), ".1f"),
                  _accuracies(best)]
        lines.append(f"| {row['workload']} | " + " | ".join(cells) + " |")
    return lines


def _is_model(row) -> bool:
    return row["workload"].startswith("model ")


def answer(rows, machine: str, records=()) -> str:
    """The answer paragraph, computed from the records: the verdict of the best of each class
    (``verdict.answer``), then what fxbench's own int8 costs in accuracy."""
    return " ".join(filter(None, [verdict.answer(rows, machine, list(records)), *_fxbench_sentences(rows)]))


def answer_lines(rows, machine: str, records) -> list[str]:
    """The answer as the report prints it: the opening sentence, one item per kernel class and model batch, then
    fxbench's accuracy and memory sentences (the same sentences as ``answer``)."""
    opening, body = verdict.answer_parts(rows, machine, list(records))
    closing = " ".join(filter(None, [*_fxbench_sentences(rows), memory_sentence(records)]))
    return [line for line in (opening, "", *[f"- {sentence}" for sentence in body], "" if body else None, closing)
            if line is not None]


def _fxbench_sentences(rows) -> list[str]:
    """fxbench's own int8: the SQNR of its kernel outputs and its task accuracy against its float32."""
    sentences = []
    kernel_rows = [row for row in rows if not _is_model(row)]
    sqnrs = [s for s in (row["best"].get("i8", {}).get("sqnr_db") for row in kernel_rows) if _finite(s)]
    if sqnrs:
        f32_sqnrs = [s for s in (row["best"].get("f32", {}).get("sqnr_db") for row in kernel_rows) if _finite(s)]
        sentences.append(f"fxbench's own int8 kernel outputs have {min(sqnrs):.1f}-{max(sqnrs):.1f} dB SQNR against "
                         "float64" + (f" (its float32: at least {min(f32_sqnrs):.1f} dB)." if f32_sqnrs else "."))
    drops = [(100 * (row["best"]["f32"]["accuracy"] - row["best"]["i8"]["accuracy"]),
              row["best"]["i8"].get("task", row["workload"]))
             for row in rows if _finite(row["best"].get("i8", {}).get("accuracy"))
             and _finite(row["best"].get("f32", {}).get("accuracy"))]
    if drops:
        drop, task = max(drops)
        sentences.append(f"Its int8 test accuracy is at most {drop:.1f} points below its float32 ({task}).")
    formats = []
    for precision in FLOAT_FORMATS:
        changes = [(100 * (row["best"]["f32"]["accuracy"] - row["best"][precision]["accuracy"]),
                    row["best"][precision].get("task", row["workload"])) for row in rows
                   if _finite(row["best"].get(precision, {}).get("accuracy"))
                   and _finite(row["best"].get("f32", {}).get("accuracy"))]
        if changes:
            drop, task = max(changes)
            formats.append(f"{precision} {drop:.1f} points ({task})" if drop > 0 else f"{precision} none")
    if formats:
        sentences.append("Its float formats lose at most: " + ", ".join(formats) + ".")
    return sentences


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")


_MEMORY_FIELDS = ("weight_bytes", "activation_bytes", "allocation_peak_bytes")


def memory_pairs(records) -> list[tuple]:
    """(task, f32 record, i8 record) of each task model at batch 256; i8 on the C backend when measured there."""
    models = [r for r in verdict.speed_records(records) if r.get("op") == "model" and r.get("batch") == 256
              and "task" in r and all(key in r for key in _MEMORY_FIELDS) and not verdict.is_contender(r)]
    pairs = []
    for task in sorted({r["task"] for r in models}):
        f32 = [r for r in models if r["task"] == task and r["precision"] == "f32"]
        i8 = [r for r in models if r["task"] == task and r["precision"] == "i8"]
        i8 = [r for r in i8 if r["backend"] == "c"] or i8
        if f32 and i8 and f32[0].get("allocation_peak_bytes"):
            pairs.append((task, f32[0], i8[0]))
    return pairs


def _peak_ratio(f32, i8) -> float:
    return (i8["allocation_peak_bytes"] + i8.get("arena_bytes", 0)) / f32["allocation_peak_bytes"]


def memory_sentence(records) -> str:
    """How many task models meet the allocation-peak target, for the answer paragraph ("" without data)."""
    pairs = memory_pairs(records)
    if not pairs:
        return ""
    met = [task for task, f32, i8 in pairs if _peak_ratio(f32, i8) <= MEMORY_TARGET]
    ratios = [_peak_ratio(f32, i8) for _, f32, i8 in pairs]
    return (f"At batch 256 the int8 forward pass allocates {min(ratios):.2f}-{max(ratios):.2f}x the float32 peak; "
            f"the target of at most {MEMORY_TARGET}x is met on {len(met)} of {len(pairs)} task models.")


def memory_target_lines(records) -> list[str]:
    """Per task at batch 256: bytes per precision and whether the i8 allocation peak (plus the arena a compiled
    model keeps between calls) is <= 0.5x the f32 one."""
    lines = []
    for task, f32, i8 in memory_pairs(records):
        ratio = _peak_ratio(f32, i8)
        lines.append(f"| {task} | {i8['backend']} | {f32['weight_bytes']} | {i8['weight_bytes']} "
                     f"| {f32['activation_bytes']} | {i8['activation_bytes']} "
                     f"| {f32['allocation_peak_bytes'] / 2**10:.1f} | {i8['allocation_peak_bytes'] / 2**10:.1f} "
                     f"| {i8.get('arena_bytes', 0) / 2**10:.1f} "
                     f"| {ratio:.2f} | {'met' if ratio <= MEMORY_TARGET else 'not met'} |")
    if not lines:
        return []
    return ["### Memory of one forward pass at batch 256", "",
            f"Target: the int8 model's allocation peak (tracemalloc, plus the activation arena a compiled model keeps "
            f"between calls) is at most {MEMORY_TARGET}x the float32 one.", "",
            "| task | i8 backend | f32 weight bytes | i8 weight bytes | f32 largest activations (bytes) "
            "| i8 largest activations (bytes) | f32 allocation peak KiB | i8 allocation peak KiB | i8 arena KiB "
            "| i8/f32 | target |",
            "|---" * 11 + "|", *lines, ""]


def call_overhead_lines(records) -> list[str]:
    """The compiled model's per-call overhead (a one-layer model with nothing to compute)."""
    found = [r for r in records if r.get("kind") == "call_overhead"]
    if not found:
        return []
    r = found[-1]
    return [f"Call overhead of a compiled fixed-point model ({r['model']}, {r['execution']}): "
            f"{r['median_s'] * 1e6:.2f} us per call (Python, cffi and argument checks; the layers' own work is "
            "negligible there).", ""]


def naive_lines(records) -> list[str]:
    """Numba int8 linear vs the naive i-k-j Numba loop per shape (target: at least 5x faster)."""
    speed = [r for r in records if r.get("kind") == "speed" and r.get("op") == "linear" and r["precision"] == "i8"]
    lines = []
    for naive in [r for r in speed if r["backend"] == NAIVE]:
        for backend in ("numba", "c"):
            tuned = [r for r in speed if r["workload"] == naive["workload"] and r["backend"] == backend]
            if tuned:
                ratio = naive["median_s"] / tuned[0]["median_s"]
                target = ("met" if ratio >= SPEEDUP_TARGET else "not met") if backend == "numba" else "-"
                lines.append(f"| {naive['workload']} | {backend} | {_ms(naive)} | {_ms(tuned[0])} | {ratio:.1f} "
                             f"| {target} |")
    if not lines:
        return []
    return ["### Tuned int8 linear vs a naive i-k-j Numba loop", "",
            f"Target: the Numba backend at least {SPEEDUP_TARGET:.0f}x faster than the naive loop on the stored "
            "(N, K) weight layout (same int8 result).", "",
            "| workload | backend | naive ms | backend ms | speedup | target |", "|---" * 6 + "|", *lines, ""]


def sweep_lines(points) -> list[str]:
    """Per task and variant: the fewest bits (weights = activations) within 1 point of float64 accuracy."""
    lines = []
    for task in sorted({p["task"] for p in points}):
        mine = [p for p in points if p["task"] == task and p["weight_bits"] == p["activation_bits"]]
        cells = []
        for variant in SWEEP_VARIANTS:
            ok = sorted(p["weight_bits"] for p in mine
                        if p["variant"] == variant and p["accuracy"] >= p["float64_accuracy"] - 0.01)
            tried = any(p["variant"] == variant for p in mine)
            cells.append(str(ok[0]) if ok else ("none" if tried else "-"))
        n_test = mine[0].get("n_test", "?") if mine else "?"
        lines.append(f"| {task} | {n_test} | " + " | ".join(cells) + " |")
    return ["### Accuracy vs bit width", "",
            "Fewest bits (weights = activations) whose test accuracy is within 1 point of float64, per variant "
            "(default: per-channel, pow2 scales, round half to even; float E<n>: weights and activations in the "
            "float format of that many bits with n exponent bits):", "",
            "| task | test samples | " + " | ".join(SWEEP_VARIANTS) + " |", "|---" * (len(SWEEP_VARIANTS) + 2) + "|",
            *lines, "", *equal_width_lines(points)]


def equal_width_lines(points) -> list[str]:
    """Per task: test accuracy of fixed point and of the float formats at the same total width (8 and 16 bits)."""
    def at(task, bits, variant):
        return [p for p in points if p["variant"] == variant and p["weight_bits"] == p["activation_bits"] == bits
                and (task is None or p["task"] == task)]

    columns = [(bits, variant) for bits in EQUAL_WIDTHS for variant in ("default",) + FLOAT_VARIANTS
               if at(None, bits, variant)]
    if not any(variant != "default" for _, variant in columns):
        return []
    head = [f"{bits}-bit {at(None, bits, variant)[0].get('float_format') or f'int{bits}'}"
            for bits, variant in columns]
    lines = []
    for task in sorted({p["task"] for p in points}):
        cells = [f"{100 * found[0]['accuracy']:.1f}" if (found := at(task, bits, variant)) else "-"
                 for bits, variant in columns]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return ["Test accuracy (%) at equal width, fixed point (default settings) beside the float formats:", "",
            "| task | " + " | ".join(head) + " |", "|---" * (len(columns) + 1) + "|", *lines, ""]


def side_by_side(datasets) -> list[str]:
    """One table comparing the machines: i8 speedup vs f32 and i8 accuracy per workload."""
    per_machine = [{row["workload"]: row for row in verdict_rows(data["records"])} for data in datasets]
    workloads = list(dict.fromkeys(w for rows in per_machine for w in rows))
    head = "| workload | " + " | ".join(f"machine {i + 1} i8 speedup" for i in range(len(datasets))) + " |"
    counts = [thread_count(data) for data in datasets]
    names = [machine_name(data) + (f" at {n} thread{'s' if n != 1 else ''}" if set(counts) != {1} else "")
             for data, n in zip(datasets, counts)]
    lines = ["## Side by side", "", ", ".join(f"machine {i + 1}: {name}" for i, name in enumerate(names)) + ".", "",
             head, "|---" * (len(datasets) + 1) + "|"]
    for workload in workloads:
        cells = [_fmt(rows[workload]["speedup"].get("i8") if workload in rows else None, ".2f")
                 for rows in per_machine]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return lines + [""]


def thread_count(data: dict) -> int:
    """The thread count the run of checked results ``data`` timed its rows at (1 before runs took a count)."""
    return data.get("context", {}).get("threads", {}).get("count", 1)


def machine_name(data: dict) -> str:
    context = data.get("context", {})
    return f"{context.get('cpu', 'unknown CPU')} ({context.get('node', '?')})"


SWEEP_VARIANTS = ("default", "per-tensor", "multiplier", "floor", "stochastic", "float E4", "float E5", "float E8")
FLOAT_VARIANTS = ("float E4", "float E5", "float E8")
EQUAL_WIDTHS = (8, 16)
TITLE = "# fxbench report"
PLOTS = ("speedup", "sqnr_vs_bits", "pct_of_peak", "accuracy_vs_bits", "bits_heatmap", r"tradeoff-[\w.-]+?")
_PLOT_LINK = re.compile(r"!\[[^\]]*\]\(((?:" + "|".join(PLOTS) + r")(?:-\d+)?\.png)\)")


def write_report(datasets: list[dict], out_dir) -> Path:
    """Write report.md and PNGs for each results file into ``out_dir``; returns report.md's path.

    Records and fields the report cannot read (``results.check``) are left out and listed. Plots that an
    earlier report in ``out_dir`` drew (linked from its report.md) and this one does not are removed;
    no other file is touched.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    earlier_plots = _plot_links(path.read_text(errors="replace")) if path.is_file() else set()
    checked = [results.check(data) for data in datasets]
    datasets = [data for data, _ in checked]
    lines = [TITLE, ""]
    if len(datasets) > 1:
        lines += side_by_side(datasets)
    for index, (data, problems) in enumerate(checked):
        suffix = f"-{index + 1}" if len(datasets) > 1 else ""
        title = machine_name(data) + (f" (machine {index + 1})" if len(datasets) > 1 else "")
        lines += [f"## {title}", "", _context_line(data), ""]
        lines += _machine_sections(data, suffix, out_dir)
        if problems:
            lines += ["### Left out of this report", "", "Records and fields of the results file that the report "
                      "cannot read (records numbered from 0):", "", *[f"- {problem}" for problem in problems], ""]
    text = "\n".join(lines)
    path.write_text(text)
    for name in earlier_plots - _plot_links(text):
        (out_dir / name).unlink(missing_ok=True)
    return path


def _plot_links(text: str) -> set[str]:
    """Plot files linked from an fxbench report.md (none from another Markdown file)."""
    return set(_PLOT_LINK.findall(text)) if text.startswith(TITLE) else set()


def _context_line(data) -> str:
    context = data.get("context", {})
    return (f"Flags: {' '.join(context.get('isa_flags', []))}; backends: "
            f"{', '.join(context.get('backends', {}).get('available', []))}; threads: {thread_count(data)}; commit "
            f"{context.get('git_commit') or 'unknown'}; started {context.get('started_utc', '?')}"
            + ("" if data.get("complete") else " — **run interrupted: partial results**") + ".")


def _machine_sections(data, suffix, out_dir) -> list[str]:
    """Verdict, answer, fxbench's precisions, memory, naive baseline, contenders, sweeps and plots of one file."""
    machine = machine_name(data)
    records = data["records"]
    rows = verdict_rows(records)
    lines = []
    if rows:
        lines += ["### Verdict: the best of each class", "", *verdict.class_table(rows), "", verdict.table_legend(),
                  "", *answer_lines(rows, machine, records), ""]
        if any(row["best"] for row in rows):
            lines += ["### fxbench's own precisions", "",
                      "Its fastest backend per precision (float models: its layers on numpy); speedups against the "
                      "best float32 of all, contenders included.", "", *verdict_table(rows), ""]
        lines += [*memory_target_lines(records), *call_overhead_lines(records), *naive_lines(records),
                  *verdict.contender_lines(records),
                  *verdict.pinned_lines(records)]
    lines += user_report.lines(records)
    points = [r for r in records if r.get("kind") == "sweep" and r.get("accuracy") is not None]
    if points:
        lines += sweep_lines(points)
        for name, draw, alt in ((f"accuracy_vs_bits{suffix}.png", plots.accuracy_vs_bits, "accuracy vs bits"),
                                (f"bits_heatmap{suffix}.png", plots.bits_heatmap, "weights x activations")):
            draw(points, machine, out_dir / name)
            lines += [f"![{alt}]({name})", ""]
    lines += _speed_plots(data, rows, suffix, out_dir)
    for r in records:
        if r.get("kind") == "not_available":
            lines += [f"{r['section'].capitalize()}: not available: {r['reason']}.", ""]
    failed = [r for r in records if r.get("kind") == "failed"]
    if failed:
        lines += [f"{len(failed)} cases failed and are missing above:", "",
                  *[f"- {r['label']}: {r['reason']}" for r in failed], ""]
    memory = [r for r in records if r.get("kind") == "memory"]
    if memory:
        lines += [f"Peak RSS of the run: {memory[-1]['peak_rss_bytes'] / 2**20:.0f} MiB.", ""]
    return lines


def _speed_plots(data, rows, suffix, out_dir) -> list[str]:
    """Speedup bars, SQNR vs bits, latency vs SQNR and % of peak, each when the results hold its data."""
    machine = machine_name(data)
    records = data["records"]
    lines = []
    with_f32 = [row for row in rows if "f32" in row["best"] and len(row["best"]) > 1]
    if with_f32:
        name = f"speedup{suffix}.png"
        plots.speedup_bars(with_f32, machine, out_dir / name)
        lines += [f"![speedup vs f32]({name})", ""]
    sine = [r for r in records if r.get("kind") == "sqnr_sine"]
    if sine:
        name = f"sqnr_vs_bits{suffix}.png"
        plots.sqnr_vs_bits(sine, machine, out_dir / name)
        lines += [f"![SQNR vs bits]({name})", ""]
    lines += _tradeoff_plots(records, machine, suffix, out_dir)
    peaked = [r for r in records if r.get("kind") == "speed" and isinstance(r.get("pct_of_peak"), (int, float))]
    if peaked:
        name = f"pct_of_peak{suffix}.png"
        plots.percent_of_peak(peaked, machine, out_dir / name)
        peaks = data.get("context", {}).get("peak_gops", {})
        threads = thread_count(data)
        per_thread = (f"; rows timed at {threads} threads are taken against {threads} cores' peak (at most the "
                      "logical CPUs')" if threads > 1 else "")
        lines += ["Measured peaks (GOPS): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) + per_thread, "",
                  f"![throughput as % of peak]({name})", ""]
    elif rows:
        lines += ["Throughput as % of peak: peak unknown (the C backend's probe is not available).", ""]
    return lines


def _tradeoff_plots(records, machine, suffix, out_dir) -> list[str]:
    """Per model with test accuracies: accuracy vs latency at each batch, a point per precision and contender."""
    models = [r for r in verdict.speed_records(records) if r.get("op") == "model" and "task" in r
              and isinstance(r.get("batch"), int) and _finite(r.get("accuracy"))]
    lines = []
    for task in dict.fromkeys(r["task"] for r in models):
        mine = [r for r in models if r["task"] == task]
        panels = []
        for batch in sorted({r["batch"] for r in mine}):
            points = {}
            for r in (r for r in mine if r["batch"] == batch):
                label = f"{r.get('quantized_as', r['precision'])} {verdict.who(r, with_blas=False)}"
                if label not in points or r["median_s"] < points[label]["median_s"]:
                    points[label] = dict(r, label=label)
            panels.append((f"batch {batch}", list(points.values())))
        name = f"tradeoff-{_file_part(task)}{suffix}.png"
        plots.tradeoff(panels, f"{task}: test accuracy vs latency — {machine}", out_dir / name)
        lines += [f"![{task}: accuracy vs latency]({name})", ""]
    return lines


def _file_part(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)
