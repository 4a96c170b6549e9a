"""Rounding and overflow modes: the names every backend, CLI flag and JSON file uses.

The enums are string-valued so that ``Rounding("half_even")`` round-trips through
command lines and result files.  ``code`` is the small integer the C and Numba
kernels switch on; the order of the members fixes it and must not change.
"""
from __future__ import annotations

import enum


class Rounding(str, enum.Enum):
    """How a value with dropped fraction bits becomes an integer.

    ``floor`` .. ``jam_unbiased`` are deterministic; ``stochastic`` and
    ``stochastic_equal`` draw from a seeded random stream.  The exact rule of each
    mode is in :func:`fixedpoint.kernels.reference.rounding.round_shift`.
    """

    FLOOR = "floor"
    CEIL = "ceil"
    TO_ZERO = "to_zero"
    AWAY = "away"
    MAG_TRUNC = "mag_trunc"
    HALF_UP = "half_up"
    HALF_DOWN = "half_down"
    HALF_TO_ZERO = "half_to_zero"
    HALF_AWAY = "half_away"
    HALF_EVEN = "half_even"
    HALF_ODD = "half_odd"
    JAM = "jam"
    JAM_UNBIASED = "jam_unbiased"
    STOCHASTIC = "stochastic"
    STOCHASTIC_EQUAL = "stochastic_equal"

    @property
    def code(self) -> int:
        """Index of the mode in declaration order (0..14), the value C kernels see."""
        return _ROUNDING_CODES[self]

    @property
    def is_stochastic(self) -> bool:
        return self in (Rounding.STOCHASTIC, Rounding.STOCHASTIC_EQUAL)

    def __str__(self) -> str:
        return self.value


class Overflow(str, enum.Enum):
    """What happens to a result outside the target format's range.

    ``saturate`` clamps to [qmin, qmax]; ``wrap`` keeps the low ``bits`` bits (two's
    complement modulo 2**bits); ``saturate_symmetric`` clamps to [-qmax, qmax] for
    signed formats (so int8 never holds -128) and to [0, qmax] for unsigned ones;
    ``error`` raises :class:`OverflowError`.
    """

    SATURATE = "saturate"
    WRAP = "wrap"
    SATURATE_SYMMETRIC = "saturate_symmetric"
    ERROR = "error"

    @property
    def code(self) -> int:
        """Index of the mode in declaration order (0..3), the value C kernels see."""
        return _OVERFLOW_CODES[self]

    def __str__(self) -> str:
        return self.value


_ROUNDING_CODES = {mode: i for i, mode in enumerate(Rounding)}
_OVERFLOW_CODES = {mode: i for i, mode in enumerate(Overflow)}

DETERMINISTIC_ROUNDINGS = tuple(m for m in Rounding if not m.is_stochastic)


def as_rounding(mode: Rounding | str, argument: str = "rounding") -> Rounding:
    """Return ``mode`` as a :class:`Rounding`; unknown names raise ``ValueError``."""
    return _as_enum(Rounding, mode, argument)


def as_overflow(mode: Overflow | str, argument: str = "overflow") -> Overflow:
    """Return ``mode`` as an :class:`Overflow`; unknown names raise ``ValueError``."""
    return _as_enum(Overflow, mode, argument)


def _as_enum(enum_type, mode, argument):
    if isinstance(mode, enum_type):
        return mode
    if isinstance(mode, str):
        try:
            return enum_type(mode)
        except ValueError:
            pass
    accepted = ", ".join(repr(m.value) for m in enum_type)
    raise ValueError(f"{argument}={mode!r} is not a known {enum_type.__name__} mode; accepted: {accepted}")
