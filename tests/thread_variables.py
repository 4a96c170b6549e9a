"""An autouse fixture for tests that run the CLI: importing it into a test module activates it there."""
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
