"""The C backend: cffi bindings to ``kernels/c`` implementing ``kernels/protocol.py``.

Integer results are bit-identical to the reference backend.  int8 x int8 sums
accumulate in int32, anything with an int16 operand in int64, bf16 x bf16 (uint16 bit
patterns) in float32 (vdpbf16ps where the CPU has AVX512_BF16, see ``kernels/c/fxp_gemm_bf16.c``);
requantization (one
rounding of the exact rational ``acc * multiplier / 2**shift``, then relu, then the
overflow mode) happens in C, fused per block in ``gemm_requant``.  The SIMD path
(AVX-512 VNNI, AVX-VNNI, AVX2 or portable C) is chosen at run time from CPUID; it can be forced
with :func:`force_path` or the environment variable ``FXBENCH_C_SIMD`` (read at import).
Scratch memory (packed weight strips, row tiles) is allocated here with numpy, so
``tracemalloc`` sees it.  Raises ImportError when the extension was not built.
The environment variable ``FXBENCH_C_EXTENSION`` (read at import) names another build
of the cffi extension to load instead of ``fixedpoint.kernels._fxp_c``, such as the
AddressSanitizer build CI runs the C tests against.
"""
from __future__ import annotations

import importlib
import os
import threading
import time

import numpy as np

from .kinds import gemm_kind

EXTENSION = os.environ.get("FXBENCH_C_EXTENSION", "").strip() or f"{__package__}._fxp_c"
try:
    _extension = importlib.import_module(EXTENSION)
except ImportError as exc:
    raise ImportError(f"the C extension {EXTENSION!r} (see FXBENCH_C_EXTENSION) cannot be imported: {exc}") from exc
ffi, lib = _extension.ffi, _extension.lib

NAME = "c"
ENV_VAR = "FXBENCH_C_SIMD"
# Each path runs wherever the next one does; "avxvnni" is the AVX2 path with the int8 GEMM on 256-bit
# vpdpbusd (VEX-encoded where the CPU has AVX-VNNI, else its EVEX twin on an AVX-512 VNNI CPU).
PATHS = ("portable", "avx2", "avxvnni", "avx512vnni")

_CTYPES = {np.dtype(np.float32): "float *", np.dtype(np.float64): "double *", np.dtype(np.int8): "int8_t *",
           np.dtype(np.int16): "int16_t *", np.dtype(np.int32): "int32_t *", np.dtype(np.int64): "int64_t *",
           np.dtype(np.uint16): "uint16_t *"}
_POOL_DTYPES = {
    np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 3,
    np.dtype(np.float32): 4, np.dtype(np.float64): 5, np.dtype(np.uint8): 6, np.dtype(np.uint16): 7,
    np.dtype(np.uint32): 8, np.dtype(np.uint64): 9,
}


def simd_path() -> str:
    """The SIMD path the kernels run: "avx512vnni", "avxvnni", "avx2" or "portable"."""
    return PATHS[lib.fxp_active_path()]


def supported_paths() -> list[str]:
    """Every path this CPU can run, portable first."""
    return [name for code, name in enumerate(PATHS) if lib.fxp_path_supported(code)]


def force_path(name: str | None) -> None:
    """Run the kernels on path ``name`` (one of :data:`PATHS`); ``None`` restores the best path."""
    code = lib.fxp_best_path() if name is None else _path_code(name)
    if lib.fxp_set_path(code) != 0:
        raise ValueError(f"SIMD path {name!r} is not supported on this CPU; supported: {supported_paths()}")


def _path_code(name) -> int:
    if name not in PATHS:
        raise ValueError(f"SIMD path {name!r} is unknown; accepted: {', '.join(PATHS)} (or None for the best)")
    return PATHS.index(name)


def bf16_supported() -> bool:
    """Whether this CPU runs vdpbf16ps (AVX512_BF16): the bf16 GEMM uses it on the avx512vnni path."""
    return bool(lib.fxp_bf16_supported())


def peak_gops(seconds: float = 0.2) -> dict[str, float]:
    """This machine's single-thread peak in GOPS (a multiply-add counts 2): ``"fp32_fma"``
    (512-bit FMA if available), ``"int8_dot"`` (the active path's int8 instruction: vpdpbusd 512-bit or
    256-bit, else an AVX2 chain) and, where
    AVX512_BF16 is supported, ``"bf16_dot"`` (vdpbf16ps), each the best of a few timed runs of a
    dependency-free C loop."""
    peaks = {"fp32_fma": _probe(lib.fxp_peak_fma_f32, seconds), "int8_dot": _probe(lib.fxp_peak_dot_s8, seconds)}
    if bf16_supported():
        peaks["bf16_dot"] = _probe(lib.fxp_peak_dot_bf16, seconds)
    return peaks


def _probe(fn, seconds) -> float:
    iters = 1 << 16
    while True:
        start = time.perf_counter()
        fn(iters)
        if time.perf_counter() - start > seconds / 10:
            break
        iters *= 4
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        ops = fn(iters)
        best = max(best, ops / (time.perf_counter() - start))
    return best / 1e9


def _ptr(ctype: str, array: np.ndarray | None):
    return ffi.NULL if array is None else ffi.cast(ctype, array.ctypes.data)


class CEpilogue:
    """An :class:`~fixedpoint.kernels.epilogue.Epilogue` as the ``fxp_epilogue`` struct of ``fxp.h``
    (made once per prepared layer; holds its parameter arrays alive)."""

    def __init__(self, epilogue):
        self._shift = np.ascontiguousarray(epilogue.shift, dtype=np.int32)
        self._mult = None if epilogue.multiplier is None else np.ascontiguousarray(epilogue.multiplier,
                                                                                  dtype=np.int64)
        e = self.struct = ffi.new("fxp_epilogue *")
        e.shift = ffi.from_buffer("int32_t[]", self._shift)
        e.mult = ffi.NULL if self._mult is None else ffi.from_buffer("int64_t[]", self._mult)
        e.rounding, e.overflow = epilogue.rounding.code, epilogue.fast_overflow.code
        e.out_bits, e.relu, e.out_size = epilogue.out_bits, int(epilogue.relu), epilogue.out_dtype.itemsize
        lib.fxp_epilogue_init(e)


_SMALL_SCRATCH_BYTES = 1 << 16


class _SmallScratch(threading.local):
    """One reusable scratch buffer per thread for calls needing at most 64 KiB (batch-1 layers), so a
    small call does not pay for an allocation; larger scratch is allocated per call (tracemalloc sees it)."""

    def __init__(self):
        self.buffer = np.empty(_SMALL_SCRATCH_BYTES, dtype=np.uint8)
        self.pointer = ffi.from_buffer(self.buffer)


_small_scratch = _SmallScratch()


def _scratch_pointer(nbytes: int):
    """A cffi pointer to ``nbytes`` of scratch (and the array that owns it, or None for the per-thread one)."""
    if nbytes <= _SMALL_SCRATCH_BYTES:
        return _small_scratch.pointer, None
    owner = np.empty(nbytes, dtype=np.uint8)
    return ffi.from_buffer(owner), owner


def _gemm_call(kind, x, w, bias, out, scratch) -> None:
    m, k = x.shape
    fn = getattr(lib, f"fxp_gemm_{kind.name}")
    fn(_ptr(_CTYPES[kind.x], x), _ptr(_CTYPES[kind.w], w), _ptr(_CTYPES[kind.acc], bias), _ptr(_CTYPES[kind.acc], out),
       m, w.shape[0], k, scratch)


def gemm(x, w, bias, out) -> None:
    """out[M, N] = x[M, K] @ w[N, K].T + bias[N]; int32 acc for int8 x int8, int64 with int16, float32 for
    bf16 bit patterns."""
    kind = gemm_kind(x.dtype, w.dtype)
    m, k = x.shape
    if kind.name == "bf16":   # packs w into its scratch
        nbytes = lib.fxp_gemm_bf16_scratch_bytes(m, w.shape[0], k, 0)
    else:
        nbytes = lib.fxp_gemm_scratch_bytes(kind.code, m, w.shape[0], k)
    scratch, _owner = _scratch_pointer(int(nbytes))
    _gemm_call(kind, x, w, bias, out, scratch)


def prepare_gemm(w, bias, kind, epilogue, threads=1):
    """int8 x int8, int16 activations and bf16: ``w`` packed (per SIMD path, on first use) into the kernels'
    layouts, the packed integer GEMMs split over ``threads`` OpenMP threads; float kinds: ``w`` packed once
    into transposed strips (one thread).  The epilogue becomes its C struct once."""
    if kind.name == "s8":
        return PackedInt8Weights(w, bias, epilogue, threads)
    if kind.name == "bf16":
        return PackedBf16Weights(w, bias)
    if kind.x == np.int16:
        return PackedSplitWeights(w, bias, kind, epilogue, threads)
    if kind.name in ("f32", "f64"):
        return PackedFloatWeights(w, bias, kind)
    return CWeights(w, bias, kind, epilogue)


def openmp() -> bool:
    """Whether the library was built with OpenMP (else ``threads`` > 1 runs on one thread)."""
    return bool(lib.fxp_openmp())


class CWeights:
    """``w`` and ``bias`` as stored, with the epilogue's struct, for the kinds without a packed layout."""

    def __init__(self, w, bias, kind, epilogue):
        self.w, self.bias, self.kind = w, bias, kind
        self._epilogue = None if epilogue is None else CEpilogue(epilogue)

    threads = 1

    @property
    def epilogue_struct(self):
        """The ``fxp_epilogue *`` of the fused epilogue (None without one)."""
        return None if self._epilogue is None else self._epilogue.struct

    def native_call(self):
        """(FXP_GEMM_* mode, weights pointer, bias pointer, the array owning the weights) of a compiled plan's
        GEMM step (kernels/c_plan.py); the plan keeps the owner alive, so a repacked layer never frees what a
        plan points to (the plan's call then reports the path mismatch)."""
        return lib.FXP_GEMM_PLAIN, ffi.from_buffer(self.w), _ptr(_CTYPES[self.kind.acc], self.bias), self.w

    def scratch_bytes_of(self, k, n):
        """Scratch bytes of a call on ``rows`` rows, as a function of rows (for a plan's step)."""
        code = self.kind.code
        return lambda rows: lib.fxp_gemm_scratch_bytes(code, rows, n, k)

    def gemm(self, x, out) -> None:
        scratch, _owner = _scratch_pointer(int(lib.fxp_gemm_scratch_bytes(self.kind.code, x.shape[0], self.w.shape[0],
                                                                          x.shape[1])))
        _gemm_call(self.kind, x, self.w, self.bias, out, scratch)

    def gemm_requant(self, x, out) -> int:
        """The integer gemm with requantization fused per cache block; returns the overflow count."""
        m, k = x.shape
        n = self.w.shape[0]
        kind = self.kind
        fn = getattr(lib, f"fxp_gemm_requant_{kind.name}")
        scratch, _owner = _scratch_pointer(int(lib.fxp_gemm_scratch_bytes(kind.code, m, n, k)))
        return int(fn(_ptr(_CTYPES[kind.x], x), _ptr(_CTYPES[kind.w], self.w), _ptr(_CTYPES[kind.acc], self.bias),
                      self._epilogue.struct, ffi.cast("void *", out.ctypes.data), m, n, k, scratch))


class PackedFloatWeights(CWeights):
    """float32/float64 (N, K) weights packed once into the generic kernels' transposed strips
    (``fxp_gemm_float_pack``), so a call does not repack w (the same sums in the same order)."""

    def __init__(self, w, bias, kind):
        super().__init__(w, bias, kind, None)
        n, k = w.shape
        self._packed = np.empty(int(lib.fxp_gemm_float_packed_bytes(kind.code, n, k)), dtype=np.uint8)
        self._packed_ptr = ffi.from_buffer(self._packed)
        lib.fxp_gemm_float_pack(kind.code, ffi.from_buffer(w), n, k, self._packed_ptr)

    def gemm(self, x, out) -> None:
        m, k = x.shape
        fn = lib.fxp_gemm_f32_packed if self.kind.name == "f32" else lib.fxp_gemm_f64_packed
        ctype = _CTYPES[self.kind.x]
        fn(_ptr(ctype, x), self._packed_ptr, _ptr(ctype, self.bias), _ptr(ctype, out), m, self.w.shape[0], k)


class _PackedPerPath(CWeights):
    """Weights packed once for the active SIMD path and packed again when :func:`force_path` changes it;
    a path without a packed layout (``_packed_bytes`` 0) runs the plain kernels on the stored ``w``.  The
    packed GEMMs split over ``threads`` OpenMP threads."""

    def __init__(self, w, bias, kind, epilogue, threads):
        super().__init__(w, bias, kind, epilogue)
        self._n, self.threads = w.shape[0], threads
        self._path = -1
        self._packed = None
        self._packed_ptr = None
        self._scratch_sizes = {}        # rows (a conv: ("conv", rows)) -> scratch bytes of a packed call on this path

    def _packed_for_active_path(self):
        """cffi pointer to the packed buffer of the active path, or None when that path does not pack."""
        path = lib.fxp_active_path()
        if path != self._path:
            n, k = self.w.shape
            size = int(self._packed_bytes(n, k))
            self._packed = np.empty(size, dtype=np.uint8) if size else None
            self._packed_ptr = ffi.from_buffer(self._packed) if size else None
            if size:
                self._pack(n, k, self._packed_ptr)
            self._scratch_sizes = {}
            self._path = path
        return self._packed_ptr

    def _packed_scratch(self, rows, conv=None):
        """Scratch of a packed call on ``rows`` rows of x (pointer, owner), its size asked of the library once
        per row count and path (``scratch_bytes_of``, or for a convolution whose scratch differs, ``conv``
        (rows -> bytes) under a key of its own): a batch-1 layer spent a tenth of its call there."""
        key = rows if conv is None else ("conv", rows)
        nbytes = self._scratch_sizes.get(key)
        if nbytes is None:
            if len(self._scratch_sizes) >= 64:      # calls of ever new row counts: keep the table small
                self._scratch_sizes.clear()
            size = self.scratch_bytes_of(self.w.shape[1], self._n) if conv is None else conv
            nbytes = self._scratch_sizes[key] = int(size(rows))
        return _scratch_pointer(nbytes)


class PackedInt8Weights(_PackedPerPath):
    """int8 (N, K) weights with their int32 bias (``fxp_gemm_s8_pack``: VNNI or AVX2 strips with the bias
    corrections)."""

    def __init__(self, w, bias, epilogue, threads):
        super().__init__(w, bias, gemm_kind(np.int8, np.int8), epilogue, threads)

    def _packed_bytes(self, n, k):
        return lib.fxp_gemm_s8_packed_bytes(n, k)

    def _pack(self, n, k, packed):
        lib.fxp_gemm_s8_pack(ffi.from_buffer("int8_t[]", self.w), _ptr("int32_t *", self.bias), n, k, packed)

    def native_call(self):
        packed = self._packed_for_active_path()
        return super().native_call() if packed is None else (lib.FXP_GEMM_PACKED_S8, packed, ffi.NULL, self._packed)

    def scratch_bytes_of(self, k, n):
        if self._packed_for_active_path() is None:
            return super().scratch_bytes_of(k, n)
        return lambda rows: lib.fxp_gemm_s8_packed_scratch_bytes(rows, n, k)

    def gemm(self, x, out) -> None:
        packed = self._packed_for_active_path()
        if packed is None:
            super().gemm(x, out)
            return
        m, k = x.shape
        scratch, _owner = self._packed_scratch(m)
        _check_packed(lib.fxp_gemm_s8_packed(ffi.from_buffer("int8_t[]", x), packed,
                                             ffi.from_buffer("int32_t[]", out, True), m, self._n, k, scratch,
                                             self.threads))

    def gemm_requant(self, x, out) -> int:
        packed = self._packed_for_active_path()
        if packed is None:
            return super().gemm_requant(x, out)
        m, k = x.shape
        scratch, _owner = self._packed_scratch(m)
        # require_writable positionally: as a keyword, cffi's argument parsing cost 0.3 us per call
        count = lib.fxp_gemm_requant_s8_packed(ffi.from_buffer("int8_t[]", x), packed, self._epilogue.struct,
                                               ffi.from_buffer("char[]", out, True), m, self._n, k, scratch,
                                               self.threads)
        _check_packed(count)
        return count

    def conv_requant(self, x, kernel, stride, padding, out_hw, out) -> int | None:
        """The requantized convolution of C-contiguous NHWC ``x`` into ``out`` (B*OH*OW, N), its patch rows
        packed into the register tiles straight from ``x`` (``fxp_conv_requant_s8_packed``); the overflow
        count, or None where the active path has no such packing (the caller builds the patch rows)."""
        packed = self._packed_for_active_path()
        if packed is None:
            return None
        b, h, w, c = x.shape
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
        scratch, _owner = self._packed_scratch(b * oh * ow)
        count = lib.fxp_conv_requant_s8_packed(ffi.from_buffer("int8_t[]", x), b, h, w, c, kh, kw, sh, sw, ph, pw, oh,
                                               ow, packed, self._epilogue.struct, ffi.from_buffer("char[]", out, True),
                                               self._n, scratch, self.threads)
        if count == lib.FXP_CONV_UNFUSED:
            return None
        _check_packed(count)
        return count


class PackedSplitWeights(_PackedPerPath):
    """Weights of a layer with int16 activations (int16 x int8 or int16 x int16), packed without the int64
    bias for the paths that split x exactly into bytes (``fxp_gemm_split_packed_run``: the int8 VNNI tiles,
    or wrapped vpdpwssd sums recovered against high-byte vpdpbusd sums); K > 65536 runs the plain
    kernels."""

    def __init__(self, w, bias, kind, epilogue, threads):
        super().__init__(w, bias, kind, epilogue, threads)
        self._bias_ptr = _ptr("int64_t *", bias)

    def _packed_bytes(self, n, k):
        return lib.fxp_gemm_split_packed_bytes(self.kind.code, n, k)

    def _pack(self, n, k, packed):
        lib.fxp_gemm_split_pack(self.kind.code, ffi.from_buffer(self.w), n, k, packed)

    def native_call(self):
        packed = self._packed_for_active_path()
        if packed is None:
            return super().native_call()
        return lib.FXP_GEMM_PACKED_SPLIT, packed, self._bias_ptr, (self._packed, self.bias)

    def scratch_bytes_of(self, k, n):
        if self._packed_for_active_path() is None:
            return super().scratch_bytes_of(k, n)
        code = self.kind.code
        return lambda rows: lib.fxp_gemm_split_scratch_bytes(code, rows, k)

    def _run(self, x, acc, qout) -> int:
        """The exact int64 accumulator into ``acc`` (qout None), or the epilogue into ``qout``."""
        m, k = x.shape
        scratch, _owner = self._packed_scratch(m)
        count = lib.fxp_gemm_split_packed_run(
            self.kind.code, ffi.from_buffer("int16_t[]", x), self._packed_ptr, self._bias_ptr,
            ffi.NULL if acc is None else ffi.from_buffer("int64_t[]", acc, True),
            ffi.NULL if qout is None else self._epilogue.struct,
            ffi.NULL if qout is None else ffi.from_buffer("char[]", qout, True), m, self._n, k, scratch,
            self.threads)
        _check_packed(count)
        return count

    def _conv_scratch_bytes(self, rows):
        return lib.fxp_conv_s16s8_scratch_bytes(rows, self._n, self.w.shape[1])

    def conv_requant(self, x, kernel, stride, padding, out_hw, out) -> int | None:
        """The requantized a16w8 convolution of C-contiguous NHWC int16 ``x`` into ``out`` (B*OH*OW, N), both
        byte halves of its patch rows packed into the register tiles straight from ``x``
        (``fxp_conv_requant_s16s8_packed``); the overflow count, or None where the active path has no such
        packing for this geometry or kind (the caller builds the patch rows)."""
        packed = self._packed_for_active_path() if self.kind.name == "s16s8" else None
        if packed is None:
            return None
        b, h, w, c = x.shape
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
        scratch, _owner = self._packed_scratch(b * oh * ow, conv=self._conv_scratch_bytes)
        count = lib.fxp_conv_requant_s16s8_packed(ffi.from_buffer("int16_t[]", x), b, h, w, c, kh, kw, sh, sw, ph, pw,
                                                  oh, ow, packed, self._bias_ptr, self._epilogue.struct,
                                                  ffi.from_buffer("char[]", out, True), self._n, scratch,
                                                  self.threads)
        if count == lib.FXP_CONV_UNFUSED:
            return None
        _check_packed(count)
        return count

    def gemm(self, x, out) -> None:
        if self._packed_for_active_path() is None:
            super().gemm(x, out)
        else:
            self._run(x, out, None)

    def gemm_requant(self, x, out) -> int:
        if self._packed_for_active_path() is None:
            return super().gemm_requant(x, out)
        return self._run(x, None, out)


class PackedBf16Weights:
    """bf16 (N, K) weights (uint16 bit patterns) with a float32 bias, packed once for the active path
    (``fxp_gemm_bf16_pack``: vdpbf16ps panels, or float32 for the paths that convert) and packed
    again when :func:`force_path` changes the path.  The sums are float32: no epilogue."""

    def __init__(self, w, bias):
        self.w, self.bias = w, bias
        self._path = -1
        self._packed = None

    def _packed_for_active_path(self) -> np.ndarray:
        path = lib.fxp_active_path()
        if path != self._path:
            n, k = self.w.shape
            self._packed = np.empty(int(lib.fxp_gemm_bf16_packed_bytes(n, k)), dtype=np.uint8)
            lib.fxp_gemm_bf16_pack(ffi.from_buffer("uint16_t[]", self.w), n, k, ffi.from_buffer(self._packed))
            self._path = path
        return self._packed

    def gemm(self, x, out) -> None:
        packed = self._packed_for_active_path()
        m, k = x.shape
        n = self.w.shape[0]
        scratch = np.empty(max(int(lib.fxp_gemm_bf16_scratch_bytes(m, n, k, 1)), 64), dtype=np.uint8)
        _check_packed(lib.fxp_gemm_bf16_packed(ffi.from_buffer("uint16_t[]", x), ffi.from_buffer(packed),
                                               _ptr("float *", self.bias), ffi.from_buffer("float[]", out), m,
                                               n, k, ffi.from_buffer(scratch)))

    def gemm_requant(self, x, out) -> int:
        raise TypeError("bf16 GEMMs return float32 sums; there is no requantizing epilogue")


def _check_packed(status) -> None:
    if status < 0:
        raise RuntimeError("packed weights do not match the active SIMD path")


def requant(acc, epilogue, out) -> int:
    """Requantize ``acc`` (R, N) int32/int64 into ``out`` with per-column shift/multiplier."""
    acc = np.ascontiguousarray(acc)
    rows, n = acc.shape
    if acc.dtype == np.int32:
        fn = lib.fxp_requant_s32
    elif acc.dtype == np.int64:
        fn = lib.fxp_requant_s64
    else:
        raise TypeError(f"requant: acc must be int32 or int64, got {acc.dtype}")
    return int(fn(_ptr(_CTYPES[acc.dtype], acc), rows, n, CEpilogue(epilogue).struct,
                  ffi.cast("void *", out.ctypes.data)))


QUANTIZE_KERNELS = ("scalar", "avx512-float64x8", "avx512-float32x16")


def quantize(x, frac, rounding, out_bits, out) -> tuple[int, int]:
    """out = saturate(round(x * 2**frac)) for 1-d contiguous float x; returns (saturated, nan) counts.

    Pointers come from ``ffi.from_buffer`` (cheaper per call than ``ndarray.ctypes``).
    """
    counts = ffi.new("int64_t[2]")
    if x.dtype == np.float32:
        fn, xt = lib.fxp_quantize_f32, "float[]"
    elif x.dtype == np.float64:
        fn, xt = lib.fxp_quantize_f64, "double[]"
    else:
        raise TypeError(f"quantize: x must be float32 or float64, got {x.dtype}")
    fn(ffi.from_buffer(xt, x), x.size, frac, rounding.code, out_bits, ffi.from_buffer("char[]", out, True),
       out.itemsize, counts)
    return int(counts[0]), int(counts[1])


def quantize_kernel(dtype, frac, rounding, out_bits) -> str:
    """The kernel :func:`quantize` runs for float ``dtype`` and these arguments on the active path,
    one of :data:`QUANTIZE_KERNELS` (``rounding``: a :class:`~fixedpoint.kernels.modes.Rounding`)."""
    code = lib.fxp_quantize_kernel(int(np.dtype(dtype) == np.float64), frac, rounding.code, out_bits)
    return QUANTIZE_KERNELS[code]


def round_up_mask(rounding) -> int:
    """The round-up table the C kernels were built with for deterministic ``rounding``."""
    return int(lib.fxp_round_up_mask(rounding.code))


def _pool_dtype(x) -> int:
    try:
        return _POOL_DTYPES[x.dtype]
    except KeyError:
        raise TypeError(f"pool: unsupported dtype {x.dtype}") from None


def _check_pool(status, op, x) -> None:
    if status != 0:
        raise TypeError(f"{op}: dtype {x.dtype} is not supported by the C backend")


def maxpool(x, kernel, stride, out) -> None:
    """2-d max pool over (B, H, W, C), no padding."""
    b, h, w, c = x.shape
    _check_pool(lib.fxp_maxpool(_pool_dtype(x), ffi.cast("void *", x.ctypes.data), ffi.cast("void *", out.ctypes.data),
                    b, h, w, c, kernel[0], kernel[1], stride[0], stride[1]), "maxpool", x)


def avgpool(x, kernel, stride, rounding, out) -> None:
    """2-d average pool: integers round_div(exact int64 window sum, kh*kw); floats summed in float64."""
    b, h, w, c = x.shape
    _check_pool(lib.fxp_avgpool(_pool_dtype(x), ffi.cast("void *", x.ctypes.data), ffi.cast("void *", out.ctypes.data),
                    b, h, w, c, kernel[0], kernel[1], stride[0], stride[1], rounding.code), "avgpool", x)


def add_requant(a, b, a_lshift, b_lshift, epilogue, out) -> int:
    """out = epilogue((a << a_lshift) + (b << b_lshift)), exact in int64; returns the overflow count."""
    return int(lib.fxp_add_requant(
        ffi.cast("void *", a.ctypes.data), ffi.cast("void *", b.ctypes.data), a.itemsize, a.size,
        a_lshift, b_lshift, CEpilogue(epilogue).struct, ffi.cast("void *", out.ctypes.data),
    ))


def divide(num, den, rounding, overflow, out_bits, out) -> int:
    """out = overflow(round(num / den)) for 1-d int64 ``num`` and ``den`` in [1, 2**62]; returns the count."""
    return int(lib.fxp_divide(ffi.from_buffer("int64_t[]", num), ffi.from_buffer("int64_t[]", den), num.size,
                              rounding.code, overflow.code, out_bits, ffi.cast("void *", out.ctypes.data),
                              out.itemsize))


def im2col(x, kernel, stride, padding, out_hw, rows, out) -> None:
    """Patch rows of output rows ``rows`` = (i0, i1) of every image of NHWC ``x`` (``fxp_im2col``)."""
    b, h, w, c = x.shape
    (kh, kw), (sh, sw), (ph, pw), (_, ow), (i0, i1) = kernel, stride, padding, out_hw, rows
    lib.fxp_im2col(ffi.from_buffer(x), ffi.from_buffer("char[]", out, True), x.itemsize, b, h, w, c, kh, kw,
                   sh, sw, ph, pw, i0, i1, ow)


def lut(x, table, out) -> None:
    """out = table[x - x_min] for int8 (256 entries) or int16 (65536 entries) x."""
    table = np.ascontiguousarray(table, dtype=out.dtype)
    lib.fxp_lut(ffi.cast("void *", x.ctypes.data), x.itemsize, x.size, ffi.cast("void *", table.ctypes.data),
                ffi.cast("void *", out.ctypes.data), out.itemsize)


if os.environ.get(ENV_VAR, "").strip():
    force_path(os.environ[ENV_VAR].strip())
