"""Overflow counting: how many elements a quantize, cast or layer saturated or wrapped."""
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
