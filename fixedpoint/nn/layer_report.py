"""Per-layer error of a converted model: measured SQNR of its integer activations against the float64 model's,
beside the noise model's prediction (`noise`) and the saturation counts."""

from __future__ import annotations

import math

import numpy as np

from .. import dequantize
from .fixed_layers import FixedResidual, Run
from .noise import NoiseModel

COLUMNS = ("layer", "output", "saturated", "total", "bias_saturated", "sqnr_db", "predicted_sqnr_db")


class LayerReport:
    """Rows (dicts with `COLUMNS`) of `FixedModel.layer_report`; `str()` gives the table.

    "saturated" / "total" count the layer's output elements that saturated in this run; "bias_saturated" the
    bias entries of a Linear/Conv saturated at conversion (None for other layers), which the noise model does
    not foresee either.
    """

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def __str__(self) -> str:
        header = ("layer", "output", "saturated", "SQNR dB", "predicted dB")
        table = [header] + [(row["layer"], row["output"], _saturated_text(row),
                             _db_text(row["sqnr_db"]), _db_text(row["predicted_sqnr_db"])) for row in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        return "\n".join("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in
                                   enumerate(zip(line, widths))).rstrip() for line in table)

    __repr__ = __str__


def _saturated_text(row) -> str:
    text = f"{row['saturated']}/{row['total']}"
    return text + (f", bias {row['bias_saturated']}" if row["bias_saturated"] else "")


def _db_text(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else ("exact" if value > 0 else "-inf")


def _db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def _row(name, fmt, run: Run, raw, ref, error, bias_saturated=None) -> dict:
    """Measured and predicted SQNR over the finite reference elements (-inf padding is not a value)."""
    finite = np.isfinite(ref)
    ref_values = ref[finite]
    signal = float(np.sum(ref_values ** 2))
    measured = float(np.sum((ref_values - dequantize(raw, fmt)[finite]) ** 2))
    stats = run.stats.get(name)
    return {"layer": name, "output": str(fmt), "saturated": stats.overflowed if stats else 0,
            "total": stats.total if stats else 0, "bias_saturated": bias_saturated, "sqnr_db": _db(signal, measured),
            "predicted_sqnr_db": _db(signal, float(np.sum(error[finite] ** 2)))}


def layer_report(model, x, seed: int = 0) -> LayerReport:
    """Run `model` (a FixedModel), its float64 source layers and the noise model (`seed`) side by side on `x`
    (one batch, unchunked)."""
    run, noise = Run(model.backend, model.rounding, model.seed), NoiseModel(seed)
    ref = np.asarray(x, dtype=np.float64)
    raw = model.input_layer.forward(x, run)
    error = dequantize(raw, model.input_layer.out_fmt) - ref      # the input quantizer's own error (see noise)
    rows = [_row(model.input_layer.name, model.input_layer.out_fmt, run, raw, ref, error)]
    _walk(model.layers, raw, ref, error, run, noise, rows)
    return LayerReport(rows)


def _walk(layers, raw, ref, error, run, noise, rows):
    for layer in layers:
        if isinstance(layer, FixedResidual):
            body_raw, body_ref, body_error = _walk(layer.body, raw, ref, error, run, noise, rows)
            error = noise.residual(layer, error, body_error, ref, body_ref)
            raw, ref = layer.join(raw, body_raw, run), ref + body_ref
            rows.append(_row(layer.add_name, layer.out_fmt, run, raw, ref, error))
            continue
        out_ref = ref
        for source in layer.source:
            out_ref = source(out_ref)
        error = noise.propagate(layer, error, ref, out_ref)
        raw, ref = layer.forward(raw, run), out_ref
        rows.append(_row(layer.name, layer.out_fmt, run, raw, ref, error, getattr(layer, "bias_saturated", None)))
    return raw, ref, error
