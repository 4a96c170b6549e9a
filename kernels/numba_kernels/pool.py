"""2-d max and average pooling over NHWC tensors, no padding.

Integer average: the window sum is exact in int64 and divided by the window size
with one rounding in the chosen mode (``round_div`` semantics: ties are ``2*r == d``);
the mean of integers always fits the input dtype, so nothing saturates.  Float
average: summed in float64, divided, stored in the input dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .rounding import div_round, rounding_mask


@njit(cache=True)
def _maxpool(x, kh, kw, sh, sw, out):
    B, OH, OW, C = out.shape
    for b in range(B):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    out[b, i, j, c] = x[b, i * sh, j * sw, c]
                for di in range(kh):
                    for dj in range(kw):
                        for c in range(C):
                            v = x[b, i * sh + di, j * sw + dj, c]
                            if v > out[b, i, j, c] or v != v:    # a NaN anywhere in the window wins
                                out[b, i, j, c] = v


@njit(cache=True)
def _avgpool_int(x, kh, kw, sh, sw, mask, out):
    B, OH, OW, C = out.shape
    size = np.int64(kh * kw)
    total = np.zeros(C, dtype=np.int64)
    for b in range(B):
        for i in range(OH):
            for j in range(OW):
                total[:] = 0
                for di in range(kh):
                    for dj in range(kw):
                        for c in range(C):
                            total[c] += x[b, i * sh + di, j * sw + dj, c]
                for c in range(C):
                    out[b, i, j, c] = div_round(total[c], size, mask)


@njit(cache=True)
def _avgpool_float(x, kh, kw, sh, sw, out):
    B, OH, OW, C = out.shape
    size = np.float64(kh * kw)
    total = np.zeros(C, dtype=np.float64)
    for b in range(B):
        for i in range(OH):
            for j in range(OW):
                total[:] = 0.0
                for di in range(kh):
                    for dj in range(kw):
                        for c in range(C):
                            total[c] += x[b, i * sh + di, j * sw + dj, c]
                for c in range(C):
                    out[b, i, j, c] = total[c] / size


def maxpool(x, kernel, stride, out) -> None:
    """out[b, i, j, c] = max of x[b, i*sh : i*sh+kh, j*sw : j*sw+kw, c]; any dtype; NaN if the
    window holds one (as numpy.maximum)."""
    _maxpool(x, int(kernel[0]), int(kernel[1]), int(stride[0]), int(stride[1]), out)


def avgpool(x, kernel, stride, rounding, out) -> None:
    """Window mean: integers round(exact sum / (kh*kw)) in ``rounding``; floats in float64."""
    kh, kw, sh, sw = int(kernel[0]), int(kernel[1]), int(stride[0]), int(stride[1])
    if x.dtype.kind == "f":
        _avgpool_float(x, kh, kw, sh, sw, out)
    else:
        _avgpool_int(x, kh, kw, sh, sw, np.int64(rounding_mask(rounding)), out)
