"""The one table of GEMM kinds: input dtypes, the exact accumulator and the C backend's code.

Accumulators are exact: float32 x float32 sums in float32 and float64 x float64 in
float64; int8 x int8 sums in int32 (exact for K <= ``INT8_MAX_K``, see
:func:`check_accumulator_bound`); anything with an int16 operand sums in int64.  bf16 x bf16
(both as uint16 bit patterns, the high half of a float32) sums in float32: every product of
two bf16 values is exact there, the sums round as float32 sums do.  The C
build reads ``GEMM_KINDS`` to number its kernels (``FXP_KIND_<NAME>``), so this module
imports only numpy and :mod:`.limits`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .limits import INT8_MAX_K


@dataclass(frozen=True)
class GemmKind:
    """One accepted (x, w) dtype pair: ``name`` is the suffix of its C functions, ``code`` its number there."""

    code: int
    name: str
    x: np.dtype
    w: np.dtype
    acc: np.dtype

    @property
    def integer(self) -> bool:
        return self.acc.kind == "i"

    @property
    def default_out_dtype(self) -> np.dtype:
        """int8 results for int8 inputs, int16 for anything with a 16-bit operand."""
        return np.dtype(np.int8) if self.x == np.int8 else np.dtype(np.int16)


GEMM_KINDS = (
    GemmKind(0, "f32", np.dtype(np.float32), np.dtype(np.float32), np.dtype(np.float32)),
    GemmKind(1, "f64", np.dtype(np.float64), np.dtype(np.float64), np.dtype(np.float64)),
    GemmKind(2, "s8", np.dtype(np.int8), np.dtype(np.int8), np.dtype(np.int32)),
    GemmKind(3, "s16", np.dtype(np.int16), np.dtype(np.int16), np.dtype(np.int64)),
    GemmKind(4, "s16s8", np.dtype(np.int16), np.dtype(np.int8), np.dtype(np.int64)),
    GemmKind(5, "bf16", np.dtype(np.uint16), np.dtype(np.uint16), np.dtype(np.float32)),
)
_BY_DTYPES = {(kind.x, kind.w): kind for kind in GEMM_KINDS}

#: dtypes a requantized result may have, and the dtypes pools take.
OUT_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
POOL_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.float32), np.dtype(np.float64))


def gemm_kind(x_dtype, w_dtype, where: str = "gemm") -> GemmKind:
    """The kind of (x, w) dtypes; other pairs raise ``TypeError`` listing the accepted ones."""
    try:
        return _BY_DTYPES[(np.dtype(x_dtype), np.dtype(w_dtype))]
    except KeyError:
        accepted = ", ".join(f"({k.x}, {k.w})" for k in GEMM_KINDS)
        raise TypeError(f"{where} does not take (x, w) dtypes ({x_dtype}, {w_dtype}); accepted: {accepted}") from None


def product_bound(kind: GemmKind) -> int:
    """The largest |x * w| of one product: 2**(bx-1) * 2**(bw-1) (the two most negative operands)."""
    return 2 ** (8 * kind.x.itemsize - 1) * 2 ** (8 * kind.w.itemsize - 1)


def bias_limit(kind: GemmKind, k: int) -> int:
    """The largest |bias| an integer layer of depth ``k`` accepts: acc_max - K * product_bound (< 0: none)."""
    return int(np.iinfo(kind.acc).max) - k * product_bound(kind)


def check_accumulator_bound(kind: GemmKind, k: int, bias_bound: int = 0) -> None:
    """Refuse K (and a bias of magnitude up to ``bias_bound``) whose accumulator could overflow.

    |acc| <= K * product_bound + max|bias|, which must stay within the accumulator; int8
    also refuses K > ``INT8_MAX_K`` outright, so kernels may rely on |sum of products| <=
    2**30.  Float kinds are not bounded.
    """
    if not kind.integer:
        return
    if kind.x == np.int8 and k > INT8_MAX_K:
        raise ValueError(f"int8 x int8 with K={k} > {INT8_MAX_K} could overflow the int32 accumulator; "
                         "use int16 inputs (int64 accumulator) or split K")
    if bias_bound > bias_limit(kind, k):
        raise ValueError(f"K={k} products (each up to {product_bound(kind)} in magnitude) plus a bias of magnitude "
                         f"{bias_bound} could overflow the {kind.acc} accumulator (max {np.iinfo(kind.acc).max})")
