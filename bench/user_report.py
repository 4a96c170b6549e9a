"""The report section of a `--model` run: the user's model beside onnxruntime, per-layer errors, the SQNR sweep.

Drawn only from the results records (kinds "user_model", "speed" rows with `user_model`, "layer_report",
"sweep" points carrying `sqnr_db`).
"""
from __future__ import annotations

import math

from .verdict import threads_text
from .workloads import PRECISIONS

ONNXRUNTIME = "onnxruntime"


def _number(value):
    if isinstance(value, (int, float)):
        return float(value)
    return float(value) if value in ("inf", "-inf") else None


def _db(value) -> str:
    value = _number(value)
    if value is None:
        return "-"
    return "exact" if math.isinf(value) and value > 0 else f"{value:.1f}"


def _ms(record) -> str:
    return f"{record['median_s'] * 1e3:.3g}" if record else "-"


def _best(rows, precision, onnxruntime: bool):
    chosen = [r for r in rows if r["precision"] == precision and (r["backend"] == ONNXRUNTIME) == onnxruntime]
    return min(chosen, key=lambda r: r["median_s"]) if chosen else None


def lines(records) -> list[str]:
    """Markdown lines of every user model in `records` (none when the run measured no --model)."""
    out = []
    for info in [r for r in records if r.get("kind") == "user_model"]:
        out += _header(info)
        speed = [r for r in records if r.get("kind") == "speed" and r.get("user_model") and r["task"] == info["name"]]
        if speed:
            out += _latency_table(speed, info)
        for report in [r for r in records if r.get("kind") == "layer_report" and r["model"] == info["name"]]:
            out += _layer_table(report)
        points = [r for r in records if r.get("kind") == "sweep" and r.get("task") == info["name"]
                  and r.get("variant") == "default" and "sqnr_db" in r]
        if points:
            out += _sweep_table(points)
    return out


def _header(info) -> list[str]:
    calib = info.get("calibration_samples")
    data = (f"{calib} calibration samples" if calib else "no calibration samples (calibration needs sample inputs: "
            "--calib FILE.npy; the integer and onnxruntime int8 rows are not measured)")
    test = info.get("test_samples")
    evaluation = (f"errors on the {test} test samples" if test else "errors on the calibration samples")
    labels = ", accuracy from their labels" if info.get("labels") else ", no labels (no accuracy)"
    shape = "x".join(str(d) for d in info.get("input_shape", []))
    return [f"### Your model: {info['name']}", "",
            f"`{info['path']}`, one sample {shape}; {data}; {evaluation}{labels if test else ''}.", ""]


def _latency_table(speed, info) -> list[str]:
    batches = sorted({r["batch"] for r in speed})
    rows = [(p, False) for p in PRECISIONS] + [("f32", True), ("i8", True)]
    head = ("| row | " + " | ".join(f"batch {b} ms" for b in batches)
            + " | SQNR vs f64 dB | test accuracy % | weight bytes |")
    out = [f"Median latency of one forward pass on {threads_text(speed)} (fxbench: the fastest backend of each "
           "precision), with the error of its outputs against the float64 model.", "", head,
           "|---" * (len(batches) + 4) + "|"]
    for precision, onnxruntime in rows:
        per_batch = [_best([r for r in speed if r["batch"] == b], precision, onnxruntime) for b in batches]
        if not any(per_batch):
            continue
        last = next(r for r in reversed(per_batch) if r)
        name = f"onnxruntime {'float32' if precision == 'f32' else 'int8 (static, QDQ)'}" if onnxruntime else \
            f"{last.get('quantized_as', precision)} ({last['backend']})"
        accuracy = last.get("accuracy")
        out.append(f"| {name} | " + " | ".join(_ms(r) for r in per_batch)
                   + f" | {_db(last.get('sqnr_db'))} | {'-' if accuracy is None else f'{100 * accuracy:.1f}'} "
                   f"| {last['weight_bytes']} |")
    out += ["", *_comparison(speed, batches), ""]
    return out


def _comparison(speed, batches) -> list[str]:
    """One sentence per batch: fxbench i8 and f32 against the onnxruntime sessions."""
    sentences = []
    for batch in batches:
        mine = [r for r in speed if r["batch"] == batch]
        i8, f32 = _best(mine, "i8", False), _best(mine, "f32", False)
        ort_i8, ort_f32 = _best(mine, "i8", True), _best(mine, "f32", True)
        parts = []
        if i8 and ort_i8:
            parts.append(f"fxbench i8 runs at {ort_i8['median_s'] / i8['median_s']:.2f}x the speed of onnxruntime "
                         "int8")
        if f32 and ort_f32:
            parts.append(f"numpy f32 at {ort_f32['median_s'] / f32['median_s']:.2f}x that of onnxruntime float32")
        if parts:
            sentences.append(f"At batch {batch}, " + "; ".join(parts) + " (> 1: fxbench faster).")
    return [" ".join(sentences)] if sentences else []


def _layer_table(report) -> list[str]:
    out = [f"#### Per-layer error, {report['precision']} on {report['backend']} ({report['samples']} "
           f"{report['source']} samples)", "",
           "Measured: SQNR of the layer's dequantized integer output against the float64 model's activation on "
           "the same input (errors accumulate down the table); predicted: the quantization-noise model "
           "(`fixedpoint.nn.noise`). Saturated: output elements clipped in this run (and biases at conversion).", "",
           "| layer | output format | saturated | SQNR dB | predicted dB |", "|---" * 5 + "|"]
    for row in report["rows"]:
        saturated = f"{row['saturated']}/{row['total']}"
        if row.get("bias_saturated"):
            saturated += f", bias {row['bias_saturated']}"
        out.append(f"| {row['layer']} | {row['output']} | {saturated} | {_db(row['sqnr_db'])} "
                   f"| {_db(row['predicted_sqnr_db'])} |")
    return out + [""]


def _sweep_table(points) -> list[str]:
    weights = sorted({p["weight_bits"] for p in points})
    activations = sorted({p["activation_bits"] for p in points})
    grid = {(p["weight_bits"], p["activation_bits"]): p["sqnr_db"] for p in points}
    out = [f"#### SQNR of the outputs vs float64 (dB) over weight x activation bits ({points[0]['n_test']} "
           f"{points[0].get('samples', 'test')} samples)", "",
           "| weight bits \\ activation bits | " + " | ".join(str(a) for a in activations) + " |",
           "|---" * (len(activations) + 1) + "|"]
    for w in weights:
        out.append(f"| {w} | " + " | ".join(_db(grid.get((w, a))) for a in activations) + " |")
    return out + [""]
