"""Compiled forwards on the C backend: steps that one native call (``fxp_plan_run``) runs per forward.

A :class:`PlanBuilder` records steps on per-sample tensors (quantize float input, requantizing
GEMMs and convolutions on prepared C weights, clamps, pools, permute, pad, residual add, lookup
tables, softmax, output); :meth:`PlanBuilder.build` returns a :class:`Plan`.  A plan runs the batch
in tiles of samples whose activations fit an arena of about ``ARENA_BYTES``; the arena (one buffer
per step, per tile) and the GEMM scratch are allocated once per tile size and reused.  Every step
calls the kernels the layer-by-layer path calls, so the results are bit-identical with it; the
saturation count of each counted step lands in its counter slot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .c_backend import CEpilogue, ffi, lib

# Arena of one tile: activations of this many bytes stay in L2 between steps.
ARENA_BYTES = 512 << 10
_ALIGN = 64
_INPUT = -1
_FLOATS = {np.dtype(np.float32): 4, np.dtype(np.float64): 8}
_INTS = (np.dtype(np.int8), np.dtype(np.int16))
_FLOAT64 = np.dtype(np.float64)


class PlanError(ValueError):
    """A plan was called with input it was not compiled for, or its weights changed."""


@dataclass(frozen=True)
class Tensor:
    """One sample's activation in a plan: ``shape`` (without the batch axis), ``dtype``, buffer index
    (``-1``: the call's input)."""

    shape: tuple
    dtype: np.dtype
    buffer: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class PlanBuilder:
    """Records the steps of a plan; input of per-sample ``shape`` and float ``dtype``."""

    def __init__(self, shape, dtype):
        dtype = np.dtype(dtype)
        if dtype not in _FLOATS:
            raise TypeError(f"a plan's input must be float32 or float64, got {dtype}")
        self.input = Tensor(tuple(shape), dtype, _INPUT)
        self.path = lib.fxp_active_path()   # packed weights and scratch sizes hold for this SIMD path only
        self._sample_bytes: list[int] = []   # per buffer: bytes of one sample
        self._steps: list[dict] = []
        self._keep: list = []                # objects the steps point into
        self._gemms: list = []               # (NativeGemm, GEMM rows per sample)
        self.counters: list[str] = []

    # ---------------------------------------------------------------- buffers and steps
    def _buffer(self, shape, dtype) -> Tensor:
        self._sample_bytes.append(math.prod(shape) * np.dtype(dtype).itemsize)
        return Tensor(tuple(shape), np.dtype(dtype), len(self._sample_bytes) - 1)

    def _counter(self, name) -> int:
        if name is None:
            return -1
        if name not in self.counters:
            self.counters.append(name)
        return self.counters.index(name)

    def _step(self, op, x: Tensor, out: Tensor, dim=(), counter=None, **fields) -> Tensor:
        if len(dim) > 16:
            raise ValueError(f"a plan step takes at most 16 dimensions, got {len(dim)}")
        self._steps.append(dict(op=op, src=x.buffer, dst=out.buffer, in_size=x.dtype.itemsize,
                                out_size=out.dtype.itemsize, in_count=x.count, out_count=out.count,
                                dim=tuple(int(v) for v in dim), counter=self._counter(counter), **fields))
        return out

    @staticmethod
    def _check_int(x: Tensor, what: str) -> None:
        if x.dtype not in _INTS:
            raise TypeError(f"{what} needs int8 or int16 activations, got {x.dtype}")

    # ---------------------------------------------------------------- ops
    def quantize(self, x: Tensor, frac: int, bits: int, rounding, out_dtype, counter) -> Tensor:
        """Raw integers saturate(round(x * 2**frac)) in ``bits`` (deterministic ``rounding``)."""
        if x.dtype not in _FLOATS or not 2 <= bits <= 8 * np.dtype(out_dtype).itemsize:
            raise ValueError(f"quantize takes float input into at most the container's bits, got {x.dtype}, {bits}")
        return self._step(lib.FXP_STEP_QUANTIZE, x, self._buffer(x.shape, out_dtype), (frac, bits, rounding.code),
                          counter)

    def gemm(self, x: Tensor, native, counter) -> Tensor:
        """y = requantized x @ w.T over the last axis of x, on ``native`` (:meth:`NativeGemm` weights)."""
        self._check_int(x, "gemm")
        if x.shape[-1] != native.k:
            raise ValueError(f"gemm: x has K={x.shape[-1]} but w has K={native.k}")
        out = self._buffer(x.shape[:-1] + (native.n,), native.out_dtype)
        self._gemms.append((native, x.count // native.k))
        return self._native_step(lib.FXP_STEP_GEMM, x, out, (native.k, native.n), native, counter)

    def conv(self, x: Tensor, native, kernel, stride, padding, counter, conv1d=False) -> Tensor:
        """A convolution on NHWC (or NLC with ``conv1d``) x: patch rows per tile, then the GEMM."""
        self._check_int(x, "conv")
        h, w, c = (1,) + x.shape if conv1d else x.shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if kh * kw * c != native.k or oh < 1 or ow < 1:
            raise ValueError(f"conv: kernel {kernel} x {c} channels does not match w's K={native.k}")
        out = self._buffer((ow, native.n) if conv1d else (oh, ow, native.n), native.out_dtype)
        # no patch rows where the packed int8 or a16w8 GEMM packs its tiles straight from the image
        fused = (native.mode in (lib.FXP_GEMM_PACKED_S8, lib.FXP_GEMM_PACKED_SPLIT)
                 and lib.fxp_conv_packs_tiles(native.kind, c, kh, kw, sw))
        patches = None if fused else self._buffer((oh * ow, native.k), x.dtype).buffer
        self._gemms.append((native, oh * ow))
        return self._native_step(lib.FXP_STEP_CONV, x, out, (h, w, c, kh, kw, sh, sw, ph, pw, oh, ow, native.n),
                                 native, counter, aux=patches)

    def _native_step(self, op, x, out, dim, native, counter, aux=None) -> Tensor:
        self._keep.append(native)
        return self._step(op, x, out, dim, counter, aux=aux, gemm_mode=native.mode, kind=native.kind,
                          threads=native.threads, w=native.w, bias=native.bias, e=native.epilogue)

    def clamp(self, x: Tensor, lo: int, hi: int) -> Tensor:
        self._check_int(x, "clamp")
        return self._step(lib.FXP_STEP_CLAMP, x, self._buffer(x.shape, x.dtype), (lo, hi))

    def pool(self, x: Tensor, kind: str, kernel, stride, rounding=None) -> Tensor:
        """Max (``kind`` "max") or average ("avg", deterministic ``rounding``) pool, no padding, over the
        spatial axes of (H, W, C) or (L, C) x (``kernel``/``stride``: pairs; (1, k) for 1-d)."""
        self._check_int(x, "pool")
        h, w, c = (1,) + x.shape if len(x.shape) == 2 else x.shape
        (kh, kw), (sh, sw) = kernel, stride
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        out = self._buffer((ow, c) if len(x.shape) == 2 else (oh, ow, c), x.dtype)
        if kind == "max":
            return self._step(lib.FXP_STEP_MAXPOOL, x, out, (h, w, c, kh, kw, sh, sw))
        return self._step(lib.FXP_STEP_AVGPOOL, x, out, (h, w, c, kh, kw, sh, sw, rounding.code))

    def avgpool_padded(self, x: Tensor, kernel, stride, pads, rounding) -> Tensor:
        """Average pool whose windows may cover uncounted padding ``pads`` ((begin, end) per spatial axis):
        each window's input elements summed exactly, divided by their count, rounded once."""
        self._check_int(x, "avgpool")
        one_d = len(x.shape) == 2
        h, w, c = (1,) + x.shape if one_d else x.shape
        (kh, kw), (sh, sw) = kernel, stride
        (ph0, ph1), (pw0, pw1) = ((0, 0),) + tuple(pads) if one_d else tuple(pads)
        oh, ow = (h + ph0 + ph1 - kh) // sh + 1, (w + pw0 + pw1 - kw) // sw + 1
        out = self._buffer((ow, c) if one_d else (oh, ow, c), x.dtype)
        return self._step(lib.FXP_STEP_AVGPOOL_PAD, x, out, (h, w, c, kh, kw, sh, sw, ph0, pw0, oh, ow, rounding.code))

    def reshape(self, x: Tensor, shape) -> Tensor:
        """The same buffer seen with another per-sample shape (C order: nothing moves)."""
        if math.prod(shape) != x.count:
            raise ValueError(f"cannot reshape {x.shape} to {shape}")
        return Tensor(tuple(shape), x.dtype, x.buffer)

    def permute(self, x: Tensor, axes) -> Tensor:
        """Per-sample axes permuted (``axes`` of the sample, without the batch axis)."""
        if sorted(axes) != list(range(len(x.shape))) or not 1 <= len(axes) <= 6:
            raise ValueError(f"permute axes {axes} do not permute {len(x.shape)} axes (at most 6)")
        out = self._buffer(tuple(x.shape[a] for a in axes), x.dtype)
        return self._step(lib.FXP_STEP_PERMUTE, x, out, (len(axes),) + tuple(x.shape) + tuple(axes))

    def pad(self, x: Tensor, pads, fill: int) -> Tensor:
        """Spatial axes of (H, W, C) or (L, C) x padded by ``pads`` ((begin, end) per axis) with ``fill``."""
        self._check_int(x, "pad")
        one_d = len(x.shape) == 2
        h, w, c = (1,) + x.shape if one_d else x.shape
        (ph0, ph1), (pw0, pw1) = ((0, 0),) + tuple(pads) if one_d else tuple(pads)
        shape = (w + pw0 + pw1, c) if one_d else (h + ph0 + ph1, w + pw0 + pw1, c)
        return self._step(lib.FXP_STEP_PAD, x, self._buffer(shape, x.dtype), (h, w, c, ph0, ph1, pw0, pw1, fill))

    def add(self, a: Tensor, b: Tensor, a_lshift: int, b_lshift: int, epilogue, counter) -> Tensor:
        """epilogue((a << a_lshift) + (b << b_lshift)), exact in int64 (``fxp_add_requant``; ``epilogue``: an
        :class:`~fixedpoint.kernels.epilogue.Epilogue` with one shift)."""
        if a.shape != b.shape or a.dtype != b.dtype:
            raise ValueError(f"add needs equal shapes and dtypes, got {a.shape} {a.dtype} and {b.shape} {b.dtype}")
        self._check_int(a, "add")
        struct = CEpilogue(epilogue)
        self._keep.append(struct)
        return self._step(lib.FXP_STEP_ADD, a, self._buffer(a.shape, epilogue.out_dtype), (a_lshift, b_lshift),
                          counter, src2=b.buffer, e=struct.struct)

    def lut(self, x: Tensor, table: np.ndarray) -> Tensor:
        """out = table[x - x_min] (256 entries for int8 x, 65536 for int16)."""
        self._check_int(x, "lut")
        table = np.ascontiguousarray(table)
        if table.shape != (1 << (8 * x.dtype.itemsize),) or table.dtype not in _INTS:
            raise ValueError(f"a lut on {x.dtype} needs {1 << (8 * x.dtype.itemsize)} int8/int16 entries")
        self._keep.append(table)
        return self._step(lib.FXP_STEP_LUT, x, self._buffer(x.shape, table.dtype), table=ffi.from_buffer(table))

    def softmax(self, x: Tensor, row: int, exp_table: np.ndarray, out_frac: int, out_bits: int, rounding,
                out_dtype, counter) -> Tensor:
        """Rows of ``row`` elements: saturate(round_div(exp_table[max - x] << out_frac, sum)) into ``out_bits``."""
        self._check_int(x, "softmax")
        exp_table = np.ascontiguousarray(exp_table, dtype=np.int64)
        if exp_table.size < 1 << (8 * x.dtype.itemsize) or not 0 <= out_frac <= 32 or x.count % row:
            raise ValueError("softmax: the exp table must cover every difference of the input container, "
                             "0 <= out_frac <= 32 and the rows must tile the sample")
        if np.dtype(out_dtype) != x.dtype:
            raise ValueError(f"softmax writes its input's dtype {x.dtype}, got out_dtype {out_dtype}")
        self._keep.append(exp_table)
        return self._step(lib.FXP_STEP_SOFTMAX, x, self._buffer(x.shape, x.dtype),
                          (row, out_frac, rounding.code, out_bits), counter, table=ffi.from_buffer(exp_table))

    def build(self, result: Tensor, frac: int, threads: int = 1) -> "Plan":
        """The plan ending in ``result``: float64 raw * 2**-frac, or the raw integers.  With ``threads`` > 1 a
        batch of several tiles splits its tiles over threads (each its own arena); a single tile splits its
        GEMMs (their own ``threads``).  Results are identical for any count."""
        self._check_int(result, "output")
        steps = self._steps + [dict(op=lib.FXP_STEP_OUTPUT, src=result.buffer, dst=_INPUT, in_size=result.dtype.itemsize,
                                    out_size=8, in_count=result.count, out_count=result.count, dim=(frac,),
                                    counter=-1)]
        return Plan(self.input, result, steps, list(self._sample_bytes), list(self._gemms), list(self._keep),
                    list(self.counters), self.path, threads)


@dataclass(frozen=True)
class NativeGemm:
    """How a plan calls prepared C weights: ``mode`` (FXP_GEMM_*), ``kind`` code, pointers to the (packed)
    weights, bias and epilogue struct, ``threads``, and the scratch bytes of ``rows`` rows."""

    mode: int
    kind: int
    k: int
    n: int
    out_dtype: np.dtype
    w: object
    bias: object
    epilogue: object
    threads: int
    scratch_bytes: object
    owner: object


class Plan:
    """A compiled forward; ``plan.run(x, raw)`` -> (y, counts) or None when it must be compiled again."""

    def __init__(self, input_: Tensor, result: Tensor, steps, sample_bytes, gemms, keep, counters, path, threads):
        self.input, self.result, self.counters, self.path, self.threads = input_, result, counters, path, threads
        self._steps, self._sample_bytes, self._gemms, self._keep = steps, sample_bytes, gemms, keep
        self._by_batch: dict[int, tuple] = {}    # batch -> (its _TilePlan, the output shape)
        self._by_tile: dict[int, _TilePlan] = {}
        per_sample = sum(_align(b) for b in sample_bytes) or 1
        self.tile_samples = max(1, ARENA_BYTES // per_sample)
        self._result_shape, self._raw_dtype = tuple(result.shape), result.dtype

    def arena_bytes(self, batch: int) -> int:
        """Bytes of the arena and GEMM scratch a call on ``batch`` samples uses (allocated once per tile size)."""
        return self._tile_plan(batch)[0].nbytes

    def _tile_of(self, batch: int) -> int:
        tiles = max(1, math.ceil(batch / self.tile_samples), min(self.threads, batch))
        return max(1, math.ceil(batch / tiles))    # equal tiles, none above tile_samples, one per thread at least

    def _scratch_bytes(self, tile: int) -> int:
        return max([int(native.scratch_bytes(tile * rows)) for native, rows in self._gemms] + [64])

    def _tile_plan(self, batch: int) -> tuple:
        """(the _TilePlan of ``batch``'s tile size, made once per size; the output shape of ``batch``)."""
        entry = self._by_batch.get(batch)
        if entry is None:
            tile = self._tile_of(batch)
            tile_plan = self._by_tile.get(tile)
            if tile_plan is None:
                tile_plan = self._by_tile[tile] = _TilePlan(self, tile)
            entry = self._by_batch[batch] = (tile_plan, (batch,) + self._result_shape)
        return entry

    def run(self, x: np.ndarray, raw: bool):
        """y (float64 dequantized, or raw integers) of C-contiguous ``x`` (B >= 1, *input shape) and the overflow
        count of every counter (a view of a buffer the next call reuses); None when the plan was compiled on
        another SIMD path than the active one (compile again).  Raises PlanError for NaN in x (nothing is returned)."""
        batch = x.shape[0]
        tile_plan, shape = self._by_batch.get(batch) or self._tile_plan(batch)
        y = np.empty(shape, self._raw_dtype if raw else _FLOAT64)
        status = lib.fxp_plan_run(tile_plan.call, ffi.from_buffer(x), ffi.from_buffer(y), raw, batch)
        if status == 0:
            return y, tile_plan.counts
        if status == -1:
            raise PlanError(f"x contains {int(np.isnan(x).sum())} NaN value(s); fixed point has no NaN")
        return None


class _TilePlan:
    """The step array, arena, scratch and counters of one tile size."""

    def __init__(self, plan: Plan, tile: int):
        self.tile = tile
        offsets, at = [], 0
        for nbytes in plan._sample_bytes:
            offsets.append(at)
            at += _align(tile * nbytes)
        copies = plan.threads if plan.threads > 1 else 1     # one arena and scratch per thread
        self.arena_stride, self.scratch_stride = _align(at), _align(plan._scratch_bytes(tile))
        self._arena = np.empty(copies * self.arena_stride + _ALIGN, dtype=np.uint8)
        self.arena = ffi.from_buffer(self._arena[-self._arena.ctypes.data % _ALIGN:])
        self._scratch = np.empty(copies * self.scratch_stride + _ALIGN, dtype=np.uint8)
        self.scratch = ffi.from_buffer(self._scratch[-self._scratch.ctypes.data % _ALIGN:])
        self.nbytes = self._arena.nbytes + self._scratch.nbytes
        self._counts = np.zeros((copies + 1 if copies > 1 else 1) * (len(plan.counters) + 1), dtype=np.int64)
        self.counts = self._counts[:len(plan.counters)]
        self.steps = ffi.new("fxp_plan_step[]", len(plan._steps))
        self.call = ffi.new("fxp_plan *")
        call = self.call
        call.steps, call.n_steps, call.tile, call.n_counters = self.steps, len(plan._steps), tile, len(plan.counters)
        call.arena, call.arena_stride, call.scratch, call.scratch_stride = (self.arena, self.arena_stride, self.scratch,
                                                                            self.scratch_stride)
        call.counts, call.path, call.threads = ffi.from_buffer("int64_t[]", self._counts), plan.path, plan.threads
        for target, fields in zip(self.steps, plan._steps):
            for name, value in fields.items():
                if name in ("src", "dst", "src2", "aux"):
                    value = _INPUT if value is None or value == _INPUT else offsets[value]
                if name == "dim":
                    for i, v in enumerate(value):
                        target.dim[i] = v
                elif value is not None:
                    setattr(target, name, value)


def native_gemm(weights, kind, k: int, n: int, out_dtype) -> NativeGemm:
    """The plan's view of C backend prepared weights (``c_backend.prepare_gemm``'s result, fused epilogue)."""
    mode, w, bias, owner = weights.native_call()
    return NativeGemm(mode, kind.code, k, n, np.dtype(out_dtype), w, bias, weights.epilogue_struct, weights.threads,
                      weights.scratch_bytes_of(k, n), (weights, owner))
