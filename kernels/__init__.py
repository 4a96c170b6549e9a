"""Compute backends for fixed-point and float layers: numpy reference, Numba and C."""
from .modes import DETERMINISTIC_ROUNDINGS, Overflow, Rounding, as_overflow, as_rounding
from .reference import requantize

__all__ = ["DETERMINISTIC_ROUNDINGS", "Overflow", "Rounding", "as_overflow", "as_rounding", "requantize"]
