"""Low-precision floating-point formats: what a sign, ``E`` exponent bits and ``M`` mantissa bits mean.

``FloatFormat(exp_bits, man_bits, *, bias=None, subnormals=True, finite_only=False)``.  A bit
pattern is a sign ``s``, an exponent field ``e`` (0 .. 2**E - 1) and a mantissa field ``f``
(0 .. 2**M - 1); ``bias`` defaults to ``2**(E-1) - 1`` as in IEEE 754.

- ``e >= 1``: the normal value ``(-1)**s * 2**(e - bias) * (1 + f / 2**M)``;
- ``e == 0``: the subnormal value ``(-1)**s * 2**(1 - bias) * (f / 2**M)``; with
  ``subnormals=False`` only ``f == 0`` (signed zero) is produced, results below ``min_normal``
  flush to zero and other codes decode as zero;
- the top field ``e == 2**E - 1``: with ``finite_only=False`` (IEEE 754 style) +-inf (``f == 0``)
  and NaN (``f != 0``; a format with ``man_bits=0`` therefore has no NaN); with
  ``finite_only=True`` (the OCP FP8 "fn" convention of E4M3FN) normal numbers, except
  ``S.1...1.1...1``, which is NaN: no infinities, and one more binade of finite values.

``BF16`` = E8M7, ``FP16`` = E5M10 (IEEE binary16), ``FP8_E4M3`` = E4M3FN (OCP 8-bit FP
E4M3: no infinities, max 448, NaN = S.1111.111) and ``FP8_E5M2`` = E5M2 (OCP E5M2, IEEE
style: max 57344, +-inf, NaN).

Text form ``E<E>M<M>[B<bias>][FN][FTZ]`` (case-insensitive when parsed): ``B<bias>`` only when
the bias is not the default (as in ml_dtypes' ``float8_e4m3b11fnuz``), ``FN`` for
``finite_only=True``, ``FTZ`` (flush to zero) for ``subnormals=False``; e.g. ``E4M3``,
``E4M3FN``, ``E5M2B11``, ``E8M7FTZ``.  :meth:`FloatFormat.parse` also reads the precision
names ``bf16``, ``fp16``, ``fp8e4m3`` and ``fp8e5m2``.

Every value of a format must be exact in float64: ``exp_bits`` 1..11 (2..11 with
``finite_only=False``: one exponent field alone would hold no normal number) and ``man_bits``
0..52 (so a format has at most 64 bits, float64's own E11M52), and a bias whose range lies
within float64's.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

EXP_BITS_RANGE = (1, 11)
MAN_BITS_RANGE = (0, 52)
_FLOAT64_EMAX = 1023        # largest exponent of a finite float64
_FLOAT64_ULP_EXP = -1074    # exponent of the smallest positive float64
_FLOAT32_EMAX, _FLOAT32_ULP_EXP, _FLOAT32_MAN_BITS = 127, -149, 23

_TEXT = re.compile(r"^\s*E(\d+)M(\d+)(?:B(-?\d+))?(FN)?(FTZ)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FloatFormat:
    """A sign-exponent-mantissa float format (see the module docstring for the encoding).

    >>> fmt = FloatFormat(4, 3, finite_only=True)
    >>> str(fmt), fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.eps
    ('E4M3FN', 448.0, 0.015625, 0.001953125, 0.125)
    >>> FloatFormat.parse("E5M2") == FP8_E5M2, FloatFormat.parse("bf16") == BF16
    (True, True)
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    finite_only: bool = False

    def __post_init__(self):
        for name in ("exp_bits", "man_bits"):
            object.__setattr__(self, name, _integer(getattr(self, name), name))
        for name in ("subnormals", "finite_only"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))
        low = EXP_BITS_RANGE[0] if self.finite_only else 2
        if not low <= self.exp_bits <= EXP_BITS_RANGE[1]:
            raise ValueError(f"exp_bits={self.exp_bits} is out of range; accepted: {EXP_BITS_RANGE[0]}.."
                             f"{EXP_BITS_RANGE[1]} with finite_only=True, 2..{EXP_BITS_RANGE[1]} otherwise (the "
                             "top exponent field holds inf/NaN, so one field alone would hold no normal number)")
        if not MAN_BITS_RANGE[0] <= self.man_bits <= MAN_BITS_RANGE[1]:
            raise ValueError(f"man_bits={self.man_bits} is out of range; accepted: "
                             f"{MAN_BITS_RANGE[0]}..{MAN_BITS_RANGE[1]}")
        if self.finite_only and self.exp_bits == 1 and self.man_bits == 0:
            raise ValueError("exp_bits=1 with man_bits=0 and finite_only=True holds only zero and NaN; "
                             "accepted: man_bits >= 1 for a finite_only format with one exponent bit")
        default = (1 << (self.exp_bits - 1)) - 1
        bias = default if self.bias is None else _integer(self.bias, "bias")
        low, high = self._max_field() - _FLOAT64_EMAX, 1 - _FLOAT64_ULP_EXP - self.man_bits
        if not low <= bias <= high:
            raise ValueError(f"bias={bias} puts values of E{self.exp_bits}M{self.man_bits} outside float64; "
                             f"accepted: {low}..{high} (default {default})")
        object.__setattr__(self, "bias", bias)

    # --- the encoding ---------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Width of one encoding: sign + exponent + mantissa."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def default_bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def has_inf(self) -> bool:
        return not self.finite_only

    @property
    def has_nan(self) -> bool:
        """False only for IEEE-style formats without mantissa bits (their top field is +-inf alone)."""
        return self.finite_only or self.man_bits > 0

    @property
    def max_code(self) -> int:
        """The magnitude bits (exponent and mantissa fields) of ``max``."""
        top = (1 << (self.exp_bits + self.man_bits)) - 1          # all ones: NaN of a finite_only format
        special = top if self.finite_only else ((1 << self.exp_bits) - 1) << self.man_bits
        return special - 1

    def _max_field(self) -> int:
        return self.max_code >> self.man_bits

    # --- the values -----------------------------------------------------------------
    @property
    def emin(self) -> int:
        """Exponent of ``min_normal``: ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of ``max``."""
        return self._max_field() - self.bias

    @property
    def max(self) -> float:
        """Largest finite value."""
        mantissa = (1 << self.man_bits) + (self.max_code & ((1 << self.man_bits) - 1))
        return math.ldexp(mantissa, self.emax - self.man_bits)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, ``2**emin``."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value: ``2**(emin - man_bits)``, or ``min_normal`` when ``subnormals=False``."""
        return math.ldexp(1.0, self.emin - self.man_bits) if self.subnormals else self.min_normal

    @property
    def eps(self) -> float:
        """Distance from 1.0 to the next larger value of the same exponent: ``2**-man_bits``."""
        return math.ldexp(1.0, -self.man_bits)

    @property
    def dtype(self) -> np.dtype:
        """float32 when every value of the format is a float32, float64 otherwise."""
        fits = (self.man_bits <= _FLOAT32_MAN_BITS and self.emax <= _FLOAT32_EMAX
                and self.emin - self.man_bits >= _FLOAT32_ULP_EXP)
        return np.dtype(np.float32 if fits else np.float64)

    @property
    def container(self) -> np.dtype:
        """The unsigned integer dtype of one encoding (uint8, uint16, uint32 or uint64)."""
        for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
            if self.bits <= 8 * np.dtype(dtype).itemsize:
                return np.dtype(dtype)
        raise AssertionError("formats have at most 64 bits")

    # --- text form ------------------------------------------------------------------
    def __str__(self) -> str:
        text = f"E{self.exp_bits}M{self.man_bits}"
        if self.bias != self.default_bias:
            text += f"B{self.bias}"
        return text + ("FN" if self.finite_only else "") + ("" if self.subnormals else "FTZ")

    @classmethod
    def parse(cls, text: str, argument: str = "text") -> "FloatFormat":
        """Read ``E<E>M<M>[B<bias>][FN][FTZ]`` or a precision name (bf16, fp16, fp8e4m3, fp8e5m2); text that
        does not parse raises ``ValueError`` naming ``argument``."""
        if isinstance(text, str) and text.strip().lower() in NAMED:
            return NAMED[text.strip().lower()]
        match = _TEXT.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"{argument}={text!r} is not a float format; expected E<E>M<M>[B<bias>][FN][FTZ] "
                             f"(e.g. 'E4M3FN', 'E5M2', 'E8M7FTZ') or one of {', '.join(NAMED)}")
        exp_bits, man_bits, bias, fn, ftz = match.groups()
        return cls(int(exp_bits), int(man_bits), bias=None if bias is None else int(bias),
                   subnormals=ftz is None, finite_only=fn is not None)


def _integer(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


BF16 = FloatFormat(8, 7)
FP16 = FloatFormat(5, 10)
FP8_E4M3 = FloatFormat(4, 3, finite_only=True)
FP8_E5M2 = FloatFormat(5, 2)
#: the precision names of ``quantize_model`` and the harness
NAMED = {"bf16": BF16, "fp16": FP16, "fp8e4m3": FP8_E4M3, "fp8e5m2": FP8_E5M2}
