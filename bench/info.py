"""``fxbench info``'s short summary of the context block: CPU, ISA, peaks, BLAS core, threads, backends,
contenders."""
from __future__ import annotations

from . import classes

KEY_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "amx_int8", "amx_bf16", "asimddp", "i8mm", "bf16", "sve")


def _blas_pools(context: dict) -> list[dict]:
    pools = context.get("threads", {}).get("threadpools")
    return [pool for pool in pools if pool.get("user_api") == "blas"] if isinstance(pools, list) else []


def _pool_text(pool: dict) -> str:
    parts = [pool.get("internal_api") or pool.get("library"), pool.get("version")]
    text = " ".join(str(p) for p in parts if p)
    core = pool.get("architecture") or pool.get("core")
    return f"{text}, core {core}" if core else text


def blas_line(context: dict, native=None) -> str:
    """The BLAS libraries and cores, whether the environment pins the core, and the core chosen without it
    (``native``: the pools a process without the pinning variables reported, or a failure's reason)."""
    pools = _blas_pools(context)
    text = "; ".join(_pool_text(pool) for pool in pools) if pools else "none loaded (threadpoolctl sees no BLAS)"
    pins = context.get("blas_pins") or {}
    if not pins:
        return f"{text} (the BLAS's own choice: the environment pins no core)"
    pinned = ", ".join(f"{k}={v}" for k, v in pins.items())
    if isinstance(native, list):
        own = "; ".join(_pool_text(pool) for pool in native) or "no BLAS"
        return f"{text}, pinned by {pinned}; without it: {own} (fxbench run measures float rows there too)"
    reason = native if isinstance(native, str) else "not asked"
    return f"{text}, pinned by {pinned}; the core chosen without it is unknown ({reason})"


def threads_line(threads: dict, c_openmp=None) -> str:
    """The thread count rows are timed at, the thread variables set, Numba's count, and whether fxbench's C
    integer GEMMs can split over threads (``c_openmp``: the C backend's OpenMP probe, None without it)."""
    env = {k: v for k, v in (threads.get("env") or {}).items() if v}
    count = threads.get("count", 1)
    parts = [f"{count} thread{'s' if count != 1 else ''} for fxbench's measurements (fxbench run --threads N)",
             ", ".join(f"{k}={v}" for k, v in env.items()) or "no thread variable set",
             f"numba {threads.get('numba_threads', '-')}"]
    if c_openmp is True:
        parts.append("C integer GEMMs can split over OpenMP threads (AVX-512 path)")
    elif c_openmp is False:
        parts.append("C kernels built without OpenMP (one thread)")
    return "; ".join(parts)


def summary(context: dict, native=None) -> str:
    """A few lines a person reads; ``fxbench info --json`` prints the whole context block instead."""
    flags = context.get("isa_flags", [])
    key = [flag for flag in KEY_FLAGS if flag in flags]
    peaks = context.get("peak_gops") or {}
    backends = context.get("backends", {})
    available = backends.get("available", [])
    default = backends.get("default")
    simd = backends.get("c_simd_path")
    names = [f"{name} (default{', ' + str(simd) if name == 'c' and simd else ''})" if name == default
             else (f"{name} ({simd})" if name == "c" and simd else name) for name in available]
    missing = backends.get("unavailable") or {}
    threads = context.get("threads", {})
    versions = context.get("versions", {})
    bf16 = [flag for flag in classes.BF16_FLAGS if flag in flags]
    lines = [
        ("CPU", f"{context.get('cpu', 'unknown CPU')} ({context.get('machine', '?')}, "
                f"{context.get('logical_cpus', '?')} logical CPUs), {context.get('system', '?')}"),
        ("ISA", (" ".join(key) if key else "none of " + ", ".join(KEY_FLAGS[:3]))
         + f"; AMX: {context.get('amx_permission', 'unknown')}"),
        ("Peaks", ", ".join(f"{name} {value:.0f} GOPS" for name, value in peaks.items())
         + " (one core, the C backend's probe)" if peaks else "unknown (the C backend's probe is not available)"),
        ("BLAS", blas_line(context, native)),
        ("Threads", threads_line(threads, backends.get("c_openmp"))),
        ("Backends", ", ".join(names) + ("; missing: " + "; ".join(f"{k} ({v})" for k, v in missing.items())
                                         if missing else "")),
        ("Contenders", _contenders(versions) + "; bfloat16: "
         + (f"native ({', '.join(bf16)})" if bf16 else "emulated (no bfloat16 instructions)")),
        ("Versions", ", ".join(f"{k} {v}" for k, v in versions.items()
                               if k in ("python", "fxbench", "numpy", "numba", "onnx") and v)),
        ("Commit", context.get("git_commit") or "unknown (not a git checkout)"),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in lines)


def _contenders(versions: dict) -> str:
    parts = []
    for library in classes.CONTENDER_LIBRARIES:
        missing = classes.missing_library(library)
        if missing is None:
            parts.append(f"{library} {versions.get(library) or ''}".strip())
        else:
            parts.append(f"{library}: {missing}")
    return ", ".join(parts)
