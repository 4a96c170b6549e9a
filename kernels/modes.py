"""Rounding and overflow modes: the names every backend, CLI flag and JSON file uses, and the
one statement of what each deterministic rounding mode does.

The enums are string-valued so that ``Rounding("half_even")`` round-trips through
command lines and result files.  ``code`` is the small integer the C and Numba
kernels index with; the order of the members fixes it and must not change.

The rule: a value ``v`` with dropped bits becomes ``q = floor(v)`` plus one where
:func:`rounds_up` says so, given whether ``q`` is odd, whether ``v`` is negative and
how the dropped part ``r = v - q`` compares with half an LSB (:data:`REST_ZERO`,
``REST_BELOW``, ``REST_HALF``, ``REST_ABOVE``).  :data:`ROUND_UP_MASKS` packs it into
one 16-bit table per mode (bit ``q_odd | negative << 1 | rest << 2``); the reference
backend, the Numba kernels and the C kernels (built with the table) all read it.
This module imports nothing beyond the standard library, so the C build can load it.
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


REST_ZERO, REST_BELOW, REST_HALF, REST_ABOVE = range(4)


def rounds_up(mode: Rounding, q_odd: bool, negative: bool, rest: int) -> bool:
    """Whether deterministic ``mode`` turns ``q = floor(v)`` into ``q + 1``.

    ``q_odd``: q is odd; ``negative``: v < 0; ``rest``: the dropped part of v against
    half an LSB, one of ``REST_ZERO``/``REST_BELOW``/``REST_HALF``/``REST_ABOVE``.
    ``jam`` (force the low bit to 1) is ``q + 1`` for even q.
    """
    inexact = rest != REST_ZERO
    above, tie = rest == REST_ABOVE, rest == REST_HALF
    rules = {
        Rounding.FLOOR: False,
        Rounding.CEIL: inexact,
        Rounding.TO_ZERO: inexact and negative,
        Rounding.AWAY: inexact and not negative,
        Rounding.MAG_TRUNC: negative,
        Rounding.HALF_UP: above or tie,
        Rounding.HALF_DOWN: above,
        Rounding.HALF_TO_ZERO: above or (tie and negative),
        Rounding.HALF_AWAY: above or (tie and not negative),
        Rounding.HALF_EVEN: above or (tie and q_odd),
        Rounding.HALF_ODD: above or (tie and not q_odd),
        Rounding.JAM: not q_odd,
        Rounding.JAM_UNBIASED: inexact and not q_odd,
    }
    if mode not in rules:
        raise ValueError(f"rounding={mode.value!r} is stochastic; rounds_up covers the deterministic modes")
    return rules[mode]


def round_up_index(q_odd: int, negative: int, rest: int) -> int:
    """The bit of a mode's mask that holds :func:`rounds_up` for these facts."""
    return q_odd | (negative << 1) | (rest << 2)


def _mask(mode: Rounding) -> int:
    return sum(1 << round_up_index(q_odd, negative, rest)
               for q_odd in (0, 1) for negative in (0, 1) for rest in range(4)
               if rounds_up(mode, bool(q_odd), bool(negative), rest))


#: 16-bit round-up table of each deterministic mode, indexed by ``Rounding.code``.
ROUND_UP_MASKS = tuple(_mask(mode) for mode in DETERMINISTIC_ROUNDINGS)
