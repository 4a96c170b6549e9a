"""The run's context block: machine, ISA flags, AMX permission, versions, threads (the count rows are timed at and
the pools' settings), backends, commit."""
from __future__ import annotations

import ctypes
import os
import datetime
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .threads import thread_settings

# CPU features that decide which integer and float instructions a kernel may use.
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "avx_vnni_int8", "amx_tile",
                  "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")
VERSIONED_PACKAGES = ("fxbench", "numpy", "numba", "cffi", "threadpoolctl", "pytest-benchmark", "matplotlib",
                      "scikit-learn", "mnist1d", "onnx", "onnxruntime", "torch")

# environment variables that make OpenBLAS use another core's kernels (see native_blas)
BLAS_PIN_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

_ARCH_GET_XCOMP_PERM = 0x1022
_SYS_ARCH_PRCTL_X86_64 = 158
_XFEATURE_XTILEDATA = 18


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    for line in _cpuinfo_lines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> list[str]:
    """The relevant ISA flags the kernel reports for this CPU, in ``RELEVANT_FLAGS`` order."""
    present = set()
    for line in _cpuinfo_lines():
        if line.lower().startswith(("flags", "features")):
            present.update(line.split(":", 1)[1].split())
    return [flag for flag in RELEVANT_FLAGS if flag in present]


def amx_permission() -> str:
    """Whether this process may use AMX tiles: "granted", "not requested", "no AMX" or "unknown"."""
    if "amx_tile" not in cpu_flags():
        return "no AMX"
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return "unknown"
    mask = ctypes.c_ulong(0)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_ARCH_PRCTL_X86_64, _ARCH_GET_XCOMP_PERM, ctypes.byref(mask)) != 0:
        return "unknown"
    return "granted" if mask.value & (1 << _XFEATURE_XTILEDATA) else "not requested"


def package_versions() -> dict:
    """Installed versions of the packages that shape the results (None when not installed)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def backend_status() -> dict:
    """Available kernel backends, the default, why others are missing, and the C backend's probes (its SIMD path
    and whether it was built with OpenMP, which its integer GEMMs need to split over threads)."""
    from fixedpoint.kernels import registry

    status = {"available": list(registry.available()), "default": registry.default_backend(),
              "unavailable": dict(registry.unavailable_reasons())}
    if "c" in status["available"]:
        from fixedpoint.kernels import c_backend

        status["c_simd_path"] = _call_or_none(c_backend, "simd_path")
        status["c_openmp"] = _call_or_none(c_backend, "openmp")
    return status


def peak_gops() -> dict:
    """This machine's fp32-FMA and int8-dot peaks from the C backend's probe, or {} when unknown."""
    try:
        from fixedpoint.kernels import c_backend
    except Exception:  # the C backend failed to build or import: peaks stay unknown
        return {}
    peaks = _call_or_none(c_backend, "peak_gops")
    if not isinstance(peaks, dict):
        return {}
    return {str(key): float(value) for key, value in peaks.items()}


def git_commit() -> str | None:
    """The source tree's commit when running from a git checkout, else None."""
    source = Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def collect_context(with_peaks: bool = True) -> dict:
    """The whole context block stored at the top of a results file."""
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "node": platform.node(),
        "logical_cpus": _logical_cpus(),
        "isa_flags": cpu_flags(),
        "amx_permission": amx_permission(),
        "versions": package_versions(),
        "threads": thread_settings(),
        "blas_pins": {name: os.environ[name] for name in BLAS_PIN_VARIABLES if os.environ.get(name)},
        "backends": backend_status(),
        "peak_gops": peak_gops() if with_peaks else {},
        "git_commit": git_commit(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _call_or_none(module, name):
    function = getattr(module, name, None)
    if function is None:
        return None
    try:
        return function()
    except Exception as exc:  # a probe that fails is reported, not fatal
        return f"failed: {exc}"


def _logical_cpus() -> int | None:
    return os.cpu_count()


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
