"""PNG plots drawn only from results JSON (Agg backend): speedup, SQNR vs bits, % of peak, accuracy vs latency
per model, sweeps."""
from __future__ import annotations

import math
from pathlib import Path


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (chosen here, not at import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    """Lay out, write the PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speedup_bars(rows: list[dict], machine: str, path: Path) -> Path:
    """Speedup of f64, the integer precisions and the float formats vs f32 (best backend each) per workload."""
    plt = _pyplot()
    precisions = [p for p in ("f64", "bf16", "i16", "a16w8", "fp8e4m3", "fp8e5m2", "i8")
                  if any(row["speedup"].get(p) for row in rows)]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(4, len(rows)) + 1.5))
    height = 0.8 / max(1, len(precisions))
    for i, precision in enumerate(precisions):
        values = [row["speedup"].get(precision) or 0.0 for row in rows]
        ax.barh([j + i * height for j in range(len(rows))], values, height=height, label=precision)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(rows))], [row["workload"] for row in rows], fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speedup vs f32 on the fastest backend (x, higher is faster)")
    ax.set_title(f"Speedup vs float32 — {machine}")
    ax.legend()
    return _save(plt, fig, path)


def sqnr_vs_bits(rows: list[dict], machine: str, path: Path) -> Path:
    """Measured SQNR of a quantized full-scale sine vs the 6.02*b + 1.76 dB line; float-format rows (those with
    "exp_bits") per exponent width beside their theory line (the binade noise model of
    ``metrics.float_sine_sqnr_theory_db``), at the formats' total bits."""
    plt = _pyplot()
    fixed = [row for row in rows if "exp_bits" not in row]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if fixed:
        bits = [row["bits"] for row in fixed]
        ax.plot(bits, [row["theory_db"] for row in fixed], "k--", label="fixed point: theory 6.02*b + 1.76")
        ax.plot(bits, [row["sqnr_db"] for row in fixed], "ko", markersize=4, label="fixed point: measured")
    for exp_bits in sorted({row["exp_bits"] for row in rows if "exp_bits" in row}):
        chosen = sorted((row for row in rows if row.get("exp_bits") == exp_bits), key=lambda row: row["bits"])
        bits = [row["bits"] for row in chosen]
        line, = ax.plot(bits, [row["theory_db"] for row in chosen], ":", label=f"float E{exp_bits}: theory")
        ax.plot(bits, [row["sqnr_db"] for row in chosen], "s", color=line.get_color(), markersize=4,
                label=f"float E{exp_bits}: measured")
    ax.set_xlabel("bits (fixed point: all bits; float: sign + exponent + mantissa)")
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(f"SQNR vs bits (sine) — {machine}")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def percent_of_peak(records: list[dict], machine: str, path: Path) -> Path:
    """Throughput of each GEMM-like case as % of this machine's measured peak for its instruction class."""
    plt = _pyplot()
    labels = [f"{r['workload']} {r['precision']} {r['backend']}" for r in records]
    fig, ax = plt.subplots(figsize=(10, 0.25 * max(8, len(records)) + 1.5))
    colors = {"i8": "tab:orange", "bf16": "tab:green"}
    ax.barh(range(len(records)), [r["pct_of_peak"] for r in records],
            color=[colors.get(r["precision"], "tab:blue") for r in records])
    ax.set_yticks(range(len(records)), labels, fontsize=6)
    ax.set_xlabel("throughput (% of measured peak: fp32 FMA for f32 in blue, int8 dot for i8 in orange, "
                  "bf16 dot for bf16 in green)")
    ax.set_title(f"Throughput vs peak — {machine}")
    return _save(plt, fig, path)


def pareto_front(points: list[dict]) -> list[dict]:
    """The points no other point beats in both latency (``median_s``, lower) and ``accuracy`` (higher), fastest
    first: each is more accurate than every faster one."""
    front = []
    for point in sorted(points, key=lambda p: (p["median_s"], -p["accuracy"])):
        if not front or point["accuracy"] > front[-1]["accuracy"]:
            front.append(point)
    return front


PRECISION_MARKERS = {"f64": "v", "f32": "o", "bf16": "P", "i16": "^", "a16w8": "D", "i8": "s", "fp8e4m3": "X",
                     "fp8e5m2": "*"}


def tradeoff(panels: list[tuple[str, list[dict]]], title: str, path: Path) -> Path:
    """Test accuracy vs latency (log) of one model, one panel per batch: a point per precision and contender
    (``label``; marker shape = precision, colour = who runs it, area proportional to ``weight_bytes``) and the
    Pareto front (nothing is both faster and more accurate) as a dashed step line."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2.8, 4.4), squeeze=False)
    points_all = [p for _, points in panels for p in points]
    largest = max((p.get("weight_bytes") or 0 for p in points_all), default=0) or 1
    labels = sorted({p["label"] for p in points_all})
    palette = plt.get_cmap("tab20").colors
    colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
    for ax, (name, points) in zip(axes.flat, panels):
        for point in sorted(points, key=lambda p: p["label"]):
            ax.scatter([point["median_s"] * 1e3], [100 * point["accuracy"]], color=colors[point["label"]],
                       s=25 + 400 * (point.get("weight_bytes") or 0) / largest, alpha=0.8, edgecolors="black",
                       linewidths=0.5, marker=PRECISION_MARKERS.get(point.get("precision"), "o"), label=point["label"])
        front = pareto_front(points)
        if front:
            ax.step([p["median_s"] * 1e3 for p in front], [100 * p["accuracy"] for p in front], where="post",
                    color="black", linewidth=0.9, linestyle="--", label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("median latency of one forward (ms, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(name, fontsize=9)
    handles, names = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(names, handles))
    for ax in list(axes.flat)[1:]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    legend = fig.legend(list(seen.values()), list(seen), fontsize=7, loc="center right", markerscale=0.6)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])
    fig.suptitle(f"{title} (marker area: weight bytes)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.7 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _task_grid(plt, n_tasks, width=4.2, height=3.4):
    columns = min(3, n_tasks)
    rows = -(-n_tasks // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[n_tasks:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def accuracy_vs_bits(points: list[dict], machine: str, path: Path) -> Path:
    """Per task: test accuracy vs bits (weights = activations = b) for the defaults, each variant and the
    float-format curves (dashed: total bits of the float format)."""
    plt = _pyplot()
    task_names = sorted({p["task"] for p in points})
    fig, axes = _task_grid(plt, len(task_names))
    for ax, task in zip(axes, task_names):
        mine = [p for p in points if p["task"] == task]
        diagonal = [p for p in mine if p["variant"] == "default" and p["weight_bits"] == p["activation_bits"]]
        curves = {"default": diagonal}
        for p in mine:
            if p["variant"] != "default":
                curves.setdefault(p["variant"], []).append(p)
        for variant, chosen in curves.items():
            chosen = sorted(chosen, key=lambda p: p["weight_bits"])
            if chosen:
                ax.plot([p["weight_bits"] for p in chosen], [100 * p["accuracy"] for p in chosen],
                        "s--" if variant.startswith("float") else "o-", markersize=3, label=variant)
        ax.axhline(100 * mine[0]["float64_accuracy"], color="black", linestyle="--", linewidth=0.8, label="float64")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("bits (weights = activations)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=6)
    fig.suptitle(f"Accuracy vs bit width — {machine}", fontsize=10)
    return _save(plt, fig, path)


def bits_heatmap(points: list[dict], machine: str, path: Path) -> Path:
    """Per task: test accuracy (%) over the weight-bits x activation-bits grid (default settings)."""
    plt = _pyplot()
    grid = [p for p in points if p["variant"] == "default"]
    task_names = sorted({p["task"] for p in grid})
    cells = max(len({p["weight_bits"] for p in grid}), len({p["activation_bits"] for p in grid}))
    side = max(3.8, 0.42 * cells + 1.4)
    fig, axes = _task_grid(plt, len(task_names), width=side + 1.0, height=side)
    for ax, task in zip(axes, task_names):
        mine = [p for p in grid if p["task"] == task]
        w_bits = sorted({p["weight_bits"] for p in mine})
        a_bits = sorted({p["activation_bits"] for p in mine})
        table = [[math.nan] * len(a_bits) for _ in w_bits]
        for p in mine:
            table[w_bits.index(p["weight_bits"])][a_bits.index(p["activation_bits"])] = 100 * p["accuracy"]
        image = ax.imshow(table, origin="lower", vmin=0, vmax=100, cmap="viridis", aspect="auto")
        size = 7 if cells > 8 else 8
        for i, row in enumerate(table):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=size,
                            color="white" if value < 60 else "black")
        ax.set_xticks(range(len(a_bits)), a_bits, fontsize=7)
        ax.set_yticks(range(len(w_bits)), w_bits, fontsize=7)
        ax.set_xlabel("activation bits")
        ax.set_ylabel("weight bits")
        ax.set_title(task, fontsize=9)
        fig.colorbar(image, ax=ax, label="test accuracy (%)")
    fig.suptitle(f"Accuracy over weight x activation bits — {machine}", fontsize=10)
    return _save(plt, fig, path)
