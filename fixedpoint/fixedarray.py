"""FixedArray: raw integers plus a QFormat, with exact full-precision arithmetic.

``+ - * @ sum`` never round and never overflow: the result format grows so that it
holds every possible result (DESIGN.md §2), and rounding and overflow happen only in
:meth:`FixedArray.cast`.  Growth rules (operands first made signed if the other one is,
which costs an unsigned operand one bit):

* ``a + b``, ``a - b``: frac = max(frac_a, frac_b); integer bits = the larger of the two,
  plus one.  Subtraction always gives a signed result.
* ``-a``: one more bit (``-qmin`` does not fit ``bits`` bits).
* ``a * b``: bits and frac add.
* ``a @ b`` (inner length K) and ``a.sum()`` over K elements: the product (or ``a``'s)
  format plus ``ceil(log2 K)`` bits.

Results up to 63 bits are computed in int64, wider ones (up to 128) in Python integers
(object arrays), so every result is exact.
"""
from __future__ import annotations

import math

import numpy as np

from .kernels.modes import Overflow, Rounding, as_overflow, as_rounding
from .kernels.reference import apply_overflow, round_shift
from .qformat import MAX_WIDE_BITS, QFormat
from .conversion import as_generator, dequantize, quantize
from .stats import OverflowStats



class FixedArray:
    """An array of fixed-point numbers: ``raw`` integers that stand for ``raw * 2**-fmt.frac``.

    >>> import numpy as np
    >>> a = FixedArray.from_float(np.array([0.75, -1.5]), QFormat(8, 6))
    >>> b = FixedArray.from_float(np.array([0.5, 0.25]), QFormat(8, 7))
    >>> (a * b).fmt, (a * b).to_float()
    (QFormat(bits=16, frac=13, signed=True, wide=False), array([ 0.375, -0.375]))
    >>> (a @ b).cast(QFormat(8, 6)).to_float()
    array(0.)
    """

    __array_ufunc__ = None   # numpy operands must not take over the operators

    def __init__(self, raw, fmt: QFormat):
        if not isinstance(fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, got {type(fmt).__name__}")
        raw = np.asarray(raw)
        if raw.dtype != object and raw.dtype.kind not in "iu":
            raise TypeError(f"raw must be an integer array, got dtype {raw.dtype}")
        if raw.size and (raw.min() < fmt.qmin or raw.max() > fmt.qmax):
            raise ValueError(f"raw values in [{raw.min()}, {raw.max()}] do not fit {fmt} (raw range [{fmt.qmin}, {fmt.qmax}])")
        self.raw = raw.astype(fmt.dtype)
        self.fmt = fmt

    # --- conversion ----------------------------------------------------------------
    @classmethod
    def from_float(
        cls,
        x,
        fmt: QFormat,
        rounding: Rounding | str = Rounding.HALF_EVEN,
        overflow: Overflow | str = Overflow.SATURATE,
        seed=None,
        stats: OverflowStats | None = None,
    ) -> "FixedArray":
        """Quantize floats into ``fmt`` (see :func:`fixedpoint.quantize`)."""
        return cls(quantize(x, fmt, rounding, overflow, seed=seed, stats=stats), fmt)

    def to_float(self) -> np.ndarray:
        """Float64 values (exact while the raw integers have <= 53 significant bits)."""
        return dequantize(self.raw, self.fmt)

    def cast(
        self,
        fmt: QFormat,
        rounding: Rounding | str = Rounding.HALF_EVEN,
        overflow: Overflow | str = Overflow.SATURATE,
        seed=None,
        stats: OverflowStats | None = None,
    ) -> "FixedArray":
        """Convert to ``fmt``: drop (round in ``rounding``) or add fraction bits, then ``overflow``.

        Dropping ``s = self.frac - fmt.frac > 0`` bits rounds once; adding bits is an exact
        left shift and no mode changes the value.  Any shift is cheap: beyond ``self.fmt.bits
        + 64`` dropped bits the rounding of every value is already decided (by its sign, and
        for the stochastic modes by the 62-bit comparison), and beyond ``fmt.bits`` added bits
        every nonzero value overflows (it saturates, or wraps to 0).
        """
        if not isinstance(fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, got {type(fmt).__name__}")
        rounding = as_rounding(rounding)
        overflow = as_overflow(overflow)
        rng = as_generator(seed) if rounding.is_stochastic else None
        shift = self.fmt.frac - fmt.frac
        value, right = _exact_pow2_shift(self.raw, _bounded_shift(shift, self.fmt.bits, fmt.bits))
        rounded = round_shift(value, np.full(value.shape, right, dtype=np.int64), rounding, rng)
        try:
            raw, count = apply_overflow(rounded, fmt.bits, fmt.signed, overflow)
        except OverflowError:
            if -shift <= fmt.bits:
                raise
            raise _left_shift_overflow(self.raw, -shift, fmt) from None
        if stats is not None:
            stats.add(count, raw.size)
        return FixedArray(raw, fmt)

    # --- numpy-like shape access ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    @property
    def size(self) -> int:
        return self.raw.size

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index) -> "FixedArray":
        return FixedArray(self.raw[index], self.fmt)

    def reshape(self, *shape) -> "FixedArray":
        return FixedArray(self.raw.reshape(*shape), self.fmt)

    @property
    def T(self) -> "FixedArray":
        return FixedArray(self.raw.T, self.fmt)

    # --- exact arithmetic ----------------------------------------------------------
    def __add__(self, other):
        return self._add(other, negate_other=False)

    def __sub__(self, other):
        return self._add(other, negate_other=True)

    def __neg__(self):
        fmt = _grown(self.fmt.bits + 1, self.fmt.frac, True)
        return FixedArray(-_compute_view(self.raw, fmt), fmt)

    def __mul__(self, other):
        other = _check_operand(other, "*")
        signed = self.fmt.signed or other.fmt.signed
        bits = _signed_bits(self.fmt, signed) + _signed_bits(other.fmt, signed)
        fmt = _grown(bits, self.fmt.frac + other.fmt.frac, signed)
        return FixedArray(_compute_view(self.raw, fmt) * _compute_view(other.raw, fmt), fmt)

    def __matmul__(self, other):
        other = _check_operand(other, "@")
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension")
        k = self.shape[-1]
        k_other = other.shape[-2] if other.ndim > 1 else other.shape[0]
        if k != k_other:
            raise ValueError(f"matmul inner dimensions differ: {self.shape} @ {other.shape}")
        signed = self.fmt.signed or other.fmt.signed
        bits = _signed_bits(self.fmt, signed) + _signed_bits(other.fmt, signed) + _log2_ceil(k)
        fmt = _grown(bits, self.fmt.frac + other.fmt.frac, signed)
        return FixedArray(np.matmul(_compute_view(self.raw, fmt), _compute_view(other.raw, fmt)), fmt)

    def sum(self, axis=None) -> "FixedArray":
        """Exact sum over ``axis`` (None, an int or a tuple of ints, as in numpy); the format gains
        ``ceil(log2 n)`` bits for ``n`` summed elements.  An axis out of range raises numpy's
        ``AxisError`` (a ``ValueError``)."""
        axes = _axes(axis, self.ndim)
        n = self.size if axes is None else math.prod(self.shape[a] for a in axes)
        fmt = _grown(self.fmt.bits + _log2_ceil(max(n, 1)), self.fmt.frac, self.fmt.signed)
        return FixedArray(np.sum(_compute_view(self.raw, fmt), axis=axes), fmt)

    # A reflected operator only runs when the left operand is not a FixedArray: refuse it.
    def __radd__(self, other):
        return _check_operand(other, "+")

    def __rsub__(self, other):
        return _check_operand(other, "-")

    def __rmul__(self, other):
        return _check_operand(other, "*")

    def __rmatmul__(self, other):
        return _check_operand(other, "@")

    def _add(self, other, negate_other: bool):
        other = _check_operand(other, "-" if negate_other else "+")
        signed = self.fmt.signed or other.fmt.signed or negate_other
        frac = max(self.fmt.frac, other.fmt.frac)
        int_bits = max(_signed_bits(self.fmt, signed) - self.fmt.frac, _signed_bits(other.fmt, signed) - other.fmt.frac)
        fmt = _grown(int_bits + frac + 1, frac, signed)
        a = _compute_view(self.raw, fmt) << (frac - self.fmt.frac)
        b = _compute_view(other.raw, fmt) << (frac - other.fmt.frac)
        return FixedArray(a - b if negate_other else a + b, fmt)

    def __repr__(self) -> str:
        values = np.array2string(self.to_float(), separator=", ", threshold=20)
        return f"FixedArray({self.fmt}, {values})"


def _check_operand(other, op: str) -> "FixedArray":
    if not isinstance(other, FixedArray):
        raise TypeError(
            f"FixedArray {op} {type(other).__name__} is not supported; the other operand must be a FixedArray "
            "(convert floats with FixedArray.from_float first)"
        )
    return other


def _axes(axis, ndim: int) -> tuple[int, ...] | None:
    """``axis`` as a tuple of distinct non-negative axes (None stays None)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
    for a in items:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(int(a), ndim, "axis")
    axes = tuple(int(a) % ndim for a in items)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis={axis!r} repeats an axis")
    return axes


def _signed_bits(fmt: QFormat, signed: bool) -> int:
    """Width of ``fmt`` when held in a signed format if ``signed`` (unsigned costs a bit)."""
    return fmt.bits + (1 if signed and not fmt.signed else 0)


def _log2_ceil(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def _grown(bits: int, frac: int, signed: bool) -> QFormat:
    if bits > MAX_WIDE_BITS:
        raise ValueError(
            f"the exact result needs {bits} bits, more than the {MAX_WIDE_BITS} a FixedArray holds; "
            "cast the operands to narrower formats first"
        )
    return QFormat(bits, frac, signed, wide=bits > 32)


def _compute_view(raw: np.ndarray, result_fmt: QFormat) -> np.ndarray:
    """``raw`` in a dtype where ``result_fmt``'s arithmetic is exact: int64 or Python ints.

    Every intermediate of an operation lies in the result's range, so int64 is exact for
    signed results up to 64 bits and unsigned ones up to 63.
    """
    fits_int64 = result_fmt.bits <= (64 if result_fmt.signed else 63)
    if fits_int64 and raw.dtype != object and raw.dtype != np.uint64:
        return raw.astype(np.int64)
    return raw.astype(object)


def _bounded_shift(shift: int, src_bits: int, dst_bits: int) -> int:
    """A cast shift with the same result as ``shift``, of at most ``src_bits + 64`` / ``dst_bits`` bits.

    A raw value of ``src_bits`` bits shifted right by ``s >= src_bits + 62`` leaves
    ``|v| < 2**-62``: every mode, stochastic ones included (see ``round_shift``), then rounds
    alike for every such ``s``.  A nonzero value shifted left by ``k >= dst_bits`` is outside
    the ``dst_bits`` range with its sign, and 0 modulo ``2**dst_bits``, for every such ``k``.
    """
    return min(shift, src_bits + 64) if shift >= 0 else max(shift, -dst_bits)


def _left_shift_overflow(raw: np.ndarray, left: int, fmt: QFormat) -> OverflowError:
    """The ``overflow='error'`` message of a cast adding ``left`` > ``fmt.bits`` bits (every nonzero overflows)."""
    nonzero = raw[raw != 0].astype(object)
    worst = max(nonzero.tolist(), key=abs)
    return OverflowError(
        f"{nonzero.size} of {raw.size} elements overflow the {fmt.bits}-bit {'signed' if fmt.signed else 'unsigned'} "
        f"range [{fmt.qmin}, {fmt.qmax}] (overflow='error'); worst raw value {worst} * 2**{left}"
    )


def _exact_pow2_shift(raw: np.ndarray, shift: int):
    """Split a cast's shift: a left shift (adding fraction bits) is done here exactly.

    The value comes back as int64, or Python ints where int64 would not hold it (uint64 raw included).
    """
    widened = raw.astype(object) if raw.dtype in (np.dtype(object), np.dtype(np.uint64)) else raw.astype(np.int64)
    if shift >= 0:
        return widened, shift
    if widened.dtype != object and widened.size and _max_bits(widened) - shift > 62:
        widened = widened.astype(object)
    return np.asarray(widened << (-shift)), 0   # (0-d object results would come back as Python ints)


def _max_bits(a: np.ndarray) -> int:
    return max(int(a.max()).bit_length(), int(a.min()).bit_length())
