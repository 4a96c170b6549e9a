"""Accuracy vs bit width: each task's model converted at many weight / activation widths and variants.

Two kinds of points, each one conversion by ``fixedpoint.nn.quantize_model`` (calibrated on the task's
calibration set) and one evaluation on the task's test samples (optionally a fixed subset):

- the grid: every (weight bits, activation bits) pair with the defaults (per-channel, pow2, half_even);
- the variant curves, over bits b used for weights and activations alike: per-tensor instead of
  per-channel, multiplier instead of pow2 scales, floor or stochastic (seed 0) instead of half_even
  rounding, each changing one setting of the defaults;
- the float-format curves at the same total widths b: weights and activations in a float format of
  b bits (sign, E exponent bits, b - 1 - E mantissa bits) for E = 4 (OCP-style finite formats: at 8
  bits E4M3FN), 5 (IEEE style: E5M2 at 8 bits, fp16 at 16) and 8 (bf16 at 16 bits), round half to even,
  no prescale; widths too narrow for a family's exponent are left out.

The integer container follows the widths: int8 when both fit 8 bits, int16 activations with int8
weights (a16w8) when only the weights do, int16 otherwise.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from .model_workloads import quantize_model_function

DEFAULTS = {"per_channel": True, "scale": "pow2", "rounding": "half_even"}
VARIANTS = {"per-tensor": {"per_channel": False}, "multiplier": {"scale": "multiplier"},
            "floor": {"rounding": "floor"}, "stochastic": {"rounding": "stochastic"}}
# float-format curves: variant name -> (exponent bits, finite_only)
FLOAT_FAMILIES = {"float E4": (4, True), "float E5": (5, False), "float E8": (8, False)}
MIN_BITS, MAX_BITS = 2, 16
# the smaller sweep inside ``fxbench run`` (the full grid is ``fxbench sweep``)
RUN_BITS = (2, 3, 4, 6, 8, 12, 16)
QUICK_BITS = (3, 4, 8)
RUN_TEST_SUBSET = 500


@dataclass(frozen=True)
class SweepPoint:
    """One conversion: widths and settings; ``variant`` names the changed setting ("default" for the grid)."""

    task: str
    weight_bits: int
    activation_bits: int
    variant: str = "default"
    per_channel: bool = True
    scale: str = "pow2"
    rounding: str = "half_even"
    float_format: str | None = None   # the text of the float format of a float-format point


def container_precision(weight_bits: int, activation_bits: int) -> str:
    """The integer precision whose containers hold the given widths."""
    if weight_bits <= 8 and activation_bits <= 8:
        return "i8"
    return "a16w8" if weight_bits <= 8 else "i16"


def parse_bits(text: str, argument: str) -> list[int]:
    """"4", "2-16" or "2,4,8" -> sorted widths; ValueError naming ``argument`` outside 2..16."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            values = list(range(low, high + 1))
        else:
            values = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{argument} takes N, A-B or A,B,C with widths {MIN_BITS}..{MAX_BITS}, got {text!r}") from None
    if not values or min(values) < MIN_BITS or max(values) > MAX_BITS:
        raise ValueError(f"{argument} widths must lie in {MIN_BITS}..{MAX_BITS}, got {text!r}")
    return sorted(set(values))


def float_family_format(family: str, bits: int):
    """The float format of ``bits`` total bits in ``family`` (a key of FLOAT_FAMILIES), or None when too narrow."""
    from fixedpoint import FloatFormat

    exp_bits, finite_only = FLOAT_FAMILIES[family]
    man_bits = bits - 1 - exp_bits
    return FloatFormat(exp_bits, man_bits, finite_only=finite_only) if man_bits >= 0 else None


def sweep_points(task_names, weight_bits, activation_bits, variants=tuple(VARIANTS),
                 float_families=tuple(FLOAT_FAMILIES)) -> list[SweepPoint]:
    """The grid (weight_bits x activation_bits), the variant curves and the float-format curves over the
    weight widths, per task."""
    unknown = [v for v in variants if v not in VARIANTS] + [f for f in float_families if f not in FLOAT_FAMILIES]
    if unknown:
        raise ValueError(f"unknown sweep variant {unknown[0]!r}; accepted: {', '.join(VARIANTS)}, "
                         f"{', '.join(FLOAT_FAMILIES)}")
    points = []
    for task in task_names:
        points += [SweepPoint(task, w, a) for w in weight_bits for a in activation_bits]
        for variant in variants:
            settings = {**DEFAULTS, **VARIANTS[variant]}
            points += [SweepPoint(task, b, b, variant, **settings) for b in weight_bits]
        for family in float_families:
            points += [SweepPoint(task, b, b, family, float_format=str(fmt)) for b in weight_bits
                       if (fmt := float_family_format(family, b)) is not None]
    return points


def _test_subset(task, n_test):
    """The task's test samples and labels, or a fixed (seed 0) subset of ``n_test`` of them."""
    if n_test is None or n_test >= task.x_test.shape[0]:
        return task.x_test, task.y_test
    index = np.sort(np.random.default_rng(0).permutation(task.x_test.shape[0])[:n_test])
    return task.x_test[index], task.y_test[index]


def _accuracy(model, x, y, batch_size=500) -> float:
    logits = np.concatenate([np.asarray(model(x[i:i + batch_size])) for i in range(0, x.shape[0], batch_size)])
    return float(np.mean(np.argmax(logits, axis=1) == y))


@functools.cache
def float64_accuracy(task_name: str, n_test=None) -> float:
    """Accuracy of the task's float64 model on the same test samples as the sweep points."""
    from fixedpoint.bench import tasks

    task = tasks.get(task_name)
    x, y = _test_subset(task, n_test)
    return _accuracy(lambda v: task.model(np.asarray(v, dtype=np.float64)), x, y)


def evaluate_point(point: SweepPoint, n_test=None, backend=None) -> dict:
    """Convert and evaluate one point; the record adds accuracy, the float64 accuracy and the test size."""
    from fixedpoint.bench import tasks

    quantize_model, reason = quantize_model_function()
    if quantize_model is None:
        raise RuntimeError(reason)
    task = tasks.get(point.task)
    x, y = _test_subset(task, n_test)
    if point.float_format is not None:
        converted = quantize_model(task.model, task.x_calib, point.float_format, rounding=point.rounding,
                                   backend=backend)
    else:
        converted = quantize_model(task.model, task.x_calib,
                                   container_precision(point.weight_bits, point.activation_bits),
                                   weight_bits=point.weight_bits, activation_bits=point.activation_bits,
                                   per_channel=point.per_channel, scale=point.scale, rounding=point.rounding,
                                   seed=0 if point.rounding == "stochastic" else None, backend=backend)
    record = {key: value for key, value in asdict(point).items() if key != "float_format" or value is not None}
    return {"kind": "sweep", **record, "accuracy": _accuracy(converted, x, y),
            "float64_accuracy": float64_accuracy(point.task, n_test),
            "n_test": int(x.shape[0])}


def run_sweep(points, add, *, n_test=None, backend=None, progress=True, keep_going=True) -> None:
    """Evaluate ``points`` in order, passing each record to ``add`` (a tqdm bar counts the points).

    With ``keep_going`` a point whose conversion raises is passed on as a "failed" record.
    """
    from tqdm import tqdm

    for point in tqdm(points, desc="sweep", unit="model", disable=not progress):
        try:
            record = evaluate_point(point, n_test=n_test, backend=backend)
        except Exception as exc:
            if not keep_going:
                raise
            record = {"kind": "failed", "label": f"sweep {point}", "reason": f"{exc.__class__.__name__}: {exc}"}
        add(record)
