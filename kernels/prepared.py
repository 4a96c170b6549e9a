"""Layers with their weights bound once: ``prepare_linear``, ``prepare_conv1d``, ``prepare_conv2d``.

``kernels.linear`` and ``kernels.conv*`` validate every argument (and the C backend packs
the weights) on every call.  A prepared layer validates ``w``, ``bias`` and the epilogue
keywords once, lets the backend pack the weights once (``prepare_gemm`` of
``kernels/protocol.py``), and per call checks only ``x``.  Results, overflow counts
(``stats=``), errors and the routing of stochastic roundings and ``overflow="error"``
are those of the unprepared functions with the same arguments: accumulators are exact
(int32 for int8 x int8, int64 with an int16 operand), requantization rounds once, then
relu, then the overflow mode.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import registry
from .api import (
    _accumulate, _as_numeric, _check_accumulator_bound, _check_bias, _epilogue, _finish, _gemm_accumulator,
    _im2col_chunks, _int, _pair, _reference_requant, _generator,
)

__all__ = ["PreparedConv", "PreparedLinear", "prepare_conv1d", "prepare_conv2d", "prepare_linear"]


def prepare_linear(
    w, bias=None, *, shift=None, multiplier=None, rounding="half_even", overflow="saturate", out_dtype=None,
    out_bits=None, relu=False, x_dtype=None, backend=None,
):
    """``f = prepare_linear(w, ...)``; ``f(x, rng=None, stats=None)`` equals ``kernels.linear(x, w, ...)``.

    The keywords are those of :func:`~fixedpoint.kernels.linear`; ``x_dtype`` (default:
    ``w``'s dtype) is the one input dtype the layer accepts (int16 for int16 x int8).
    """
    return PreparedLinear(_Gemm(w, bias, "linear", x_dtype, backend,
                                (shift, multiplier, rounding, overflow, out_dtype, out_bits, relu)))


def prepare_conv2d(
    w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even", overflow="saturate",
    out_dtype=None, out_bits=None, relu=False, x_dtype=None, backend=None,
):
    """``f(x, rng=None, stats=None)`` equals ``kernels.conv2d(x, w, ...)`` (NHWC x, w (O, KH, KW, C))."""
    w = _as_numeric(w, "w")
    if w.ndim != 4:
        raise ValueError(f"conv2d needs w of shape (O, KH, KW, C), got {w.shape}")
    return PreparedConv(w, bias, _pair(stride, "stride", minimum=1), _pair(padding, "padding", minimum=0),
                        "conv2d", x_dtype, backend, (shift, multiplier, rounding, overflow, out_dtype, out_bits, relu))


def prepare_conv1d(
    w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even", overflow="saturate",
    out_dtype=None, out_bits=None, relu=False, x_dtype=None, backend=None,
):
    """``f(x, rng=None, stats=None)`` equals ``kernels.conv1d(x, w, ...)`` (NLC x, w (O, K, C))."""
    w = _as_numeric(w, "w")
    if w.ndim != 3:
        raise ValueError(f"conv1d needs w of shape (O, K, C), got {w.shape}")
    return PreparedConv(w[:, None], bias, (1, _int(stride, "stride", minimum=1)),
                        (0, _int(padding, "padding", minimum=0)), "conv1d", x_dtype, backend,
                        (shift, multiplier, rounding, overflow, out_dtype, out_bits, relu))


class _Gemm:
    """Validated w (N, K), bias and epilogue bound to a backend's prepared weights; runs row blocks of x."""

    def __init__(self, w, bias, where, x_dtype, backend, epilogue_args):
        self.backend = registry.get_backend(backend)
        w = _as_numeric(w, "w")
        if w.ndim != 2:
            raise ValueError(f"{where} needs w of shape (N, K) (conv: (O, KH*KW*C)), got {w.shape}")
        self.x_dtype = w.dtype if x_dtype is None else _dtype(x_dtype)
        self.acc_dtype = _gemm_accumulator(self.x_dtype, w.dtype, where)
        self.n, self.k = w.shape
        self.w = np.ascontiguousarray(w)
        self.bias = _check_bias(bias, self.n, self.acc_dtype)
        _check_accumulator_bound(self.x_dtype, w.dtype, self.acc_dtype, self.k, self.bias)
        shift, multiplier, rounding, overflow, out_dtype, out_bits, relu = epilogue_args
        # A stochastic rounding gets its generator per call; a placeholder seed passes validation here.
        self.epi = _epilogue(self.n, self.x_dtype, self.acc_dtype, shift, multiplier, rounding, overflow, out_dtype,
                             out_bits, relu, 0)
        self.weights = self.backend.prepare_gemm(self.w, self.bias, self.x_dtype)
        self.out_dtype = self.epi.out_dtype
        self._stochastic = self.epi.rounding.is_stochastic
        self._fast = self.epi.requant and not self.epi.on_reference_path(self.backend)
        if self._fast:
            e = self.epi
            self._fast_args = (e.shift, e.multiplier, e.rounding.code, e.fast_overflow.code, e.out_bits, e.relu)

    def check_x(self, x, ndim, shape_text) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != self.x_dtype and not x.dtype.isnative and x.dtype.newbyteorder("=") == self.x_dtype:
            x = x.astype(self.x_dtype)
        if x.dtype != self.x_dtype:
            raise TypeError(f"x must have dtype {self.x_dtype} (the layer was prepared for it), got {x.dtype}")
        if x.ndim != ndim:
            raise ValueError(f"x must have shape {shape_text}, got {x.shape}")
        return x

    def epilogue_for(self, rng):
        """The epilogue of one call: stochastic roundings take this call's generator."""
        if not self._stochastic:
            return self.epi
        return dataclasses.replace(self.epi, rng=_generator(rng, self.epi.rounding))

    def rows(self, x2, epi, out) -> int:
        """out (rows, N) from C-contiguous x2 (rows, K); returns the overflow count."""
        if self._fast:
            return self.weights.gemm_requant(x2, *self._fast_args, out)
        if not epi.requant:
            self.weights.gemm(x2, out)
            if epi.relu:
                np.maximum(out, 0, out=out)
            return 0
        acc = np.empty(out.shape, dtype=self.acc_dtype)
        self.weights.gemm(x2, acc)
        epi = dataclasses.replace(epi)   # this call's own last_count: the bound epilogue is shared
        out[...] = _reference_requant(acc, epi, epi.overflow, -1)
        return epi.last_count


def _dtype(value) -> np.dtype:
    try:
        return np.dtype(value)
    except TypeError:
        raise TypeError(f"x_dtype={value!r} is not a dtype; accepted: int8, int16, float32, float64") from None


class PreparedLinear:
    """``kernels.linear`` with ``w``, ``bias`` and the epilogue bound; call as ``f(x, rng=None, stats=None)``."""

    def __init__(self, gemm: _Gemm):
        self._gemm = gemm

    @property
    def out_dtype(self) -> np.dtype:
        return self._gemm.out_dtype

    def __call__(self, x, *, rng=None, stats=None):
        g = self._gemm
        x = np.asarray(x)
        single_row = x.ndim == 1
        x2 = g.check_x(x.reshape(1, -1) if single_row else x, 2, f"(M, {g.k}) or ({g.k},)")
        if x2.shape[1] != g.k:
            raise ValueError(f"x has K={x2.shape[1]} columns but w has K={g.k} (w is (N, K), y = x @ w.T)")
        epi = g.epilogue_for(rng)
        out = np.empty((x2.shape[0], g.n), dtype=g.out_dtype)
        if out.size:
            x2 = np.ascontiguousarray(x2)
            count = g.rows(x2, epi, out)
            if count or stats is not None:
                _finish(epi, count, out.size, stats, lambda: _accumulate(g.backend, x2, g.w, g.bias, g.acc_dtype))
        return out.reshape(-1) if single_row else out


class PreparedConv:
    """``kernels.conv2d`` (or ``conv1d``) with ``w``, ``bias``, stride, padding and the epilogue bound."""

    def __init__(self, w, bias, stride, padding, where, x_dtype, backend, epilogue_args):
        self.kernel = w.shape[1:3]
        self.channels = w.shape[3]
        self.stride, self.padding, self.where = stride, padding, where
        for k, dim in zip(self.kernel, ("height", "width")):
            if k < 1:
                raise ValueError(f"{where}: the kernel {dim} must be >= 1")
        self._gemm = _Gemm(w.reshape(w.shape[0], -1), bias, where, x_dtype, backend, epilogue_args)

    @property
    def out_dtype(self) -> np.dtype:
        return self._gemm.out_dtype

    def __call__(self, x, *, rng=None, stats=None):
        g = self._gemm
        conv1d = self.where == "conv1d"
        x = g.check_x(x, 3 if conv1d else 4, "(B, L, C)" if conv1d else "(B, H, W, C)")
        x4 = x[:, None] if conv1d else x
        b, h, wd, c = x4.shape
        if c != self.channels:
            raise ValueError(f"{self.where}: x has C={c} channels but w expects {self.channels} (w is (O, ..., C))")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        for size, k, pad, dim in ((h, kh, ph, "height"), (wd, kw, pw, "width")):
            if k > size + 2 * pad:
                raise ValueError(f"{self.where}: kernel {dim} {k} is larger than the padded input {dim} "
                                 f"{size + 2 * pad}")
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        epi = g.epilogue_for(rng)
        out = np.empty((b, oh, ow, g.n), dtype=g.out_dtype)
        if out.size:
            out_rows = out.reshape(b * oh * ow, g.n)
            def chunks():
                return _im2col_chunks(x4, self.kernel, self.stride, self.padding, (oh, ow))

            count = sum(g.rows(patches, epi, out_rows[rows]) for rows, patches in chunks())

            def full_accumulator():
                acc = np.empty(out_rows.shape, dtype=g.acc_dtype)
                for rows, patches in chunks():
                    g.backend.gemm(patches, g.w, g.bias, acc[rows])
                return acc

            _finish(epi, count, out.size, stats, full_accumulator)
        return out[:, 0] if conv1d else out
