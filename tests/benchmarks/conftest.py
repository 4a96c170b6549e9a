"""pytest-benchmark suite setup.

``pytest --benchmark-only`` times the real shapes of ``fixedpoint.bench.workloads`` (the
default ``fxbench run`` set, single thread).  Any other run (plain ``pytest``) executes
every benchmark body once on tiny shapes, untimed, so CI checks the bodies fast.
"""
import pytest

from fixedpoint.bench import catalog, classes, contenders, model_workloads, workloads
from fixedpoint.bench.threads import pin_threads

TINY_TASKS = ("digits-mlp", "mnist1d-cnn")
TINY_SHAPES = {"linear": [(2, 16, 8)], "conv1d": [(2, 8, 4, 4, 3)], "conv2d": [(1, 5, 5, 2, 4, 3)]}


def timing_enabled(config) -> bool:
    return bool(config.getoption("benchmark_only", False))


def dot_params(config):
    """``catalog.Spec`` of every dot workload: numpy rows first in each group, then fxbench's backends, the naive
    loop and every installed contender."""
    shapes = workloads.FULL_SHAPES if timing_enabled(config) else TINY_SHAPES
    params = []
    for op, dims_list in shapes.items():
        for dims in dims_list:
            if op == "linear":
                params += [catalog.Spec("dot", op, dims, p, workloads.NUMPY) for p in ("f32", "f64")]
            params += [catalog.Spec("dot", op, dims, p, b) for p in workloads.KERNEL_PRECISIONS
                       for b in workloads.timed_backends()]
            if op == "linear":
                params.append(catalog.Spec("naive", op, dims, "i8", workloads.NAIVE))
            params += [catalog.Spec("contender", op, dims, c.precision, c.backend) for c in contenders.KERNEL_CONTENDERS
                       if op in c.ops and contenders.not_installed(c) is None]
    return params


def model_params(config):
    """(task, batch, precision, backend) of every whole-model workload; tiny: two small tasks at batch 2."""
    from fixedpoint.bench import tasks

    if timing_enabled(config):
        task_names, batches = tasks.names(), model_workloads.BATCHES
    else:
        task_names, batches = TINY_TASKS, (2,)
    params = []
    for task in task_names:
        for batch in batches:
            for precision in workloads.PRECISIONS:
                is_float = precision in model_workloads.FLOAT_DTYPES
                backends = [workloads.NUMPY] if is_float else workloads.timed_backends()
                params += [(task, batch, precision, backend) for backend in backends]
            params += [(task, batch, c.precision, c.backend) for c in model_workloads.MODEL_CONTENDERS
                       if classes.missing_library(c.library) is None]
    return params


def pytest_generate_tests(metafunc):
    if "model_workload" in metafunc.fixturenames:
        params = model_params(metafunc.config)
        metafunc.parametrize("model_workload", params, ids=[f"{t}-b{b}-{p}-{be}" for t, b, p, be in params])
    if "dot_workload" in metafunc.fixturenames:
        params = dot_params(metafunc.config)
        metafunc.parametrize("dot_workload", params, ids=[f"{s.op}-{'x'.join(map(str, s.dims))}-{s.precision}-"
                                                          f"{s.backend}" for s in params])


@pytest.fixture(scope="session", autouse=True)
def single_thread():
    limiter = pin_threads(1)
    yield limiter


@pytest.fixture(scope="session")
def numpy_f32_medians():
    """Median seconds of numpy float32 per workload, filled as the suite runs (same session)."""
    return {}


@pytest.fixture
def fx_benchmark(benchmark, request):
    """The benchmark fixture, switched to one untimed call unless --benchmark-only was given."""
    if not timing_enabled(request.config):
        benchmark.disabled = True
    return benchmark
