"""The contract between the kernel front (``layers``, ``pools``, ``pointwise``) and each compute backend.

The front validates every argument, makes arrays C-contiguous, allocates outputs and
routes work; a backend module only computes.  Every backend module (``reference``,
``numba``, ``c``) exposes the functions of :class:`Backend` with exactly these
arguments.  Integer results must be bit-identical across backends.

Conventions shared by all functions:

* Modes arrive as :class:`~fixedpoint.kernels.modes.Rounding` members, deterministic
  only (stochastic roundings run on the reference path, see ``layers``); a backend
  indexes its tables with ``Rounding.code``.
* Requantization arrives as one :class:`~fixedpoint.kernels.epilogue.Epilogue`
  record: ``y = round(acc * multiplier / 2**shift)`` (one rounding of the exact
  rational; ``shift <= 0`` is an exact left shift, no rounding), then ``relu``
  (``max(y, 0)``) if asked, then ``fast_overflow`` (``saturate``, ``wrap`` or
  ``saturate_symmetric``; the front raises for ``error``) into ``out_bits`` (2..32,
  signed).  ``shift`` is an int32 array in [-63, 127] and ``multiplier`` an int64 array
  in [1, 2**31 - 1] or ``None`` (meaning 1), one entry per output channel (the last
  axis of the output).  The product ``acc * multiplier`` is exact even beyond 64 bits.
  Returned counts are the number of elements outside the overflow mode's range after relu.
* ``prepare_gemm(w, bias, kind, epilogue)`` returns a :class:`PreparedWeights` for
  repeated calls with the same (validated, C-contiguous) ``w`` and ``bias``, x of dtype
  ``kind.x`` and, when not None, the same epilogue: a backend may pack the weights and
  resolve the epilogue once; one that does not returns :class:`UnpackedWeights`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from .epilogue import Epilogue
from .kinds import GemmKind
from .modes import Overflow, Rounding


class PreparedWeights(Protocol):
    """``w`` (N, K), ``bias`` (N,) and an epilogue bound once; x (M, K) of the prepared dtype varies per call."""

    def gemm(self, x: np.ndarray, out: np.ndarray) -> None:
        """``Backend.gemm(x, w, bias, out)``."""

    def gemm_requant(self, x: np.ndarray, out: np.ndarray) -> int:
        """The integer gemm with the bound epilogue fused per block into ``out`` (int8/int16/int32): the
        whole accumulator tensor is never materialized.  Returns the overflow count."""


class UnpackedWeights:
    """:class:`PreparedWeights` of a backend without a packed layout: its ``gemm`` with the stored ``w``
    and ``bias``, and for ``gemm_requant`` the accumulator requantized by its ``requant``."""

    def __init__(self, backend, w: np.ndarray, bias: np.ndarray | None, kind: GemmKind, epilogue: Epilogue | None):
        self._backend, self.w, self.bias, self._kind, self._epilogue = backend, w, bias, kind, epilogue

    def gemm(self, x, out) -> None:
        self._backend.gemm(x, self.w, self.bias, out)

    def gemm_requant(self, x, out) -> int:
        acc = np.empty(out.shape, dtype=self._kind.acc)
        self._backend.gemm(x, self.w, self.bias, acc)
        return self._backend.requant(acc, self._epilogue, out)


class Backend(Protocol):
    NAME: str

    def prepare_gemm(self, w: np.ndarray, bias: np.ndarray | None, kind: GemmKind,
                     epilogue: Epilogue | None, threads: int = 1) -> PreparedWeights:
        """``w`` and ``bias`` (as for ``gemm``) bound for repeated calls with ``kind.x`` inputs,
        packed if the backend packs; ``epilogue`` is the one ``gemm_requant`` applies (None: gemm only).
        ``threads`` (>= 1) is how many threads the backend may split a call over; results are
        identical for any count."""

    def gemm(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out: np.ndarray) -> None:
        """out[M, N] = x[M, K] @ w[N, K].T + bias[N], K >= 1.

        Dtype sets: those of :data:`~fixedpoint.kernels.kinds.GEMM_KINDS` (float32, float64,
        int8 x int8 -> int32, int16 x int16 and int16 x int8 -> int64).  ``bias`` is None or
        has ``out``'s dtype.  Integer sums are exact (the front refuses int8 K > 65536).
        """

    def requant(self, acc: np.ndarray, epilogue: Epilogue, out: np.ndarray) -> int:
        """Requantize ``acc`` (R, N) int32 or int64 into ``out`` (R, N); per-column parameters."""

    def quantize(self, x, frac: int, rounding: Rounding, out_bits: int, out) -> tuple[int, int]:
        """out = saturate(round(x * 2**frac)) for 1-d float32/float64 ``x``, one rounding of the exact value
        as a cast from an unbounded source.

        The front only routes here when ``x * 2**frac`` is exact in float64 for every finite
        x.  +-inf saturate; NaN elements are written as 0 and counted, not converted.
        Returns ``(saturated_count, nan_count)``.
        """

    def maxpool(self, x, kernel: tuple[int, int], stride: tuple[int, int], out) -> None:
        """2-d max pool, x (B, H, W, C) -> out (B, OH, OW, C), no padding; NaN in a window gives NaN."""

    def avgpool(self, x, kernel: tuple[int, int], stride: tuple[int, int], rounding: Rounding, out) -> None:
        """2-d average pool; integer x: out = round(window_sum / window_size) in ``rounding``
        (exact sum, round_div semantics; the mean of integers always fits the input dtype).
        Float x: plain mean in x's dtype."""

    def add_requant(self, a, b, a_lshift: int, b_lshift: int, epilogue: Epilogue, out) -> int:
        """out = epilogue(((a << a_lshift) + (b << b_lshift))) with ``epilogue.shift`` of shape (1,).

        ``a`` and ``b`` int8/int16 of the same shape; shifts in 0..ADD_INT64_MAX_LSHIFT
        (:mod:`.limits`) align the two formats exactly; the sum is exact in int64.  Returns
        the overflow count.
        """

    def divide(self, num, den, rounding: Rounding, overflow: Overflow, out_bits: int, out) -> int:
        """out = overflow(round(num / den)) for 1-d int64 ``num`` and ``den`` (den in [1, 2**62]), one
        rounding with round_div semantics (ties are ``2 * r == den``), ``overflow`` one of the three
        kernel modes; returns the overflow count."""

    def lut(self, x, table, out) -> None:
        """out = table[x - x_min] for 1-d int8 (256-entry table) or int16 (65536-entry) x; any table dtype."""

    def im2col(self, x, kernel, stride, padding, out_hw, rows, out) -> None:
        """Patch rows of NHWC ``x`` (B, H, W, C), zero padded by ``padding`` (ph, pw) on both sides, for output
        rows ``rows`` = (i0, i1) of every image: out (B * (i1 - i0) * OW, KH*KW*C) in x's dtype, columns in
        (kh, kw, c) order (``out_hw`` = (OH, OW))."""
