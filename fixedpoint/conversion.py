"""Float <-> fixed-point conversion of arrays: ``quantize`` and ``dequantize``."""
from __future__ import annotations

import numpy as np

from .kernels.modes import Overflow, Rounding, as_overflow, as_rounding
from .qformat import QFormat
from .stats import OverflowStats

# dequantize gives every frac beyond +-_FRAC_LIMIT the result of +-_FRAC_LIMIT: raw integers of up to 128 bits
# times 2**-2048 or 2**2048 are 0.0 or +-inf in float64, as at any larger |frac|.  (quantize's kernels bound
# frac the same way: kernels/limits.py QUANTIZE_FRAC_BOUND.)
_FRAC_LIMIT = 2048


def quantize(
    x,
    fmt: QFormat,
    rounding: Rounding | str = Rounding.HALF_EVEN,
    overflow: Overflow | str = Overflow.SATURATE,
    seed: np.random.Generator | int | None = None,
    backend: str | None = None,
    stats: OverflowStats | None = None,
) -> np.ndarray:
    """Raw integers of ``x`` in ``fmt``: ``overflow(round(x * 2**fmt.frac))``, in ``fmt.dtype``.

    Exact for every finite float16/32/64 (and integer) input at any magnitude and at
    any ``fmt.frac`` (a huge one costs what +-2048 does): the exact real
    ``x * 2**frac`` is rounded once, in ``rounding``, as a cast from an unbounded source
    format: values already representable come back unchanged in every mode but ``jam``
    (low bit set) and ``mag_trunc`` (+1 LSB if negative).  Then ``overflow`` fits the
    result to ``fmt``.  NaN raises ``ValueError``; +-inf saturate under
    ``saturate``/``saturate_symmetric`` and raise ``OverflowError`` under
    ``wrap``/``error``; ``error`` raises ``OverflowError`` naming the count and the
    worst value.  ``seed`` (int or ``numpy.random.Generator``) makes the stochastic
    modes reproducible.  ``stats`` (an :class:`OverflowStats`) receives the number of
    elements that saturated or wrapped.  ``backend`` picks the compute backend
    (``fixedpoint.kernels.available()``); fast backends handle deterministic modes with
    ``saturate``, everything else runs on the exact reference.

    >>> import numpy as np
    >>> quantize(np.array([0.3, -1.5, 2.0]), QFormat(8, 6))
    array([  19,  -96,  127], dtype=int8)
    """
    fmt = _as_format(fmt)
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    x = as_real_array(x, "x")
    rng = as_generator(seed) if rounding.is_stochastic else None
    from .kernels import api  # the dispatcher; imported late to keep module import light

    raw, count = api.quantize(
        x, fmt.frac, fmt.bits, signed=fmt.signed, rounding=rounding, overflow=overflow, rng=rng, backend=backend
    )
    if stats is not None:
        stats.add(count, raw.size)
    return raw


def dequantize(raw, fmt: QFormat) -> np.ndarray:
    """Float64 values ``raw * 2**-fmt.frac`` (exact while ``raw`` has <= 53 significant bits and the
    result is a normal float; 0.0 or +-inf beyond the float range, at any ``fmt.frac``).

    >>> dequantize(np.array([19, -96], dtype=np.int8), QFormat(8, 6))
    array([ 0.296875, -1.5     ])
    """
    fmt = _as_format(fmt)
    raw = np.asarray(raw)
    if raw.dtype != object and not np.issubdtype(raw.dtype, np.integer):
        raise TypeError(f"raw must be an integer array, got dtype {raw.dtype}")
    frac = min(max(fmt.frac, -_FRAC_LIMIT), _FRAC_LIMIT)
    return np.asarray(np.ldexp(raw.astype(np.float64), -frac))


def _as_format(fmt) -> QFormat:
    if isinstance(fmt, QFormat):
        return fmt
    if isinstance(fmt, str):
        return QFormat.parse(fmt)
    raise TypeError(f"fmt must be a QFormat or a 'Qm.n' string, got {type(fmt).__name__}")


def as_real_array(x, name: str) -> np.ndarray:
    """``x`` as an ndarray of a real float or integer dtype; TypeError naming ``name`` otherwise."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real float or integer array, got dtype {arr.dtype}")
    return arr


def as_generator(seed) -> np.random.Generator:
    """The generator of the stochastic modes: ``seed`` itself (a Generator), or one seeded with an int/None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}")
