"""fixedpoint: Q formats, rounding and overflow modes, exact fixed-point arithmetic, NN layers.

>>> import numpy as np, fixedpoint as fx
>>> fx.quantize(np.array([0.5, -0.25]), fx.QFormat(8, 7))
array([ 64, -32], dtype=int8)
"""
import os as _os

# In a source checkout kernels/ and bench/ sit beside this folder rather than inside it;
# the installed distribution maps them to fixedpoint.kernels / fixedpoint.bench.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "kernels")):
    __path__.append(_os.path.dirname(_here))  # noqa: F821  (package __path__)

from .kernels.modes import Overflow, Rounding  # noqa: E402
from .qformat import QFormat  # noqa: E402
from .stats import OverflowStats  # noqa: E402
from .quantize import dequantize, quantize  # noqa: E402
from .fixedarray import FixedArray  # noqa: E402
from . import nn  # noqa: E402

__all__ = ["FixedArray", "Overflow", "OverflowStats", "QFormat", "Rounding", "dequantize", "nn", "quantize"]
