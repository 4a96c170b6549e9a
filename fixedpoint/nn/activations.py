"""Fixed-point elementwise activations as lookup tables over every raw input value.

A table holds, for each raw input r of format `in_fmt` (256 entries for 8 bits, 65536 for 16 bits, indexed
r - qmin as `fixedpoint.kernels.lut` expects), the float64 value fn(r * 2**-in_fmt.frac) rounded half to even
to `out_fmt` and saturated to its range. Worst-case error: 0.5 output LSB (plus float64 error of the function,
< 1e-12 LSB) for every input whose true result lies in `out_fmt`'s range; saturated entries are off by the
distance to the range limit.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..qformat import QFormat

FUNCTIONS = {
    "sigmoid": lambda v: 0.5 * (1.0 + np.tanh(0.5 * v)),
    "tanh": np.tanh,
}


def activation_table(name: str, in_fmt: QFormat, out_fmt: QFormat) -> np.ndarray:
    """The lut table of activation `name` ("sigmoid" | "tanh") from `in_fmt` (8 or 16 bits, signed) to `out_fmt`."""
    if name not in FUNCTIONS:
        raise ValueError(f"name must be one of {tuple(FUNCTIONS)}, got {name!r}")
    if not isinstance(in_fmt, QFormat) or not in_fmt.signed or in_fmt.bits not in (8, 16):
        raise ValueError(f"in_fmt must be a signed 8- or 16-bit QFormat, got {in_fmt!r}")
    if not isinstance(out_fmt, QFormat):
        raise TypeError(f"out_fmt must be a QFormat, got {type(out_fmt).__name__}")
    raw_in = np.arange(in_fmt.qmin, in_fmt.qmax + 1, dtype=np.float64)
    values = FUNCTIONS[name](np.ldexp(raw_in, -in_fmt.frac))
    raw_out = np.clip(np.rint(np.ldexp(values, out_fmt.frac)), out_fmt.qmin, out_fmt.qmax)
    return raw_out.astype(out_fmt.dtype)


def apply_table(raw, table: np.ndarray, backend=None) -> np.ndarray:
    """table[raw - qmin] through the kernel API's lut (int8 raw: 256 entries, int16 raw: 65536)."""
    return kernels.lut(raw, table, backend=backend)
