"""A naive Numba int8 linear: the i-k-j triple loop on the stored (N, K) weight layout, as a baseline row.

int8 x int8 products accumulate exactly in an int32 row buffer; each accumulator is then shifted
right by ``shift`` with round half to even and saturated to int8 (the same result as the library's
``linear(..., shift=shift, out_dtype=int8)``).  It shows what the tuned kernels gain over the obvious loop.
"""
from __future__ import annotations

import numpy as np


def _compile():
    import numba

    @numba.njit(cache=False, nogil=True)
    def naive_linear_i8(x, w, shift):
        m, k = x.shape
        n = w.shape[0]
        y = np.empty((m, n), dtype=np.int8)
        acc = np.empty(n, dtype=np.int32)
        for i in range(m):
            acc[:] = 0
            for kk in range(k):
                xv = np.int32(x[i, kk])
                for j in range(n):
                    acc[j] += xv * np.int32(w[j, kk])
            for j in range(n):
                a = np.int64(acc[j])
                if shift > 0:
                    q = a >> shift
                    r = a - (q << shift)
                    half = np.int64(1) << (shift - 1)
                    if r > half or (r == half and (q & 1) == 1):
                        q += 1
                else:
                    q = a << -shift
                y[i, j] = min(127, max(-128, q))
        return y

    return naive_linear_i8


_KERNEL = []


def naive_linear_i8(x, w, shift: int) -> np.ndarray:
    """y = saturate_int8(round_half_even((x @ w.T) / 2**shift)) for int8 x (M, K) and int8 w (N, K)."""
    x = np.asarray(x)
    w = np.asarray(w)
    if x.dtype != np.int8 or w.dtype != np.int8 or x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"naive_linear_i8 needs int8 x (M, K) and int8 w (N, K); got {x.dtype}{x.shape}, "
                         f"{w.dtype}{w.shape}")
    if not _KERNEL:
        _KERNEL.append(_compile())
    return _KERNEL[0](x, w, int(shift))
