"""Argument parsing at the edge of the kernel API: every check names the argument and what is accepted.

Strings become :mod:`.modes` enums here, integers become Python ints, arrays become
native-byte-order numeric ndarrays; nothing below this layer parses user input again.
"""
from __future__ import annotations

import operator
import os

import numpy as np

from .modes import Rounding, as_rounding


def as_numeric(value, name: str) -> np.ndarray:
    """``value`` as a native-byte-order integer or float ndarray (bool, complex, object refused)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real integer or float array, got dtype {arr.dtype}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def c_array(value, dtype=None) -> np.ndarray:
    """``value`` as a C-contiguous, aligned array (of ``dtype``): what the backends read through raw pointers.
    A view that is not (Fortran order, strides, an unaligned buffer) is copied."""
    if (isinstance(value, np.ndarray) and (dtype is None or value.dtype == dtype) and value.flags.c_contiguous
            and value.flags.aligned):
        return value            # what np.require returns for it, without its 2 us of argument handling
    return np.require(value, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED"))


def int_arg(value, name: str, minimum: int | None = None) -> int:
    """``value`` as a Python int (anything with ``__index__``; bool refused), at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return int(value)


def pair_arg(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return int_arg(value[0], name, minimum), int_arg(value[1], name, minimum)
    v = int_arg(value, name, minimum)
    return v, v


def bool_arg(value, name: str) -> bool:
    """``value`` as a bool; only ``True``/``False`` (and numpy bools) are accepted."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def axis_arg(axis, ndim: int) -> int:
    """A valid axis of an ``ndim``-dimensional array, normalized to 0..ndim-1."""
    axis = int_arg(axis, "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim


def dtype_arg(value, name: str, accepted: str) -> np.dtype:
    try:
        return np.dtype(value)
    except TypeError:
        raise TypeError(f"{name}={value!r} is not a dtype; accepted: {accepted}") from None


def deterministic(rounding, where: str) -> Rounding:
    """``rounding`` as a :class:`Rounding`, refusing the stochastic modes for ``where``."""
    rounding = as_rounding(rounding)
    if rounding.is_stochastic:
        raise ValueError(f"{where} supports the deterministic roundings only, got {rounding.value!r}")
    return rounding


def generator(rng, rounding: Rounding) -> np.random.Generator | None:
    """A ``numpy.random.Generator`` for the stochastic modes (from a Generator or an int seed); None otherwise."""
    if not rounding.is_stochastic:
        return None
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rounding={rounding.value!r} needs rng= (a numpy.random.Generator or an int seed)")


def channel_param(value, n_channels: int, name: str, valid_range: tuple[int, int], dtype) -> np.ndarray:
    """A scalar or (n_channels,) integer parameter, range-checked, as a (n_channels,) array of ``dtype``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer or an integer array, got {arr.dtype}")
    lo, hi = valid_range
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{int(arr.min())}, {int(arr.max())}]")
    if arr.ndim == 0:
        return np.full(n_channels, int(arr), dtype=dtype)
    if arr.shape != (n_channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_channels},) (one per output channel), "
                         f"got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


THREADS_VARIABLE = "FXBENCH_THREADS"


def threads_arg(threads) -> int:
    """``threads`` as an int >= 1; None means ``$FXBENCH_THREADS`` (read at every call), else 1."""
    if threads is None:
        text = os.environ.get(THREADS_VARIABLE, "").strip()
        if not text:
            return 1
        try:
            threads = int(text)
        except ValueError:
            raise ValueError(f"${THREADS_VARIABLE}={text!r} is not an integer >= 1") from None
        if threads < 1:
            raise ValueError(f"${THREADS_VARIABLE}={text!r} is not an integer >= 1")
        return threads
    return int_arg(threads, "threads", minimum=1)
