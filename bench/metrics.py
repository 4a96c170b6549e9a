"""Speed and error figures (DESIGN.md section 5): GOPS, ratios, SQNR, max error in LSBs, relative RMS.

Errors are always taken against float64 computed on the original float inputs; the
quantization-noise model gives uniform noise of variance LSB**2/12 per rounding.
"""
from __future__ import annotations

import math

import numpy as np


def gops(ops: float, seconds: float) -> float:
    """Giga-operations per second (a multiply-add counts 2 operations)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return ops / seconds / 1e9


def sqnr_db(reference, approx) -> float:
    """10*log10(sum(ref**2) / sum((ref - approx)**2)); inf when the error is zero."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(approx, dtype=np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def max_error_lsb(reference, approx, lsb: float) -> float:
    """Largest absolute error expressed in output LSBs."""
    err = np.abs(np.asarray(reference, dtype=np.float64) - np.asarray(approx, dtype=np.float64))
    return float(err.max() / lsb) if err.size else 0.0


def relative_rms(reference, approx) -> float:
    """RMS of the error divided by the RMS of the reference."""
    ref = np.asarray(reference, dtype=np.float64)
    ref_rms = math.sqrt(float(np.mean(ref ** 2)))
    err_rms = math.sqrt(float(np.mean((ref - np.asarray(approx, dtype=np.float64)) ** 2)))
    return err_rms / ref_rms if ref_rms > 0 else math.inf


def sine_sqnr_theory_db(bits: int) -> float:
    """SQNR of a full-scale sine quantized to ``bits`` bits: 6.02*b + 1.76 dB."""
    return 6.02 * bits + 1.76


def predicted_dot_sqnr_db(reference, x, w, k: int, lsb_x: float, lsb_w: float, lsb_y: float) -> float:
    """Noise-model SQNR of outputs that each sum ``k`` products of x and w entries.

    x, w are rounded to lsb_x, lsb_w and the output to lsb_y.

    Each output sums K products whose error is x*dw + w*dx (second order dropped), so its
    variance is K*(mean(x**2)*lsb_w**2 + mean(w**2)*lsb_x**2)/12, plus lsb_y**2/12 for the
    output rounding.
    """
    ref = np.asarray(reference, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    noise = (k * (float(np.mean(x ** 2)) * lsb_w ** 2 + float(np.mean(w ** 2)) * lsb_x ** 2) + lsb_y ** 2) / 12.0
    signal = float(np.mean(ref ** 2))
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf
