"""Blocked integer GEMM ``x @ w.T + bias`` with an optional fused requantization epilogue.

Both operands are packed once into zero-padded int16 panels (exact for int8 and int16)
so every micro-tile reads whole rows of 4 x-rows and 4 w-rows along K; the 4 x 4 tile's
16 accumulators stay in registers and LLVM vectorizes the K loop (``vpmaddwd`` /
``vpdpwssd`` for int32 accumulators).  Loops are blocked ``NC`` w-rows x ``MC`` x-rows
x ``KC`` along K; a block's accumulators live in an ``MC x NC`` scratch tile, never a
whole accumulator tensor.

Below ``SMALL_M`` x rows (batch-1 inference) the 4 x 4 tile would waste most of its
work, so each output is one contiguous dot product of ``x[i, :]`` and the stored
``w[j, :]`` in their own dtypes, widened inside the loop (int8 -> int32 so LLVM emits
``vpmaddwd``; int16 -> int64).

Accumulators: int8 x int8 sums in int32 (the front refuses K > 65536, so the sum is
exact); anything with an int16 operand sums in int64.  The requantizing epilogue adds
the bias in int64, rounds once (:mod:`.rounding`, exact in 128 bits) and saturates or
wraps once (:func:`.overflow.fit`).
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from ..bf16 import to_float32
from ..kinds import gemm_kind
from ..protocol import UnpackedWeights
from .elementwise import epilogue_args, requant_value
from .overflow import fit

MR = 4       # x rows per micro-tile
NR = 4       # w rows (output columns) per micro-tile
MC = 64      # x rows per block
NC = 128     # w rows per block
KC = 1024    # K per block
SMALL_M = 4  # fewer x rows than this take the dot-product path


def _padded(n: int, step: int) -> int:
    return -(-n // step) * step


def pack_int16(a: np.ndarray, step: int) -> np.ndarray:
    """``a`` (R, K) as int16 with its rows zero-padded to a multiple of ``step``."""
    packed = np.zeros((_padded(a.shape[0], step), a.shape[1]), dtype=np.int16)
    packed[: a.shape[0]] = a
    return packed


@njit(cache=True)
def _tile_acc32(xp, wp, i, j, k0, k1, acc, ai, aj):
    """acc[ai:ai+4, aj:aj+4] += xp[i:i+4, k0:k1] @ wp[j:j+4, k0:k1].T in int32."""
    a0, a1, a2, a3 = xp[i, k0:k1], xp[i + 1, k0:k1], xp[i + 2, k0:k1], xp[i + 3, k0:k1]
    b0, b1, b2, b3 = wp[j, k0:k1], wp[j + 1, k0:k1], wp[j + 2, k0:k1], wp[j + 3, k0:k1]
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = np.int32(0)
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = np.int32(0)
    for k in range(k1 - k0):          # k >= 0: no negative-index wraparound in the loop
        x0, x1, x2, x3 = np.int32(a0[k]), np.int32(a1[k]), np.int32(a2[k]), np.int32(a3[k])
        y0, y1, y2, y3 = np.int32(b0[k]), np.int32(b1[k]), np.int32(b2[k]), np.int32(b3[k])
        # np.int32(...) keeps each sum 32-bit wide, which lets LLVM use vpmaddwd/vpdpwssd
        c00 = np.int32(c00 + x0 * y0); c01 = np.int32(c01 + x0 * y1)
        c02 = np.int32(c02 + x0 * y2); c03 = np.int32(c03 + x0 * y3)
        c10 = np.int32(c10 + x1 * y0); c11 = np.int32(c11 + x1 * y1)
        c12 = np.int32(c12 + x1 * y2); c13 = np.int32(c13 + x1 * y3)
        c20 = np.int32(c20 + x2 * y0); c21 = np.int32(c21 + x2 * y1)
        c22 = np.int32(c22 + x2 * y2); c23 = np.int32(c23 + x2 * y3)
        c30 = np.int32(c30 + x3 * y0); c31 = np.int32(c31 + x3 * y1)
        c32 = np.int32(c32 + x3 * y2); c33 = np.int32(c33 + x3 * y3)
    acc[ai, aj] += c00; acc[ai, aj + 1] += c01; acc[ai, aj + 2] += c02; acc[ai, aj + 3] += c03
    acc[ai + 1, aj] += c10; acc[ai + 1, aj + 1] += c11; acc[ai + 1, aj + 2] += c12; acc[ai + 1, aj + 3] += c13
    acc[ai + 2, aj] += c20; acc[ai + 2, aj + 1] += c21; acc[ai + 2, aj + 2] += c22; acc[ai + 2, aj + 3] += c23
    acc[ai + 3, aj] += c30; acc[ai + 3, aj + 1] += c31; acc[ai + 3, aj + 2] += c32; acc[ai + 3, aj + 3] += c33


@njit(cache=True)
def _tile_acc64(xp, wp, i, j, k0, k1, acc, ai, aj):
    """acc[ai:ai+4, aj:aj+4] += xp[i:i+4, k0:k1] @ wp[j:j+4, k0:k1].T in int64."""
    a0, a1, a2, a3 = xp[i, k0:k1], xp[i + 1, k0:k1], xp[i + 2, k0:k1], xp[i + 3, k0:k1]
    b0, b1, b2, b3 = wp[j, k0:k1], wp[j + 1, k0:k1], wp[j + 2, k0:k1], wp[j + 3, k0:k1]
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = np.int64(0)
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = np.int64(0)
    for k in range(k1 - k0):          # k >= 0: no negative-index wraparound in the loop
        x0, x1, x2, x3 = np.int64(a0[k]), np.int64(a1[k]), np.int64(a2[k]), np.int64(a3[k])
        y0, y1, y2, y3 = np.int64(b0[k]), np.int64(b1[k]), np.int64(b2[k]), np.int64(b3[k])
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3
    acc[ai, aj] += c00; acc[ai, aj + 1] += c01; acc[ai, aj + 2] += c02; acc[ai, aj + 3] += c03
    acc[ai + 1, aj] += c10; acc[ai + 1, aj + 1] += c11; acc[ai + 1, aj + 2] += c12; acc[ai + 1, aj + 3] += c13
    acc[ai + 2, aj] += c20; acc[ai + 2, aj + 1] += c21; acc[ai + 2, aj + 2] += c22; acc[ai + 2, aj + 3] += c23
    acc[ai + 3, aj] += c30; acc[ai + 3, aj + 1] += c31; acc[ai + 3, aj + 2] += c32; acc[ai + 3, aj + 3] += c33


@njit(cache=True)
def _block(xp, wp, i0, mb, j0, nb, acc):
    """acc[:mb, :nb] = xp[i0:i0+mb] @ wp[j0:j0+nb].T over all of K (padded to MR/NR)."""
    acc[:, :] = 0
    K = xp.shape[1]
    for k0 in range(0, K, KC):
        k1 = min(K, k0 + KC)
        for jj in range(0, nb, NR):
            for ii in range(0, mb, MR):
                if acc.itemsize == 4:    # int32 accumulators
                    _tile_acc32(xp, wp, i0 + ii, j0 + jj, k0, k1, acc, ii, jj)
                else:
                    _tile_acc64(xp, wp, i0 + ii, j0 + jj, k0, k1, acc, ii, jj)


@njit(cache=True)
def _gemm(xp, wp, bias, M, N, out):
    """out[:M, :N] = xp @ wp.T + bias, stored in out's (accumulator) dtype."""
    acc = np.empty((MC, NC), dtype=out.dtype)
    for j0 in range(0, N, NC):
        nb = min(NC, N - j0)
        for i0 in range(0, M, MC):
            mb = min(MC, M - i0)
            _block(xp, wp, i0, mb, j0, nb, acc)
            for r in range(mb):
                for c in range(nb):
                    out[i0 + r, j0 + c] = acc[r, c] + bias[j0 + c]


@njit(cache=True)
def _gemm_requant(xp, wp, bias, acc_proto, shift, mult, masks, wide, relu, lo, hi, qmin, wrap, M, N, out):
    """The blocked GEMM with the requantizing epilogue applied per block; returns the overflow count."""
    acc = np.empty((MC, NC), dtype=acc_proto.dtype)
    count = 0
    for j0 in range(0, N, NC):
        nb = min(NC, N - j0)
        for i0 in range(0, M, MC):
            mb = min(MC, M - i0)
            _block(xp, wp, i0, mb, j0, nb, acc)
            for r in range(mb):
                for c in range(nb):
                    j = j0 + c
                    total = np.int64(acc[r, c]) + np.int64(bias[j])
                    y = requant_value(total, mult[j], shift[j], masks[j], wide)
                    value, outside = fit(y, relu, lo, hi, qmin, wrap)
                    out[i0 + r, j] = value
                    count += outside
    return count


@njit(cache=True)
def _dot32(a, b):
    """a . b in int32 (int8 x int8 only: exact for K <= 65536)."""
    total = np.int32(0)
    for k in range(a.shape[0]):
        total = np.int32(total + np.int32(a[k]) * np.int32(b[k]))
    return total


@njit(cache=True)
def _dot64(a, b):
    """a . b in int64 (any int16 operand)."""
    total = np.int64(0)
    for k in range(a.shape[0]):
        total += np.int64(a[k]) * np.int64(b[k])
    return total


@njit(cache=True)
def _dot(a, b, acc_proto):
    """a . b in ``acc_proto``'s dtype (int32 or int64)."""
    if acc_proto.itemsize == 4:
        return _dot32(a, b)
    return _dot64(a, b)


@njit(cache=True)
def _gemv(x, w, bias, out):
    """out = x @ w.T + bias for few rows of x, one dot product per output, in out's (accumulator) dtype."""
    for i in range(x.shape[0]):
        row = x[i]
        for j in range(w.shape[0]):
            out[i, j] = _dot(row, w[j], out) + bias[j]


@njit(cache=True)
def _gemv_requant(x, w, bias, acc_proto, shift, mult, masks, wide, relu, lo, hi, qmin, wrap, out):
    """``_gemv`` with the requantizing epilogue per output; returns the overflow count."""
    count = 0
    for i in range(x.shape[0]):
        row = x[i]
        for j in range(w.shape[0]):
            total = np.int64(_dot(row, w[j], acc_proto)) + np.int64(bias[j])
            y = requant_value(total, mult[j], shift[j], masks[j], wide)
            value, outside = fit(y, relu, lo, hi, qmin, wrap)
            out[i, j] = value
            count += outside
    return count


def _bias_or_zeros(bias, n: int, dtype) -> np.ndarray:
    return np.zeros(n, dtype=dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)


def gemm(x, w, bias, out) -> None:
    """out[M, N] = x[M, K] @ w[N, K].T + bias[N].

    Floats: one BLAS call (``np.matmul``) in the input dtype, then the bias; bf16 bit patterns
    converted to float32 (exact) first.  Integers: the blocked kernel, int32 accumulators for
    int8 x int8, int64 otherwise; exact.
    """
    kind = gemm_kind(x.dtype, w.dtype)
    if not kind.integer:
        if kind.name == "bf16":
            x, w = to_float32(x), to_float32(w)
        np.matmul(x, w.T, out=out)
        if bias is not None:
            out += bias
        return
    PackedWeights(w, bias, kind, None).gemm(x, out)


def prepare_gemm(w, bias, kind, epilogue, threads=1):
    """Integer ``w`` packed once into its int16 panel (with the bias in the accumulator dtype) and the
    epilogue resolved once; float ``w`` is bound as it is (``np.matmul`` needs no packing).  One thread."""
    if not kind.integer:
        return UnpackedWeights(sys.modules[__name__], w, bias, kind, epilogue)
    return PackedWeights(w, bias, kind, epilogue)


class PackedWeights:
    """Integer ``w`` (N, K) as a zero-padded int16 panel (for ``SMALL_M`` rows or more), as stored (for fewer),
    ``bias`` as a full (N,) accumulator-dtype array and the epilogue's kernel arguments, for x of ``kind.x``."""

    def __init__(self, w, bias, kind, epilogue):
        self.kind = kind
        self.n = w.shape[0]
        self.panel = pack_int16(w, NR)
        self.rows = np.ascontiguousarray(w)
        self.bias = _bias_or_zeros(bias, self.n, kind.acc)
        self.acc_proto = np.zeros(1, kind.acc)
        self.epilogue = None if epilogue is None else epilogue_args(epilogue, self.n, kind.acc)

    def _check(self, x) -> None:
        if x.dtype != self.kind.x:
            raise TypeError(f"x must have dtype {self.kind.x} for these prepared weights, got {x.dtype}")

    def gemm(self, x, out) -> None:
        self._check(x)
        if x.shape[0] < SMALL_M:
            _gemv(np.ascontiguousarray(x), self.rows, self.bias, out)
        else:
            _gemm(pack_int16(x, MR), self.panel, self.bias, x.shape[0], self.n, out)

    def gemm_requant(self, x, out) -> int:
        self._check(x)
        if x.shape[0] < SMALL_M:
            count = _gemv_requant(np.ascontiguousarray(x), self.rows, self.bias, self.acc_proto, *self.epilogue, out)
        else:
            count = _gemm_requant(pack_int16(x, MR), self.panel, self.bias, self.acc_proto, *self.epilogue,
                                  x.shape[0], self.n, out)
        return int(count)
