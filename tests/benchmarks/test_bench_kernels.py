"""Speed suite of the kernel workloads: one group per workload, precisions and backends side by side.

extra_info: GOPS, ratio vs numpy float32 (same session), weight/activation bytes, SQNR vs
float64 and the noise model's prediction.
"""
import numpy as np

from fixedpoint.bench import metrics, runner, workloads


def _fill_extra_info(benchmark, case, output, numpy_f32_medians):
    info = {"precision": case.precision, "backend": case.backend, "weight_bytes": case.weight_bytes,
            "activation_bytes": case.activation_bytes}
    if case.reference is not None:
        approx = case.decode(output)
        info["sqnr_db"] = metrics.sqnr_db(case.reference, approx)
        info["relative_rms"] = metrics.relative_rms(case.reference, approx)
        info["predicted_sqnr_db"] = case.predicted_sqnr_db
    if benchmark.stats is not None and benchmark.enabled:
        median = benchmark.stats.stats.median
        info["gops"] = metrics.gops(case.ops, median)
        if case.backend == workloads.NUMPY and case.precision == "f32":
            numpy_f32_medians[case.workload] = median
        if case.workload in numpy_f32_medians:
            info["ratio_vs_numpy_f32"] = numpy_f32_medians[case.workload] / median
    benchmark.extra_info.update(info)


def test_dot(fx_benchmark, dot_workload, numpy_f32_medians):
    case = dot_workload.build()
    fx_benchmark.group = case.workload
    check = runner.check_against_reference(case)  # a contender's result is fxbench's (int8 exactly)
    case.call()  # warm-up: JIT compile never timed
    output = fx_benchmark(case.call)
    assert np.all(np.isfinite(case.decode(output)))
    if check is not None:
        fx_benchmark.extra_info["reference_check"] = check["reference_check"]
    _fill_extra_info(fx_benchmark, case, output, numpy_f32_medians)


def test_quantize(fx_benchmark, numpy_f32_medians, request):
    n = 1_000_000 if request.config.getoption("benchmark_only", False) else 64
    case = workloads.quantize_case(n, "i8", workloads.timed_backends()[0])
    fx_benchmark.group = case.workload
    case.call()
    output = fx_benchmark(case.call)
    _fill_extra_info(fx_benchmark, case, output, numpy_f32_medians)
    assert metrics.sqnr_db(case.reference, case.decode(output)) > 25
