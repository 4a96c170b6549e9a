"""Fixtures for tests that run the CLI: ``restore_thread_variables`` is autouse (importing it into a test module
activates it there); ``restore_pools`` is asked for by the tests that run at more than one thread."""
import os

import pytest

from fixedpoint.bench.threads import THREAD_VARIABLES
from fixedpoint.kernels.args import THREADS_VARIABLE


@pytest.fixture(autouse=True)
def restore_thread_variables(monkeypatch):
    """The CLI pins thread variables (and fxbench's own, $FXBENCH_THREADS) in os.environ; undo that after each
    test."""
    for name in (*THREAD_VARIABLES, THREADS_VARIABLE):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def restore_pools():
    """A run pins this process's BLAS/OpenMP pools and Numba; give them back their earlier counts afterwards."""
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    pools, numba_threads = threadpool_info(), numba.get_num_threads()
    yield
    threadpool_limits(limits=pools)
    numba.set_num_threads(numba_threads)
