"""Runs workloads into a results file: time each case (median, at the run's thread count), add GOPS, ratio vs
numpy f32, errors.

Contenders' rows are checked against fxbench's reference before they are timed; float rows name their BLAS.
"""
from __future__ import annotations

import os
import resource
import tracemalloc

import numpy as np

from . import catalog, classes, metrics, model_workloads, native_blas, sweeps, workloads
from .threads import timed_threads
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


class ReferenceMismatch(ValueError):
    """A contender's result differs from fxbench's reference by more than its tolerance."""


def allocation_peak_bytes(function) -> int:
    """tracemalloc's peak of Python/numpy allocations during one call."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def check_against_reference(case) -> dict | None:
    """For a case with ``expected`` (a contender's row): how its decoded output agrees with fxbench's reference,
    as record fields ("reference_check": "exact" or "within tolerance", the relative RMS and the tolerance);
    ReferenceMismatch when it does not agree.  None for a case without ``expected``."""
    if case.expected is None:
        return None
    got = np.asarray(case.decode(case.call()), dtype=np.float64)
    expected = np.asarray(case.expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ReferenceMismatch(f"output shape {got.shape} differs from fxbench's reference {expected.shape}")
    if not case.tolerance:
        differ = int(np.count_nonzero(got != expected))
        if differ:
            worst = float(np.max(np.abs(got - expected)))
            lsb = f" ({worst / case.lsb:g} LSB)" if case.lsb else ""
            raise ReferenceMismatch(f"{differ} of {got.size} outputs differ from fxbench's reference, by up to "
                                    f"{worst:g}{lsb}; an int8 row must match exactly")
        return {"reference_check": "exact", "reference_error": 0.0, "reference_tolerance": 0.0}
    error = metrics.relative_rms(expected, got)
    if not error <= case.tolerance:
        raise ReferenceMismatch(f"relative RMS {error:.3g} from fxbench's reference exceeds the tolerance "
                                f"{case.tolerance:g}")
    return {"reference_check": "within tolerance", "reference_error": float(error),
            "reference_tolerance": float(case.tolerance)}


def peak_cores(threads: int) -> int:
    """How many cores' peak bounds a row timed at ``threads`` threads: one per thread, at most the logical CPUs."""
    return min(threads, os.cpu_count() or threads)


def case_record(case, timing, peaks=None, check=None) -> dict:
    """The JSON record of one timed case (``peaks``: one core's GOPS per instruction class, for % of peak;
    ``check``: the result of ``check_against_reference``), with the thread count it was timed at.  Float rows
    name the BLAS of the process that measured them."""
    threads = timed_threads()
    record = {"kind": "speed", "op": case.op, "shape": case.shape, "workload": case.workload,
              "precision": case.precision, "backend": case.backend, "threads": threads, "timing": timing.as_dict(),
              "median_s": timing.median, "gops": metrics.gops(case.ops, timing.median),
              "weight_bytes": case.weight_bytes, "activation_bytes": case.activation_bytes,
              "allocation_peak_bytes": allocation_peak_bytes(case.call), **case.extra}
    record.update(check or {})
    if case.precision in classes.FLOAT_PRECISIONS:
        record.update(native_blas.blas_fields())
    peak = (peaks or {}).get(PEAK_CLASS.get(case.precision))
    if peak and case.op in ("linear", "conv1d", "conv2d"):
        record["pct_of_peak"] = 100.0 * record["gops"] / (peak * peak_cores(threads))
    if case.reference is not None:
        approx = case.decode(case.call())
        record["sqnr_db"] = metrics.sqnr_db(case.reference, approx)
        record["relative_rms"] = metrics.relative_rms(case.reference, approx)
        if case.lsb is not None:
            record["max_error_lsb"] = metrics.max_error_lsb(case.reference, approx, case.lsb)
        record["predicted_sqnr_db"] = case.predicted_sqnr_db
    return record


def measure_case(case, *, quick: bool, peaks=None) -> dict:
    """Check a contender's result against fxbench's reference, time the case, and return its record."""
    check = check_against_reference(case)
    timing = measure(case.call, min_time=0.05 if quick else 0.2, max_time=2.0)
    return case_record(case, timing, peaks, check)


def measure_spec(spec, *, quick: bool, peaks=None) -> dict:
    """Build the case of ``spec`` (a ``catalog.Spec``) and measure it."""
    return measure_case(spec.build(), quick=quick, peaks=peaks)


def add_ratios(records: list[dict]) -> None:
    """ratio_vs_numpy_f32 = numpy float32 median / this median, per workload (same run; numpy at the BLAS's own
    core when it was measured there)."""
    base = {}
    for r in sorted((r for r in records if r.get("kind") == "speed" and r["backend"] == workloads.NUMPY
                     and r["precision"] == "f32"), key=lambda r: r.get("blas_setting") == native_blas.NATIVE):
        base[r["workload"]] = r["median_s"]
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


def failure_record(label: str, exc: Exception, spec=None) -> dict:
    """A case that could not be built or measured: kept in the results and listed in the report (with its
    workload, precision and backend when the ``catalog.Spec`` is known, so the report can put it in its cell)."""
    record = {"kind": "failed", "label": label, "reason": f"{exc.__class__.__name__}: {exc}"}
    if spec is not None:
        record.update(workload=spec.workload, op=spec.op, precision=spec.precision, backend=spec.backend)
    return record


def _time_cases(writer, factories, *, quick, progress, desc, keep_going=False) -> None:
    """Time each case (a ``catalog.Spec`` or a (label, builder) pair).  With ``keep_going`` a case that raises
    becomes a "failed" record instead of stopping the run; a contender's row always does."""
    from tqdm import tqdm

    peaks = writer.data["context"].get("peak_gops")
    for item in tqdm(factories, desc=desc, unit="case", disable=not progress):
        spec = item if isinstance(item, catalog.Spec) else None
        label, build = (spec.label, spec.build) if spec else item
        try:
            record = measure_case(build(), quick=quick, peaks=peaks)
        except Exception as exc:
            if not (keep_going or (spec is not None and spec.is_contender)):
                raise
            record = failure_record(label, exc, spec)
        writer.add(record)


def native_float_rows(writer, specs, *, quick: bool, progress: bool = True) -> None:
    """When the environment pins the BLAS core, measure the float rows of ``specs`` again in a worker process
    without the pinning variables (``native_blas``); its records and a "blas_worker" record join ``writer``."""
    if not native_blas.pins():
        return
    floats = [spec for spec in specs if spec.precision in classes.FLOAT_PRECISIONS and spec.kind != "naive"]
    if not floats:
        return
    from tqdm import tqdm

    with tqdm(total=len(floats), desc="float rows, native BLAS core", unit="case", disable=not progress) as bar:
        def add(record):
            writer.add(record)
            bar.update(record.get("kind") != "failed" or record.get("label") != native_blas.WORKER_LABEL)

        summary = native_blas.run_worker(floats, add, quick=quick, peaks=writer.data["context"].get("peak_gops"),
                                         threads=timed_threads())
    writer.add(summary)


def run(writer, *, quick: bool, backends=None, precisions=None, task_names=None, sweep=True,
        progress=True) -> None:
    """Time every default case and contender, then the whole models (fxbench's and the contenders' sessions),
    the float rows again at the BLAS's own core when the environment pins it, and the small sweep.

    Records are written as they are measured; a missing contender is a "not_installed" record.  Without
    ``quantize_model`` fxbench's integer model rows and the sweep are replaced by "not available" records; a
    model case, contender or sweep point that raises is recorded as "failed" and the run goes on.
    """
    from fixedpoint.bench import tasks

    backends = list(backends) if backends else workloads.timed_backends()
    task_names = list(task_names) if task_names is not None else list(tasks.names())
    kernel_specs, missing_kernels = catalog.kernel_plan(quick=quick, backends=backends, precisions=precisions)
    for record in missing_kernels:
        writer.add(record)
    _time_cases(writer, kernel_specs, quick=quick, progress=progress, desc="kernels")
    missing = missing_sections()
    model_specs, missing_models = catalog.model_plan(
        task_names, backends, precisions, fx_precisions=list(model_workloads.FLOAT_DTYPES) if missing else None)
    for record in missing_models:
        writer.add(record)
    _time_cases(writer, model_specs, quick=quick, progress=progress, desc="models", keep_going=True)
    if not missing and "c" in backends:
        writer.add(model_workloads.call_overhead_record())
    native_float_rows(writer, kernel_specs + model_specs, quick=quick, progress=progress)
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
