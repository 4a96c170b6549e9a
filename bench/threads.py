"""The thread count of a run: BLAS, OpenMP, Numba, the contenders' sessions and fxbench's own kernels pinned to it.

Measurements run at one thread by default so that int and float kernels are compared on one core;
``fxbench run --threads N`` times every row at N.  Environment variables only take effect in libraries
loaded afterwards, so ``pin_environment`` runs before numpy/numba are imported (the CLI calls it right
after reading its arguments, before anything is built); ``pin_threads`` then limits already-loaded pools
through threadpoolctl and Numba.  ``pin_environment`` also sets ``$FXBENCH_THREADS``, the count fxbench's
prepared layers take when none is passed, the converted models' layers among them: that variable is the one
count of the process, which ``timed_threads`` reads for the contenders' sessions (onnxruntime, torch) and the
records, and which a worker process inherits.
NUMBA_NUM_THREADS is recorded but never set here: once Numba is imported, changing it
makes Numba's next compilation fail ("Cannot set NUMBA_NUM_THREADS ... once the threads
have been launched"); ``numba.set_num_threads`` limits Numba instead.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left alone: they select kernels, not threads.
"""
from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def pin_environment(threads: int = 1) -> None:
    """Set every library's thread-count variable but Numba's to ``threads`` unless the user already set it (the
    pools they size are limited to ``threads`` by ``pin_threads`` either way), and ``$FXBENCH_THREADS`` to
    ``threads`` (nothing else limits fxbench's kernels)."""
    for name in THREAD_VARIABLES:
        if name != "NUMBA_NUM_THREADS":
            os.environ.setdefault(name, str(threads))
    from fixedpoint.kernels.args import THREADS_VARIABLE   # loads numpy: only after the variables above

    os.environ[THREADS_VARIABLE] = str(threads)


def pin_threads(threads: int = 1):
    """Limit loaded BLAS/OpenMP pools and Numba to ``threads``; returns the threadpoolctl limiter (or None).

    Keep the returned object alive for as long as the limit should hold.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl only the environment variables pin the pools
        limiter = None
    else:
        limiter = threadpool_limits(limits=threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    return limiter


def timed_threads() -> int:
    """The thread count of this process's measurements: ``$FXBENCH_THREADS`` as fxbench's kernels read it
    (1 when it is not set)."""
    from fixedpoint.kernels.args import threads_arg

    return threads_arg(None)


def thread_settings() -> dict:
    """What the process runs with: the timed count, environment variables, Numba's thread count, BLAS pools."""
    from fixedpoint.kernels.args import THREADS_VARIABLE

    names = (*THREAD_VARIABLES, THREADS_VARIABLE)
    settings = {"count": timed_threads(), "env": {name: os.environ.get(name) for name in names}}
    try:
        import numba

        settings["numba_threads"] = numba.get_num_threads()
    except ImportError:
        settings["numba_threads"] = None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        settings["threadpools"] = "threadpoolctl is not installed"
        return settings
    settings["threadpools"] = [
        {key: pool.get(key) for key in ("user_api", "internal_api", "prefix", "version", "num_threads",
                                        "architecture", "threading_layer")}
        for pool in threadpool_info()
    ]
    return settings
