"""onnxruntime float32 and static int8 sessions of one ONNX model (bench.ort_sessions)."""
import numpy as np
import pytest

from fixedpoint.bench import metrics, ort_sessions

pytest.importorskip("onnxruntime")

from onnx_graphs import model, node, run_onnxruntime, weights  # noqa: E402

RNG = np.random.default_rng(6)


def _mlp(batch, opset):
    nodes = [node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), node("Relu", ["h"], ["r"]),
             node("Gemm", ["r", "W2"], ["y"])]
    return model(nodes, (batch, 16), {"W1": weights(32, 16), "B1": weights(32), "W2": weights(32, 4)}, opset=opset)


def test_float32_session_takes_any_batch_of_a_fixed_batch_model():
    proto = _mlp(1, 17)
    x = RNG.normal(size=(5, 16)).astype(np.float32)
    y = ort_sessions.run(ort_sessions.float32_session(proto), x)
    np.testing.assert_allclose(y, np.concatenate([run_onnxruntime(proto, row[None]) for row in x]), rtol=1e-6)
    assert ort_sessions.with_dynamic_batch(proto).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("opset, quant_format", [(11, "QDQ"), (17, "QDQ"), (17, "QOperator")])
def test_int8_session_is_quantized_and_close_to_float(opset, quant_format):
    proto = _mlp(None, opset)
    calib, x = RNG.normal(size=(200, 16)).astype(np.float32), RNG.normal(size=(50, 16)).astype(np.float32)
    quantized = ort_sessions.quantized_int8(proto, calib, quant_format)
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert ("Gemm" in ops) == (quant_format == "QDQ") and ("QGemm" in ops) == (quant_format == "QOperator")
    assert ort_sessions.weight_bytes(quantized) < ort_sessions.weight_bytes(proto)
    y = ort_sessions.run(ort_sessions.session(quantized), x)
    assert 25 < metrics.sqnr_db(run_onnxruntime(proto, x), y) < 60


def test_an_unknown_quantization_format_is_named():
    with pytest.raises(ValueError, match="quant_format must be one of QDQ, QOperator, got 'QInt'"):
        ort_sessions.quantized_int8(_mlp(None, 17), np.zeros((4, 16), np.float32), "QInt")
