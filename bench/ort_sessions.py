"""onnxruntime sessions of one ONNX model: float32, and static int8 from `onnxruntime.quantization.quantize_static`.

Both run the run's thread count within an operator (``threads.timed_threads``: 1 unless ``fxbench run
--threads N``) and one operator at a time, CPU provider, full graph optimization. The int8 session is the
model pre-processed (`quant_pre_process`: onnx shape inference, graph optimization) and quantized the way
onnxruntime recommends for x86 CPUs: QDQ format (QOperator on request), uint8 activations and int8 weights
(the u8 x s8 dot-product kernels), per-channel weights, min/max calibration over the given samples; the graph
optimizer then fuses each QuantizeLinear/DequantizeLinear pair around a Conv/MatMul/Gemm into an integer kernel
(int32 accumulator, requantized to uint8). Nothing is downloaded.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

CALIBRATION_BATCH = 64
QDQ_MIN_OPSET = 13   # per-channel QDQ needs opset 13 (axis of QuantizeLinear / DequantizeLinear)


def available() -> str | None:
    """None when onnxruntime can be imported, else the reason."""
    try:
        import onnxruntime  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc}); pip install -e '.[data]'"
    return None


def with_dynamic_batch(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph input and output take any batch size (dimension 0 named "batch"); inferred shapes of
    intermediate tensors, which may hold the old fixed batch, are dropped."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for value in (*copy.graph.input, *copy.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del copy.graph.value_info[:]
    return copy


def session_options():
    """CPU session options of every onnxruntime row: the run's thread count within an operator, operators one
    at a time (sequential, one inter-op thread), every graph optimization on (as a user's session has)."""
    import onnxruntime

    from .threads import timed_threads

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = timed_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def session(proto: onnx.ModelProto):
    """A CPU InferenceSession of `proto` with ``session_options``."""
    import onnxruntime

    return onnxruntime.InferenceSession(proto.SerializeToString(), session_options(),
                                        providers=["CPUExecutionProvider"])


def float32_session(proto: onnx.ModelProto):
    """The model as it is, batch dimension made dynamic."""
    return session(with_dynamic_batch(proto))


QUANT_FORMATS = ("QDQ", "QOperator")


def quantized_int8(proto: onnx.ModelProto, calibration_data: np.ndarray, quant_format: str = "QDQ") -> onnx.ModelProto:
    """The static int8 (u8 activations, s8 per-channel weights, min/max) model calibrated on the samples.

    ``quant_format`` "QDQ" inserts QuantizeLinear/DequantizeLinear pairs that the session fuses into integer
    kernels; "QOperator" writes the integer operators themselves (QLinearConv, QGemm, QLinearMatMul ...).
    """
    if quant_format not in QUANT_FORMATS:
        raise ValueError(f"quant_format must be one of {', '.join(QUANT_FORMATS)}, got {quant_format!r}")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = with_dynamic_batch(proto)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < QDQ_MIN_OPSET:
        model = onnx.version_converter.convert_version(model, QDQ_MIN_OPSET)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        # onnx shape inference and graph optimization, as onnxruntime advises (symbolic inference needs sympy)
        quant_pre_process(model, str(source), skip_symbolic_shape=True)
        quantize_static(str(source), str(target), _calibration_reader(model, calibration_data),
                        quant_format=getattr(QuantFormat, quant_format), activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        per_channel=True, calibrate_method=CalibrationMethod.MinMax)
        return onnx.load(str(target))


def int8_session(proto: onnx.ModelProto, calibration_data: np.ndarray, quant_format: str = "QDQ"):
    return session(quantized_int8(proto, calibration_data, quant_format))


def run(session_, x: np.ndarray) -> np.ndarray:
    """The session's first output on float32 `x`."""
    name = session_.get_inputs()[0].name
    return session_.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def weight_bytes(proto: onnx.ModelProto) -> int:
    """Bytes of the model's initializers (weights, biases, scales and zero points)."""
    return int(sum(onnx.numpy_helper.to_array(t).nbytes for t in proto.graph.initializer))


def _calibration_reader(proto, samples):
    """A CalibrationDataReader giving the samples in batches of CALIBRATION_BATCH under the graph input's name."""
    from onnxruntime.quantization import CalibrationDataReader

    initializers = {t.name for t in proto.graph.initializer}
    name = next(i.name for i in proto.graph.input if i.name not in initializers)
    data = np.ascontiguousarray(samples, dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([data[i:i + CALIBRATION_BATCH] for i in range(0, data.shape[0], CALIBRATION_BATCH)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    return Reader()
