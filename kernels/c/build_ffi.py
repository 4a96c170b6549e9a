"""cffi build script (API mode) for the C backend: ``fixedpoint.kernels._fxp_c``.

Compiled with -O3 as C99 and no -march: the AVX2 and AVX-512 VNNI functions carry their
own ``target`` attributes and are chosen at run time by CPUID, so one build runs on any
x86-64 machine; other architectures compile the portable path only.  The rounding rule
table (``kernels/modes.py`` ROUND_UP_MASKS) and the GEMM kind codes (``kernels/kinds.py``)
are read from the Python modules and passed to the compiler as macros, so C and Python
share one definition.
"""
from __future__ import annotations

import importlib
import os
import sys
import types

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
_TABLES_PACKAGE = "_fxp_build_tables"


def _kernel_module(name: str):
    """``kernels/<name>.py`` imported as a submodule of a stand-in package (kernels/__init__ not run)."""
    if _TABLES_PACKAGE not in sys.modules:
        package = types.ModuleType(_TABLES_PACKAGE)
        package.__path__ = [os.path.dirname(HERE)]
        sys.modules[_TABLES_PACKAGE] = package
    return importlib.import_module(f"{_TABLES_PACKAGE}.{name}")


def table_macros() -> list[tuple[str, str]]:
    """FXP_ROUND_UP_MASKS and FXP_KIND_<NAME> from the Python tables."""
    masks = _kernel_module("modes").ROUND_UP_MASKS
    macros = [("FXP_ROUND_UP_MASKS", "{" + ", ".join(f"0x{m:04x}" for m in masks) + "}")]
    macros += [(f"FXP_KIND_{kind.name.upper()}", str(kind.code)) for kind in _kernel_module("kinds").GEMM_KINDS]
    return macros
SOURCES = [
    "fxp_dispatch.c",
    "fxp_requant.c",
    "fxp_requant_avx512.c",
    "fxp_gemm.c",
    "fxp_gemm_portable.c",
    "fxp_gemm_ymm.c",
    "fxp_gemm_avx512vnni.c",
    "fxp_gemm_avx512_s16.c",
    "fxp_tiled.c",
    "fxp_im2col.c",
    "fxp_patch_tiles.c",
    "fxp_gemm_bf16.c",
    "fxp_quantize.c",
    "fxp_quantize_avx512.c",
    "fxp_pool.c",
    "fxp_elementwise.c",
    "fxp_plan.c",
    "fxp_peak.c",
]
# Functions start on 64-byte boundaries: where a kernel's loops fall relative to the fetch windows
# otherwise moves with every unrelated edit (an a16w8 short-K kernel measured 7 % apart between two
# placements of identical code).
COMPILE_ARGS = ["-O3", "-std=c99", "-fno-strict-aliasing", "-falign-functions=64"]
OPENMP_ARGS = ["-fopenmp"]


def _header() -> str:
    with open(os.path.join(HERE, "fxp.h"), encoding="utf-8") as f:
        return f.read()


def _openmp_args() -> list[str]:
    """-fopenmp when the C compiler takes it (the packed GEMMs then split over threads), else nothing."""
    import setuptools  # noqa: F401  (provides distutils on Python 3.12+)
    from distutils.ccompiler import new_compiler
    from distutils.errors import CompileError, LinkError
    from distutils.sysconfig import customize_compiler
    import tempfile

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w", encoding="utf-8") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=OPENMP_ARGS)
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=OPENMP_ARGS)
        except (CompileError, LinkError):
            return []
    return OPENMP_ARGS


def make_builder(extra_compile_args=(), extra_link_args=(), module_name="fixedpoint.kernels._fxp_c") -> FFI:
    """An FFI builder for the library; extra flags serve ad-hoc (e.g. sanitizer) builds."""
    builder = FFI()
    builder.cdef(_header())
    openmp = _openmp_args()
    # Relative paths keep absolute build paths out of the generated source.
    rel = os.path.relpath(HERE)
    builder.set_source(
        module_name,
        '#include <stdint.h>\n#include <stddef.h>\n#include "fxp.h"\n',
        sources=[os.path.join(rel, s) for s in SOURCES],
        include_dirs=[rel],
        extra_compile_args=COMPILE_ARGS + openmp + list(extra_compile_args),
        extra_link_args=openmp + list(extra_link_args),
        define_macros=table_macros(),
        libraries=["m"] if os.name == "posix" else [],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
