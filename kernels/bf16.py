"""bf16 bit patterns (uint16, the high half of a float32): the inputs of the bf16 GEMM kind.

``to_float32`` is exact (a 16-bit shift); ``from_float32`` keeps the high half of float32 values
that are bf16 numbers (values of fixedpoint's BF16 format, or of any format they contain, such as
the fp8 formats), which is exact for them; it drops the low half of any other value.
"""
from __future__ import annotations

import numpy as np


def to_float32(bits: np.ndarray) -> np.ndarray:
    """The float32 values of bf16 bit patterns (uint16), exactly."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def from_float32(values: np.ndarray) -> np.ndarray:
    """The bf16 bit patterns (uint16) of float32 values that are bf16 numbers."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    return (values.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
