"""The Numba backend: ``@njit(cache=True)`` kernels implementing ``kernels/protocol.py``.

Integer results are bit-identical to the reference backend; call :func:`warmup`
once before timing so no JIT compilation lands in a timed region.
"""
from ..reference.backend import im2col   # layout only: numpy's strided copies are as fast as a loop here
from .elementwise import add_requant, divide, lut, quantize, requant
from .gemm import gemm, prepare_gemm
from .pool import avgpool, maxpool
from .warmup import warmup

NAME = "numba"

__all__ = [
    "NAME", "add_requant", "avgpool", "divide", "gemm", "im2col", "lut", "maxpool", "prepare_gemm", "quantize", "requant",
    "warmup",
]
