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


def float_sine_sqnr_theory_db(man_bits: int, emin: int, amplitude: float = 1.0) -> float:
    """SQNR of a sine of ``amplitude`` rounded to nearest in a float format with ``man_bits`` mantissa bits
    and smallest normal exponent ``emin`` (no overflow: amplitude <= the format's max).

    The noise model of floating-point quantization (Widrow and Kollar, *Quantization Noise*, Cambridge
    University Press 2008, chapter 12): each rounding adds uniform noise of variance ulp(x)**2 / 12, where
    ulp(x) = 2**(e - M) is set by the binade e = max(floor(log2|x|), emin) of the value (all subnormals
    share the ulp of emin).  A sine spends the share P_e = (2/pi) * (asin(min(1, 2**(e+1)/A)) -
    asin(min(1, 2**e/A))) of its time in binade e (below emin: (2/pi) * asin(2**emin / A)), so

        SQNR = (A**2 / 2) / sum_e P_e * 4**(e - M) / 12.

    For A just below a power of two this is about 6.02*(M + 1) + 9.2 dB; for a signal whose mantissa is
    log-uniform (the model's E[ulp**2 / x**2] / 12 = 0.180 * 2**(-2p) with p = M + 1 significant bits,
    Widrow and Kollar's floating-point noise power) it is 6.02*(M + 1) + 7.45 dB.
    """
    top = math.floor(math.log2(amplitude))

    def share_below(level):
        return (2 / math.pi) * math.asin(min(1.0, level / amplitude))

    noise = share_below(2.0 ** emin) * 4.0 ** (emin - man_bits) / 12
    for e in range(emin, top + 1):
        noise += (share_below(2.0 ** (e + 1)) - share_below(2.0 ** e)) * 4.0 ** (e - man_bits) / 12
    return 10.0 * math.log10(amplitude ** 2 / 2 / noise)


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
