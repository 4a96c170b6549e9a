"""Exact rounding of real arrays to a low-precision float format, and the packed encodings.

``quantize_float(x, fmt)`` returns the values of ``x`` rounded once to ``fmt``.  No float
arithmetic touches a value before it is rounded: each element is split into an integer
mantissa and an exponent (``x = m * 2**e`` exactly), the target exponent ``t`` is the
element's own (``floor(log2 |x|)``) or ``fmt.emin`` in the subnormal range, and the one
rounding is :func:`~fixedpoint.kernels.reference.rounding.round_shift` of ``m`` by the
``t - fmt.man_bits - e`` bits below the format's ulp ``2**(t - man_bits)``.  A result that
carries into the next binade (``2**(t + 1)``) is a value of the format as well.  Only then
does the overflow mode look at values beyond ``fmt.max``, and a format without subnormals
flush results below ``fmt.min_normal`` to zero (flush-to-zero after rounding, as FTZ
hardware does).  Every float16/float32/float64 input, and any integer, is handled exactly.

``to_bits`` / ``from_bits`` convert between values of a format and its packed encoding
(see :mod:`fixedpoint.floatformat`), in the smallest of uint8/16/32/64 that holds it.
"""
from __future__ import annotations

import numpy as np

from .conversion import as_generator, as_real_array
from .floatformat import FloatFormat
from .kernels.modes import Rounding, as_rounding
from .kernels.reference.rounding import round_shift
from .stats import FloatStats

#: the IEEE 754 rounding-direction attributes (roundTiesToEven, roundTiesToAway, roundTowardZero,
#: roundTowardNegative, roundTowardPositive) and stochastic rounding, floor(v + u) in ulps
FLOAT_ROUNDINGS = (Rounding.HALF_EVEN, Rounding.HALF_AWAY, Rounding.TO_ZERO, Rounding.FLOOR, Rounding.CEIL,
                   Rounding.STOCHASTIC)
OVERFLOWS = ("saturate", "inf")
_INPUT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_FLOAT64_MANTISSA = 53
_EXACT_INTEGER = 1 << _FLOAT64_MANTISSA   # integers below this convert to float64 exactly


def quantize_float(x, fmt, rounding: Rounding | str = Rounding.HALF_EVEN, overflow: str = "saturate",
                   seed: np.random.Generator | int | None = None, stats: FloatStats | None = None) -> np.ndarray:
    """The values of ``x`` rounded once to float format ``fmt``, in ``fmt.dtype`` (float32 when every value of
    the format is a float32, as for BF16, FP16 and the FP8 formats; float64 otherwise).

    ``x``: float16/float32/float64 or integer array, rounded exactly (one rounding of the exact value, no
    double rounding).  ``fmt``: a :class:`~fixedpoint.FloatFormat` or its text (``"E4M3FN"``, ``"bf16"``).
    ``rounding``: one of :data:`FLOAT_ROUNDINGS` (``half_even`` default; ``stochastic`` rounds up with
    probability equal to the dropped fraction of an ulp, reproducibly with ``seed``).  Representable values
    come back unchanged in every mode; zeros keep the sign of the input.  Ties to even go to the value whose
    integer significand at the binade's ulp is even: the even mantissa field (a tie between the largest
    value of a binade and the next power of two goes up; so does every tie of a ``man_bits=0`` format).  ``overflow``: results beyond
    ``fmt.max`` become +-max (``"saturate"``, default; +-inf inputs too) or follow IEEE 754 (``"inf"``: +-inf,
    except +-max where the rounding direction points toward zero: ``to_zero``, ``floor`` above max, ``ceil``
    below -max); ``"inf"`` raises ``ValueError`` for formats without infinities (``finite_only=True``, e.g.
    E4M3FN).  Subnormal results are kept, or flushed to zero when ``fmt.subnormals`` is False.  NaN stays
    NaN; formats without a NaN encoding (IEEE-style formats with ``man_bits=0``) raise ``ValueError``.
    ``stats`` (a :class:`~fixedpoint.FloatStats`) receives the overflowed and flushed counts.

    >>> quantize_float(np.array([0.1, -3.0e5, 1e-9, np.nan]), "E5M2").tolist()
    [0.09375, -57344.0, 0.0, nan]
    """
    fmt = as_float_format(fmt)
    rounding = as_float_rounding(rounding)
    overflow = _overflow(overflow, fmt)
    x = _input(x)
    rng = as_generator(seed) if rounding.is_stochastic else None
    nan = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)
    inf = np.isinf(x) if x.dtype.kind == "f" else nan
    if nan.any() and not fmt.has_nan:
        raise ValueError(f"x contains {int(nan.sum())} NaN value(s) and {fmt} has no NaN encoding "
                         "(IEEE-style formats with man_bits=0 have none)")
    special = nan | inf
    finite = np.where(special, 0, x) if special.any() else x
    mantissa, exponent, length = _parts(finite)
    target = np.maximum(exponent + length - 1, fmt.emin) - fmt.man_bits   # exponent of the ulp
    shift = target - exponent
    exact = shift <= 0
    rounded = round_shift(mantissa, np.maximum(shift, 0), rounding, rng)
    if exact.any():
        rounded = np.where(exact, mantissa << np.maximum(-shift, 0), rounded)
    with np.errstate(over="ignore"):                                        # 2**1024 and beyond: inf, overflowed
        value = np.ldexp(rounded.astype(np.float64), target)              # exact: |rounded| <= 2**53
    beyond = np.abs(value) > fmt.max
    overflowed = int(np.count_nonzero(beyond))
    if overflowed:
        value = np.where(beyond, _overflow_value(value, rounding, overflow, fmt), value)
    if not fmt.subnormals:
        value = np.where(np.abs(value) < fmt.min_normal, 0.0, value)
    flushed = int(np.count_nonzero((value == 0) & (finite != 0)))
    value = np.where(value == 0, np.copysign(0.0, finite.astype(np.float64)), value)
    if special.any():
        value = np.where(nan, np.nan, value)
        with np.errstate(invalid="ignore"):                                # signalling NaNs widen quietly
            sign = x.astype(np.float64)
        inf_value = np.copysign(np.inf if overflow == "inf" else fmt.max, sign)
        value = np.where(inf, inf_value, value)
        if overflow == "saturate":
            overflowed += int(np.count_nonzero(inf))
    if stats is not None:
        stats.add(overflowed, flushed, value.size)
    return value.astype(fmt.dtype)


def to_bits(values, fmt) -> np.ndarray:
    """The packed encodings of ``values`` (float16/32/64, each exactly a value of ``fmt``: round first with
    :func:`quantize_float`) in ``fmt.container`` (uint8 for 8-bit formats, uint16 for 16-bit ones, ...).

    Sign bit first, then the exponent and mantissa fields; -0.0 sets the sign bit; NaN becomes the quiet
    NaN (top exponent field, mantissa 10...0) of IEEE-style formats and S.1...1.1...1 of finite_only
    ones, with the NaN's sign bit.  Values the format does not hold raise ``ValueError``.

    >>> to_bits(np.array([1.0, -448.0, np.nan]), "E4M3FN")
    array([ 56, 254, 127], dtype=uint8)
    """
    fmt = as_float_format(fmt)
    values = np.asarray(values)
    if values.dtype not in _INPUT_DTYPES:
        raise TypeError(f"values must be a float16, float32 or float64 array, got dtype {values.dtype}")
    with np.errstate(invalid="ignore"):                                    # signalling NaNs widen quietly
        v = values.astype(np.float64)
    nan, inf = np.isnan(v), np.isinf(v)
    magnitude = np.where(nan | inf, 0.0, np.abs(v))
    exponent = np.frexp(magnitude)[1].astype(np.int64) - 1                # floor(log2 |v|) for v != 0
    normal = (magnitude != 0) & (exponent >= fmt.emin)
    scale = np.where(normal, exponent, fmt.emin)
    steps = np.ldexp(magnitude, fmt.man_bits - scale)                       # in ulps of the binade: exact
    field = np.where(normal, exponent + fmt.bias, 0)
    mantissa = steps - np.where(normal, float(1 << fmt.man_bits), 0.0)
    code = (field << fmt.man_bits) + mantissa.astype(np.int64)
    subnormal_ok = fmt.subnormals | normal | (magnitude == 0)
    exact = (steps == np.floor(steps)) & (np.ldexp(steps, scale - fmt.man_bits) == magnitude)
    bad = ~(nan | inf) & (~exact | (code > fmt.max_code) | ~subnormal_ok)
    bad |= (nan & (not fmt.has_nan)) | (inf & (not fmt.has_inf))
    if bad.any():
        first = v[bad][0]
        raise ValueError(f"values holds {int(bad.sum())} element(s) that are not values of {fmt} (the first: "
                         f"{first!r}); round them with quantize_float(values, fmt) first")
    magnitude_bits = fmt.exp_bits + fmt.man_bits
    top_field = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
    if fmt.finite_only:
        nan_code = (1 << magnitude_bits) - 1
    else:
        nan_code = top_field | (1 << max(fmt.man_bits - 1, 0))
    code = np.where(nan, nan_code, np.where(inf, top_field, code)).astype(np.uint64)
    sign = np.signbit(v).astype(np.uint64) << np.uint64(magnitude_bits)
    return (code | sign).astype(fmt.container)


def from_bits(bits, fmt) -> np.ndarray:
    """The values (in ``fmt.dtype``) of packed encodings ``bits`` (an integer array, each in
    [0, 2**fmt.bits)); the inverse of :func:`to_bits`.  Without subnormals (``FTZ``), codes with a zero
    exponent field decode as zero of their sign.

    >>> from_bits(np.array([56, 254, 127], dtype=np.uint8), "E4M3FN")
    array([   1., -448.,   nan], dtype=float32)
    """
    fmt = as_float_format(fmt)
    bits = np.asarray(bits)
    if bits.dtype.kind not in "iu":
        raise TypeError(f"bits must be an integer array, got dtype {bits.dtype}")
    if bits.size and (int(bits.min()) < 0 or int(bits.max()) >= 1 << fmt.bits):
        raise ValueError(f"bits must hold {fmt.bits}-bit encodings of {fmt}, in [0, {(1 << fmt.bits) - 1}]; "
                         f"got values in [{int(bits.min())}, {int(bits.max())}]")
    code = bits.astype(np.uint64)
    magnitude_bits = fmt.exp_bits + fmt.man_bits
    negative = ((code >> np.uint64(magnitude_bits)) & np.uint64(1)).astype(bool)
    magnitude = (code & np.uint64((1 << magnitude_bits) - 1)).astype(np.int64)
    field = magnitude >> fmt.man_bits
    mantissa = magnitude & ((1 << fmt.man_bits) - 1)
    normal = field > 0
    steps = np.where(normal, mantissa + (1 << fmt.man_bits), mantissa if fmt.subnormals else 0)
    with np.errstate(over="ignore"):                                        # the top field of E11 formats
        value = np.ldexp(steps.astype(np.float64), np.where(normal, field - fmt.bias, fmt.emin) - fmt.man_bits)
    top = (1 << fmt.exp_bits) - 1
    if fmt.finite_only:
        value = np.where(magnitude == (1 << magnitude_bits) - 1, np.nan, value)
    else:
        value = np.where(field == top, np.where(mantissa == 0, np.inf, np.nan), value)
    return np.where(negative, -value, value).astype(fmt.dtype)


def as_float_format(fmt) -> FloatFormat:
    """``fmt`` as a :class:`FloatFormat` (its text is parsed); TypeError for anything else."""
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        return FloatFormat.parse(fmt, "fmt")
    raise TypeError(f"fmt must be a FloatFormat or its text (e.g. 'E4M3FN', 'bf16'), got {type(fmt).__name__}")


def as_float_rounding(rounding) -> Rounding:
    """``rounding`` as one of :data:`FLOAT_ROUNDINGS`; ValueError naming the accepted ones otherwise."""
    mode = as_rounding(rounding)
    if mode not in FLOAT_ROUNDINGS:
        accepted = ", ".join(repr(m.value) for m in FLOAT_ROUNDINGS)
        raise ValueError(f"rounding={mode.value!r} is not a float-format rounding; accepted: {accepted}")
    return mode


def _overflow(overflow, fmt: FloatFormat) -> str:
    if overflow not in OVERFLOWS:
        raise ValueError(f"overflow={overflow!r} is not a float-format overflow mode; accepted: "
                         f"{', '.join(map(repr, OVERFLOWS))}")
    if overflow == "inf" and not fmt.has_inf:
        raise ValueError(f"overflow='inf' needs a format with infinities; {fmt} has none (finite_only=True): "
                         "use overflow='saturate'")
    return overflow


def _input(x) -> np.ndarray:
    x = as_real_array(x, "x")
    if x.dtype.kind == "f" and x.dtype.newbyteorder("=") not in _INPUT_DTYPES:
        raise TypeError(f"x must be a float16, float32, float64 or integer array, got dtype {x.dtype}")
    return x


def _overflow_value(value, rounding: Rounding, overflow: str, fmt: FloatFormat) -> np.ndarray:
    """What a result beyond +-max becomes: +-max, or under "inf" the IEEE 754 overflow of the direction."""
    negative = value < 0
    if overflow == "saturate":
        to_inf = np.zeros(value.shape, dtype=bool)
    elif rounding is Rounding.TO_ZERO:
        to_inf = np.zeros(value.shape, dtype=bool)
    elif rounding is Rounding.FLOOR:
        to_inf = negative
    elif rounding is Rounding.CEIL:
        to_inf = ~negative
    else:
        to_inf = np.ones(value.shape, dtype=bool)
    return np.where(negative, -1.0, 1.0) * np.where(to_inf, np.inf, fmt.max)


def _parts(x: np.ndarray):
    """(mantissa, exponent, bit length of |mantissa|) with x = mantissa * 2**exponent exactly.

    Floats (and integers below 2**53) give int64 mantissas of 53 bits (0 for 0); larger integers give
    Python ints (an object array), whose rounding round_shift does exactly as well.
    """
    if x.dtype.kind == "f" or x.size == 0 or (int(x.min()) > -_EXACT_INTEGER and int(x.max()) < _EXACT_INTEGER):
        fraction, exponent = np.frexp(x.astype(np.float64))
        mantissa = np.ldexp(fraction, _FLOAT64_MANTISSA).astype(np.int64)
        length = np.where(mantissa == 0, 0, _FLOAT64_MANTISSA)
        return mantissa, exponent.astype(np.int64) - _FLOAT64_MANTISSA, length
    mantissa = x.astype(object)
    length = np.frompyfunc(lambda v: abs(v).bit_length(), 1, 1)(mantissa).astype(np.int64)
    return mantissa, np.zeros(x.shape, dtype=np.int64), length
