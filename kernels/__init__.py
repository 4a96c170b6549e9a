"""Compute backends for fixed-point and float layers: numpy reference, Numba and C."""
from .modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding, as_overflow, as_rounding
from .reference import requantize
from .registry import available, default_backend, get_backend, unavailable_reasons

__all__ = [
    "DETERMINISTIC_ROUNDINGS", "Overflow", "Rounding", "as_overflow", "as_rounding", "available",
    "default_backend", "get_backend", "requantize", "unavailable_reasons",
]
