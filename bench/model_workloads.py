"""Whole-model workloads: each task's model at batch 1 and 256 in every precision, with its test accuracy.

f64 / f32 rows feed the float model (numpy inside) inputs of that dtype; i16 / a16w8 / i8 rows run the
model converted by ``fixedpoint.nn.quantize_model`` (calibrated on the task's calibration set) on one
kernel backend, float input in, dequantized float64 logits out, so every row does the same job; bf16 /
fp8e4m3 / fp8e5m2 rows run the float-format model of ``quantize_model`` (no prescale) the same way.
Errors are taken against the float64 model's logits on the same inputs; accuracy is on ``task.x_test``.
"""
from __future__ import annotations

import functools
import importlib

import numpy as np

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
    return Case("model", f"{task_name} batch {batch}", precision, backend, lambda: forward(x), ops,
                weight_bytes, largest * ACTIVATION_ITEMSIZE[precision], reference,
                decode=lambda y: np.asarray(y, dtype=np.float64), extra=extra)


def model_factories(task_names, backends, precisions, batches=BATCHES) -> list:
    """(label, builder) of every whole-model case: float rows on numpy, integer rows on each backend."""
    factories = []
    for task_name in task_names:
        for batch in batches:
            for precision in precisions:
                for backend in ([NUMPY] if precision in FLOAT_DTYPES else backends):
                    factories.append((f"model {task_name} batch {batch} {precision} {backend}",
                                      lambda t=task_name, b=batch, p=precision, be=backend: model_case(t, b, p, be)))
    return factories
