"""Layers with their weights bound once: ``prepare_linear``, ``prepare_conv1d``, ``prepare_conv2d``.

A prepared layer validates ``w``, ``bias`` and the epilogue keywords once, lets the
backend pack the weights once (``prepare_gemm`` of ``kernels/protocol.py``), and per
call checks only ``x``.  Accumulators are exact (int32 for int8 x int8, int64 with an
int16 operand; float32/float64 for floats), the bias is added to the accumulator, then
requantization rounds once (``y = round(acc * multiplier / 2**shift)``), then relu,
then the overflow mode into ``out_bits``.

Routing: deterministic roundings run the backend's fused ``gemm_requant`` (``overflow=
"error"`` runs ``saturate`` there and, if anything overflowed, recomputes the exact
accumulator so the reference raises the ``OverflowError``); stochastic roundings take
the exact accumulator from the backend's ``gemm`` and requantize it on the reference
path with the call's generator, so every backend gives the same result for one seed.
Convolutions are the backend's im2col (zero-padded patches copied in x's dtype, about
1 MiB at a time, so they are still in L2 for the GEMM) into the same GEMM, against
w reshaped to (O, KH*KW*C).
"""
from __future__ import annotations

import numpy as np

from . import registry
from .args import as_numeric, bool_arg, c_array, dtype_arg, generator, int_arg, pair_arg, threads_arg
from .epilogue import Epilogue, make_epilogue
from .kinds import GemmKind, check_accumulator_bound, gemm_kind
from .modes import Overflow, as_overflow, as_rounding

__all__ = ["PreparedConv", "PreparedLinear", "prepare_conv1d", "prepare_conv2d", "prepare_linear"]

_IM2COL_CHUNK_BYTES = 2**20


def prepare_linear(
    w, bias=None, *, shift=None, multiplier=None, rounding="half_even", overflow="saturate", out_dtype=None,
    out_bits=None, relu=False, x_dtype=None, backend=None, threads=None,
):
    """``f = prepare_linear(w, ...)``; ``f(x, rng=None, stats=None)`` is y = x @ w.T + bias, requantized.

    ``w`` (N, K), ``bias`` (N,) in the accumulator dtype (or one that casts to it
    safely); ``x`` (M, K) or (K,) (a single row: the result is then (N,)).  Accepted
    (x, w) dtypes: float32/float32 and float64/float64 (accumulate and return in that
    dtype; ``shift``/``multiplier``/``out_dtype``/``out_bits`` must be None),
    int8/int8 (exact int32 accumulator, K <= 65536), int16/int16 and int16/int8 (exact
    int64 accumulator), uint16/uint16 (bf16 bit patterns: exact products, float32 sums and
    result, a float32 bias; no epilogue, like the float kinds); ``x_dtype`` (default: ``w``'s dtype) is the one input dtype
    the layer accepts.  Integer inputs with ``shift`` and ``multiplier`` both None
    return the exact accumulator.  Otherwise ``y = round(acc * multiplier / 2**shift)``
    (``shift`` in [-63, 127], absent meaning 0; ``multiplier`` in [1, 2**31-1], absent
    meaning 1; each a scalar or one entry per output column), exact at any width; then
    ``relu``; then ``overflow`` into ``out_bits`` (default: all bits of ``out_dtype``;
    ``out_dtype`` default int8 for int8 inputs, int16 otherwise).  ``stats`` (anything
    with ``add(overflowed, total)``) receives the overflow count of requantized results.
    ``threads`` (default ``$FXBENCH_THREADS``, else 1): how many threads the backend may split
    a call over (the C backend's integer GEMMs; results are identical for any count).
    """
    gemm = BoundGemm(as_numeric(w, "w"), bias, "linear", x_dtype, backend,
                     dict(shift=shift, multiplier=multiplier, rounding=rounding, overflow=overflow,
                          out_dtype=out_dtype, out_bits=out_bits, relu=relu), threads)
    return PreparedLinear(gemm)


def prepare_conv2d(
    w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even", overflow="saturate",
    out_dtype=None, out_bits=None, relu=False, x_dtype=None, backend=None, threads=None,
):
    """2-d convolution (cross-correlation), NHWC: x (B, H, W, C), w (O, KH, KW, C) -> (B, OH, OW, O).

    ``stride`` and ``padding`` are an int or an (h, w) pair; padding is with zeros.
    The same dtypes, accumulators, epilogue keywords and ``threads`` as :func:`prepare_linear`.
    """
    w = as_numeric(w, "w")
    if w.ndim != 4:
        raise ValueError(f"conv2d needs w of shape (O, KH, KW, C), got {w.shape}")
    return PreparedConv(w, bias, pair_arg(stride, "stride", minimum=1), pair_arg(padding, "padding", minimum=0),
                        "conv2d", x_dtype, backend,
                        dict(shift=shift, multiplier=multiplier, rounding=rounding, overflow=overflow,
                             out_dtype=out_dtype, out_bits=out_bits, relu=relu), threads)


def prepare_conv1d(
    w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even", overflow="saturate",
    out_dtype=None, out_bits=None, relu=False, x_dtype=None, backend=None, threads=None,
):
    """1-d convolution, NLC: x (B, L, C), w (O, K, C) -> (B, OL, O); ``stride``/``padding`` ints.

    Runs as :func:`prepare_conv2d` with H = 1; same dtypes, accumulators and epilogue.
    """
    w = as_numeric(w, "w")
    if w.ndim != 3:
        raise ValueError(f"conv1d needs w of shape (O, K, C), got {w.shape}")
    return PreparedConv(w[:, None], bias, (1, int_arg(stride, "stride", minimum=1)),
                        (0, int_arg(padding, "padding", minimum=0)), "conv1d", x_dtype, backend,
                        dict(shift=shift, multiplier=multiplier, rounding=rounding, overflow=overflow,
                             out_dtype=out_dtype, out_bits=out_bits, relu=relu), threads)


class BoundGemm:
    """Validated w (N, K), bias and epilogue bound to a backend's prepared weights; runs row blocks of x."""

    def __init__(self, w: np.ndarray, bias, where: str, x_dtype, backend, epilogue_keywords: dict, threads=None):
        self.backend_name = registry.default_backend() if backend is None else backend
        self.threads = threads_arg(threads)
        if w.ndim != 2:
            raise ValueError(f"{where} needs w of shape (N, K) (conv: (O, KH*KW*C)), got {w.shape}")
        x_dtype = w.dtype if x_dtype is None else dtype_arg(x_dtype, "x_dtype",
                                                            "int8, int16, float32, float64, uint16 (bf16)")
        self.kind: GemmKind = gemm_kind(x_dtype, w.dtype, where)
        self.n, self.k = w.shape
        self.w = c_array(w)
        self.bias = _check_bias(bias, self.n, self.kind.acc)
        bias_bound = 0 if self.bias is None or self.bias.size == 0 else max(-int(self.bias.min()),
                                                                            int(self.bias.max()))
        check_accumulator_bound(self.kind, self.k, bias_bound)
        self.epi, self.relu, self.rounding = _epilogue(self.kind, self.n, **epilogue_keywords)
        self.out_dtype = self.kind.acc if self.epi is None else self.epi.out_dtype
        self.fused = self.epi is not None and not self.rounding.is_stochastic
        self._bind()

    def _bind(self) -> None:
        self.backend = registry.get_backend(self.backend_name)
        if self.k == 0:
            self.weights = _NoProducts(self.backend, self.bias, self.kind, self.epi if self.fused else None)
        else:
            self.weights = self.backend.prepare_gemm(self.w, self.bias, self.kind, self.epi if self.fused else None,
                                                     self.threads)

    def __getstate__(self):
        """Copies and pickles keep the validated arrays and the backend's name; weights are packed again."""
        state = dict(self.__dict__)
        del state["backend"], state["weights"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    def check_x(self, x, ndim, shape_text) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype is not self.kind.x and x.dtype != self.kind.x:     # identity first: the common, fast case
            if not x.dtype.isnative and x.dtype.newbyteorder("=") == self.kind.x:
                x = x.astype(self.kind.x)
            else:
                raise TypeError(f"x must have dtype {self.kind.x} (the layer was prepared for it), got {x.dtype}")
        if x.ndim != ndim:
            raise ValueError(f"x must have shape {shape_text}, got {x.shape}")
        return x

    def call_rng(self, rng):
        """The generator of one call (stochastic roundings need one; checked before any work)."""
        return generator(rng, self.rounding) if self.epi is not None and not self.fused else None

    def rows(self, x2, rng, out) -> int:
        """out (rows, N) from C-contiguous x2 (rows, K); returns the overflow count."""
        if self.fused:
            return self.weights.gemm_requant(x2, out)
        if self.epi is None:
            self.weights.gemm(x2, out)
            if self.relu:
                np.maximum(out, 0, out=out)
            return 0
        acc = np.empty(out.shape, dtype=self.kind.acc)
        self.weights.gemm(x2, acc)
        out[...], count = self.epi.reference(acc, rng)
        return count

    def accumulate(self, x2) -> np.ndarray:
        acc = np.empty((x2.shape[0], self.n), dtype=self.kind.acc)
        self.weights.gemm(x2, acc)
        return acc

    def finish(self, count, size, stats, full_accumulator) -> None:
        """Raise for ``overflow="error"`` (via the reference, same message) and report to ``stats``."""
        if self.epi is None:
            return
        if count and self.epi.overflow is Overflow.ERROR:
            self.epi.reference(full_accumulator())
        if stats is not None:
            stats.add(int(count), int(size))


class _NoProducts:
    """The weights of a K = 0 layer: the accumulator is the bias alone (0 without one)."""

    def __init__(self, backend, bias, kind: GemmKind, epi: Epilogue | None):
        self._backend, self._bias, self._kind, self._epi = backend, bias, kind, epi

    def gemm(self, x, out) -> None:
        out[...] = 0 if self._bias is None else self._bias

    def gemm_requant(self, x, out) -> int:
        acc = np.zeros(out.shape, dtype=self._kind.acc)
        self.gemm(x, acc)
        return self._backend.requant(acc, self._epi, out)


def _epilogue(kind: GemmKind, n: int, *, shift, multiplier, rounding, overflow, out_dtype, out_bits, relu):
    """(Epilogue or None, relu, rounding): None for float kinds and for the exact integer accumulator."""
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    relu = bool_arg(relu, "relu")
    if not kind.integer:
        for name, value in (("shift", shift), ("multiplier", multiplier), ("out_dtype", out_dtype),
                            ("out_bits", out_bits)):
            if value is not None:
                raise ValueError(f"{name} must be None for float inputs ({kind.acc}); requantization is integer only")
        return None, relu, rounding
    if shift is None and multiplier is None:
        for name, value in (("out_dtype", out_dtype), ("out_bits", out_bits)):
            if value is not None:
                raise ValueError(f"{name} needs shift= or multiplier=: without them the exact {kind.acc} "
                                 "accumulator is returned")
        return None, relu, rounding
    epi = make_epilogue(n, shift, multiplier, rounding, overflow, out_dtype, out_bits, relu, kind.default_out_dtype)
    return epi, relu, rounding


def _check_bias(bias, n, acc_dtype):
    """Bias (N,) in the accumulator dtype (or a dtype of the same kind that casts to it safely)."""
    if bias is None:
        return None
    bias = as_numeric(bias, "bias")
    if bias.dtype.kind != acc_dtype.kind or not np.can_cast(bias.dtype, acc_dtype, "safe"):
        raise TypeError(f"bias must be in the accumulator dtype {acc_dtype} (or safely castable to it), "
                        f"got {bias.dtype}")
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},) (one per output channel), got {bias.shape}")
    return c_array(bias, acc_dtype)


class PreparedLinear:
    """:func:`prepare_linear`'s layer; call as ``f(x, rng=None, stats=None)``."""

    def __init__(self, gemm: BoundGemm):
        self._gemm = gemm
        self._x_shapes = f"(M, {gemm.k}) or ({gemm.k},)"     # for check_x's message

    @property
    def out_dtype(self) -> np.dtype:
        return self._gemm.out_dtype

    @property
    def bound(self) -> BoundGemm:
        """The validated weights and epilogue bound to the backend's prepared weights."""
        return self._gemm

    def __call__(self, x, *, rng=None, stats=None):
        g = self._gemm
        x = np.asarray(x)
        single_row = x.ndim == 1
        x2 = g.check_x(x.reshape(1, -1) if single_row else x, 2, self._x_shapes)
        if x2.shape[1] != g.k:
            raise ValueError(f"x has K={x2.shape[1]} columns but w has K={g.k} (w is (N, K), y = x @ w.T)")
        rng = g.call_rng(rng)
        out = np.empty((x2.shape[0], g.n), dtype=g.out_dtype)
        if out.size:
            x2 = c_array(x2)
            count = g.rows(x2, rng, out)
            if count or stats is not None:
                g.finish(count, out.size, stats, lambda: g.accumulate(x2))
        return out.reshape(-1) if single_row else out


class PreparedConv:
    """:func:`prepare_conv2d` / :func:`prepare_conv1d`'s layer; call as ``f(x, rng=None, stats=None)``."""

    def __init__(self, w, bias, stride, padding, where, x_dtype, backend, epilogue_keywords, threads=None):
        o, kh, kw, c = w.shape
        for k, dim in zip((kh, kw), ("height", "width")):
            if k < 1:
                raise ValueError(f"{where}: the kernel {dim} must be >= 1")
        self.kernel, self.channels = (kh, kw), c
        self.stride, self.padding, self.where = stride, padding, where
        self._gemm = BoundGemm(w.reshape(o, kh * kw * c), bias, where, x_dtype, backend, epilogue_keywords, threads)

    @property
    def out_dtype(self) -> np.dtype:
        return self._gemm.out_dtype

    def _fused(self, x4, out_hw, out_rows):
        """The requantized conv by the backend's own patch packing (``conv_requant`` of the prepared weights),
        or None where there is none (float and exact-accumulator layers, other backends and paths)."""
        conv = getattr(self._gemm.weights, "conv_requant", None) if self._gemm.fused else None
        if conv is None:
            return None
        return _fused_chunks(conv, x4, self.kernel, self.stride, self.padding, out_hw, out_rows)

    @property
    def bound(self) -> BoundGemm:
        """The validated (O, KH*KW*C) weights and epilogue bound to the backend's prepared weights."""
        return self._gemm

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
        rng = g.call_rng(rng)
        out = np.empty((b, oh, ow, g.n), dtype=g.out_dtype)
        if out.size:
            out_rows = out.reshape(b * oh * ow, g.n)

            def chunks():
                return im2col_chunks(c_array(x4), self.kernel, self.stride, self.padding, (oh, ow), g.backend)

            count = self._fused(c_array(x4), (oh, ow), out_rows)
            if count is None:
                count = sum(g.rows(patches, rng, out_rows[rows]) for rows, patches in chunks())

            def full_accumulator():
                acc = np.empty(out_rows.shape, dtype=g.kind.acc)
                for rows, patches in chunks():
                    acc[rows] = g.accumulate(patches)
                return acc

            g.finish(count, out.size, stats, full_accumulator)
        return out[:, 0] if conv1d else out


def _fused_chunks(conv, x, kernel, stride, padding, out_hw, out_rows):
    """``conv`` (a backend's ``conv_requant``) over chunks of whole images whose patch rows stay under
    ``_IM2COL_CHUNK_BYTES`` (its scratch then does too); the overflow count, or None when the backend has
    no fused packing for x or one image's patch rows exceed a chunk (then the caller builds patch rows)."""
    b, _, _, c = x.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    image_bytes = oh * ow * kh * kw * c * x.itemsize
    if image_bytes > _IM2COL_CHUNK_BYTES:
        return None
    step = max(1, _IM2COL_CHUNK_BYTES // max(1, image_bytes))
    total = 0
    for b0 in range(0, b, step):
        b1 = min(b, b0 + step)
        count = conv(x[b0:b1], kernel, stride, padding, out_hw, out_rows[b0 * oh * ow:b1 * oh * ow])
        if count is None:       # decided by the path and the channels alone: the first chunk
            return None
        total += count
    return total


def im2col_chunks(x, kernel, stride, padding, out_hw, backend):
    """Yield (row slice of the (B*OH*OW, O) output, patches (rows, KH*KW*C) in x's dtype) from ``backend.im2col``.

    Whole images are grouped while their patches stay under ``_IM2COL_CHUNK_BYTES`` (so a chunk's patches are
    still in cache when the GEMM reads them); a single image too large for that is cut into bands of output
    rows.  Patch columns are ordered (kh, kw, c), matching w.reshape(O, KH*KW*C).  Every chunk reuses the
    first one's buffer: the caller consumes each before asking for the next.
    """
    b, _, _, c = x.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    row_bytes = max(1, kh * kw * c * x.itemsize)
    rows_per_chunk = max(1, _IM2COL_CHUNK_BYTES // row_bytes)
    images_per_chunk = max(1, rows_per_chunk // (oh * ow))
    bands_per_chunk = max(1, min(oh, rows_per_chunk // ow))
    buffer = None   # one allocation for every chunk: each is consumed before the next is made
    for b0 in range(0, b, images_per_chunk):
        b1 = min(b, b0 + images_per_chunk)
        band = oh if b1 - b0 > 1 else bands_per_chunk
        for i0 in range(0, oh, band):
            i1 = min(oh, i0 + band)
            n_rows = (b1 - b0) * (i1 - i0) * ow
            if buffer is None:
                buffer = np.empty(n_rows * kh * kw * c, dtype=x.dtype)
            patches = buffer[:n_rows * kh * kw * c].reshape(n_rows, kh * kw * c)
            backend.im2col(x[b0:b1], kernel, stride, padding, out_hw, (i0, i1), patches)
            first = (b0 * oh + i0) * ow
            yield slice(first, first + n_rows), patches
