"""Calibration: the clipping range (max |value|) a tensor's quantization format must hold.

Methods:
- "max": the largest |value| seen.
- "percentile": the given percentile (default 99.99 %) of |value|; outliers above it saturate.
- "mse": the clipping threshold, among 100 candidates spread over (0, max], that minimizes the mean squared error
  of symmetric `bits`-bit quantization (round half to even, saturate) of the values, computed in float64 on the
  values scaled by a power of two (exact), so the choice is the same at every magnitude, subnormals included.
"""

from __future__ import annotations

import numpy as np

from ..conversion import as_real_array

METHODS = ("max", "percentile", "mse")
_MSE_CANDIDATES = 100
_MSE_SAMPLE = 1 << 16


def calibration_range(values, method: str = "max", *, bits: int = 8, percentile: float = 99.99,
                      seed: int = 0) -> float:
    """Clipping range max|x| for real `values` by `method`; `bits` (2..16) is the signed width used by "mse".

    "mse" evaluates at most 65536 values (a fixed-seed random subsample of larger tensors).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an int in 2..16, got {bits!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    mags = np.abs(as_real_array(values, "values").astype(np.float64)).ravel()
    if mags.size == 0 or not np.all(np.isfinite(mags)):
        raise ValueError("values must be a non-empty array of finite numbers")
    top = float(mags.max())
    if method == "max" or top == 0:
        return top
    if method == "percentile":
        return float(np.percentile(mags, percentile))
    return _mse_range(mags, top, bits, seed)


def _mse_range(mags: np.ndarray, top: float, bits: int, seed: int) -> float:
    if mags.size > _MSE_SAMPLE:
        mags = np.random.default_rng(seed).choice(mags, _MSE_SAMPLE, replace=False)
    # scaled by a power of two (exact) to put top in [0.5, 1), so no square under- or overflows
    exponent = int(np.frexp(top)[1])
    mags, unit_top = np.ldexp(mags, -exponent), np.ldexp(top, -exponent)
    qmax = (1 << (bits - 1)) - 1
    best, best_err = unit_top, np.inf
    for clip in unit_top * np.arange(1, _MSE_CANDIDATES + 1) / _MSE_CANDIDATES:
        step = clip / qmax
        err = np.mean((np.minimum(np.rint(mags / step), qmax) * step - mags) ** 2)
        if err < best_err:
            best, best_err = clip, err
    return float(np.ldexp(best, exponent))
