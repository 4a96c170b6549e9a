"""The last step of every integer epilogue: relu, then saturate or wrap into ``bits`` bits.

Overflow modes arrive as ``Overflow.code``: 0 saturate, 1 wrap, 2 saturate_symmetric
(``error`` is ``saturate`` plus a check done by the caller).  :func:`overflow_params`
turns (code, bits) into the four numbers :func:`fit` needs, so the kernels' inner
loops contain no mode switch.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_SATURATE, _WRAP, _SATURATE_SYMMETRIC = 0, 1, 2


def overflow_params(overflow: int, bits: int) -> tuple[int, int, int, bool]:
    """(lo, hi, qmin, wrap) for a signed ``bits``-wide result: values outside [lo, hi]
    are counted; they are clamped to it, or wrapped modulo 2**bits when ``wrap``."""
    if overflow not in (_SATURATE, _WRAP, _SATURATE_SYMMETRIC):
        raise ValueError(f"overflow code {overflow!r} is not one of 0 (saturate), 1 (wrap), 2 (saturate_symmetric)")
    if not 2 <= bits <= 32:
        raise ValueError(f"out_bits={bits!r} must lie in [2, 32]")
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    lo = -qmax if overflow == _SATURATE_SYMMETRIC else qmin
    return lo, qmax, qmin, overflow == _WRAP


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
