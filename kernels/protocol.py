"""The contract between the public kernel API (``api.py``) and each compute backend.

``api.py`` validates every argument, makes arrays C-contiguous, allocates outputs and
routes work; a backend module only computes.  Every backend module (``reference``,
``numba``, ``c``) exposes the functions of :class:`Backend` with exactly these
arguments.  Integer results must be bit-identical across backends.

Conventions shared by all functions:

* ``rounding`` is ``Rounding.code`` of a deterministic mode (0..12; stochastic modes
  never reach a fast backend: ``api.py`` computes them on the reference path).
* ``overflow`` is ``Overflow.code`` of ``saturate`` (0), ``wrap`` (1) or
  ``saturate_symmetric`` (2); ``error`` is handled by ``api.py`` (it runs ``saturate``
  and raises if the returned count is non-zero).
* Requantization is ``y = round(acc * multiplier / 2**shift)`` (one rounding of the
  exact rational; ``shift <= 0`` is an exact left shift, no rounding), then
  ``relu`` (``max(y, 0)``) if asked, then the overflow mode into ``out_bits``
  (2..32, signed).  Returned counts are the number of elements outside the overflow
  mode's range after relu.
* ``prepare_gemm(w, bias, x_dtype)`` returns a :class:`PreparedWeights` for repeated
  calls with the same (validated, C-contiguous) ``w`` and ``bias`` and x of dtype
  ``x_dtype``: a backend may pack them once into its kernel layout; one that does not
  returns :class:`UnpackedWeights`.
* ``shift`` is an int32 array in [-63, 127] and ``multiplier`` an int64 array in
  [1, 2**31 - 1] or ``None`` (meaning 1), both with one entry per output channel
  (the last axis of the output).  The product ``acc * multiplier`` is exact even
  beyond 64 bits.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class PreparedWeights(Protocol):
    """``w`` (N, K) and ``bias`` (N,) bound once; x (M, K) of the prepared dtype varies per call."""

    def gemm(self, x: np.ndarray, out: np.ndarray) -> None:
        """``Backend.gemm(x, w, bias, out)``."""

    def gemm_requant(self, x, shift, multiplier, rounding: int, overflow: int, out_bits: int, relu: bool, out) -> int:
        """``Backend.gemm_requant(x, w, bias, ...)``; returns the overflow count."""


class UnpackedWeights:
    """:class:`PreparedWeights` of a backend without a packed layout: its ``gemm`` and
    ``gemm_requant`` called with the stored ``w`` and ``bias``."""

    def __init__(self, backend, w: np.ndarray, bias: np.ndarray | None):
        self._backend, self.w, self.bias = backend, w, bias

    def gemm(self, x, out) -> None:
        self._backend.gemm(x, self.w, self.bias, out)

    def gemm_requant(self, x, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
        return self._backend.gemm_requant(x, self.w, self.bias, shift, multiplier, rounding, overflow, out_bits,
                                          relu, out)


class Backend(Protocol):
    NAME: str

    def prepare_gemm(self, w: np.ndarray, bias: np.ndarray | None, x_dtype: np.dtype) -> PreparedWeights:
        """``w`` and ``bias`` (as for ``gemm``) bound for repeated calls with ``x_dtype`` inputs,
        packed if the backend packs."""

    def gemm(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out: np.ndarray) -> None:
        """out[M, N] = x[M, K] @ w[N, K].T + bias[N].

        Dtype sets: (float32, float32) -> float32 and (float64, float64) -> float64;
        (int8, int8) -> int32 accumulator; (int16, int16) and (int16, int8) -> int64
        accumulator.  ``bias`` is None or has ``out``'s dtype.  Integer sums are exact
        (``api.py`` refuses int8 K > 65536).
        """

    def gemm_requant(
        self, x, w, bias, shift, multiplier, rounding: int, overflow: int, out_bits: int, relu: bool, out
    ) -> int:
        """The integer ``gemm`` followed by requantization into ``out`` (int8/int16/int32).

        The accumulator of one output element never leaves registers/cache-sized
        blocks: a whole int32/int64 accumulator tensor is not materialized.  Returns
        the overflow count.
        """

    def requant(self, acc, shift, multiplier, rounding: int, overflow: int, out_bits: int, relu: bool, out) -> int:
        """Requantize ``acc`` (R, N) int32 or int64 into ``out`` (R, N); per-column params."""

    def quantize(self, x, frac: int, rounding: int, out_bits: int, out) -> tuple[int, int]:
        """out = saturate(round(x * 2**frac)) for 1-d float32/float64 ``x``.

        Exact (no double rounding).  ``api.py`` only routes here when ``x * 2**frac``
        is exact in float64 for every finite x.  +-inf saturate; NaN elements are
        counted, not converted.  Returns ``(saturated_count, nan_count)``.
        """

    def maxpool(self, x, kernel: tuple[int, int], stride: tuple[int, int], out) -> None:
        """2-d max pool, x (B, H, W, C) -> out (B, OH, OW, C), no padding; any dtype."""

    def avgpool(self, x, kernel: tuple[int, int], stride: tuple[int, int], rounding: int, out) -> None:
        """2-d average pool; integer x: out = round(window_sum / window_size) in
        ``rounding`` (exact sum, round_div semantics; the mean of integers always fits
        the input dtype).  Float x: plain mean in x's dtype."""

    def add_requant(
        self, a, b, a_lshift: int, b_lshift: int, shift: int, rounding: int, overflow: int, out_bits: int,
        relu: bool, out
    ) -> int:
        """out = overflow(relu(round(((a << a_lshift) + (b << b_lshift)) / 2**shift))).

        ``a`` and ``b`` int8/int16 of the same shape; shifts >= 0 align the two formats
        exactly; the sum is exact in int64.  Returns the overflow count.
        """

    def lut(self, x, table, out) -> None:
        """out = table[x - x_min] for int8 (256-entry table) or int16 (65536-entry) x."""
