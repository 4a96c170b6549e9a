"""Element-wise integer ops on a backend of the registry: ``requantize``, ``add``, ``divide``, ``lut``, ``quantize``.

Deterministic roundings run in the backend; stochastic ones on the reference path with
the caller's generator (so every backend gives the same result for one seed);
``overflow="error"`` runs ``saturate`` in the backend and, if anything overflowed,
recomputes on the reference path, which raises the ``OverflowError``.  ``stats``
(anything with ``add(overflowed, total)``) receives the overflow count and the number
of elements that went through an overflow mode.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .args import as_numeric, axis_arg, bool_arg, c_array, generator, int_arg
from .epilogue import Epilogue, make_epilogue
from .limits import ADD_ALIGN_SLACK, ADD_INT64_MAX_LSHIFT, SHIFT_RANGE
from .modes import Overflow, as_overflow, as_rounding
from .reference.overflow import apply_overflow, container_dtype
from .reference.quantize import quantize_float
from .reference.requantize import requantize as reference_requantize
from .reference.rounding import round_div

# The fast quantize multiplies x by 2**frac in float64; these frac ranges keep that exact
# for every finite x (see fast_quantize_applies).
_FAST_QUANTIZE_FRAC = {np.dtype(np.float32): (-900, 900), np.dtype(np.float64): (0, 900)}


def requantize(
    acc, shift, multiplier=None, *, rounding, overflow, out_bits, out_dtype=None, relu=False, axis=-1,
    backend=None, rng=None, stats=None,
):
    """y = overflow(relu(round(acc * multiplier / 2**shift))) into ``out_bits``, per channel along ``axis``.

    ``acc``: a signed integer array (int8..int64), any shape (a 0-d ``acc`` gives a 0-d
    result).  ``shift`` ([-63, 127]) and ``multiplier`` ([1, 2**31-1], None meaning 1)
    are scalars or 1-d arrays with one entry per index along ``axis``.  The product is
    exact at any width; one rounding; ``out_dtype`` defaults to the container of
    ``out_bits`` (int8/int16/int32).
    """
    be = registry.get_backend(backend)
    acc = as_numeric(acc, "acc")
    if acc.dtype.kind != "i":
        raise TypeError(f"acc must be a signed integer array (int8, int16, int32, int64), got dtype {acc.dtype}")
    scalar = acc.ndim == 0
    acc = acc.reshape(1) if scalar else acc
    axis = axis_arg(axis, acc.ndim)
    rounding = as_rounding(rounding)
    epi = make_epilogue(acc.shape[axis], 0 if shift is None else shift, multiplier, rounding,
                        as_overflow(overflow), out_dtype, out_bits, bool_arg(relu, "relu"), None)
    rng = generator(rng, rounding)
    if rounding.is_stochastic or acc.size == 0:
        y, count = epi.reference(acc, rng, axis=axis)
    else:
        moved = np.moveaxis(acc, axis, -1)
        acc2 = c_array(moved.reshape(-1, acc.shape[axis]),
                                    np.int64 if acc.itemsize == 8 else np.int32)
        out2 = np.empty(acc2.shape, dtype=epi.out_dtype)
        count = be.requant(acc2, epi, out2)
        if count and epi.overflow is Overflow.ERROR:
            epi.reference(acc, axis=axis)
        y = np.ascontiguousarray(np.moveaxis(out2.reshape(moved.shape), -1, axis))
    _report(stats, count, y.size)
    return y.reshape(()) if scalar else y


def add(
    a, a_frac, b, b_frac, out_frac, *, out_bits=None, rounding="half_even", overflow="saturate", relu=False,
    backend=None, rng=None, stats=None,
):
    """Sum of two fixed-point tensors in different formats, rounded once into ``out_frac``.

    ``a`` and ``b``: int8/int16 raw integers (broadcast together) with ``a_frac`` and
    ``b_frac`` fraction bits.  Both are aligned exactly to frac max(a_frac, b_frac)
    (left shifts), added exactly (int64, or Python integers when the shifts are large),
    rounded to ``out_frac`` in ``rounding``, ``relu``-ed, then put through ``overflow``
    into ``out_bits`` (default: the wider input's width) in its container dtype.
    """
    be = registry.get_backend(backend)
    a = as_numeric(a, "a")
    b = as_numeric(b, "b")
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype not in (np.dtype(np.int8), np.dtype(np.int16)):
            raise TypeError(f"{name} must be int8 or int16 raw integers, got dtype {arr.dtype}")
    a_frac, b_frac, out_frac = (int_arg(v, n) for v, n in ((a_frac, "a_frac"), (b_frac, "b_frac"),
                                                           (out_frac, "out_frac")))
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"a {a.shape} and b {b.shape} do not broadcast together") from None
    wide = np.promote_types(a.dtype, b.dtype)
    rounding = as_rounding(rounding)
    epi, a_lshift, b_lshift = add_alignment(a_frac, b_frac, out_frac, 8 * wide.itemsize if out_bits is None else out_bits,
                                            rounding, as_overflow(overflow), bool_arg(relu, "relu"))
    rng = generator(rng, rounding)
    out = np.empty(a.shape, dtype=epi.out_dtype)
    if rounding.is_stochastic or max(a_lshift, b_lshift) > ADD_INT64_MAX_LSHIFT:
        out[...], count = _reference_add(a, b, a_lshift, b_lshift, epi, rng)
    else:
        a_c = c_array(a, wide)
        b_c = c_array(b, wide)
        count = be.add_requant(a_c, b_c, a_lshift, b_lshift, epi, out) if out.size else 0
        if count and epi.overflow is Overflow.ERROR:
            _reference_add(a, b, a_lshift, b_lshift, epi, rng)
    _report(stats, count, out.size)
    return out


def add_alignment(a_frac: int, b_frac: int, out_frac: int, out_bits: int, rounding, overflow, relu: bool):
    """(epilogue, a_lshift, b_lshift) of :func:`add`: both operands shifted left onto frac max(a_frac, b_frac),
    then one requantization by shift = that frac - out_frac."""
    frac = max(a_frac, b_frac)
    shift = frac - out_frac
    if not SHIFT_RANGE[0] <= shift <= SHIFT_RANGE[1]:
        raise ValueError(
            f"max(a_frac, b_frac) - out_frac = {shift} is outside the supported shift range {list(SHIFT_RANGE)}"
        )
    epi = make_epilogue(1, shift, None, rounding, overflow, None, out_bits, relu, None)
    # Only one operand is shifted; beyond max(shift, 0) + slack the result no longer depends on how far.
    limit = max(shift, 0) + ADD_ALIGN_SLACK
    return epi, min(frac - a_frac, limit), min(frac - b_frac, limit)


def _reference_add(a, b, a_lshift, b_lshift, epi: Epilogue, rng):
    """The exact aligned sum (int64, or Python ints past the int64 alignment), requantized on the reference path."""
    if max(a_lshift, b_lshift) <= ADD_INT64_MAX_LSHIFT:
        total = (a.astype(np.int64) << a_lshift) + (b.astype(np.int64) << b_lshift)
    else:
        total = (a.astype(object) << a_lshift) + (b.astype(object) << b_lshift)
    y, count = reference_requantize(total, int(epi.shift[0]), rounding=epi.rounding, overflow=epi.overflow,
                                    bits=epi.out_bits, signed=True, relu=epi.relu, rng=rng)
    return y, count


def divide(numerator, denominator, *, out_bits, rounding="half_even", overflow="saturate", rng=None, backend=None,
           stats=None):
    """y = overflow(round(numerator / denominator)) into ``out_bits`` signed bits, element-wise (broadcast).

    ``numerator``: signed integers (int8..int64); ``denominator``: integers in [1, 2**62].
    The exact rational is rounded once in ``rounding`` (ties are ``2 * r == denominator``;
    ``stochastic`` rounds up with probability exactly r / denominator), then ``overflow``
    fits it to ``out_bits`` (2..32) in its container dtype.  Used by the fixed-point softmax.
    """
    be = registry.get_backend(backend)
    num = as_numeric(numerator, "numerator")
    den = as_numeric(denominator, "denominator")
    for name, arr in (("numerator", num), ("denominator", den)):
        if arr.dtype.kind != "i" and not (arr.dtype.kind == "u" and arr.itemsize < 8):
            raise TypeError(f"{name} must be an integer array (int8..int64, uint8..uint32), got dtype {arr.dtype}")
    if den.size and (int(den.min()) < 1 or int(den.max()) > 2**62):
        raise ValueError(f"denominator must lie in [1, 2**62], got values in [{int(den.min())}, {int(den.max())}]")
    try:
        num, den = np.broadcast_arrays(num, den)
    except ValueError:
        raise ValueError(f"numerator {num.shape} and denominator {den.shape} do not broadcast together") from None
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    epi = make_epilogue(1, 0, None, rounding, overflow, None, out_bits, False, None)
    rng = generator(rng, rounding)
    flat_num = c_array(num, np.int64).reshape(-1)
    flat_den = c_array(den, np.int64).reshape(-1)
    out = np.empty(flat_num.shape, dtype=epi.out_dtype)
    if rounding.is_stochastic:
        y, count = apply_overflow(round_div(flat_num, flat_den, rounding, rng), epi.out_bits, True, overflow)
        out[...] = y
    else:
        count = be.divide(flat_num, flat_den, rounding, epi.fast_overflow, epi.out_bits, out) if out.size else 0
        if count and overflow is Overflow.ERROR:
            apply_overflow(round_div(flat_num, flat_den, rounding), epi.out_bits, True, overflow)
    _report(stats, count, out.size)
    return out.reshape(num.shape)


def lut(x, table, *, backend=None):
    """out = table[x - x_min]: int8 x with a 256-entry table, int16 x with a 65536-entry table.

    Entry i of ``table`` (any integer or float dtype) is the output for raw input
    ``i + x_min`` (-128 or -32768); the result has x's shape (0-d included) and the
    table's dtype.
    """
    be = registry.get_backend(backend)
    x = as_numeric(x, "x")
    table = as_numeric(table, "table")
    sizes = {np.dtype(np.int8): 256, np.dtype(np.int16): 65536}
    if x.dtype not in sizes:
        raise TypeError(f"lut needs int8 or int16 x, got dtype {x.dtype}")
    if table.shape != (sizes[x.dtype],):
        raise ValueError(f"a {x.dtype} lut needs a 1-d table of {sizes[x.dtype]} entries, got shape {table.shape}")
    flat = c_array(x).reshape(-1)
    out = np.empty(flat.shape, dtype=table.dtype)
    if out.size:
        be.lut(flat, c_array(table), out)
    return out.reshape(x.shape)


def quantize(x, frac, bits, *, signed=True, rounding="half_even", overflow="saturate", rng=None, backend=None):
    """Raw integers ``overflow(round(x * 2**frac))`` in the container of ``bits``; returns (raw, count).

    One rounding of the exact value, as a cast from an unbounded source format.  The
    backend's fast kernel runs for float32/float64 ``x``, deterministic rounding,
    ``saturate``, signed ``bits`` <= 16 and a ``frac`` that keeps ``x * 2**frac`` exact
    in float64 (float32: |frac| <= 900; float64: 0 <= frac <= 900).  Everything else
    runs the exact :func:`~fixedpoint.kernels.reference.quantize.quantize_float`.  NaN
    raises ``ValueError``; ``count`` is the number of elements that saturated or wrapped.
    """
    be = registry.get_backend(backend)
    x = as_numeric(x, "x")
    frac = int_arg(frac, "frac")
    bits = int_arg(bits, "bits")
    signed = bool_arg(signed, "signed")
    lowest = 2 if signed else 1
    if not lowest <= bits <= 32:
        raise ValueError(f"bits={bits} is out of range: {'signed' if signed else 'unsigned'} formats take "
                         f"{lowest}..32 bits")
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    rng = generator(rng, rounding)
    if not fast_quantize_applies(x.dtype, frac, bits, signed, rounding, overflow):
        return quantize_float(x, frac, bits, signed=signed, rounding=rounding, overflow=overflow, rng=rng)
    flat = c_array(x).reshape(-1)
    raw = np.empty(flat.shape, dtype=container_dtype(bits, True))
    saturated, nan_count = be.quantize(flat, frac, rounding, bits, raw) if raw.size else (0, 0)
    if nan_count:
        raise ValueError(f"x contains {nan_count} NaN value(s); fixed point has no NaN")
    return raw.reshape(x.shape), int(saturated)


def fast_quantize_applies(dtype, frac, bits, signed, rounding, overflow) -> bool:
    """Whether a backend's float64 kernel gives the exact answer for x of ``dtype`` and these arguments.

    float32 x = m * 2**e with a 24-bit m and e >= -149; x * 2**frac stays exact in
    float64 while e + frac >= -1074 (frac >= -925) and is at worst +-inf (which
    saturates, as it should) when it overflows; 2**frac itself must be finite
    (frac <= 1023).  float64 x has e >= -1074, so only frac >= 0 is safe for every x.
    The limits used (see ``_FAST_QUANTIZE_FRAC``) are inside these bounds.
    """
    if rounding.is_stochastic or overflow is not Overflow.SATURATE:
        return False
    dtype = np.dtype(dtype)
    if not signed or bits > 16 or dtype not in _FAST_QUANTIZE_FRAC:
        return False
    lo, hi = _FAST_QUANTIZE_FRAC[dtype]
    return lo <= frac <= hi


def _report(stats, count, size) -> None:
    if stats is not None:
        stats.add(int(count), int(size))
