"""Compile every kernel specialization the public API uses, on tiny inputs.

Kernels are ``cache=True``: the first process compiles (seconds) and stores the
machine code; later processes load it.  Call :func:`warmup` before any timing.
"""
from __future__ import annotations

import itertools

import numpy as np

from .elementwise import add_requant, lut, quantize, requant
from .gemm import SMALL_M, gemm, gemm_requant
from .pool import avgpool, maxpool

_INT_PAIRS = ((np.int8, np.int8), (np.int16, np.int16), (np.int16, np.int8))
_OUT_DTYPES = (np.int8, np.int16, np.int32)


def warmup() -> None:
    """Run each protocol function once per dtype combination it supports (GEMMs at 1 and ``SMALL_M`` rows)."""
    shift = np.array([3], dtype=np.int32)
    for (x_dtype, w_dtype), rows in itertools.product(_INT_PAIRS, (1, SMALL_M)):
        x, w = np.ones((rows, 2), dtype=x_dtype), np.ones((1, 2), dtype=w_dtype)
        acc_dtype = np.int32 if w_dtype == np.int8 and x_dtype == np.int8 else np.int64
        acc = np.zeros((rows, 1), dtype=acc_dtype)
        gemm(x, w, None, acc)
        for out_dtype in _OUT_DTYPES:
            out = np.zeros((rows, 1), dtype=out_dtype)
            for multiplier in (None, np.array([1 << 30], dtype=np.int64)):
                gemm_requant(x, w, None, shift, multiplier, 9, 0, 8, False, out)
                requant(acc, shift, multiplier, 9, 0, 8, False, out)
    for dtype in (np.float32, np.float64):
        gemm(np.ones((1, 2), dtype), np.ones((1, 2), dtype), None, np.zeros((1, 1), dtype))
        for out_dtype in _OUT_DTYPES:
            quantize(np.ones(2, dtype), 3, 9, 8, np.zeros(2, out_dtype))
    for dtype in (np.int8, np.int16, np.int32, np.float32, np.float64):
        x = np.ones((1, 2, 2, 1), dtype=dtype)
        maxpool(x, (2, 2), (2, 2), np.zeros((1, 1, 1, 1), dtype))
        avgpool(x, (2, 2), (2, 2), 9, np.zeros((1, 1, 1, 1), dtype))
    for in_dtype in (np.int8, np.int16):
        a = np.ones(2, dtype=in_dtype)
        table_dtypes = (np.int8, np.int16, np.int32)
        for out_dtype in _OUT_DTYPES:
            out = np.zeros(2, dtype=out_dtype)
            add_requant(a, a, 1, 0, 1, 9, 0, 8, False, out)
            add_requant(a, a, 60, 0, 1, 9, 0, 8, False, out)
        for table_dtype in table_dtypes:
            table = np.zeros(1 << (8 * np.dtype(in_dtype).itemsize), dtype=table_dtype)
            lut(a, table, np.zeros(2, dtype=table_dtype))
