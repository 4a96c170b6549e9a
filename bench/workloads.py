"""Benchmark workloads defined once (op x shape x precision x backend), shared by ``fxbench run`` and tests/benchmarks.

A :class:`Case` holds prepared inputs and a zero-argument ``call`` to time, plus the
float64 reference and a ``decode`` turning the call's output into real values for the
error figures.  bf16 rounds inputs and weights to bf16 (half to even) and runs the bf16
GEMM kind (bf16 bit patterns in, float32 sums and result out).  Integer precisions quantize inputs symmetrically per tensor with a
power-of-two scale (frac = bits-1 - ceil(log2 max|v|)); the GEMM accumulates exactly
(int32 for i8, int64 for i16 and a16w8) and one rounding (half_even, saturate) brings the
result to an int8 (i8) or int16 output whose frac fits the float64 result's range.
Linear and convolution rows of this library bind their weights once (``kernels.prepare_<op>``:
validated and, on the C backend, packed outside the timed call), as a deployed layer holds them and
as the numpy rows hold pre-transposed weights; the naive baseline row reads the stored (N, K) weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fixedpoint import kernels

from .metrics import predicted_dot_sqnr_db

# precisions of the kernel workloads (linear, conv, quantize, pools); the float formats of the whole models;
# every precision (the models take all of them)
KERNEL_PRECISIONS = ("f64", "f32", "i16", "a16w8", "i8", "bf16")
FLOAT_FORMAT_PRECISIONS = ("bf16", "fp8e4m3", "fp8e5m2")
PRECISIONS = tuple(dict.fromkeys(KERNEL_PRECISIONS + FLOAT_FORMAT_PRECISIONS))
# (activation bits, weight bits, output bits) of the integer precisions
INT_BITS = {"i16": (16, 16, 16), "a16w8": (16, 8, 16), "i8": (8, 8, 8)}
NUMPY = "numpy"

QUICK_SHAPES = {
    "linear": [(1, 784, 256), (32, 784, 256)],
    "conv1d": [(32, 40, 16, 32, 5)],
    "conv2d": [(8, 14, 14, 16, 32, 3)],
}
FULL_SHAPES = {
    "linear": [(1, 784, 256), (32, 784, 256), (256, 784, 256), (1024, 1024, 1024)],
    "conv1d": [(32, 40, 16, 32, 5), (256, 40, 32, 32, 5)],
    "conv2d": [(32, 14, 14, 16, 32, 3), (32, 28, 28, 1, 16, 3)],
}


@dataclass
class Case:
    """One timed workload instance."""

    op: str
    shape: str
    precision: str
    backend: str
    call: object
    ops: float  # arithmetic operations of one call (multiply-add = 2)
    weight_bytes: int
    activation_bytes: int  # input + output of one call
    reference: np.ndarray | None = None
    decode: object = None
    lsb: float | None = None
    predicted_sqnr_db: float | None = None
    extra: dict = field(default_factory=dict)
    # a contender's row: fxbench's reference result of the same job in decoded values, and the largest relative
    # RMS difference from it that the row may show (0: exact); the runner checks it before timing
    expected: np.ndarray | None = None
    tolerance: float | None = None

    @property
    def workload(self) -> str:
        return f"{self.op} {self.shape}"


def frac_for(values, bits: int) -> int:
    """Largest frac such that max|values| fits a signed ``bits``-bit Q format."""
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if peak == 0.0:
        return bits - 1
    return bits - 1 - math.ceil(math.log2(peak * (1 + 2.0 ** -(bits - 1))))


def quantize_input(values, bits, backend):
    """Raw integers of ``values`` in a ``bits``-bit power-of-two Q format (half_even, saturate), and its frac."""
    frac = frac_for(values, bits)
    raw, _ = kernels.quantize(values, frac, bits, backend=None if backend == NUMPY else backend)
    return raw, frac


def dot_inputs(op, dims, rng):
    """Float64 input and weight of one GEMM-like op, and the keyword arguments of the call."""
    if op == "linear":
        m, k, n = dims
        return rng.standard_normal((m, k)), rng.standard_normal((n, k)) / math.sqrt(k), {}
    if op == "conv1d":
        b, length, c, o, kk = dims
        return (rng.standard_normal((b, length, c)), rng.standard_normal((o, kk, c)) / math.sqrt(kk * c),
                {"padding": kk // 2})
    b, h, w, c, o, kk = dims
    return (rng.standard_normal((b, h, w, c)), rng.standard_normal((o, kk, kk, c)) / math.sqrt(kk * kk * c),
            {"padding": kk // 2})


def operation_count(op, dims, out_shape):
    """Arithmetic operations of one call (multiply-add = 2)."""
    if op == "linear":
        m, k, n = dims
        return 2.0 * m * k * n
    weights_per_output = dims[4] * dims[2] if op == "conv1d" else dims[5] ** 2 * dims[3]
    return 2.0 * np.prod(out_shape) * weights_per_output


def float_reference(op, x, w, kwargs):
    """The op on float64 x and w by the reference backend: what every row of the workload is measured against."""
    return getattr(kernels, op)(x, w, backend="reference", **kwargs)


def _prepared_call(op, x, w, backend, kwargs):
    """``op`` on x with its weights bound once by ``kernels.prepare_<op>`` (validated and packed before the
    timed call), or the plain ``kernels.<op>`` call where no prepared form exists."""
    prepare = getattr(kernels, f"prepare_{op}", None)
    if prepare is None:
        function = getattr(kernels, op)
        return lambda: function(x, w, backend=backend, **kwargs)
    layer = prepare(w, x_dtype=x.dtype, backend=backend, **kwargs)
    return lambda: layer(x)


def dot_case(op: str, dims: tuple, precision: str, backend: str, seed: int = 0) -> Case:
    """A linear/conv1d/conv2d case; ``backend`` "numpy" means numpy's own ``@`` (linear, float only)."""
    rng = np.random.default_rng(seed)
    x, w, kwargs = dot_inputs(op, dims, rng)
    reference = float_reference(op, x, w, kwargs)
    shape = "x".join(str(d) for d in dims)
    ops = operation_count(op, dims, reference.shape)
    if precision in ("f64", "f32"):
        dtype = np.float64 if precision == "f64" else np.float32
        xf, wf = x.astype(dtype), w.astype(dtype)
        if backend == NUMPY:
            if op != "linear":
                raise ValueError(f"numpy rows exist for linear only, not {op}")
            wt = np.ascontiguousarray(wf.T)
            call = lambda: xf @ wt  # noqa: E731
            extra = {"contender": NUMPY, "implementation": "numpy @"}
        else:
            call = _prepared_call(op, xf, wf, backend, kwargs)
            extra = {}
        out_bytes = reference.size * xf.itemsize
        return Case(op, shape, precision, backend, call, ops, wf.nbytes, xf.nbytes + out_bytes, reference,
                    decode=lambda y: y, lsb=None, predicted_sqnr_db=None, extra=extra)
    if precision == "bf16":
        return _bf16_dot_case(op, shape, x, w, kwargs, reference, ops, backend)
    if precision not in INT_BITS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(KERNEL_PRECISIONS)}")
    if backend == NUMPY:
        raise ValueError("numpy rows exist for f32 and f64 only")
    a_bits, w_bits, y_bits = INT_BITS[precision]
    xq, fx = quantize_input(x, a_bits, backend)
    wq, fw = quantize_input(w, w_bits, backend)
    fy = frac_for(reference, y_bits)
    out_dtype = np.int8 if y_bits == 8 else np.int16
    shift = fx + fw - fy
    call = _prepared_call(op, xq, wq, backend, dict(kwargs, shift=shift, out_dtype=out_dtype))
    scale = 2.0 ** -fy
    predicted = predicted_dot(reference, x, w, 2.0 ** -fx, 2.0 ** -fw, scale)
    return Case(op, shape, precision, backend, call, ops, wq.nbytes,
                xq.nbytes + reference.size * np.dtype(out_dtype).itemsize, reference,
                decode=lambda y: y.astype(np.float64) * scale, lsb=scale, predicted_sqnr_db=predicted,
                extra={"frac_x": fx, "frac_w": fw, "frac_y": fy})


def _bf16_dot_case(op, shape, x, w, kwargs, reference, ops, backend) -> Case:
    """x and w rounded to bf16 once (outside the timed call), the prepared bf16 layer on their bit patterns."""
    from fixedpoint import BF16, quantize_float, to_bits

    if backend == NUMPY:
        raise ValueError("numpy rows exist for f32 and f64 only")
    xb, wb = (to_bits(quantize_float(v, BF16), BF16) for v in (x, w))
    call = _prepared_call(op, xb, wb, backend, kwargs)
    return Case(op, shape, "bf16", backend, call, ops, wb.nbytes, xb.nbytes + reference.size * 4, reference,
                decode=lambda y: y, lsb=None, predicted_sqnr_db=None)


def predicted_dot(reference, x, w, lsb_x, lsb_w, lsb_y):
    """The noise model's SQNR (dB) of a dot-product op with inputs, weights and output rounded to these LSBs."""
    return predicted_dot_sqnr_db(reference, x, w, int(np.prod(w.shape[1:])), lsb_x, lsb_w, lsb_y)


def quantize_case(n: int, precision: str, backend: str, seed: int = 0) -> Case:
    """Quantizing n float32 values to int8/int16 (half_even, saturate); numpy row = clip(rint(x*s))."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32)
    bits = {"i8": 8, "i16": 16}.get(precision)
    if bits is None:
        raise ValueError(f"quantize takes precision i8 or i16, not {precision!r}")
    frac = frac_for(x, bits)
    if backend == NUMPY:
        dtype = np.int8 if bits == 8 else np.int16
        scale = np.float32(2.0 ** frac)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        call = lambda: np.clip(np.rint(x * scale), lo, hi).astype(dtype)  # noqa: E731
        extra = {"contender": NUMPY, "implementation": "numpy clip(rint(x * s))"}
    else:
        call = lambda: kernels.quantize(x, frac, bits, backend=backend)[0]  # noqa: E731
        extra = {}
    lsb = 2.0 ** -frac
    return Case("quantize", str(n), precision, backend, call, float(n), 0, x.nbytes + n * bits // 8,
                x.astype(np.float64), decode=lambda y: y.astype(np.float64) * lsb, lsb=lsb,
                predicted_sqnr_db=10 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) / (lsb ** 2 / 12)),
                extra=extra)


def max_pool_case(dims: tuple, precision: str, backend: str, seed: int = 0) -> Case:
    """2x2 max pooling of an NHWC tensor (exact in every precision: no error figures)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(dims)
    dtype = {"f64": np.float64, "f32": np.float32, "i16": np.int16, "i8": np.int8}.get(precision)
    if dtype is None:
        raise ValueError(f"max_pool2d takes f64, f32, i16 or i8, not {precision!r}")
    xs = x.astype(dtype) if precision.startswith("f") else quantize_input(x, np.iinfo(dtype).bits, backend)[0]
    call = lambda: kernels.max_pool2d(xs, 2, backend=backend)  # noqa: E731
    return Case("max_pool2d", "x".join(map(str, dims)), precision, backend, call, float(xs.size), 0,
                xs.nbytes + xs.nbytes // 4)


NAIVE = "naive-numba"


def naive_linear_case(dims: tuple, seed: int = 0) -> Case:
    """The i8 linear case of ``dot_case`` computed by the naive i-k-j Numba loop (a baseline, not a backend)."""
    from .naive import naive_linear_i8

    rng = np.random.default_rng(seed)
    x, w, _ = dot_inputs("linear", dims, rng)
    reference = x @ w.T
    xq, fx = quantize_input(x, 8, None)
    wq, fw = quantize_input(w, 8, None)
    fy = frac_for(reference, 8)
    scale = 2.0 ** -fy
    predicted = predicted_dot(reference, x, w, 2.0 ** -fx, 2.0 ** -fw, scale)
    return Case("linear", "x".join(map(str, dims)), "i8", NAIVE, lambda: naive_linear_i8(xq, wq, fx + fw - fy),
                operation_count("linear", dims, reference.shape), wq.nbytes, xq.nbytes + reference.size, reference,
                decode=lambda y: y.astype(np.float64) * scale, lsb=scale, predicted_sqnr_db=predicted)


def timed_backends() -> list[str]:
    """Fast backends available here (the reference backend is the spec, not a contender)."""
    return [name for name in kernels.available() if name != "reference"]


def find_contender(contenders, backend: str, precision: str, what: str = "contender"):
    """The entry of ``contenders`` (records with ``backend`` and ``precision``) matching both; ValueError naming
    both and every known pair when there is none."""
    for contender in contenders:
        if contender.backend == backend and contender.precision == precision:
            return contender
    known = ", ".join(f"{c.backend} {c.precision}" for c in contenders)
    raise ValueError(f"no {what} {backend!r} in precision {precision!r}; known: {known}")
