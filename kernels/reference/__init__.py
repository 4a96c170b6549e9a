"""The numpy reference backend: the specification of every operation, in exact integer math."""
from .overflow import apply_overflow, container_dtype, integer_range
from .requantize import requantize
from .rounding import round_div, round_shift

__all__ = ["apply_overflow", "container_dtype", "integer_range", "requantize", "round_div", "round_shift"]
