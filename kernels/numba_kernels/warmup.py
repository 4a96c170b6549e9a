"""Compile every kernel specialization the public API uses, on tiny inputs.

Kernels are ``cache=True``: the first process compiles (seconds) and stores the
machine code; later processes load it.  Call :func:`warmup` before any timing.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..epilogue import Epilogue
from ..kinds import GEMM_KINDS, OUT_DTYPES
from ..modes import Overflow, Rounding
from .elementwise import add_requant, divide, lut, quantize, requant
from .gemm import SMALL_M, gemm, prepare_gemm
from .pool import avgpool, maxpool


def _epilogue(multiplier, out_dtype) -> Epilogue:
    return Epilogue(np.array([3], dtype=np.int32), multiplier, Rounding.HALF_EVEN, Overflow.SATURATE, 8,
                    np.dtype(out_dtype), False)


def warmup() -> None:
    """Run each protocol function once per dtype combination it supports (GEMMs at 1 and ``SMALL_M`` rows)."""
    multipliers = (None, np.array([1 << 30], dtype=np.int64))
    for kind, rows in itertools.product(GEMM_KINDS, (1, SMALL_M)):
        x, w = np.ones((rows, 2), dtype=kind.x), np.ones((1, 2), dtype=kind.w)
        acc = np.zeros((rows, 1), dtype=kind.acc)
        gemm(x, w, None, acc)
        if not kind.integer:
            continue
        for out_dtype, multiplier in itertools.product(OUT_DTYPES, multipliers):
            out = np.zeros((rows, 1), dtype=out_dtype)
            epilogue = _epilogue(multiplier, out_dtype)
            prepare_gemm(w, None, kind, epilogue).gemm_requant(x, out)
            requant(acc, epilogue, out)
    for dtype in (np.float32, np.float64):
        for out_dtype in OUT_DTYPES:
            quantize(np.ones(2, dtype), 3, Rounding.HALF_EVEN, 8, np.zeros(2, out_dtype))
    for dtype in (np.int8, np.int16, np.int32, np.float32, np.float64):
        x = np.ones((1, 2, 2, 1), dtype=dtype)
        maxpool(x, (2, 2), (2, 2), np.zeros((1, 1, 1, 1), dtype))
        avgpool(x, (2, 2), (2, 2), Rounding.HALF_EVEN, np.zeros((1, 1, 1, 1), dtype))
    for in_dtype in (np.int8, np.int16):
        a = np.ones(2, dtype=in_dtype)
        for out_dtype in OUT_DTYPES:
            add_requant(a, a, 1, 0, _epilogue(None, out_dtype), np.zeros(2, dtype=out_dtype))
    for out_dtype in OUT_DTYPES:
        ones = np.ones(2, dtype=np.int64)
        divide(ones, ones, Rounding.HALF_EVEN, Overflow.SATURATE, 8, np.zeros(2, dtype=out_dtype))
        for table_dtype in (np.int8, np.int16, np.int32):
            table = np.zeros(1 << (8 * np.dtype(in_dtype).itemsize), dtype=table_dtype)
            lut(a, table, np.zeros(2, dtype=table_dtype))
