"""Q formats: what a raw integer means.

``QFormat(bits, frac, signed=True)``: a raw integer ``q`` stands for ``q * 2**-frac``.

Text form (ARM Q notation): ``Qm.n`` for a signed format with ``m`` integer bits
*excluding* the sign bit and ``n = frac`` fraction bits, so ``bits = m + n + 1``;
``UQm.n`` for an unsigned one, ``bits = m + n``.  ``Q1.6`` is 8-bit signed with 6
fraction bits, ``Q0.15`` is int16 with 15 fraction bits, ``UQ0.8`` is 8-bit unsigned.
``m`` or ``n`` may be negative when ``frac`` is negative or larger than ``bits``
(``Q-2.9`` is 8 bits with 9 fraction bits).

Other conventions count the sign among the integer bits: APyTypes
``APyFixed(int_bits=I, frac_bits=F)`` and MATLAB ``fixdt(1, W, F)`` describe the same
signed format as ``QFormat(bits=I + F, frac=F)`` = ``W`` bits, i.e. ``I = m + 1``.
``Q1.6`` here is ``int_bits=2, frac_bits=6`` there.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .kernels.reference.overflow import container_dtype, integer_range

MAX_BITS = 32          # data formats: what quantize, cast and layers produce
MAX_WIDE_BITS = 128    # full-precision arithmetic results (FixedArray) before a cast

_Q_TEXT = re.compile(r"^\s*(U?)Q(-?\d+)\.(-?\d+)\s*$")


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format: ``bits`` wide, ``frac`` fraction bits, signed or not.

    Data formats take signed ``bits`` 2..32 and unsigned 1..32; ``frac`` is any
    integer.  ``wide=True`` allows up to 128 bits, for the exact results of
    :class:`~fixedpoint.FixedArray` arithmetic (held as int64, or Python ints
    beyond 64 bits) until they are cast to a data format.

    >>> fmt = QFormat(8, 6)
    >>> str(fmt), fmt.lsb, fmt.min, fmt.max
    ('Q1.6', 0.015625, -2.0, 1.984375)
    >>> QFormat.parse("UQ0.8") == QFormat(8, 8, signed=False)
    True
    """

    bits: int
    frac: int
    signed: bool = True
    wide: bool = False

    def __post_init__(self):
        for name in ("bits", "frac"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"signed must be True or False, got {self.signed!r}")
        object.__setattr__(self, "signed", bool(self.signed))
        limit = MAX_WIDE_BITS if self.wide else MAX_BITS
        low = 2 if self.signed else 1
        if not low <= self.bits <= limit:
            kind = "signed" if self.signed else "unsigned"
            raise ValueError(
                f"bits={self.bits} is out of range for a {kind} {'wide ' if self.wide else ''}format; "
                f"accepted: {low}..{limit}" + ("" if self.wide else " (wide=True allows up to 128 for results)")
            )

    # --- derived quantities -------------------------------------------------------
    @property
    def int_bits(self) -> int:
        """Integer bits excluding the sign bit (the ``m`` of ``Qm.n``)."""
        return self.bits - self.frac - (1 if self.signed else 0)

    @property
    def qmin(self) -> int:
        """Smallest raw integer."""
        return integer_range(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        """Largest raw integer."""
        return integer_range(self.bits, self.signed)[1]

    @property
    def lsb(self) -> float:
        """Value of one raw step, ``2**-frac`` (the nearest float: 0.0 or inf beyond the float range)."""
        return _scaled(1, self.frac)

    @property
    def min(self) -> float:
        """Smallest representable value (the nearest float)."""
        return _scaled(self.qmin, self.frac)

    @property
    def max(self) -> float:
        """Largest representable value (the nearest float)."""
        return _scaled(self.qmax, self.frac)

    @property
    def dtype(self) -> np.dtype:
        """Container of the raw integers: int8/16/32 (uint8/16/32), int64, or object past 64 bits."""
        return container_dtype(self.bits, self.signed)

    # --- text form ------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{'' if self.signed else 'U'}Q{self.int_bits}.{self.frac}"

    @classmethod
    def parse(cls, text: str) -> "QFormat":
        """Read ``Qm.n`` / ``UQm.n`` (ARM notation, sign bit not counted in ``m``)."""
        match = _Q_TEXT.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"text={text!r} is not a Q format; expected 'Qm.n' or 'UQm.n', e.g. 'Q1.6', 'UQ0.8'")
        unsigned, m, n = match.group(1) == "U", int(match.group(2)), int(match.group(3))
        bits = m + n + (0 if unsigned else 1)
        wide = bits > MAX_BITS
        return cls(bits, n, signed=not unsigned, wide=wide)

    @classmethod
    def for_range(cls, max_abs: float, bits: int, signed: bool = True) -> "QFormat":
        """The format of ``bits`` bits with the most fraction bits whose range holds ``+-max_abs``.

        Chosen exactly (``qmax * 2**-frac >= max_abs`` in rationals), so every positive
        float gets a finite format: down to the smallest subnormal (``frac`` = 1074 +
        ``bits`` - 2 for signed formats) and up to the largest float (``frac`` = -1018
        at 8 bits).  ``max_abs`` = 0 gives the format of range [-1, 1).

        >>> str(QFormat.for_range(1.0, 8)), QFormat.for_range(1e-320, 8).frac
        ('Q1.6', 1070)
        """
        if not np.isfinite(max_abs) or max_abs < 0:
            raise ValueError(f"max_abs must be a finite non-negative number, got {max_abs!r}")
        fmt = cls(bits, 0, signed)
        if max_abs == 0:
            return cls(bits, bits - (1 if signed else 0), signed)
        target = Fraction(float(max_abs))
        # an estimate from logarithms (finite for every positive float), then the exact test
        frac = math.floor(math.log2(fmt.qmax) - math.log2(max_abs))
        while fmt.qmax >= target * Fraction(2) ** (frac + 1):
            frac += 1
        while fmt.qmax < target * Fraction(2) ** frac:
            frac -= 1
        return cls(bits, frac, signed)


def _scaled(q: int, frac: int) -> float:
    """``q * 2**-frac`` rounded to the nearest float, +-inf beyond the float range."""
    try:
        return math.ldexp(float(q), -frac)
    except OverflowError:
        return math.copysign(math.inf, q)
