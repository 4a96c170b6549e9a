"""Small ONNX graphs built with onnx.helper for the import/export tests, and onnxruntime as the reference."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(21)


def weights(*shape, scale=0.5):
    return RNG.normal(0, scale, shape).astype(np.float32)


def model(nodes, input_shape, initializers=None, opset=17, input_name="x", output_name="y"):
    """A shape-inferred ModelProto of `nodes` with float input `input_shape` (None for a dynamic batch)."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                      ["N" if d is None else d for d in input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, None)], inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    return onnx.shape_inference.infer_shapes(proto, strict_mode=True)


def run_onnxruntime(proto, x):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_matches_onnxruntime(proto, loaded, x):
    """float32 outputs of the loaded model within 1e-5 of onnxruntime's, relative to the output's scale."""
    expected = run_onnxruntime(proto, x)
    got = loaded(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * float(np.abs(expected).max()))


def node(op, inputs, outputs, **attributes):
    return helper.make_node(op, inputs, outputs, **attributes)
