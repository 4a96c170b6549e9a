"""Single-thread pinning of BLAS, OpenMP and Numba, and a record of what was set.

Measurements are single thread by default so that int and float kernels are compared on
one core.  Environment variables only take effect in libraries loaded afterwards, so
``pin_environment`` runs before numpy/numba are imported (the CLI calls it first);
``pin_threads`` then limits already-loaded pools through threadpoolctl and Numba.
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
    """Set every thread-count variable but Numba's to ``threads`` unless the user already set it."""
    for name in THREAD_VARIABLES:
        if name != "NUMBA_NUM_THREADS":
            os.environ.setdefault(name, str(threads))


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


def thread_settings() -> dict:
    """What the process runs with: environment variables, Numba's thread count, BLAS pools."""
    settings = {"env": {name: os.environ.get(name) for name in THREAD_VARIABLES}}
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
