"""The public kernel API: one-shot layers, pools and element-wise ops, each routed to a backend.

Every function checks all of its arguments before any backend code runs, copies
non-contiguous (or non-native byte order) inputs to C order, and hands the backend
plain C-contiguous arrays as described in ``kernels/protocol.py``; ``backend=None``
uses :func:`~fixedpoint.kernels.registry.default_backend`.  The one-shot layers are
``prepare_<op>(w, ...)(x)``: see :mod:`.layers` for their accumulators (exact int32
for int8 x int8, int64 with an int16 operand) and the epilogue (one rounding, relu,
then the overflow mode).
"""
from __future__ import annotations

from .args import as_numeric
from .layers import prepare_conv1d, prepare_conv2d, prepare_linear
from .pointwise import add, divide, lut, quantize, requantize
from .pools import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d

__all__ = [
    "add", "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "divide", "linear", "lut", "max_pool1d", "max_pool2d",
    "quantize", "requantize",
]


def linear(
    x, w, bias=None, *, shift=None, multiplier=None, rounding="half_even", overflow="saturate", out_dtype=None,
    out_bits=None, relu=False, backend=None, rng=None, stats=None, threads=None,
):
    """y = x @ w.T + bias, then (integers, if ``shift`` or ``multiplier`` is given) requantized.

    ``x`` (M, K) or (K,), ``w`` (N, K); the keywords and accumulators are those of
    :func:`~fixedpoint.kernels.layers.prepare_linear` (int8 x int8 -> exact int32,
    int16 x int16 / int16 x int8 -> exact int64; one rounding in the epilogue).
    """
    x = as_numeric(x, "x")
    if x.ndim not in (1, 2):
        raise ValueError(f"linear needs x of shape (M, K) or (K,) and w of shape (N, K); got x of shape {x.shape}")
    layer = prepare_linear(w, bias, shift=shift, multiplier=multiplier, rounding=rounding, overflow=overflow,
                           out_dtype=out_dtype, out_bits=out_bits, relu=relu, x_dtype=x.dtype, backend=backend,
                           threads=threads)
    return layer(x, rng=rng, stats=stats)


def conv2d(
    x, w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even",
    overflow="saturate", out_dtype=None, out_bits=None, relu=False, backend=None, rng=None, stats=None,
    threads=None,
):
    """2-d convolution (cross-correlation), NHWC: x (B, H, W, C), w (O, KH, KW, C) -> (B, OH, OW, O).

    ``stride`` and ``padding`` are an int or an (h, w) pair; padding is with zeros.  The
    dtypes, accumulators and epilogue of :func:`linear`; computed as im2col (patches in
    x's dtype, at most ~32 MiB at a time) and the backend's GEMM against w reshaped to
    (O, KH*KW*C).
    """
    x = as_numeric(x, "x")
    layer = prepare_conv2d(w, bias, stride=stride, padding=padding, shift=shift, multiplier=multiplier,
                           rounding=rounding, overflow=overflow, out_dtype=out_dtype, out_bits=out_bits, relu=relu,
                           x_dtype=x.dtype, backend=backend, threads=threads)
    return layer(x, rng=rng, stats=stats)


def conv1d(
    x, w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even",
    overflow="saturate", out_dtype=None, out_bits=None, relu=False, backend=None, rng=None, stats=None,
    threads=None,
):
    """1-d convolution, NLC: x (B, L, C), w (O, K, C) -> (B, OL, O); ``stride``/``padding`` ints.

    Runs as :func:`conv2d` with H = 1; same dtypes, accumulators and epilogue.
    """
    x = as_numeric(x, "x")
    layer = prepare_conv1d(w, bias, stride=stride, padding=padding, shift=shift, multiplier=multiplier,
                           rounding=rounding, overflow=overflow, out_dtype=out_dtype, out_bits=out_bits, relu=relu,
                           x_dtype=x.dtype, backend=backend, threads=threads)
    return layer(x, rng=rng, stats=stats)
