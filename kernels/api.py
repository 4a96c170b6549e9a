"""The public kernel API: validate, make contiguous, allocate outputs, route to a backend.

Every function checks all of its arguments before any backend code runs, copies
non-contiguous (or non-native byte order) inputs to C order, and hands the backend
plain C-contiguous arrays as described in ``kernels/protocol.py``.  ``backend=None``
uses :func:`~fixedpoint.kernels.registry.default_backend`.

Accumulators: float32 x float32 sums in float32 and float64 x float64 in float64;
int8 x int8 sums exactly in int32 (``K <= 65536``, and the bias must leave room: see
:func:`_check_accumulator_bound`); int16 x int16 and int16 x int8 sum exactly in
int64.  Requantization ``y = round(acc * multiplier / 2**shift)`` rounds once, in
``rounding``; ``relu`` follows; the overflow mode into ``out_bits`` comes last.

Routing.  Deterministic roundings with ``saturate``, ``wrap`` or
``saturate_symmetric`` run in the backend's fused kernels.  Stochastic roundings
take the exact accumulator from the backend's ``gemm`` and requantize it on the
reference path with ``rng`` (so every backend gives the same result for the same
seed).  ``overflow="error"`` runs ``saturate`` in the backend and, if anything
overflowed, recomputes on the reference path, which raises the ``OverflowError``.
``stats`` (anything with ``add(overflowed, total)``, e.g. ``fixedpoint.OverflowStats``)
receives the overflow count and the number of elements of every result that went
through an overflow mode (requantized outputs, ``add``); exact accumulators and
float results are not counted.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from . import registry
from .modes import Overflow, Rounding, as_overflow, as_rounding
from .reference.overflow import container_dtype, integer_range
from .reference.quantize import quantize_float
from .reference.requantize import MULTIPLIER_RANGE, SHIFT_RANGE
from .reference.requantize import requantize as reference_requantize

__all__ = [
    "add", "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "linear", "lut", "max_pool1d", "max_pool2d",
    "quantize", "requantize",
]

# (x dtype, w dtype) -> accumulator dtype
_GEMM_PAIRS = {
    (np.dtype(np.float32), np.dtype(np.float32)): np.dtype(np.float32),
    (np.dtype(np.float64), np.dtype(np.float64)): np.dtype(np.float64),
    (np.dtype(np.int8), np.dtype(np.int8)): np.dtype(np.int32),
    (np.dtype(np.int16), np.dtype(np.int16)): np.dtype(np.int64),
    (np.dtype(np.int16), np.dtype(np.int8)): np.dtype(np.int64),
}
_ACCEPTED_PAIRS = "(float32, float32), (float64, float64), (int8, int8), (int16, int16), (int16, int8)"
_OUT_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
_POOL_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.float32), np.dtype(np.float64))
_INT8_MAX_K = 65536
_IM2COL_CHUNK_BYTES = 32 * 2**20
# The fast quantize multiplies x by 2**frac in float64; these frac ranges keep that exact
# for every finite x (see _fast_quantize_is_exact).
_FAST_QUANTIZE_FRAC = {np.dtype(np.float32): (-900, 900), np.dtype(np.float64): (0, 900)}
# a << lshift of a 16-bit value plus a second such term stays below 2**63 for lshift <= 46
_ADD_MAX_INT64_LSHIFT = 46


# ----------------------------------------------------------------------------- layers


def linear(
    x, w, bias=None, *, shift=None, multiplier=None, rounding="half_even", overflow="saturate", out_dtype=None,
    out_bits=None, relu=False, backend=None, rng=None, stats=None,
):
    """y = x @ w.T + bias, then (integers, if ``shift`` or ``multiplier`` is given) requantized.

    ``x`` (M, K) or (K,) (a single row: the result is then (N,)), ``w`` (N, K), ``bias``
    (N,) in the accumulator dtype (or one that casts to it safely).  Accepted
    (x, w) dtypes: float32/float32 and float64/float64 (accumulate and return in that
    dtype; ``shift``/``multiplier``/``out_dtype``/``out_bits`` must be None),
    int8/int8 (exact int32 accumulator, K <= 65536), int16/int16 and int16/int8 (exact
    int64 accumulator).  Integer inputs with ``shift`` and ``multiplier`` both None
    return the exact accumulator.  Otherwise ``y = round(acc * multiplier / 2**shift)``
    (``shift`` in [-63, 127], absent meaning 0; ``multiplier`` in [1, 2**31-1], absent
    meaning 1; each a scalar or one entry per output column), exact at any width; then
    ``relu``; then ``overflow`` into ``out_bits`` (default: all bits of ``out_dtype``;
    ``out_dtype`` default int8 for int8 inputs, int16 otherwise).
    """
    x = _as_numeric(x, "x")
    if x.ndim not in (1, 2):
        raise ValueError(f"linear needs x of shape (M, K) or (K,) and w of shape (N, K); got x of shape {x.shape}")
    from .prepared import prepare_linear

    layer = prepare_linear(w, bias, shift=shift, multiplier=multiplier, rounding=rounding, overflow=overflow,
                           out_dtype=out_dtype, out_bits=out_bits, relu=relu, x_dtype=x.dtype, backend=backend)
    return layer(x, rng=rng, stats=stats)


def conv2d(
    x, w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even",
    overflow="saturate", out_dtype=None, out_bits=None, relu=False, backend=None, rng=None, stats=None,
):
    """2-d convolution (cross-correlation), NHWC: x (B, H, W, C), w (O, KH, KW, C) -> (B, OH, OW, O).

    ``stride`` and ``padding`` are an int or an (h, w) pair; padding is with zeros.
    The same dtypes, accumulators and epilogue keywords as :func:`linear`.  Computed as
    zero padding plus im2col (patches copied in the input dtype, at most ~32 MiB at a
    time) and the backend's ``gemm`` / ``gemm_requant`` against w reshaped to
    (O, KH*KW*C).
    """
    x = _as_numeric(x, "x")
    from .prepared import prepare_conv2d

    layer = prepare_conv2d(w, bias, stride=stride, padding=padding, shift=shift, multiplier=multiplier,
                           rounding=rounding, overflow=overflow, out_dtype=out_dtype, out_bits=out_bits, relu=relu,
                           x_dtype=x.dtype, backend=backend)
    return layer(x, rng=rng, stats=stats)


def conv1d(
    x, w, bias=None, *, stride=1, padding=0, shift=None, multiplier=None, rounding="half_even",
    overflow="saturate", out_dtype=None, out_bits=None, relu=False, backend=None, rng=None, stats=None,
):
    """1-d convolution, NLC: x (B, L, C), w (O, K, C) -> (B, OL, O); ``stride``/``padding`` ints.

    Runs as :func:`conv2d` with H = 1; same dtypes, accumulators and epilogue.
    """
    x = _as_numeric(x, "x")
    from .prepared import prepare_conv1d

    layer = prepare_conv1d(w, bias, stride=stride, padding=padding, shift=shift, multiplier=multiplier,
                           rounding=rounding, overflow=overflow, out_dtype=out_dtype, out_bits=out_bits, relu=relu,
                           x_dtype=x.dtype, backend=backend)
    return layer(x, rng=rng, stats=stats)


def requantize(
    acc, shift, multiplier=None, *, rounding, overflow, out_bits, out_dtype=None, relu=False, axis=-1,
    backend=None, rng=None, stats=None,
):
    """y = overflow(relu(round(acc * multiplier / 2**shift))) into ``out_bits``, per channel along ``axis``.

    ``acc``: a signed integer array (int8..int64).  ``shift`` ([-63, 127]) and
    ``multiplier`` ([1, 2**31-1], None meaning 1) are scalars or 1-d arrays with one
    entry per index along ``axis``.  The product is exact at any width; one rounding;
    ``out_dtype`` defaults to the container of ``out_bits`` (int8/int16/int32).
    """
    be = registry.get_backend(backend)
    acc = _as_numeric(acc, "acc")
    if acc.dtype.kind != "i":
        raise TypeError(f"acc must be a signed integer array (int8, int16, int32, int64), got dtype {acc.dtype}")
    if acc.ndim == 0:
        acc = acc.reshape(1)
    axis = _axis(axis, acc.ndim)
    epi = _epilogue(acc.shape[axis], None, acc.dtype, 0 if shift is None else shift, multiplier, rounding,
                    overflow, out_dtype, out_bits, relu, rng)
    if epi.on_reference_path(be):
        y = _reference_requant(acc, epi, epi.overflow, axis)
        count = epi.last_count
    else:
        moved = np.moveaxis(acc, axis, -1)
        acc2 = np.ascontiguousarray(moved.reshape(-1, acc.shape[axis]), dtype=np.int64 if acc.itemsize == 8
                                    else np.int32)
        out2 = np.empty(acc2.shape, dtype=epi.out_dtype)
        count = be.requant(acc2, epi.shift, epi.multiplier, epi.rounding.code, epi.fast_overflow.code,
                           epi.out_bits, epi.relu, out2) if out2.size else 0
        if count and epi.overflow is Overflow.ERROR:
            _reference_requant(acc, epi, Overflow.ERROR, axis)
        y = np.moveaxis(out2.reshape(moved.shape), -1, axis)
        y = np.ascontiguousarray(y)
    _report(stats, count, y.size)
    return y


def max_pool2d(x, kernel, stride=None, *, backend=None):
    """Max over kh x kw windows of x (B, H, W, C) (int8/int16/float32/float64), no padding.

    ``kernel`` and ``stride`` (default: ``kernel``) are ints or (h, w) pairs.
    """
    be = registry.get_backend(backend)
    x, kernel, stride, out = _pool_setup(x, kernel, stride, "max_pool2d")
    if out.size:
        be.maxpool(x, kernel, stride, out)
    return out


def avg_pool2d(x, kernel, stride=None, *, rounding="half_even", backend=None):
    """Mean over kh x kw windows of x (B, H, W, C), no padding, in x's dtype.

    Integers: the exact window sum divided by kh*kw and rounded once in ``rounding``
    (deterministic modes; the mean of integers always fits the input dtype, so nothing
    saturates).  Floats: the plain mean.
    """
    be = registry.get_backend(backend)
    rounding = _deterministic(rounding, "avg_pool2d")
    x, kernel, stride, out = _pool_setup(x, kernel, stride, "avg_pool2d")
    if out.size:
        be.avgpool(x, kernel, stride, rounding.code, out)
    return out


def max_pool1d(x, kernel, stride=None, *, backend=None):
    """Max pool of x (B, L, C) over windows of ``kernel`` (an int), as :func:`max_pool2d` with H = 1."""
    x = _pool1d_input(x, "max_pool1d")
    kernel, stride = _pool1d_window(kernel, stride)
    return max_pool2d(x, kernel, stride, backend=backend)[:, 0]


def avg_pool1d(x, kernel, stride=None, *, rounding="half_even", backend=None):
    """Average pool of x (B, L, C), as :func:`avg_pool2d` with H = 1."""
    x = _pool1d_input(x, "avg_pool1d")
    kernel, stride = _pool1d_window(kernel, stride)
    return avg_pool2d(x, kernel, stride, rounding=rounding, backend=backend)[:, 0]


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
    a = _as_numeric(a, "a")
    b = _as_numeric(b, "b")
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype not in (np.dtype(np.int8), np.dtype(np.int16)):
            raise TypeError(f"{name} must be int8 or int16 raw integers, got dtype {arr.dtype}")
    a_frac, b_frac, out_frac = (_int(v, n) for v, n in ((a_frac, "a_frac"), (b_frac, "b_frac"),
                                                        (out_frac, "out_frac")))
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"a {a.shape} and b {b.shape} do not broadcast together") from None
    wide = np.promote_types(a.dtype, b.dtype)
    if out_bits is None:
        out_bits = 8 * wide.itemsize
    frac = max(a_frac, b_frac)
    shift = frac - out_frac
    if not SHIFT_RANGE[0] <= shift <= SHIFT_RANGE[1]:
        raise ValueError(
            f"max(a_frac, b_frac) - out_frac = {shift} is outside the supported shift range {list(SHIFT_RANGE)}"
        )
    epi = _epilogue(1, None, np.dtype(np.int64), shift, None, rounding, overflow, None, out_bits, relu, rng)
    a_lshift, b_lshift = frac - a_frac, frac - b_frac
    out = np.empty(a.shape, dtype=epi.out_dtype)
    use_reference = epi.on_reference_path(be) or max(a_lshift, b_lshift) > _ADD_MAX_INT64_LSHIFT
    if use_reference:
        out[...], count = _reference_add(a, b, a_lshift, b_lshift, epi, epi.overflow)
    else:
        a_c = np.ascontiguousarray(a, dtype=wide)
        b_c = np.ascontiguousarray(b, dtype=wide)
        count = be.add_requant(a_c, b_c, a_lshift, b_lshift, shift, epi.rounding.code, epi.fast_overflow.code,
                               epi.out_bits, epi.relu, out) if out.size else 0
        if count and epi.overflow is Overflow.ERROR:
            _reference_add(a, b, a_lshift, b_lshift, epi, Overflow.ERROR)
    _report(stats, count, out.size)
    return out


def lut(x, table, *, backend=None):
    """out = table[x - x_min]: int8 x with a 256-entry table, int16 x with a 65536-entry table.

    Entry i of ``table`` is the output for raw input ``i + x_min`` (-128 or -32768); the
    result has x's shape and the table's dtype.
    """
    be = registry.get_backend(backend)
    x = _as_numeric(x, "x")
    table = _as_numeric(table, "table")
    sizes = {np.dtype(np.int8): 256, np.dtype(np.int16): 65536}
    if x.dtype not in sizes:
        raise TypeError(f"lut needs int8 or int16 x, got dtype {x.dtype}")
    if table.shape != (sizes[x.dtype],):
        raise ValueError(f"a {x.dtype} lut needs a 1-d table of {sizes[x.dtype]} entries, got shape {table.shape}")
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, dtype=table.dtype)
    if out.size:
        be.lut(x, np.ascontiguousarray(table), out)
    return out


def quantize(x, frac, bits, *, signed=True, rounding="half_even", overflow="saturate", rng=None, backend=None):
    """Raw integers ``overflow(round(x * 2**frac))`` in the container of ``bits``; returns (raw, count).

    The backend's fast kernel runs for float32/float64 ``x``, deterministic rounding,
    ``saturate``, signed ``bits`` <= 16 and a ``frac`` that keeps ``x * 2**frac`` exact
    in float64 (float32: |frac| <= 900; float64: 0 <= frac <= 900).  Everything else
    (and ``backend="reference"``) runs the exact
    :func:`~fixedpoint.kernels.reference.quantize.quantize_float`.  NaN raises
    ``ValueError``; ``count`` is the number of elements that saturated or wrapped.
    """
    be = registry.get_backend(backend)
    x = _as_numeric(x, "x")
    frac = _int(frac, "frac")
    bits = _int(bits, "bits")
    lowest = 2 if signed else 1
    if not lowest <= bits <= 32:
        raise ValueError(f"bits={bits} is out of range: {'signed' if signed else 'unsigned'} formats take "
                         f"{lowest}..32 bits")
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    rng = _generator(rng, rounding)
    if not _fast_quantize_applies(be, x, frac, bits, signed, rounding, overflow):
        return _quantize_exact(x, frac, bits, signed, rounding, overflow, rng)
    flat = np.ascontiguousarray(x).reshape(-1)
    raw = np.empty(flat.shape, dtype=container_dtype(bits, True))
    saturated, nan_count = be.quantize(flat, frac, rounding.code, bits, raw) if raw.size else (0, 0)
    if nan_count:
        raise ValueError(f"x contains {nan_count} NaN value(s); fixed point has no NaN")
    return raw.reshape(x.shape), int(saturated)


# ----------------------------------------------------------------------------- epilogue


@dataclass
class _Epilogue:
    """Validated output stage of a layer: requantize (or not), rounding, overflow, output dtype."""

    requant: bool
    shift: np.ndarray | None        # (N,) int32
    multiplier: np.ndarray | None   # (N,) int64, None meaning 1
    rounding: Rounding
    overflow: Overflow
    out_bits: int
    out_dtype: np.dtype
    relu: bool
    rng: np.random.Generator | None
    last_count: int = 0

    @property
    def fast_overflow(self) -> Overflow:
        """The mode a backend runs: ``error`` runs as ``saturate`` and is checked afterwards."""
        return Overflow.SATURATE if self.overflow is Overflow.ERROR else self.overflow

    def on_reference_path(self, be) -> bool:
        return self.rounding.is_stochastic or be.NAME == "reference"


def _epilogue(n_channels, in_dtype, acc_dtype, shift, multiplier, rounding, overflow, out_dtype, out_bits, relu,
              rng) -> _Epilogue:
    """Check the epilogue keywords; ``in_dtype`` None means a bare requantize (no float case)."""
    rounding = as_rounding(rounding)
    overflow = as_overflow(overflow)
    relu = bool(relu)
    requant = shift is not None or multiplier is not None
    if acc_dtype.kind == "f":
        for name, value in (("shift", shift), ("multiplier", multiplier), ("out_dtype", out_dtype),
                            ("out_bits", out_bits)):
            if value is not None:
                raise ValueError(f"{name} must be None for float inputs ({acc_dtype}); requantization is integer only")
        return _Epilogue(False, None, None, rounding, overflow, 0, acc_dtype, relu, None)
    if not requant:
        for name, value in (("out_dtype", out_dtype), ("out_bits", out_bits)):
            if value is not None:
                raise ValueError(f"{name} needs shift= or multiplier=: without them the exact {acc_dtype} "
                                 "accumulator is returned")
        return _Epilogue(False, None, None, rounding, overflow, 0, acc_dtype, relu, None)
    shift_arr = _channel_param(0 if shift is None else shift, n_channels, "shift", SHIFT_RANGE, np.int32)
    mult_arr = None if multiplier is None else _channel_param(multiplier, n_channels, "multiplier",
                                                              MULTIPLIER_RANGE, np.int64)
    out_dtype, out_bits = _output_format(out_dtype, out_bits, in_dtype)
    return _Epilogue(True, shift_arr, mult_arr, rounding, overflow, out_bits, out_dtype, relu,
                     _generator(rng, rounding))


def _output_format(out_dtype, out_bits, in_dtype):
    """(out_dtype, out_bits): dtype int8/int16/int32, bits 2..its width."""
    if out_dtype is None:
        if in_dtype is None:
            if out_bits is None:
                raise ValueError("out_bits is required (2..32)")
            out_dtype = container_dtype(_bits_in_range(out_bits), True)
        else:
            out_dtype = np.dtype(np.int8) if in_dtype == np.int8 else np.dtype(np.int16)
    try:
        out_dtype = np.dtype(out_dtype)
    except TypeError:
        raise TypeError(f"out_dtype={out_dtype!r} is not a dtype; accepted: int8, int16, int32") from None
    if out_dtype not in _OUT_DTYPES:
        raise TypeError(f"out_dtype={out_dtype} is not accepted; accepted: int8, int16, int32")
    width = 8 * out_dtype.itemsize
    if out_bits is None:
        return out_dtype, width
    out_bits = _bits_in_range(out_bits)
    if out_bits > width:
        raise ValueError(f"out_bits={out_bits} does not fit out_dtype={out_dtype} ({width} bits)")
    return out_dtype, out_bits


def _bits_in_range(out_bits) -> int:
    out_bits = _int(out_bits, "out_bits")
    if not 2 <= out_bits <= 32:
        raise ValueError(f"out_bits={out_bits} is out of range; accepted: 2..32")
    return out_bits


def _channel_param(value, n_channels, name, valid_range, dtype) -> np.ndarray:
    """A scalar or (n_channels,) integer parameter, range-checked, as a (n_channels,) array."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer or an integer array, got {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n_channels, int(arr), dtype=object)
    elif arr.shape != (n_channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_channels},) (one per output channel), "
                         f"got shape {arr.shape}")
    lo, hi = valid_range
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{int(arr.min())}, {int(arr.max())}]")
    return np.ascontiguousarray(arr, dtype=dtype)


def _generator(rng, rounding):
    """A ``numpy.random.Generator`` for stochastic modes (from a Generator or an int seed)."""
    if not rounding.is_stochastic:
        return None
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rounding={rounding.value!r} needs rng= (a numpy.random.Generator or an int seed)")


def _deterministic(rounding, where) -> Rounding:
    rounding = as_rounding(rounding)
    if rounding.is_stochastic:
        raise ValueError(f"{where} supports the deterministic roundings only, got {rounding.value!r}")
    return rounding


# ----------------------------------------------------------------------------- gemm routing


def _accumulate(be, x, w, bias, acc_dtype) -> np.ndarray:
    acc = np.empty((x.shape[0], w.shape[0]), dtype=acc_dtype)
    be.gemm(x, w, bias, acc)
    return acc


def _reference_requant(acc, epi, overflow, axis) -> np.ndarray:
    y, epi.last_count = reference_requantize(
        acc, epi.shift.astype(np.int64), epi.multiplier, rounding=epi.rounding, overflow=overflow,
        bits=epi.out_bits, signed=True, relu=epi.relu, axis=axis, rng=epi.rng,
    )
    return y.astype(epi.out_dtype, copy=False)


def _reference_add(a, b, a_lshift, b_lshift, epi, overflow):
    """The exact aligned sum as Python-int-safe int64/object values, requantized on the reference path."""
    if max(a_lshift, b_lshift) <= _ADD_MAX_INT64_LSHIFT:
        total = (a.astype(np.int64) << a_lshift) + (b.astype(np.int64) << b_lshift)
    else:
        total = (a.astype(object) << a_lshift) + (b.astype(object) << b_lshift)
    y, count = reference_requantize(total, int(epi.shift[0]), rounding=epi.rounding, overflow=overflow,
                                    bits=epi.out_bits, signed=True, relu=epi.relu, rng=epi.rng)
    return y, count


def _finish(epi, count, size, stats, recompute_acc) -> None:
    """Raise for ``overflow="error"`` (via the reference, same message) and report to ``stats``."""
    if epi.requant and count and epi.overflow is Overflow.ERROR:
        _reference_requant(recompute_acc(), epi, Overflow.ERROR, -1)
    if epi.requant:
        _report(stats, count, size)


def _report(stats, count, size) -> None:
    if stats is not None:
        stats.add(int(count), int(size))


def _gemm_accumulator(x_dtype, w_dtype, where) -> np.dtype:
    try:
        return _GEMM_PAIRS[(x_dtype, w_dtype)]
    except KeyError:
        raise TypeError(f"{where} does not take (x, w) dtypes ({x_dtype}, {w_dtype}); accepted: "
                        f"{_ACCEPTED_PAIRS}") from None


def _check_bias(bias, n, acc_dtype):
    """Bias (N,) in the accumulator dtype (or a dtype of the same kind that casts to it safely)."""
    if bias is None:
        return None
    bias = _as_numeric(bias, "bias")
    if bias.dtype.kind != acc_dtype.kind or not np.can_cast(bias.dtype, acc_dtype, "safe"):
        raise TypeError(f"bias must be in the accumulator dtype {acc_dtype} (or safely castable to it), "
                        f"got {bias.dtype}")
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},) (one per output channel), got {bias.shape}")
    return np.ascontiguousarray(bias, dtype=acc_dtype)


def _check_accumulator_bound(x_dtype, w_dtype, acc_dtype, k, bias) -> None:
    """Refuse shapes and biases whose integer accumulator could overflow.

    |x*w| <= 2**(bx-1) * 2**(bw-1), so |acc| <= K * 2**(bx+bw-2) + max|bias|, which must
    stay within the accumulator.  int8 additionally refuses K > 65536 outright, so
    backends may rely on that bound (and on |sum of products| <= 2**30).
    """
    if k < 1:
        raise ValueError("x and w need K >= 1 columns")
    if acc_dtype.kind == "f":
        return
    if x_dtype == np.int8 and k > _INT8_MAX_K:
        raise ValueError(f"int8 x int8 with K={k} > {_INT8_MAX_K} could overflow the int32 accumulator; "
                         "use int16 inputs (int64 accumulator) or split K")
    product_bound = 2 ** (8 * x_dtype.itemsize - 1) * 2 ** (8 * w_dtype.itemsize - 1)
    bias_bound = 0 if bias is None or bias.size == 0 else max(-int(bias.min()), int(bias.max()))
    acc_max = int(np.iinfo(acc_dtype).max)
    if k * product_bound + bias_bound > acc_max:
        raise ValueError(f"K={k} products (each up to {product_bound} in magnitude) plus a bias of magnitude "
                         f"{bias_bound} could overflow the {acc_dtype} accumulator (max {acc_max})")


# ----------------------------------------------------------------------------- convolution


def _im2col_chunks(x, kernel, stride, padding, out_hw):
    """Yield (row slice of the (B*OH*OW, O) output, patches (rows, KH*KW*C) in x's dtype).

    Whole images are grouped while their patches stay under ``_IM2COL_CHUNK_BYTES``;
    a single image too large for that is cut into bands of output rows.  Patch columns
    are ordered (kh, kw, c), matching w.reshape(O, KH*KW*C).
    """
    b, _, _, c = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    row_bytes = kh * kw * c * x.itemsize
    rows_per_chunk = max(1, _IM2COL_CHUNK_BYTES // row_bytes)
    images_per_chunk = max(1, rows_per_chunk // (oh * ow))
    bands_per_chunk = max(1, min(oh, rows_per_chunk // ow))
    for b0 in range(0, b, images_per_chunk):
        b1 = min(b, b0 + images_per_chunk)
        padded = np.pad(x[b0:b1], ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        band = oh if b1 - b0 > 1 else bands_per_chunk
        for i0 in range(0, oh, band):
            i1 = min(oh, i0 + band)
            patches = np.empty((b1 - b0, i1 - i0, ow, kh, kw, c), dtype=x.dtype)
            for di in range(kh):
                top = i0 * sh + di
                for dj in range(kw):
                    patches[:, :, :, di, dj, :] = padded[:, top : top + (i1 - i0 - 1) * sh + 1 : sh,
                                                         dj : dj + (ow - 1) * sw + 1 : sw, :]
            first = (b0 * oh + i0) * ow
            n_rows = (b1 - b0) * (i1 - i0) * ow
            yield slice(first, first + n_rows), patches.reshape(n_rows, kh * kw * c)


# ----------------------------------------------------------------------------- pooling


def _pool_setup(x, kernel, stride, where):
    x = _as_numeric(x, "x")
    if x.ndim != 4:
        raise ValueError(f"{where} needs x of shape (B, H, W, C), got {x.shape}")
    if x.dtype not in _POOL_DTYPES:
        raise TypeError(f"{where} takes int8, int16, float32 or float64 x, got dtype {x.dtype}")
    kernel = _pair(kernel, "kernel", minimum=1)
    stride = kernel if stride is None else _pair(stride, "stride", minimum=1)
    b, h, w, c = x.shape
    for size, k, dim in ((h, kernel[0], "height"), (w, kernel[1], "width")):
        if k > size:
            raise ValueError(f"{where}: kernel {dim} {k} is larger than the input {dim} {size}")
    oh = (h - kernel[0]) // stride[0] + 1
    ow = (w - kernel[1]) // stride[1] + 1
    return np.ascontiguousarray(x), kernel, stride, np.empty((b, oh, ow, c), dtype=x.dtype)


def _pool1d_input(x, where):
    x = _as_numeric(x, "x")
    if x.ndim != 3:
        raise ValueError(f"{where} needs x of shape (B, L, C), got {x.shape}")
    return x[:, None]


def _pool1d_window(kernel, stride):
    kernel = _int(kernel, "kernel", minimum=1)
    stride = kernel if stride is None else _int(stride, "stride", minimum=1)
    return (1, kernel), (1, stride)


# ----------------------------------------------------------------------------- quantize


def _quantize_exact(x, frac, bits, signed, rounding, overflow, rng):
    """``quantize_float``, with +-inf saturated here under the saturating modes.

    ``quantize_float`` stands in a finite 2**100 for +-inf, which stops saturating once
    ``frac`` is below about -100; infinities are set to the range ends directly instead
    (``wrap``/``error`` still raise on them in ``quantize_float``).
    """
    inf = np.isinf(x) if x.dtype.kind == "f" else None
    if inf is None or not inf.any() or overflow not in (Overflow.SATURATE, Overflow.SATURATE_SYMMETRIC):
        return quantize_float(x, frac, bits, signed=signed, rounding=rounding, overflow=overflow, rng=rng)
    raw, count = quantize_float(np.where(inf, 0, x), frac, bits, signed=signed, rounding=rounding,
                                overflow=overflow, rng=rng)
    qmin, qmax = integer_range(bits, signed)
    lowest = -qmax if (overflow is Overflow.SATURATE_SYMMETRIC and signed) else qmin
    raw[inf] = np.where(x[inf] > 0, qmax, lowest)
    return raw, count + int(np.count_nonzero(inf))


def _fast_quantize_applies(be, x, frac, bits, signed, rounding, overflow) -> bool:
    """Whether the backend's float64 kernel gives the exact answer for these arguments.

    float32 x = m * 2**e with a 24-bit m and e >= -149; x * 2**frac stays exact in
    float64 while e + frac >= -1074 (frac >= -925) and is at worst +-inf (which
    saturates, as it should) when it overflows; 2**frac itself must be finite
    (frac <= 1023).  float64 x has e >= -1074, so only frac >= 0 is safe for every x.
    The limits used (see ``_FAST_QUANTIZE_FRAC``) are inside these bounds.
    """
    if be.NAME == "reference" or rounding.is_stochastic or overflow is not Overflow.SATURATE:
        return False
    if not signed or bits > 16 or x.dtype not in _FAST_QUANTIZE_FRAC:
        return False
    lo, hi = _FAST_QUANTIZE_FRAC[x.dtype]
    return lo <= frac <= hi


# ----------------------------------------------------------------------------- argument helpers


def _as_numeric(value, name) -> np.ndarray:
    """``value`` as a native-byte-order integer or float ndarray (bool, complex, object refused)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real integer or float array, got dtype {arr.dtype}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _int(value, name, minimum=None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {value!r}") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")
    return value


def _pair(value, name, minimum) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return _int(value[0], name, minimum), _int(value[1], name, minimum)
    v = _int(value, name, minimum)
    return v, v


def _axis(axis, ndim) -> int:
    axis = _int(axis, "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim
