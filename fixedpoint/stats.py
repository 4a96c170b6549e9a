"""Counters of what a conversion lost: overflowed (saturated or wrapped) and, for float formats, flushed elements."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OverflowStats:
    """A counter passed as ``stats=`` to quantize, cast, requantize and the kernel API.

    Every call adds the number of elements that fell outside the target range
    (and were saturated or wrapped) to ``overflowed``, and the number of elements
    it produced to ``total``.

    >>> import numpy as np, fixedpoint
    >>> stats = fixedpoint.OverflowStats()
    >>> raw = fixedpoint.quantize(np.array([0.5, 3.0, -9.0]), fixedpoint.QFormat(8, 6), stats=stats)
    >>> stats.overflowed, stats.total
    (2, 3)
    """

    overflowed: int = 0
    total: int = 0

    def add(self, overflowed: int, total: int) -> None:
        self.overflowed += int(overflowed)
        self.total += int(total)

    @property
    def fraction(self) -> float:
        """Share of elements that overflowed (0.0 when nothing was counted)."""
        return self.overflowed / self.total if self.total else 0.0

    def reset(self) -> None:
        self.overflowed = 0
        self.total = 0


@dataclass
class FloatStats:
    """A counter passed as ``stats=`` to :func:`fixedpoint.quantize_float` (and kept per layer by float-format
    models).

    Every call adds to ``overflowed`` the elements whose rounded value lay beyond the format's ``max``
    (saturated to +-max, or +-inf under ``overflow="inf"``; +-inf inputs count when they saturate), to
    ``flushed`` the nonzero finite inputs that became zero (underflow, or results below ``min_normal``
    of a format without subnormals), and to ``total`` the elements it produced.

    >>> import numpy as np, fixedpoint
    >>> stats = fixedpoint.FloatStats()
    >>> fixedpoint.quantize_float(np.array([1000.0, 1e-4, 0.3]), fixedpoint.FP8_E4M3, stats=stats).tolist()
    [448.0, 0.0, 0.3125]
    >>> stats.overflowed, stats.flushed, stats.total
    (1, 1, 3)
    """

    overflowed: int = 0
    flushed: int = 0
    total: int = 0

    def add(self, overflowed: int, flushed: int, total: int) -> None:
        self.overflowed += int(overflowed)
        self.flushed += int(flushed)
        self.total += int(total)

    def reset(self) -> None:
        self.overflowed = self.flushed = self.total = 0
