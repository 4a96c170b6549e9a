"""The last step of every integer epilogue: relu, then saturate or wrap into ``bits`` bits.

Overflow modes arrive as :class:`~fixedpoint.kernels.modes.Overflow` members: saturate,
wrap, saturate_symmetric (``error`` is ``saturate`` plus a check done by the caller).  :func:`overflow_params`
turns (code, bits) into the four numbers :func:`fit` needs, so the kernels' inner
loops contain no mode switch.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..modes import Overflow

_KERNEL_MODES = (Overflow.SATURATE, Overflow.WRAP, Overflow.SATURATE_SYMMETRIC)


def overflow_params(overflow: Overflow, bits: int) -> tuple[int, int, int, bool]:
    """(lo, hi, qmin, wrap) for a signed ``bits``-wide result: values outside [lo, hi]
    are counted; they are clamped to it, or wrapped modulo 2**bits when ``wrap``."""
    if overflow not in _KERNEL_MODES:
        raise ValueError(f"overflow {overflow!r} is not one of saturate, wrap, saturate_symmetric")
    if not 2 <= bits <= 32:
        raise ValueError(f"out_bits={bits!r} must lie in [2, 32]")
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    lo = -qmax if overflow is Overflow.SATURATE_SYMMETRIC else qmin
    return lo, qmax, qmin, overflow is Overflow.WRAP


@njit(cache=True, inline="always")
def fit(y, relu, lo, hi, qmin, wrap):
    """(value, outside) for an exact (or stand-in) int64 ``y``: relu, then saturate or wrap.

    Wrapping keeps the low ``bits`` bits: ``span_mask = hi - qmin`` is ``2**bits - 1``.
    """
    if relu:
        y = max(y, np.int64(0))
    outside = (y < lo) | (y > hi)
    if wrap:
        value = ((y - qmin) & (hi - qmin)) + qmin
    else:
        value = min(max(y, lo), hi)
    return value, outside
