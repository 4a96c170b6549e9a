"""The precision classes of the verdict and the libraries that compete in them.

A class is one number format a user could run a layer in; fxbench's own precisions and every contender's
rows carry a precision name, and the verdict takes the fastest record of each class over all of them.
Adding a precision class (say, an fp8 format) is one entry of ``PRECISION_CLASSES``; adding a precision to a
class (fxbench's own bf16 beside torch's) is one name in its tuple.

This module imports nothing heavy: ``fxbench info`` and the report read it without numpy.
"""
from __future__ import annotations

import importlib.util

# class -> the record precisions that belong to it, in the verdict's column order
PRECISION_CLASSES = {
    "float32": ("f32",),
    "bfloat16": ("bf16",),
    "int8": ("i8",),
}
# the class the answer weighs against every other class, and whose fxbench rows it compares with the best
SUBJECT_CLASS = "int8"
# precisions computed in floating point: their rows may run on a BLAS, so a pinned BLAS core is measured apart
FLOAT_PRECISIONS = ("f64", "f32", "bf16")

# libraries whose rows compete with fxbench's: import names that must all be present
CONTENDER_LIBRARIES = {
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime", "onnx"),
    "torch": ("torch",),
}
# CPU flags of bfloat16 dot-product instructions (x86 AVX512_BF16 / AMX-BF16, Arm BF16); elsewhere torch emulates
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
INSTALL_HINTS = {"onnxruntime": "pip install -e '.[data]'", "torch": "pip install -e '.[peers]'"}


def class_of(precision: str) -> str | None:
    """The class a record precision belongs to, or None (i16, f64 ... are no class of the verdict)."""
    for name, precisions in PRECISION_CLASSES.items():
        if precision in precisions:
            return name
    return None


def missing_library(library: str) -> str | None:
    """None when every module of ``library`` can be imported here, else the reason (with the install hint)."""
    modules = CONTENDER_LIBRARIES.get(library, (library,))
    absent = [module for module in modules if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    hint = INSTALL_HINTS.get(library)
    return f"{' and '.join(absent)} not installed" + (f" ({hint})" if hint else "")
