"""The C backend: cffi bindings to ``kernels/c`` implementing ``kernels/protocol.py``.

Integer results are bit-identical to the reference backend.  int8 x int8 sums
accumulate in int32, anything with an int16 operand in int64; requantization (one
rounding of the exact rational ``acc * multiplier / 2**shift``, then relu, then the
overflow mode) happens in C, fused per block in ``gemm_requant``.  The SIMD path
(AVX-512 VNNI, AVX2 or portable C) is chosen at run time from CPUID; it can be forced
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
import sys
import time

import numpy as np

from .protocol import UnpackedWeights

EXTENSION = os.environ.get("FXBENCH_C_EXTENSION", "").strip() or f"{__package__}._fxp_c"
try:
    _extension = importlib.import_module(EXTENSION)
except ImportError as exc:
    raise ImportError(f"the C extension {EXTENSION!r} (see FXBENCH_C_EXTENSION) cannot be imported: {exc}") from exc
ffi, lib = _extension.ffi, _extension.lib

NAME = "c"
ENV_VAR = "FXBENCH_C_SIMD"
PATHS = ("portable", "avx2", "avx512vnni")

_GEMM_KINDS = {
    (np.dtype(np.float32), np.dtype(np.float32)): (0, lib.fxp_gemm_f32, None, "float *", "float *"),
    (np.dtype(np.float64), np.dtype(np.float64)): (1, lib.fxp_gemm_f64, None, "double *", "double *"),
    (np.dtype(np.int8), np.dtype(np.int8)): (2, lib.fxp_gemm_s8, lib.fxp_gemm_requant_s8, "int8_t *", "int8_t *"),
    (np.dtype(np.int16), np.dtype(np.int16)): (3, lib.fxp_gemm_s16, lib.fxp_gemm_requant_s16, "int16_t *", "int16_t *"),
    (np.dtype(np.int16), np.dtype(np.int8)): (4, lib.fxp_gemm_s16s8, lib.fxp_gemm_requant_s16s8, "int16_t *", "int8_t *"),
}
_POOL_DTYPES = {
    np.dtype(np.int8): 0, np.dtype(np.int16): 1, np.dtype(np.int32): 2, np.dtype(np.int64): 3,
    np.dtype(np.float32): 4, np.dtype(np.float64): 5, np.dtype(np.uint8): 6, np.dtype(np.uint16): 7,
    np.dtype(np.uint32): 8, np.dtype(np.uint64): 9,
}


def simd_path() -> str:
    """The SIMD path the kernels run: "avx512vnni", "avx2" or "portable"."""
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


def peak_gops(seconds: float = 0.2) -> dict[str, float]:
    """This machine's single-thread peak in GOPS (a multiply-add counts 2): ``"fp32_fma"``
    (512-bit FMA if available) and ``"int8_dot"`` (vpdpbusd 512-bit, else an AVX2 chain),
    each the best of a few timed runs of a dependency-free C loop."""
    return {"fp32_fma": _probe(lib.fxp_peak_fma_f32, seconds), "int8_dot": _probe(lib.fxp_peak_dot_s8, seconds)}


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


def _params(shift, multiplier, n):
    shift = np.ascontiguousarray(np.broadcast_to(shift, (n,)), dtype=np.int32)
    if multiplier is not None:
        multiplier = np.ascontiguousarray(np.broadcast_to(multiplier, (n,)), dtype=np.int64)
    return shift, multiplier


def _scratch(kind, m, n, k) -> np.ndarray:
    return np.empty(max(int(lib.fxp_gemm_scratch_bytes(kind, m, n, k)), 64), dtype=np.uint8)


def _gemm_kind(x, w):
    try:
        return _GEMM_KINDS[(x.dtype, w.dtype)]
    except KeyError:
        raise TypeError(f"gemm: unsupported dtypes x={x.dtype}, w={w.dtype}") from None


def gemm(x, w, bias, out) -> None:
    """out[M, N] = x[M, K] @ w[N, K].T + bias[N]; int32 acc for int8 x int8, int64 with int16."""
    kind, fn, _, xt, wt = _gemm_kind(x, w)
    m, k = x.shape
    n = w.shape[0]
    scratch = _scratch(kind, m, n, k)
    acc_t = ffi.getctype(ffi.typeof(fn).args[3])
    fn(_ptr(xt, x), _ptr(wt, w), _ptr(acc_t, bias), _ptr(acc_t, out), m, n, k, ffi.cast("void *", scratch.ctypes.data))


def gemm_requant(x, w, bias, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
    """The integer gemm with requantization fused per cache block; returns the overflow count."""
    kind, _, fn, xt, wt = _gemm_kind(x, w)
    if fn is None:
        raise TypeError(f"gemm_requant: integer operands required, got x={x.dtype}")
    m, k = x.shape
    n = w.shape[0]
    shift, multiplier = _params(shift, multiplier, n)
    scratch = _scratch(kind, m, n, k)
    bias_t = ffi.getctype(ffi.typeof(fn).args[2])
    return int(fn(
        _ptr(xt, x), _ptr(wt, w), _ptr(bias_t, bias), _ptr("int32_t *", shift), _ptr("int64_t *", multiplier),
        rounding, overflow, out_bits, bool(relu), ffi.cast("void *", out.ctypes.data), out.itemsize,
        m, n, k, ffi.cast("void *", scratch.ctypes.data),
    ))


def prepare_gemm(w, bias, x_dtype):
    """int8 x int8: ``w`` and ``bias`` packed (per SIMD path, on first use) into the kernel's
    strip layout; other dtype pairs are bound unpacked."""
    if w.dtype == np.int8 and x_dtype == np.int8:
        return PackedInt8Weights(w, bias)
    return UnpackedWeights(sys.modules[__name__], w, bias)


class PackedInt8Weights:
    """int8 (N, K) weights with their int32 bias, packed once for the active SIMD path.

    The packed buffer (``fxp_gemm_s8_pack``: VNNI or AVX2 strips with the bias corrections)
    is rebuilt when :func:`force_path` changes the path; the portable path runs the plain
    kernels on the stored ``w``.  Pickling and copying keep ``w`` and ``bias`` only.
    """

    def __init__(self, w, bias):
        self.w, self.bias = w, bias
        self._path = -1
        self._packed = None
        self._packed_ptr = None

    def __getstate__(self):
        return {"w": self.w, "bias": self.bias}

    def __setstate__(self, state):
        self.__init__(state["w"], state["bias"])

    def _packed_for_active_path(self):
        """cffi pointer to the packed buffer of the active path, or None when that path does not pack."""
        path = lib.fxp_active_path()
        if path != self._path:
            n, k = self.w.shape
            size = int(lib.fxp_gemm_s8_packed_bytes(n, k))
            self._packed = np.empty(size, dtype=np.uint8) if size else None
            self._packed_ptr = ffi.from_buffer(self._packed) if size else None
            if size:
                lib.fxp_gemm_s8_pack(ffi.from_buffer("int8_t[]", self.w), _ptr("int32_t *", self.bias), n, k,
                                     self._packed_ptr)
            self._path = path
        return self._packed_ptr

    def gemm(self, x, out) -> None:
        packed = self._packed_for_active_path()
        if packed is None:
            gemm(x, self.w, self.bias, out)
            return
        m, k = x.shape
        n = self.w.shape[0]
        scratch = _scratch(2, m, n, k)
        _check_packed(lib.fxp_gemm_s8_packed(_int8_rows(x), packed, ffi.from_buffer("int32_t[]", out), m, n, k,
                                             ffi.from_buffer(scratch)))

    def gemm_requant(self, x, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
        """As the protocol's: ``shift`` int32 (N,) and ``multiplier`` int64 (N,) or None, C-contiguous."""
        packed = self._packed_for_active_path()
        if packed is None:
            return gemm_requant(x, self.w, self.bias, shift, multiplier, rounding, overflow, out_bits, relu, out)
        m, k = x.shape
        n = self.w.shape[0]
        scratch = _scratch(2, m, n, k)
        count = lib.fxp_gemm_requant_s8_packed(
            _int8_rows(x), packed, ffi.from_buffer("int32_t[]", shift),
            ffi.NULL if multiplier is None else ffi.from_buffer("int64_t[]", multiplier),
            rounding, overflow, out_bits, bool(relu), ffi.from_buffer(out, require_writable=True), out.itemsize,
            m, n, k, ffi.from_buffer(scratch),
        )
        _check_packed(count)
        return int(count)


def _int8_rows(x):
    if x.dtype != np.int8:
        raise TypeError(f"x must be int8 for the prepared int8 weights, got {x.dtype}")
    return ffi.from_buffer("int8_t[]", x)


def _check_packed(status) -> None:
    if status < 0:
        raise RuntimeError("packed weights do not match the active SIMD path")


def requant(acc, shift, multiplier, rounding, overflow, out_bits, relu, out) -> int:
    """Requantize ``acc`` (R, N) int32/int64 into ``out`` with per-column shift/multiplier."""
    acc = np.ascontiguousarray(acc)
    n = acc.shape[-1] if acc.ndim else 1
    rows = acc.size // n if n else 0
    shift, multiplier = _params(shift, multiplier, n)
    if acc.dtype == np.int32:
        fn, acc_t = lib.fxp_requant_s32, "int32_t *"
    elif acc.dtype == np.int64:
        fn, acc_t = lib.fxp_requant_s64, "int64_t *"
    else:
        raise TypeError(f"requant: acc must be int32 or int64, got {acc.dtype}")
    return int(fn(
        _ptr(acc_t, acc), rows, n, _ptr("int32_t *", shift), _ptr("int64_t *", multiplier),
        rounding, overflow, out_bits, bool(relu), ffi.cast("void *", out.ctypes.data), out.itemsize,
    ))


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
    fn(ffi.from_buffer(xt, x), x.size, frac, rounding, out_bits, ffi.from_buffer(out, require_writable=True),
       out.itemsize, counts)
    return int(counts[0]), int(counts[1])


def quantize_kernel(dtype, frac, rounding, out_bits) -> str:
    """The kernel :func:`quantize` runs for float ``dtype`` and these arguments on the active path,
    one of :data:`QUANTIZE_KERNELS`."""
    return QUANTIZE_KERNELS[lib.fxp_quantize_kernel(int(np.dtype(dtype) == np.float64), frac, rounding, out_bits)]


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
                    b, h, w, c, kernel[0], kernel[1], stride[0], stride[1], rounding), "avgpool", x)


def add_requant(a, b, a_lshift, b_lshift, shift, rounding, overflow, out_bits, relu, out) -> int:
    """out = overflow(relu(round(((a << a_lshift) + (b << b_lshift)) / 2**shift))); returns the count."""
    return int(lib.fxp_add_requant(
        ffi.cast("void *", a.ctypes.data), ffi.cast("void *", b.ctypes.data), a.itemsize, a.size,
        a_lshift, b_lshift, shift, rounding, overflow, out_bits, bool(relu),
        ffi.cast("void *", out.ctypes.data), out.itemsize,
    ))


def lut(x, table, out) -> None:
    """out = table[x - x_min] for int8 (256 entries) or int16 (65536 entries) x."""
    table = np.ascontiguousarray(table, dtype=out.dtype)
    lib.fxp_lut(ffi.cast("void *", x.ctypes.data), x.itemsize, x.size, ffi.cast("void *", table.ctypes.data),
                ffi.cast("void *", out.ctypes.data), out.itemsize)


if os.environ.get(ENV_VAR, "").strip():
    force_path(os.environ[ENV_VAR].strip())
