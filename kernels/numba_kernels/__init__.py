"""The Numba backend: ``@njit(cache=True)`` kernels implementing ``kernels/protocol.py``.

Integer results are bit-identical to the reference backend; call :func:`warmup`
once before timing so no JIT compilation lands in a timed region.
"""
from .elementwise import add_requant, divide, lut, quantize, requant
from .gemm import gemm, prepare_gemm
from .pool import avgpool, maxpool
from .warmup import warmup

NAME = "numba"

__all__ = [
    "NAME", "add_requant", "avgpool", "divide", "gemm", "lut", "maxpool", "prepare_gemm", "quantize", "requant", "warmup",
]
