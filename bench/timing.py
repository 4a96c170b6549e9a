"""Wall-clock timing with pytest-benchmark's timer and statistics, for ``fxbench run``.

The same method as the pytest-benchmark suite: one untimed warm-up call (JIT compilation
and first-touch page faults are never counted), then rounds of ``loops`` calls each,
calibrated so one round lasts at least ``min_round`` seconds, until ``min_time`` seconds
or ``max_rounds`` rounds; the reported figure is the median time of one call.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pytest_benchmark.stats import Stats
from pytest_benchmark.timers import default_timer


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median (the headline), min, mean, stddev, IQR; how it was sampled."""

    median: float
    min: float
    mean: float
    stddev: float
    iqr: float
    rounds: int
    loops: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure(function, *, min_time: float = 0.2, min_rounds: int = 3, max_rounds: int = 200,
            min_round: float = 2e-4, max_time: float = 10.0) -> Timing:
    """Time ``function()`` (no arguments) after one warm-up call; see the module docstring.

    ``max_time`` caps the whole measurement (a slow call still gets ``min_rounds`` rounds).
    """
    if min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    function()  # warm-up: compile, allocate, fault pages in
    loops = _calibrate_loops(function, min_round)
    stats = Stats()
    spent = 0.0
    rounds = 0  # Stats.rounds is a cached property: count here
    while rounds < max_rounds:
        start = default_timer()
        for _ in range(loops):
            function()
        elapsed = default_timer() - start
        stats.update(elapsed / loops)
        spent += elapsed
        rounds += 1
        if rounds >= min_rounds and (spent >= min_time or spent >= max_time):
            break
    return Timing(median=stats.median, min=stats.min, mean=stats.mean,
                  stddev=stats.stddev if rounds > 1 else 0.0,
                  iqr=stats.iqr, rounds=rounds, loops=loops)


def _calibrate_loops(function, min_round: float) -> int:
    """Smallest power of two of calls whose total time reaches ``min_round`` seconds."""
    loops = 1
    while True:
        start = default_timer()
        for _ in range(loops):
            function()
        if default_timer() - start >= min_round or loops >= 1 << 16:
            return loops
        loops *= 2
