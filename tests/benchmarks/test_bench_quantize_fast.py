"""quantize float32 -> int8/int16 (1e6 elements, half_even, saturate) on each fast backend next to
the numpy expression ``clip(rint(x * s)).astype(int)``, in one pytest-benchmark group per
precision so the ratio is measured in the same run (issue 3 target: C >= 3x numpy for int8).

extra_info["ratio_vs_numpy"] = numpy median / this row's median (numpy rows run first).
"""
import numpy as np
import pytest

from fixedpoint.bench import workloads

N_TIMED = 1_000_000
N_UNTIMED = 100


def _params():
    return [(precision, backend) for precision in ("i8", "i16")
            for backend in [workloads.NUMPY] + workloads.timed_backends()]


@pytest.fixture(scope="module")
def numpy_medians():
    """Median seconds of the numpy row per precision, filled as the module runs."""
    return {}


@pytest.mark.parametrize("precision,backend", _params(), ids=[f"{p}-{b}" for p, b in _params()])
def test_quantize_vs_numpy(fx_benchmark, numpy_medians, request, precision, backend):
    n = N_TIMED if request.config.getoption("benchmark_only", False) else N_UNTIMED
    case = workloads.quantize_case(n, precision, backend)
    fx_benchmark.group = f"quantize-vs-numpy-{precision}-{n}"
    expected = workloads.quantize_case(n, precision, workloads.NUMPY).call()
    case.call()  # warm-up: JIT compile never timed
    output = fx_benchmark(case.call)
    # same inputs, same rounding (half_even) and saturation: identical integers
    np.testing.assert_array_equal(output, expected)
    if fx_benchmark.stats is not None and fx_benchmark.enabled:
        median = fx_benchmark.stats.stats.median
        if backend == workloads.NUMPY:
            numpy_medians[precision] = median
        if precision in numpy_medians:
            fx_benchmark.extra_info["ratio_vs_numpy"] = numpy_medians[precision] / median
