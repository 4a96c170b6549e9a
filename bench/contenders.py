"""Other libraries' kernels on the workloads of ``workloads``: what a user would run instead of fxbench.

Every row takes the same inputs as fxbench's row of that workload (``workloads.dot_inputs`` with the same seed)
and, for int8, the same per-tensor power-of-two quantization, and is checked against fxbench's reference
result before it is timed (``Case.expected`` / ``Case.tolerance``: int8 rows exactly, float rows within a
relative RMS). All run at the run's thread count (``threads.timed_threads``: 1 unless ``fxbench run --threads N``).

- float32: torch ``linear`` / ``conv1d`` / ``conv2d``; onnxruntime ``MatMul`` / ``Conv`` (weights as graph
  initializers, as in a deployed model).
- bfloat16: the same torch calls on bfloat16 tensors; marked "emulated" where the CPU has no bfloat16
  instructions (``avx512_bf16`` / ``amx_bf16`` / ``bf16``).
- int8: onnxruntime ``QLinearMatMul`` / ``QLinearConv`` (uint8 activations = the int8 values + 128 with zero
  point 128, int8 weights, scales 2**-frac: the same rounding (half to even) and saturation into an int8 result
  as fxbench's i8 rows); onnxruntime ``MatMulInteger`` and torch ``_int_mm``, which stop at the exact int32
  accumulator (no requantization).

Convolution contenders take channels-first tensors (NCL / NCHW, their libraries' layout): the input is
transposed once outside the timed call and the output is transposed back only to check and score it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fixedpoint import kernels

from . import classes
from .workloads import (Case, dot_inputs, find_contender, float_reference, frac_for, operation_count, predicted_dot,
                        quantize_input)

TORCH = "torch"
ONNXRUNTIME = "onnxruntime"
ONNXRUNTIME_QLINEAR = "onnxruntime-qlinear"
# relative RMS a float contender may differ from fxbench's float64 reference by (int8 rows: exact)
TOLERANCE = {"f32": 1e-4, "bf16": 3e-2}
DOT_OPS = ("linear", "conv1d", "conv2d")


@dataclass(frozen=True)
class Contender:
    """One other library's implementation of some ops in one precision; ``backend`` is its results key."""

    library: str
    backend: str
    precision: str
    ops: tuple
    names: dict   # op -> what runs ("onnxruntime QLinearConv")

    def implementation(self, op: str) -> str:
        return self.names[op]


KERNEL_CONTENDERS = (
    Contender(TORCH, TORCH, "f32", DOT_OPS, {"linear": "torch linear", "conv1d": "torch conv1d",
                                             "conv2d": "torch conv2d"}),
    Contender(ONNXRUNTIME, ONNXRUNTIME, "f32", DOT_OPS, {"linear": "onnxruntime MatMul", "conv1d": "onnxruntime Conv",
                                                        "conv2d": "onnxruntime Conv"}),
    Contender(TORCH, TORCH, "bf16", DOT_OPS, {"linear": "torch bf16 linear", "conv1d": "torch bf16 conv1d",
                                              "conv2d": "torch bf16 conv2d"}),
    Contender(ONNXRUNTIME, ONNXRUNTIME_QLINEAR, "i8", DOT_OPS,
              {"linear": "onnxruntime QLinearMatMul", "conv1d": "onnxruntime QLinearConv",
               "conv2d": "onnxruntime QLinearConv"}),
    Contender(ONNXRUNTIME, ONNXRUNTIME, "i8", ("linear",), {"linear": "onnxruntime MatMulInteger (int32 out)"}),
    Contender(TORCH, TORCH, "i8", ("linear",), {"linear": "torch _int_mm (int32 out)"}),
)
PRECISIONS = tuple(dict.fromkeys(c.precision for c in KERNEL_CONTENDERS))


def find(backend: str, precision: str) -> Contender:
    """The kernel contender of ``backend`` in ``precision`` (ValueError naming both when there is none)."""
    return find_contender(KERNEL_CONTENDERS, backend, precision)


def bf16_native() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (else torch emulates bfloat16 arithmetic)."""
    from .context import cpu_flags

    return any(flag in cpu_flags() for flag in classes.BF16_FLAGS)


def case(op: str, dims: tuple, precision: str, backend: str, seed: int = 0) -> Case:
    """The row of contender (``backend``, ``precision``) on workload ``op`` ``dims``."""
    contender = find(backend, precision)
    if op not in contender.ops:
        raise ValueError(f"contender {backend} {precision} has no {op} (it runs {', '.join(contender.ops)})")
    if precision == "i8":
        built = _INT8_BUILDERS[backend](op, dims, seed)
    else:
        built = _FLOAT_BUILDERS[backend](op, dims, precision, seed)
    built.extra.update(contender=contender.library, implementation=contender.implementation(op))
    if precision == "bf16":
        native = bf16_native()
        built.extra["bf16_native"] = native
        if not native:
            built.extra["implementation"] += " (emulated)"
    return built


# ----------------------------------------------------------------------------- shared inputs


def _channels_first(array: np.ndarray) -> np.ndarray:
    """NLC -> NCL, NHWC -> NCHW (and (O, K.., C) weights -> (O, C, K..)), contiguous."""
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def _channels_last(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(array), 1, -1)


def _float_job(op, dims, seed):
    rng = np.random.default_rng(seed)
    x, w, kwargs = dot_inputs(op, dims, rng)
    reference = float_reference(op, x, w, kwargs)
    return x, w, kwargs, reference


def _float_case(op, dims, precision, backend, call, decode, x, w, reference, itemsize) -> Case:
    shape = "x".join(str(d) for d in dims)
    return Case(op, shape, precision, backend, call, operation_count(op, dims, reference.shape), w.size * itemsize,
                (x.size + reference.size) * itemsize, reference, decode=decode, expected=reference,
                tolerance=TOLERANCE[precision])


@dataclass(frozen=True)
class _Int8Job:
    """The i8 row's inputs: int8 x and w (per-tensor pow2 fracs fx, fw), the output frac fy, float reference."""

    x: np.ndarray
    w: np.ndarray
    kwargs: dict
    reference: np.ndarray
    xq: np.ndarray
    wq: np.ndarray
    fx: int
    fw: int
    fy: int

    @property
    def shift(self) -> int:
        return self.fx + self.fw - self.fy


def _int8_job(op, dims, seed) -> _Int8Job:
    """The inputs and formats of ``workloads.dot_case(op, dims, "i8", ...)``, quantized the same way."""
    x, w, kwargs, reference = _float_job(op, dims, seed)
    xq, fx = quantize_input(x, 8, None)
    wq, fw = quantize_input(w, 8, None)
    return _Int8Job(x, w, kwargs, reference, xq, wq, fx, fw, frac_for(reference, 8))


def _int8_case(op, dims, backend, job: _Int8Job, call, decode, expected, lsb, out_itemsize) -> Case:
    shape = "x".join(str(d) for d in dims)
    predicted = predicted_dot(job.reference, job.x, job.w, 2.0 ** -job.fx, 2.0 ** -job.fw, lsb if out_itemsize == 1
                              else 0.0)
    return Case(op, shape, "i8", backend, call, operation_count(op, dims, job.reference.shape), job.wq.nbytes,
                job.xq.nbytes + job.reference.size * out_itemsize, job.reference, decode=decode, lsb=lsb,
                predicted_sqnr_db=predicted, expected=expected, tolerance=0.0,
                extra={"frac_x": job.fx, "frac_w": job.fw, **({"frac_y": job.fy} if out_itemsize == 1 else {}),
                       "output": "int8" if out_itemsize == 1 else "int32 accumulator"})


def _int8_expected(op, job: _Int8Job, requantized: bool) -> np.ndarray:
    """fxbench's reference backend on the int8 inputs: the int8 result (requantized) or the int32 accumulator."""
    arguments = dict(job.kwargs, shift=job.shift, out_dtype=np.int8) if requantized else dict(job.kwargs)
    return np.asarray(getattr(kernels, op)(job.xq, job.wq, backend="reference", **arguments))


# ----------------------------------------------------------------------------- onnxruntime


def _ort_session(nodes, inputs, outputs, initializers, opset=13):
    """A CPU session of one graph with the options of every onnxruntime row (``ort_sessions.session``)."""
    from onnx import helper

    from .ort_sessions import session

    graph = helper.make_graph(nodes, "contender", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return session(model)


def _conv_attributes(op, w, kwargs) -> dict:
    """Conv / QLinearConv attributes of fxbench's conv (stride 1, symmetric zero padding), w channels-last."""
    spatial = w.ndim - 2
    padding = kwargs.get("padding", 0)
    return {"kernel_shape": list(w.shape[1:-1]), "pads": [padding] * (2 * spatial), "strides": [1] * spatial}


def _ort_float_case(op, dims, precision, seed) -> Case:
    """onnxruntime MatMul (linear, weight (K, N)) or Conv (channels-first, weight (O, C, k..)) in float32."""
    from onnx import TensorProto, helper, numpy_helper

    x, w, kwargs, reference = _float_job(op, dims, seed)
    if op == "linear":
        a = x.astype(np.float32)
        weight = np.ascontiguousarray(w.T.astype(np.float32))
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        decode = lambda y: np.asarray(y, dtype=np.float64)  # noqa: E731
    else:
        a = _channels_first(x.astype(np.float32))
        weight = _channels_first(w.astype(np.float32))
        node = helper.make_node("Conv", ["a", "w"], ["y"], **_conv_attributes(op, w, kwargs))
        decode = lambda y: _channels_last(y).astype(np.float64)  # noqa: E731
    session = _ort_session([node], [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(a.shape))],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                           [numpy_helper.from_array(weight, "w")])
    return _float_case(op, dims, precision, ONNXRUNTIME, lambda: session.run(None, {"a": a})[0], decode, x, w,
                       reference, 4)


def _as_uint8(xq: np.ndarray) -> np.ndarray:
    """int8 values + 128 as uint8: with zero point 128 onnxruntime sees exactly the int8 values."""
    return (xq.astype(np.int16) + 128).astype(np.uint8)


def _ort_qlinear_case(op, dims, seed) -> Case:
    """QLinearMatMul / QLinearConv: u8 (zero point 128) x s8 -> u8 (zero point 128), scales 2**-frac, so the
    int32 accumulator times 2**-shift is rounded half to even and saturated like fxbench's i8 rows."""
    from onnx import TensorProto, helper, numpy_helper

    job = _int8_job(op, dims, seed)

    def scalar(name, kind, value):
        return helper.make_tensor(name, kind, [], [value])

    if op == "linear":
        a, weight = _as_uint8(job.xq), np.ascontiguousarray(job.wq.T)
        node = helper.make_node("QLinearMatMul", ["a", "a_scale", "a_zero", "w", "w_scale", "w_zero", "y_scale",
                                                  "y_zero"], ["y"])
        to_nhwc = lambda y: y  # noqa: E731
    else:
        a, weight = _channels_first(_as_uint8(job.xq)), _channels_first(job.wq)
        node = helper.make_node("QLinearConv", ["a", "a_scale", "a_zero", "w", "w_scale", "w_zero", "y_scale",
                                                "y_zero"], ["y"], **_conv_attributes(op, job.wq, job.kwargs))
        to_nhwc = _channels_last
    initializers = [numpy_helper.from_array(weight, "w"),
                    scalar("a_scale", TensorProto.FLOAT, 2.0 ** -job.fx), scalar("a_zero", TensorProto.UINT8, 128),
                    scalar("w_scale", TensorProto.FLOAT, 2.0 ** -job.fw), scalar("w_zero", TensorProto.INT8, 0),
                    scalar("y_scale", TensorProto.FLOAT, 2.0 ** -job.fy), scalar("y_zero", TensorProto.UINT8, 128)]
    session = _ort_session([node], [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                           [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], initializers)
    lsb = 2.0 ** -job.fy
    decode = lambda y: (to_nhwc(y).astype(np.float64) - 128.0) * lsb  # noqa: E731
    expected = _int8_expected(op, job, requantized=True).astype(np.float64) * lsb
    return _int8_case(op, dims, ONNXRUNTIME_QLINEAR, job, lambda: session.run(None, {"a": a})[0], decode, expected,
                      lsb, 1)


def _ort_matmul_integer_case(op, dims, seed) -> Case:
    """MatMulInteger u8 (zero point 128) x s8 -> the exact int32 accumulator (no requantization)."""
    from onnx import TensorProto, helper, numpy_helper

    job = _int8_job(op, dims, seed)
    a = _as_uint8(job.xq)
    session = _ort_session([helper.make_node("MatMulInteger", ["a", "w", "a_zero"], ["y"])],
                           [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                           [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                           [numpy_helper.from_array(np.ascontiguousarray(job.wq.T), "w"),
                            helper.make_tensor("a_zero", TensorProto.UINT8, [], [128])])
    scale = 2.0 ** -(job.fx + job.fw)
    decode = lambda y: np.asarray(y, dtype=np.float64) * scale  # noqa: E731
    expected = _int8_expected(op, job, requantized=False).astype(np.float64) * scale
    return _int8_case(op, dims, ONNXRUNTIME, job, lambda: session.run(None, {"a": a})[0], decode, expected, scale, 4)


# ----------------------------------------------------------------------------- torch


def _torch():
    """torch at the run's thread count within an operator, one inter-op thread (unless torch has already started
    its inter-op pool)."""
    import torch

    from .threads import timed_threads

    torch.set_num_threads(timed_threads())
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:   # only settable before the first inter-op work; the run never starts any
        pass
    return torch


def _torch_float_case(op, dims, precision, seed) -> Case:
    """torch.nn.functional linear / conv1d / conv2d in float32 or bfloat16 (channels-first for convolutions)."""
    torch = _torch()
    functional = torch.nn.functional
    dtype = torch.float32 if precision == "f32" else torch.bfloat16
    x, w, kwargs, reference = _float_job(op, dims, seed)
    if op == "linear":
        xt = torch.from_numpy(x.astype(np.float32)).to(dtype)
        wt = torch.from_numpy(w.astype(np.float32)).to(dtype)
        call = lambda: functional.linear(xt, wt)  # noqa: E731
        decode = lambda y: y.float().numpy().astype(np.float64)  # noqa: E731
    else:
        xt = torch.from_numpy(_channels_first(x.astype(np.float32))).to(dtype)
        wt = torch.from_numpy(_channels_first(w.astype(np.float32))).to(dtype)
        conv = functional.conv1d if op == "conv1d" else functional.conv2d
        padding = kwargs.get("padding", 0)
        call = lambda: conv(xt, wt, padding=padding)  # noqa: E731
        decode = lambda y: _channels_last(y.float().numpy()).astype(np.float64)  # noqa: E731
    return _float_case(op, dims, precision, TORCH, _inference(torch, call), decode, x, w, reference,
                       4 if precision == "f32" else 2)


def _inference(torch, call):
    """``call`` under ``torch.inference_mode`` (no autograd bookkeeping), as a deployed model runs."""
    def run():
        with torch.inference_mode():
            return call()

    return run


def _torch_int_mm_case(op, dims, seed) -> Case:
    """torch ``_int_mm`` int8 (M, K) x int8 (K, N) -> the exact int32 accumulator (no requantization)."""
    torch = _torch()
    job = _int8_job(op, dims, seed)
    xt, wt = torch.from_numpy(job.xq), torch.from_numpy(np.ascontiguousarray(job.wq.T))
    scale = 2.0 ** -(job.fx + job.fw)
    decode = lambda y: y.numpy().astype(np.float64) * scale  # noqa: E731
    expected = _int8_expected(op, job, requantized=False).astype(np.float64) * scale
    return _int8_case(op, dims, TORCH, job, _inference(torch, lambda: torch._int_mm(xt, wt)), decode, expected,
                      scale, 4)


_FLOAT_BUILDERS = {TORCH: _torch_float_case, ONNXRUNTIME: _ort_float_case}
_INT8_BUILDERS = {TORCH: _torch_int_mm_case, ONNXRUNTIME: _ort_matmul_integer_case,
                  ONNXRUNTIME_QLINEAR: _ort_qlinear_case}


def not_installed(contender: Contender) -> str | None:
    """Why ``contender`` cannot run here (its library is missing), or None."""
    return classes.missing_library(contender.library)
