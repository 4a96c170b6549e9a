"""Whole-model workloads: each task's model at batch 1 and 256 in every precision, with its test accuracy.

f64 / f32 rows feed the float model (numpy inside) inputs of that dtype; i16 / a16w8 / i8 rows run the
model converted by ``fixedpoint.nn.quantize_model`` (calibrated on the task's calibration set) on one
kernel backend, float input in, dequantized float64 logits out, so every row does the same job; bf16 /
fp8e4m3 / fp8e5m2 rows run the float-format model of ``quantize_model`` (no prescale) the same way.
Errors are taken against the float64 model's logits on the same inputs; accuracy is on ``task.x_test``.
Contender rows run the same float model exported by ``fixedpoint.onnx.export`` in onnxruntime sessions:
float32, and static int8 (QOperator and QDQ, per-channel, calibrated on the task's calibration samples).
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

import numpy as np

from . import workloads
from .workloads import FLOAT_FORMAT_PRECISIONS, INT_BITS, NUMPY, Case

BATCHES = (1, 256)
FLOAT_DTYPES = {"f64": np.float64, "f32": np.float32}
# bytes per stored activation element of each precision (integers in int8 / int16, float formats in their
# 8- or 16-bit encodings)
ACTIVATION_ITEMSIZE = {"f64": 8, "f32": 4, "i16": 2, "a16w8": 2, "i8": 1, "bf16": 2, "fp8e4m3": 1, "fp8e5m2": 1}


def quantize_model_function():
    """``fixedpoint.nn.quantize_model``, or None with the reason when this version lacks it."""
    try:
        module = importlib.import_module("fixedpoint.nn")
    except ImportError as exc:
        return None, f"fixedpoint.nn cannot be imported ({exc})"
    function = getattr(module, "quantize_model", None)
    if function is None:
        return None, "fixedpoint.nn.quantize_model is not in this version"
    return function, None


def _task(name):
    from fixedpoint.bench import tasks

    return tasks.get(name)


def _layers(model):
    """The leaf layers of a Sequential (nested Sequentials flattened), else the model itself."""
    inner = getattr(model, "layers", None)
    if inner is None:
        return [model]
    return [leaf for layer in inner for leaf in _layers(layer)]


def layer_profile(model, x) -> tuple[float, int]:
    """(arithmetic operations of one forward on ``x``, elements of the largest layer input + output).

    Linear and convolution layers count 2 operations per multiply-add; other layers count none, and a
    Residual block counts as one such layer (its body's operations are not counted).
    """
    ops = 0.0
    largest = 0
    for layer in _layers(model):
        y = layer(x)
        weight = getattr(layer, "weight", None)
        if isinstance(weight, np.ndarray) and weight.ndim >= 2:
            ops += 2.0 * y.size * int(np.prod(weight.shape[1:]))
        largest = max(largest, x.size + y.size)
        x = y
    return ops, largest


@functools.cache
def converted(task_name: str, precision: str, backend: str):
    """The task's model converted to ``precision`` on ``backend`` (defaults of quantize_model), cached."""
    quantize_model, reason = quantize_model_function()
    if quantize_model is None:
        raise RuntimeError(reason)
    task = _task(task_name)
    return quantize_model(task.model, task.x_calib, precision, backend=backend)


def forward_function(task_name: str, precision: str, backend: str):
    """A callable float input -> logits of the task's model in ``precision`` (float rows: backend "numpy")."""
    task = _task(task_name)
    if precision in FLOAT_DTYPES:
        if backend != NUMPY:
            raise ValueError(f"float model rows run on backend {NUMPY!r}, not {backend!r}")
        dtype = FLOAT_DTYPES[precision]
        return lambda x: task.model(np.asarray(x, dtype=dtype))
    if precision not in INT_BITS and precision not in FLOAT_FORMAT_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: f64, f32, "
                         f"{', '.join(tuple(INT_BITS) + FLOAT_FORMAT_PRECISIONS)}")
    return converted(task_name, precision, backend)


@functools.cache
def accuracy(task_name: str, precision: str, backend: str) -> float:
    """Test accuracy (fraction of ``task.x_test``) of the task's model in ``precision`` on ``backend``."""
    return _task(task_name).evaluate(forward_function(task_name, precision, backend))


def batch_input(task, batch: int) -> np.ndarray:
    """The first ``batch`` test samples (repeated when the test set is smaller), float32."""
    x = task.x_test
    repeats = -(-batch // x.shape[0])
    return np.ascontiguousarray(np.concatenate([x] * repeats)[:batch], dtype=np.float32)


def model_case(task_name: str, batch: int, precision: str, backend: str) -> Case:
    """One timed forward of the task's model at ``batch`` (float32 samples cast to the float precision)."""
    task = _task(task_name)
    x32 = batch_input(task, batch)
    x = x32.astype(FLOAT_DTYPES.get(precision, np.float32))
    forward = forward_function(task_name, precision, backend)
    reference = task.model(x32.astype(np.float64))
    ops, largest = layer_profile(task.model, x32.astype(np.float64))
    if precision in FLOAT_DTYPES:
        weight_bytes = task.model.weight_bytes(FLOAT_DTYPES[precision])
    else:
        weight_bytes = int(forward.weight_bytes)
    extra = {"task": task_name, "batch": batch, "accuracy": accuracy(task_name, precision, backend),
             "float64_accuracy": float(task.info["test_accuracy"])}
    if precision in FLOAT_DTYPES:
        extra["implementation"] = "fxbench nn (numpy)"
    elif hasattr(forward, "plan_status"):   # a FixedModel: one native call per forward, or layer by layer
        extra["execution"] = forward.plan_status(x.dtype)
        extra["arena_bytes"] = int(forward.arena_bytes(batch, x.dtype))
    return Case("model", f"{task_name} batch {batch}", precision, backend, lambda: forward(x), ops,
                weight_bytes, largest * ACTIVATION_ITEMSIZE[precision], reference,
                decode=lambda y: np.asarray(y, dtype=np.float64), extra=extra)


# ----------------------------------------------------------------------------- contenders


@dataclass(frozen=True)
class ModelContender:
    """A session of another library running the task's float model, exported by ``fixedpoint.onnx.export``."""

    library: str
    backend: str
    precision: str
    implementation: str
    quant_format: str | None = None   # onnxruntime quantize_static format of an int8 session


ONNXRUNTIME = "onnxruntime"
MODEL_CONTENDERS = (
    ModelContender(ONNXRUNTIME, ONNXRUNTIME, "f32", "onnxruntime float32 session"),
    ModelContender(ONNXRUNTIME, "onnxruntime-qoperator", "i8", "onnxruntime int8 session (QOperator)", "QOperator"),
    ModelContender(ONNXRUNTIME, "onnxruntime-qdq", "i8", "onnxruntime int8 session (QDQ)", "QDQ"),
)
# relative RMS of a session's logits against the float64 model: float32 rounding only, or 8-bit quantization
MODEL_TOLERANCE = {"f32": 1e-4, "i8": 0.1}


def find_contender(backend: str, precision: str) -> ModelContender:
    return workloads.find_contender(MODEL_CONTENDERS, backend, precision, "model contender")


@functools.cache
def exported(task_name: str):
    """The task's float model as ONNX (one sample's shape as the task feeds it; dynamic batch)."""
    from fixedpoint import onnx as fxonnx

    task = _task(task_name)
    return fxonnx.export(task.model, task.x_test.shape[1:])


@functools.cache
def contender_session(task_name: str, backend: str, precision: str):
    """(ONNX model the session runs, its session): float32 as exported, or static int8 (per-channel weights,
    min/max calibrated on the task's calibration samples) in the contender's format."""
    from . import ort_sessions

    contender = find_contender(backend, precision)
    proto = ort_sessions.with_dynamic_batch(exported(task_name))
    if contender.quant_format is not None:
        proto = ort_sessions.quantized_int8(proto, _task(task_name).x_calib, contender.quant_format)
    return proto, ort_sessions.session(proto)


def _contender_forward(task_name, backend, precision):
    from . import ort_sessions

    _, session = contender_session(task_name, backend, precision)
    return lambda x: ort_sessions.run(session, x)


@functools.cache
def contender_accuracy(task_name: str, backend: str, precision: str) -> float:
    return _task(task_name).evaluate(_contender_forward(task_name, backend, precision))


def contender_case(task_name: str, batch: int, precision: str, backend: str) -> Case:
    """One timed forward of the contender's session at ``batch`` (float32 samples in, float32 logits out)."""
    from . import ort_sessions

    contender = find_contender(backend, precision)
    task = _task(task_name)
    x32 = batch_input(task, batch)
    proto, _ = contender_session(task_name, backend, precision)
    forward = _contender_forward(task_name, backend, precision)
    reference = task.model(x32.astype(np.float64))
    ops, largest = layer_profile(task.model, x32.astype(np.float64))
    extra = {"task": task_name, "batch": batch, "accuracy": contender_accuracy(task_name, backend, precision),
             "float64_accuracy": float(task.info["test_accuracy"]), "contender": contender.library,
             "implementation": contender.implementation}
    return Case("model", f"{task_name} batch {batch}", precision, backend, lambda: forward(x32), ops,
                ort_sessions.weight_bytes(proto), largest * ACTIVATION_ITEMSIZE[precision], reference,
                decode=lambda y: np.asarray(y, dtype=np.float64), extra=extra, expected=reference,
                tolerance=MODEL_TOLERANCE[precision])


def call_overhead_record(calls: int = 2000, repeats: int = 5) -> dict:
    """The per-call cost of a compiled fixed-point model with nothing to compute: a one-layer int8 model
    (Linear 1 -> 1, C backend) at batch 1, best of ``repeats`` medians-of-calls; Python, cffi and checks."""
    import time

    quantize_model, reason = quantize_model_function()
    if quantize_model is None:
        return {"kind": "not_available", "section": "compiled call overhead", "reason": reason}
    from fixedpoint import nn

    model = quantize_model(nn.Sequential([nn.Linear(np.array([[0.5]]), np.array([0.25]))]),
                           np.linspace(-1, 1, 64).reshape(64, 1), "i8", backend="c")
    x = np.zeros((1, 1), dtype=np.float32)
    model(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            model(x)
        best = min(best, (time.perf_counter() - start) / calls)
    return {"kind": "call_overhead", "model": "Linear 1 -> 1, int8, C backend, batch 1",
            "execution": model.plan_status(), "median_s": best}
