"""Compute backends for fixed-point and float layers: numpy reference, Numba and C.

The public functions (``linear``, ``conv1d``, ``conv2d``, ``requantize``, pools,
``add``, ``lut``, ``quantize``) validate their arguments and route to a backend from
the registry (``available()``, ``default_backend()``, ``$FXBENCH_BACKEND``);
``prepare_linear``/``prepare_conv1d``/``prepare_conv2d`` validate the weights once and
let the backend pack them for repeated calls.  The exact
reference requantization with the ``bits=`` signature stays importable as
``fixedpoint.kernels.reference.requantize``.
"""
from .api import (
    add, avg_pool1d, avg_pool2d, conv1d, conv2d, divide, linear, lut, max_pool1d, max_pool2d, quantize, requantize,
)
from .modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding, as_overflow, as_rounding
from .layers import PreparedConv, PreparedLinear, prepare_conv1d, prepare_conv2d, prepare_linear
from .registry import available, default_backend, get_backend, unavailable_reasons

__all__ = [
    "DETERMINISTIC_ROUNDINGS", "Overflow", "Rounding", "add", "as_overflow", "as_rounding", "available",
    "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "default_backend", "divide", "get_backend", "linear", "lut",
    "max_pool1d", "max_pool2d", "PreparedConv", "PreparedLinear", "prepare_conv1d", "prepare_conv2d",
    "prepare_linear", "quantize", "requantize", "unavailable_reasons",
]
