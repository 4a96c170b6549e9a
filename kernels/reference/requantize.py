"""Reference requantization: ``y = round(acc * multiplier / 2**shift)``, then relu, then overflow.

This is the one formula every integer layer ends with (DESIGN.md §2).  The product
``acc * multiplier`` is formed exactly: in int64 when a bound proves it fits, otherwise
in Python integers (object arrays), so int64 accumulators times int32 multipliers
(up to 94 bits) stay exact.  Rounding happens once, in ``round_shift``; saturation or
wrapping happens once, in ``apply_overflow``, after the optional relu.
"""
from __future__ import annotations

import numpy as np

from ..limits import MULTIPLIER_RANGE, SHIFT_RANGE
from ..modes import Overflow, Rounding, as_overflow, as_rounding
from .overflow import apply_overflow
from .rounding import round_shift


def requantize(
    acc,
    shift,
    multiplier=None,
    *,
    rounding: Rounding | str = Rounding.HALF_EVEN,
    overflow: Overflow | str = Overflow.SATURATE,
    bits: int = 8,
    signed: bool = True,
    relu: bool = False,
    axis: int = -1,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, int]:
    """Requantize exact integers ``acc`` to ``bits`` bits; returns ``(y, overflow_count)``.

    ``shift`` and ``multiplier`` are scalars (per tensor) or 1-d arrays with one entry
    per index of ``acc`` along ``axis`` (per channel).  ``shift`` in [-63, 127]; a
    negative shift is an exact left shift (no rounding).  ``multiplier`` in
    [1, 2**31 - 1], absent meaning 1 (a pure power-of-two scale).  ``y`` has the
    container dtype of ``bits`` (int8/int16/int32 or unsigned).
    """
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    acc = np.asarray(acc)
    if acc.dtype != object and not np.issubdtype(acc.dtype, np.integer):
        raise TypeError(f"acc must be an integer array, got dtype {acc.dtype}")
    shift = _per_channel(shift, acc, axis, "shift", SHIFT_RANGE)
    mult = None if multiplier is None else _per_channel(multiplier, acc, axis, "multiplier", MULTIPLIER_RANGE)

    max_acc_bits = _max_bit_length(acc)
    max_mult_bits = 0 if mult is None else int(mult.max(initial=1)).bit_length()
    max_left = max(0, -int(shift.min(initial=0)))
    wide = acc.dtype == object or max_acc_bits + max_mult_bits + max_left > 62
    value = acc.astype(object if wide else np.int64)
    if mult is not None:
        value = value * (mult.astype(object) if wide else mult)
    left = np.maximum(-shift, 0)
    if max_left:
        value = value << (left.astype(object) if wide else left)
    y = round_shift(value, np.maximum(shift, 0), rounding, rng)
    if relu:
        y = np.where(y < 0, np.zeros_like(y), y)
    return apply_overflow(y, bits, signed, overflow)


def _max_bit_length(a: np.ndarray) -> int:
    if a.size == 0:
        return 0
    return max(int(a.max()).bit_length(), int(a.min()).bit_length())


def _per_channel(param, acc, axis, name, valid_range):
    """Broadcast a scalar or per-channel parameter to ``acc``'s shape (int64)."""
    arr = np.asarray(param)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer or an integer array, got {arr.dtype}")
    lo, hi = valid_range
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{arr.min()}, {arr.max()}]")
    arr = arr.astype(np.int64)
    if arr.ndim == 0:
        return np.broadcast_to(arr, acc.shape)
    if arr.ndim != 1 or acc.ndim == 0 or arr.shape[0] != acc.shape[axis]:
        raise ValueError(
            f"{name} must be a scalar or a 1-d array of length {acc.shape[axis] if acc.ndim else 0} "
            f"(acc.shape[{axis}]), got shape {arr.shape}"
        )
    view_shape = [1] * acc.ndim
    view_shape[axis] = arr.shape[0]
    return np.broadcast_to(arr.reshape(view_shape), acc.shape)
