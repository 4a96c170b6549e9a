"""Protocol-level calls for tests that drive a backend module directly (``kernels/protocol.py``)."""
import numpy as np

from fixedpoint.kernels.epilogue import Epilogue
from fixedpoint.kernels.kinds import gemm_kind


def epilogue(shift, multiplier, rounding, overflow, out_bits, out_dtype, relu=False) -> Epilogue:
    """The record the front builds: per-channel int32 shift, int64 multiplier (or None)."""
    shift = np.ascontiguousarray(np.atleast_1d(shift), dtype=np.int32)
    multiplier = None if multiplier is None else np.ascontiguousarray(multiplier, dtype=np.int64)
    return Epilogue(shift, multiplier, rounding, overflow, out_bits, np.dtype(out_dtype), bool(relu))


def gemm_requant(backend, x, w, bias, epi, out) -> int:
    """``backend``'s fused GEMM with epilogue ``epi`` into ``out``, through its prepared weights."""
    return backend.prepare_gemm(w, bias, gemm_kind(x.dtype, w.dtype), epi).gemm_requant(x, out)


def extreme_ints(rng, dtype, shape, fraction=1 / 3):
    """Random integers of ``dtype`` with about ``fraction`` of the entries at the dtype's extremes."""
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.int64)
    extreme = rng.random(shape) < fraction
    values[extreme] = rng.choice([info.min, info.max], size=int(extreme.sum()))
    return values.astype(dtype)
