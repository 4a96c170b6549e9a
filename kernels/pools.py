"""Max and average pooling over NHWC (and NLC) tensors, no padding, on a backend of the registry."""
from __future__ import annotations

import numpy as np

from . import registry
from .args import as_numeric, c_array, deterministic, int_arg, pair_arg
from .kinds import POOL_DTYPES


def max_pool2d(x, kernel, stride=None, *, backend=None):
    """Max over kh x kw windows of x (B, H, W, C) (int8/int16/float32/float64), no padding.

    ``kernel`` and ``stride`` (default: ``kernel``) are ints or (h, w) pairs.  A window
    holding NaN gives NaN (as ``numpy.maximum``).
    """
    be = registry.get_backend(backend)
    x, kernel, stride, out = _pool_setup(x, kernel, stride, "max_pool2d")
    if out.size:
        be.maxpool(x, kernel, stride, out)
    return out


def avg_pool2d(x, kernel, stride=None, *, rounding="half_even", backend=None):
    """Mean over kh x kw windows of x (B, H, W, C), no padding, in x's dtype.

    Integers: the exact window sum (int64) divided by kh*kw and rounded once in
    ``rounding`` (deterministic modes; the mean of integers always fits the input dtype,
    so nothing saturates).  Floats: the plain mean, summed in float64.
    """
    be = registry.get_backend(backend)
    rounding = deterministic(rounding, "avg_pool2d")
    x, kernel, stride, out = _pool_setup(x, kernel, stride, "avg_pool2d")
    if out.size:
        be.avgpool(x, kernel, stride, rounding, out)
    return out


def max_pool1d(x, kernel, stride=None, *, backend=None):
    """Max pool of x (B, L, C) over windows of ``kernel`` (an int), as :func:`max_pool2d` with H = 1."""
    x = _pool1d_input(x, "max_pool1d")
    kernel, stride = _pool1d_window(kernel, stride)
    return max_pool2d(x, kernel, stride, backend=backend)[:, 0]


def avg_pool1d(x, kernel, stride=None, *, rounding="half_even", backend=None):
    """Average pool of x (B, L, C), as :func:`avg_pool2d` with H = 1."""
    x = _pool1d_input(x, "avg_pool1d")
    kernel, stride = _pool1d_window(kernel, stride)
    return avg_pool2d(x, kernel, stride, rounding=rounding, backend=backend)[:, 0]


def _pool_setup(x, kernel, stride, where):
    """(C-contiguous x, kernel, stride, empty output); a stride beyond the input is one window."""
    x = as_numeric(x, "x")
    if x.ndim != 4:
        raise ValueError(f"{where} needs x of shape (B, H, W, C), got {x.shape}")
    if x.dtype not in POOL_DTYPES:
        raise TypeError(f"{where} takes int8, int16, float32 or float64 x, got dtype {x.dtype}")
    kernel = pair_arg(kernel, "kernel", minimum=1)
    stride = kernel if stride is None else pair_arg(stride, "stride", minimum=1)
    b, h, w, c = x.shape
    for size, k, dim in ((h, kernel[0], "height"), (w, kernel[1], "width")):
        if k > size:
            raise ValueError(f"{where}: kernel {dim} {k} is larger than the input {dim} {size}")
    stride = (min(stride[0], h), min(stride[1], w))     # same windows; keeps every index small
    oh = (h - kernel[0]) // stride[0] + 1
    ow = (w - kernel[1]) // stride[1] + 1
    return c_array(x), kernel, stride, np.empty((b, oh, ow, c), dtype=x.dtype)


def _pool1d_input(x, where):
    x = as_numeric(x, "x")
    if x.ndim != 3:
        raise ValueError(f"{where} needs x of shape (B, L, C), got {x.shape}")
    return x[:, None]


def _pool1d_window(kernel, stride):
    kernel = int_arg(kernel, "kernel", minimum=1)
    stride = kernel if stride is None else int_arg(stride, "stride", minimum=1)
    return (1, kernel), (1, stride)
