"""Runs workloads into a results file: time each case (median, single thread), add GOPS, ratio vs numpy f32, errors."""
from __future__ import annotations

import resource
import tracemalloc

import numpy as np

from . import metrics, model_workloads, sweeps, workloads
from .timing import measure


def sqnr_sweep(bits_range=range(2, 17), n: int = 4096) -> list[dict]:
    """SQNR of a full-scale sine quantized to each bit width, beside 6.02*b + 1.76 dB; then the same sine
    (amplitude 1) rounded to the float formats of each total width of the sweep's families (E4, E5, E8
    exponent bits, round half to even), beside ``metrics.float_sine_sqnr_theory_db``."""
    from fixedpoint import kernels

    signal = np.sin(2 * np.pi * 0.1234567 * np.arange(n))
    rows = []
    for bits in bits_range:
        frac = bits - 1
        full_scale = signal * (1 - 2.0 ** -frac)  # amplitude qmax * LSB: saturation never clips
        raw, _ = kernels.quantize(full_scale, frac, bits)
        rows.append({"kind": "sqnr_sine", "bits": bits,
                     "sqnr_db": metrics.sqnr_db(full_scale, raw.astype(np.float64) / 2.0 ** frac),
                     "theory_db": metrics.sine_sqnr_theory_db(bits)})
    from fixedpoint import quantize_float

    for family in sweeps.FLOAT_FAMILIES:
        for bits in bits_range:
            fmt = sweeps.float_family_format(family, bits)
            if fmt is None:
                continue
            rows.append({"kind": "sqnr_sine", "bits": bits, "format": str(fmt), "exp_bits": fmt.exp_bits,
                         "sqnr_db": metrics.sqnr_db(signal, quantize_float(signal, fmt)),
                         "theory_db": metrics.float_sine_sqnr_theory_db(fmt.man_bits, fmt.emin)})
    return rows


# which measured peak (context "peak_gops") bounds each precision's instruction class
PEAK_CLASS = {"f32": "fp32_fma", "i8": "int8_dot", "bf16": "bf16_dot"}


def allocation_peak_bytes(function) -> int:
    """tracemalloc's peak of Python/numpy allocations during one call."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def case_record(case, timing, peaks=None) -> dict:
    """The JSON record of one timed case (``peaks``: GOPS per instruction class, for % of peak)."""
    record = {"kind": "speed", "op": case.op, "shape": case.shape, "workload": case.workload,
              "precision": case.precision, "backend": case.backend, "timing": timing.as_dict(),
              "median_s": timing.median, "gops": metrics.gops(case.ops, timing.median),
              "weight_bytes": case.weight_bytes, "activation_bytes": case.activation_bytes,
              "allocation_peak_bytes": allocation_peak_bytes(case.call), **case.extra}
    peak = (peaks or {}).get(PEAK_CLASS.get(case.precision))
    if peak and case.op in ("linear", "conv1d", "conv2d"):
        record["pct_of_peak"] = 100.0 * record["gops"] / peak
    if case.reference is not None:
        approx = case.decode(case.call())
        record["sqnr_db"] = metrics.sqnr_db(case.reference, approx)
        record["relative_rms"] = metrics.relative_rms(case.reference, approx)
        if case.lsb is not None:
            record["max_error_lsb"] = metrics.max_error_lsb(case.reference, approx, case.lsb)
        record["predicted_sqnr_db"] = case.predicted_sqnr_db
    return record


def add_ratios(records: list[dict]) -> None:
    """ratio_vs_numpy_f32 = numpy float32 median / this median, per workload (same run)."""
    base = {r["workload"]: r["median_s"] for r in records
            if r.get("kind") == "speed" and r["backend"] == workloads.NUMPY and r["precision"] == "f32"}
    for r in records:
        if r.get("kind") == "speed" and r["workload"] in base:
            r["ratio_vs_numpy_f32"] = base[r["workload"]] / r["median_s"]


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def missing_sections() -> list[dict]:
    """Sections that need ``fixedpoint.nn.quantize_model``, each with the reason when it is absent."""
    _, reason = model_workloads.quantize_model_function()
    if reason is None:
        return []
    return [{"kind": "not_available", "section": name, "reason": reason}
            for name in ("whole-model integer rows", "integer task accuracy", "bit-width sweeps")]


def failure_record(label: str, exc: Exception) -> dict:
    """A case that could not be built or measured: kept in the results and listed in the report."""
    return {"kind": "failed", "label": label, "reason": f"{exc.__class__.__name__}: {exc}"}


def _time_cases(writer, factories, *, quick, progress, desc, keep_going=False) -> None:
    """Time each case; with ``keep_going`` a case that raises becomes a "failed" record instead of stopping."""
    from tqdm import tqdm

    min_time = 0.05 if quick else 0.2
    for label, build in tqdm(factories, desc=desc, unit="case", disable=not progress):
        try:
            case = build()
            timing = measure(case.call, min_time=min_time, max_time=2.0)
            record = case_record(case, timing, writer.data["context"].get("peak_gops"))
        except Exception as exc:
            if not keep_going:
                raise
            record = failure_record(label, exc)
        writer.add(record)


def run(writer, *, quick: bool, backends=None, precisions=None, task_names=None, sweep=True,
        progress=True) -> None:
    """Time every default case, then the whole-model cases and the small sweep, into ``writer``.

    Records are written as they are measured.  Without ``quantize_model`` the integer model rows and
    the sweep are replaced by "not available" records; a model case or sweep point that raises is
    recorded as "failed" and the run goes on.
    """
    from fixedpoint.bench import tasks

    backends = list(backends) if backends else workloads.timed_backends()
    precisions = list(precisions) if precisions else list(workloads.PRECISIONS)
    task_names = list(task_names) if task_names is not None else list(tasks.names())
    _time_cases(writer, workloads.all_cases(quick=quick, backends=backends, precisions=precisions),
                quick=quick, progress=progress, desc="kernels")
    missing = missing_sections()
    model_precisions = [p for p in precisions if not missing or p in model_workloads.FLOAT_DTYPES]
    _time_cases(writer, model_workloads.model_factories(task_names, backends, model_precisions),
                quick=quick, progress=progress, desc="models", keep_going=True)
    if sweep and not missing:
        bits = sweeps.QUICK_BITS if quick else sweeps.RUN_BITS
        variants = () if quick else tuple(sweeps.VARIANTS)
        points = sweeps.sweep_points(task_names, bits, bits, variants)
        sweeps.run_sweep(points, writer.add, n_test=sweeps.RUN_TEST_SUBSET, backend=backends[0] if backends else None,
                         progress=progress, keep_going=True)
    for row in sqnr_sweep():
        writer.add(row)
    for row in missing:
        writer.add(row)
    add_ratios(writer.data["records"])
    writer.add({"kind": "memory", "peak_rss_bytes": peak_rss_bytes()})
