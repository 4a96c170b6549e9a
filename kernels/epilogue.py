"""The requantizing epilogue of an integer layer, as one validated, frozen record.

``y = round(acc * multiplier / 2**shift)`` (one rounding of the exact rational, in
``rounding``; ``shift <= 0`` is an exact left shift), then ``relu``, then ``overflow``
into ``out_bits`` signed bits stored as ``out_dtype``.  :func:`make_epilogue` checks the
keywords once; backends receive the record (the C backend copies its fields into the
``fxp_epilogue`` struct of ``kernels/c/fxp.h``).  :meth:`Epilogue.reference` is the exact
requantization every backend must match, and the path of the stochastic modes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .args import channel_param, dtype_arg, int_arg
from .kinds import OUT_DTYPES
from .limits import MULTIPLIER_RANGE, OUT_BITS_RANGE, SHIFT_RANGE
from .modes import Overflow, Rounding
from .reference.overflow import container_dtype
from .reference.requantize import requantize as reference_requantize


@dataclass(frozen=True, eq=False)
class Epilogue:
    """Validated output stage: per-channel ``shift`` (int32) and ``multiplier`` (int64, None = 1)."""

    shift: np.ndarray
    multiplier: np.ndarray | None
    rounding: Rounding
    overflow: Overflow
    out_bits: int
    out_dtype: np.dtype
    relu: bool

    @property
    def fast_overflow(self) -> Overflow:
        """The mode a backend runs: ``error`` runs as ``saturate``, and the caller raises afterwards."""
        return Overflow.SATURATE if self.overflow is Overflow.ERROR else self.overflow

    @property
    def channels(self) -> int:
        return self.shift.shape[0]

    def reference(self, acc, rng=None, overflow: Overflow | None = None, axis: int = -1) -> tuple[np.ndarray, int]:
        """(y, overflow count) of the exact reference requantization of ``acc`` along ``axis``.

        ``overflow`` defaults to the record's own (``error`` raises ``OverflowError`` here).
        """
        y, count = reference_requantize(
            acc, self.shift.astype(np.int64), self.multiplier, rounding=self.rounding,
            overflow=self.overflow if overflow is None else overflow, bits=self.out_bits, signed=True,
            relu=self.relu, axis=axis, rng=rng,
        )
        return y.astype(self.out_dtype, copy=False), count


def make_epilogue(n_channels: int, shift, multiplier, rounding: Rounding, overflow: Overflow, out_dtype, out_bits,
                  relu: bool, default_out_dtype: np.dtype | None) -> Epilogue:
    """Check the epilogue keywords for ``n_channels`` output channels.

    ``shift`` in [-63, 127] (None: 0) and ``multiplier`` in [1, 2**31 - 1] (None: 1), each a
    scalar or one per channel.  ``out_dtype`` int8/int16/int32 (None: ``default_out_dtype``,
    or the container of ``out_bits`` when that is None too); ``out_bits`` 2..its width
    (None: all of it).
    """
    shift_arr = channel_param(0 if shift is None else shift, n_channels, "shift", SHIFT_RANGE, np.int32)
    mult_arr = None if multiplier is None else channel_param(multiplier, n_channels, "multiplier",
                                                             MULTIPLIER_RANGE, np.int64)
    out_dtype, out_bits = output_format(out_dtype, out_bits, default_out_dtype)
    return Epilogue(shift_arr, mult_arr, rounding, overflow, out_bits, out_dtype, relu)


def output_format(out_dtype, out_bits, default_out_dtype: np.dtype | None) -> tuple[np.dtype, int]:
    """(out_dtype, out_bits): dtype int8/int16/int32, bits 2..its width."""
    if out_dtype is None:
        if default_out_dtype is None:
            if out_bits is None:
                raise ValueError(f"out_bits is required ({OUT_BITS_RANGE[0]}..{OUT_BITS_RANGE[1]})")
            out_dtype = container_dtype(_bits_in_range(out_bits), True)
        else:
            out_dtype = default_out_dtype
    out_dtype = dtype_arg(out_dtype, "out_dtype", "int8, int16, int32")
    if out_dtype not in OUT_DTYPES:
        raise TypeError(f"out_dtype={out_dtype} is not accepted; accepted: int8, int16, int32")
    width = 8 * out_dtype.itemsize
    if out_bits is None:
        return out_dtype, width
    out_bits = _bits_in_range(out_bits)
    if out_bits > width:
        raise ValueError(f"out_bits={out_bits} does not fit out_dtype={out_dtype} ({width} bits)")
    return out_dtype, out_bits


def _bits_in_range(out_bits) -> int:
    out_bits = int_arg(out_bits, "out_bits")
    lo, hi = OUT_BITS_RANGE
    if not lo <= out_bits <= hi:
        raise ValueError(f"out_bits={out_bits} is out of range; accepted: {lo}..{hi}")
    return out_bits
