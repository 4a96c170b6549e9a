"""Overflow handling: bring exact integers into a ``bits``-wide range and count the misfits."""
from __future__ import annotations

import numpy as np

from ..modes import Overflow, as_overflow


def integer_range(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-wide two's-complement (or unsigned) integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def container_dtype(bits: int, signed: bool) -> np.dtype:
    """Smallest of int8/16/32/64 (uint8/16/32/64) holding ``bits`` bits; object beyond 64."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return np.dtype(f"{'int' if signed else 'uint'}{width}")
    return np.dtype(object)


def apply_overflow(y, bits: int, signed: bool, overflow: Overflow | str) -> tuple[np.ndarray, int]:
    """Fit exact integers ``y`` (int64 or object array) into ``bits`` bits.

    Returns ``(out, count)``: ``out`` in the container dtype of ``bits``, ``count`` the
    number of elements that were outside the mode's range (saturated, wrapped, or for
    ``saturate_symmetric`` also the most negative value clamped to ``-qmax``).
    ``overflow="error"`` raises ``OverflowError`` naming the count and the worst value.
    """
    overflow = as_overflow(overflow)
    shape = np.shape(y)
    y = np.asarray(y).reshape(-1)   # 1-d: numpy scalars would warn on intended uint64 wrap-around
    qmin, qmax = integer_range(bits, signed)
    lo = -qmax if (overflow is Overflow.SATURATE_SYMMETRIC and signed) else qmin
    outside = (y < lo) | (y > qmax)
    count = int(np.count_nonzero(outside))
    dtype = container_dtype(bits, signed)
    if overflow is Overflow.ERROR and count:
        worst = y[outside][np.argmax(np.abs(y[outside].astype(object)))]
        raise OverflowError(
            f"{count} of {y.size} elements overflow the {bits}-bit {'signed' if signed else 'unsigned'} "
            f"range [{qmin}, {qmax}] (overflow='error'); worst raw value {int(worst)}"
        )
    if overflow is Overflow.WRAP:
        if y.dtype == object:
            wrapped = (y - qmin) % (1 << bits) + qmin
        else:   # modular arithmetic in uint64 is exact modulo 2**bits since bits <= 64
            span_mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
            offset = (y.astype(np.int64).view(np.uint64) - np.uint64(qmin % 2**64)) & span_mask
            wrapped = (offset + np.uint64(qmin % 2**64)).view(np.int64) if signed else offset
        return wrapped.astype(dtype).reshape(shape), count
    clipped = np.where(y < lo, lo, np.where(y > qmax, qmax, y))
    return clipped.astype(dtype).reshape(shape), count
