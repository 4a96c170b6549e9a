"""fixedpoint: Q formats, rounding and overflow modes, exact fixed-point arithmetic, NN layers.

>>> import numpy as np, fixedpoint as fx
>>> fx.quantize(np.array([0.5, -0.25]), fx.QFormat(8, 7))
array([ 64, -32], dtype=int8)
"""
try:
    from .kernels.modes import Overflow, Rounding
except ModuleNotFoundError as _missing:  # a source checkout that was never installed
    if _missing.name not in ("fixedpoint.kernels", "fixedpoint.kernels.modes"):
        raise
    raise ImportError(
        "fixedpoint.kernels is not importable: kernels/ and bench/ become fixedpoint.kernels and "
        "fixedpoint.bench only when the package is installed; run `pip install -e .` in the repository root"
    ) from None
from .qformat import QFormat
from .stats import OverflowStats
from .quantize import dequantize, quantize
from .fixedarray import FixedArray
from . import nn

__all__ = ["FixedArray", "Overflow", "OverflowStats", "QFormat", "Rounding", "dequantize", "nn", "quantize"]
