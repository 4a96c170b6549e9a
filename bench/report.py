"""report.md and plots from one or more results files (never from live measurements)."""
from __future__ import annotations

from pathlib import Path

from . import plots

TABLE_PRECISIONS = ("f64", "f32", "i16", "a16w8", "i8")
PEERS = ("torch", "onnxruntime")  # other libraries' integer kernels: in the results, not in the verdict


def verdict_rows(records: list[dict]) -> list[dict]:
    """Per workload: best median per precision (fxbench backends and numpy), speedup vs f32, SQNR."""
    rows = {}
    for r in records:
        if r.get("kind") != "speed" or r["backend"] in PEERS:
            continue
        row = rows.setdefault(r["workload"], {"workload": r["workload"], "best": {}})
        best = row["best"].get(r["precision"])
        if best is None or r["median_s"] < best["median_s"]:
            row["best"][r["precision"]] = r
    out = []
    for row in rows.values():
        f32 = row["best"].get("f32")
        row["speedup"] = {p: (f32["median_s"] / r["median_s"] if f32 else None) for p, r in row["best"].items()}
        out.append(row)
    return out


def _number(value):
    """A float from a stored figure ("inf" strings included), or None."""
    if isinstance(value, (int, float)):
        return float(value)
    if value in ("inf", "-inf"):
        return float(value)
    return None


def _ms(record):
    return f"{record['median_s'] * 1e3:.3g}" if record else "-"


def _fmt(value, spec):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def verdict_table(rows) -> list[str]:
    head = ("| workload | " + " | ".join(f"{p} ms" for p in TABLE_PRECISIONS)
            + " | i8 speedup vs f32 | i16 speedup vs f32 | i8/f32 weight bytes | i8/f32 allocation peak"
            " | i8 SQNR dB | i16 SQNR dB |")
    lines = [head, "|---" * (len(TABLE_PRECISIONS) + 7) + "|"]
    for row in rows:
        best = row["best"]
        f32, i8, i16 = best.get("f32"), best.get("i8"), best.get("i16")
        mem = (i8["weight_bytes"] / f32["weight_bytes"]) if (i8 and f32 and f32["weight_bytes"]) else None
        cells = [_ms(best.get(p)) for p in TABLE_PRECISIONS]
        alloc = (i8["allocation_peak_bytes"] / f32["allocation_peak_bytes"]
                 if i8 and f32 and f32.get("allocation_peak_bytes") and "allocation_peak_bytes" in i8 else None)
        cells += [_fmt(row["speedup"].get("i8"), ".2f"), _fmt(row["speedup"].get("i16"), ".2f"), _fmt(mem, ".2f"),
                  _fmt(alloc, ".2f"),
                  _fmt(i8 and i8.get("sqnr_db"), ".1f"), _fmt(i16 and i16.get("sqnr_db"), ".1f")]
        lines.append(f"| {row['workload']} | " + " | ".join(cells) + " |")
    return lines


def answer(rows, machine: str) -> str:
    """One paragraph answering the project's question, computed from the verdict rows."""
    pairs = [(row["workload"], row["speedup"].get("i8")) for row in rows if row["speedup"].get("i8")]
    if not pairs:
        return f"On {machine} no workload was measured in both f32 and i8, so there is no verdict."
    faster = [w for w, s in pairs if s > 1.0]
    best = max(pairs, key=lambda p: p[1])
    worst = min(pairs, key=lambda p: p[1])
    sqnrs = [row["best"]["i8"].get("sqnr_db") for row in rows if "i8" in row["best"]]
    sqnrs = [s for s in sqnrs if isinstance(s, (int, float))]
    text = (f"On {machine}, int8 fixed point is faster than float32 on {len(faster)} of {len(pairs)} workloads; "
            f"the largest speedup is {best[1]:.2f}x ({best[0]}), the smallest {worst[1]:.2f}x ({worst[0]}).")
    weight_ratios = [row["best"]["i8"]["weight_bytes"] / row["best"]["f32"]["weight_bytes"] for row in rows
                     if "i8" in row["best"] and row["best"].get("f32", {}).get("weight_bytes")]
    if weight_ratios:
        text += f" int8 weights take {max(weight_ratios):.2f}x the bytes of float32 weights."
    if sqnrs:
        text += (f" The price is accuracy: int8 outputs have {min(sqnrs):.1f}-{max(sqnrs):.1f} dB SQNR against "
                 f"float64")
        f32_sqnrs = [row["best"]["f32"].get("sqnr_db") for row in rows if "f32" in row["best"]]
        f32_sqnrs = [s for s in f32_sqnrs if isinstance(s, (int, float))]
        text += f" (float32: at least {min(f32_sqnrs):.1f} dB)." if f32_sqnrs else "."
    return text


def machine_name(data: dict) -> str:
    context = data.get("context", {})
    return f"{context.get('cpu', 'unknown CPU')} ({context.get('node', '?')})"


def write_report(datasets: list[dict], out_dir) -> Path:
    """Write report.md and PNGs for each results file into ``out_dir``; returns report.md's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# fxbench report", ""]
    for index, data in enumerate(datasets):
        machine = machine_name(data)
        records = data["records"]
        rows = verdict_rows(records)
        suffix = f"-{index + 1}" if len(datasets) > 1 else ""
        context = data.get("context", {})
        lines += [f"## {machine}", "",
                  f"Flags: {' '.join(context.get('isa_flags', []))}; backends: "
                  f"{', '.join(context.get('backends', {}).get('available', []))}; commit "
                  f"{context.get('git_commit') or 'unknown'}; started {context.get('started_utc', '?')}"
                  + ("" if data.get("complete") else " — **run interrupted: partial results**") + ".", "",
                  "### Verdict", "", *verdict_table(rows), "", answer(rows, machine), ""]
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
        with_error = [r for r in records if r.get("kind") == "speed" and _number(r.get("sqnr_db")) is not None]
        if with_error:
            name = f"latency_vs_sqnr{suffix}.png"
            plots.latency_vs_sqnr([dict(r, sqnr_db=_number(r["sqnr_db"])) for r in with_error], machine,
                                  out_dir / name)
            lines += [f"![latency vs accuracy]({name})", ""]
        peaked = [r for r in records if r.get("kind") == "speed" and isinstance(r.get("pct_of_peak"), (int, float))]
        if peaked:
            name = f"pct_of_peak{suffix}.png"
            plots.percent_of_peak(peaked, machine, out_dir / name)
            peaks = context.get("peak_gops", {})
            lines += ["Measured peaks (GOPS): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()), "",
                      f"![throughput as % of peak]({name})", ""]
        else:
            lines += ["Throughput as % of peak: peak unknown (the C backend's probe is not available).", ""]
        for r in records:
            if r.get("kind") == "not_available":
                lines += [f"{r['section'].capitalize()}: not available: {r['reason']}.", ""]
        memory = [r for r in records if r.get("kind") == "memory"]
        if memory:
            lines += [f"Peak RSS of the run: {memory[-1]['peak_rss_bytes'] / 2**20:.0f} MiB.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
