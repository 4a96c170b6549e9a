"""fixedpoint: Q formats, rounding and overflow modes, exact fixed-point arithmetic, NN layers.

>>> import numpy as np, fixedpoint as fx
>>> fx.quantize(np.array([0.5, -0.25]), fx.QFormat(8, 7))
array([ 64, -32], dtype=int8)

The public names load on first use, so ``import fixedpoint.bench.cli`` (the ``fxbench``
command) can install its Ctrl-C handling and thread settings before numpy and the
kernels are imported.
"""
import importlib
import importlib.util

if importlib.util.find_spec(f"{__name__}.kernels") is None:   # a source checkout that was never installed
    raise ImportError(
        "fixedpoint.kernels is not importable: kernels/ and bench/ become fixedpoint.kernels and "
        "fixedpoint.bench only when the package is installed; run `pip install -e .` in the repository root"
    )

_EXPORTS = {
    "FixedArray": ".fixedarray", "Overflow": ".kernels.modes", "OverflowStats": ".stats", "QFormat": ".qformat",
    "Rounding": ".kernels.modes", "dequantize": ".conversion", "quantize": ".conversion",
    "BF16": ".floatformat", "FP16": ".floatformat", "FP8_E4M3": ".floatformat", "FP8_E5M2": ".floatformat",
    "FloatFormat": ".floatformat", "FloatStats": ".stats", "from_bits": ".float_conversion",
    "quantize_float": ".float_conversion", "to_bits": ".float_conversion",
}
__all__ = ["BF16", "FP16", "FP8_E4M3", "FP8_E5M2", "FixedArray", "FloatFormat", "FloatStats", "Overflow",
           "OverflowStats", "QFormat", "Rounding", "dequantize", "from_bits", "nn", "quantize", "quantize_float",
           "to_bits"]


def __getattr__(name):
    if name == "nn":
        return importlib.import_module(".nn", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
