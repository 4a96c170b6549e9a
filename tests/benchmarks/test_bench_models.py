"""Speed suite of the whole task models: one group per task and batch, precisions and backends side by side.

extra_info: test accuracy, weight / largest-activation bytes, SQNR of the logits vs the float64 model,
GOPS and the ratio vs the float32 model (same session).
"""
import numpy as np
import pytest

from fixedpoint.bench import metrics, model_workloads, runner, workloads


def test_model(fx_benchmark, model_workload, numpy_f32_medians):
    task, batch, precision, backend = model_workload
    if precision not in model_workloads.FLOAT_DTYPES:
        reason = model_workloads.quantize_model_function()[1]
        if reason is not None:
            pytest.skip(reason)
    if backend in {c.backend for c in model_workloads.MODEL_CONTENDERS}:
        case = model_workloads.contender_case(task, batch, precision, backend)
    else:
        case = model_workloads.model_case(task, batch, precision, backend)
    fx_benchmark.group = case.workload
    runner.check_against_reference(case)  # a contender's session agrees with the float64 model
    case.call()  # warm-up: JIT compile never timed
    output = fx_benchmark(case.call)
    logits = case.decode(output)
    assert logits.shape == case.reference.shape and np.all(np.isfinite(logits))
    info = {"precision": precision, "backend": backend, "accuracy": case.extra["accuracy"],
            "weight_bytes": case.weight_bytes, "activation_bytes": case.activation_bytes,
            "sqnr_db": metrics.sqnr_db(case.reference, logits)}
    if "execution" in case.extra:   # a converted model: "compiled" (one native call per forward) or why not
        info["execution"] = case.extra["execution"]
    if fx_benchmark.stats is not None and fx_benchmark.enabled:
        median = fx_benchmark.stats.stats.median
        info["gops"] = metrics.gops(case.ops, median)
        if backend == workloads.NUMPY and precision == "f32":
            numpy_f32_medians[case.workload] = median
        if case.workload in numpy_f32_medians:
            info["ratio_vs_numpy_f32"] = numpy_f32_medians[case.workload] / median
    fx_benchmark.extra_info.update(info)
