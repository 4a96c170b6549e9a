"""fixedpoint.onnx bad input: one-line OnnxModelError (a ValueError) naming the file, node or argument."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from fixedpoint import nn
from fixedpoint.onnx import SUPPORTED_OPS, OnnxModelError, export, load

from onnx_graphs import model, node, weights


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_missing_file_and_not_an_onnx_file(tmp_path):
    with pytest.raises(OnnxModelError, match="no such file") as info:
        load(tmp_path / "absent.onnx")
    assert "absent.onnx" in _one_line(info)
    garbage = tmp_path / "weights.npy"
    np.save(garbage, np.zeros(3))
    with pytest.raises(OnnxModelError, match="weights.npy: not an ONNX model"):
        load(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(OnnxModelError, match="empty.onnx: not an ONNX model"):
        load(empty)
    with pytest.raises(TypeError, match="model must be a path"):
        load(42)


def test_absent_external_data(tmp_path):
    proto = model([node("MatMul", ["x", "W"], ["y"])], (None, 64), {"W": weights(64, 64)})
    path = tmp_path / "big.onnx"
    onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True, location="big.data",
              size_threshold=0)
    assert load(path)(np.ones((1, 64), np.float32)).shape == (1, 64)
    (tmp_path / "big.data").unlink()
    with pytest.raises(OnnxModelError, match="big.onnx: external data file 'big.data' of initializer 'W' is missing"):
        load(path)
    external = onnx.load(path, load_external_data=False)
    with pytest.raises(OnnxModelError, match="external file; pass the model's file path"):
        load(external)


def test_dynamic_shapes_need_input_shape():
    proto = model([node("GlobalAveragePool", ["x"], ["y"])], (None, 3, "height", "width"))
    with pytest.raises(OnnxModelError, match="dynamic dimensions height, width; pass input_shape"):
        load(proto)
    assert load(proto, input_shape=(3, 4, 5))(np.ones((2, 3, 4, 5), np.float32)).shape == (2, 3, 1, 1)
    with pytest.raises(OnnxModelError, match=r"input_shape \(4, 4, 5\) does not match dimension 1 = 3"):
        load(proto, input_shape=(4, 4, 5))
    with pytest.raises(OnnxModelError, match=r"input_shape \(3, 4\) has 2 dimensions but the graph input 'x'"):
        load(proto, input_shape=(3, 4))
    with pytest.raises(OnnxModelError, match="input_shape must be one sample's dimensions"):
        load(proto, input_shape=(3, 0, 2))


def test_unsupported_op_names_node_op_and_supported_list():
    proto = model([node("Relu", ["x"], ["r"], name="act"), node("LeakyRelu", ["r"], ["y"], name="leaky")], (None, 4))
    with pytest.raises(OnnxModelError) as info:
        load(proto)
    text = _one_line(info)
    assert "node 'leaky' (LeakyRelu): op type 'LeakyRelu' is not supported; supported: Add, AveragePool" in text
    assert all(op in text for op in SUPPORTED_OPS)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("nodes, inits, shape, match", [
    ([node("Conv", ["x", "W"], ["y"], group=2)], {"W": weights(4, 1, 3, 3)}, (None, 2, 5, 5), "group = 2"),
    ([node("Conv", ["x", "W"], ["y"], dilations=[2, 2])], {"W": weights(4, 2, 3, 3)}, (None, 2, 7, 7),
     r"dilations \(2, 2\)"),
    ([node("Gemm", ["x", "W"], ["y"], transA=1)], {"W": weights(4, 3)}, (4, 4), "transA = 1"),
    ([node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], ceil_mode=1)], {}, (None, 1, 5, 5), "ceil_mode"),
    ([node("Clip", ["x", "lo", "hi"], ["y"])], {"lo": np.float32(-1), "hi": np.float32(1)}, (None, 3),
     r"Clip\(-1.0, 1.0\) is not supported"),
    ([node("Conv", ["x", "W"], ["y"])], {"W": weights(2, 3, 1, 1, 1)}, (None, 3, 2, 2, 2), "1-D and 2-D windows"),
    ([node("Flatten", ["x"], ["y"], axis=2)], {}, (None, 3, 4, 5), "axis 2 is not supported"),
    ([node("Softmax", ["x"], ["y"], axis=0)], {}, (None, 3), "batch axis"),
    ([node("Transpose", ["x"], ["y"], perm=[1, 0])], {}, (None, 3), "keep the batch axis first"),
    ([node("Mul", ["x", "x"], ["y"])], {}, (None, 3), "uses 'x' twice"),
])
def test_unsupported_attributes_name_the_node(nodes, inits, shape, match):
    with pytest.raises(OnnxModelError, match=match) as info:
        load(model(nodes, shape, inits))
    assert "node " in _one_line(info)


def test_add_of_a_constant_that_is_not_a_bias():
    proto = model([node("Relu", ["x"], ["r"]), node("Add", ["r", "c"], ["y"])], (None, 3), {"c": weights(3)})
    with pytest.raises(OnnxModelError, match="only as the bias of the MatMul/Gemm before it"):
        load(proto)


def test_unsupported_topologies():
    two_bodies = model([node("Relu", ["x"], ["a"]), node("Sigmoid", ["x"], ["b"]), node("Add", ["a", "b"], ["y"])],
                       (None, 3))
    with pytest.raises(OnnxModelError, match="joins two branches that both compute layers"):
        load(two_bodies)
    three = model([node("Relu", ["x"], ["a"]), node("Add", ["x", "a"], ["s"]), node("Add", ["s", "x"], ["y"])],
                  (None, 3))
    with pytest.raises(OnnxModelError, match="tensor 'x' feeds 3 nodes"):
        load(three)
    dead = model([node("Relu", ["x"], ["y"]), node("Constant", [], ["k"], value=numpy_helper.from_array(
        np.float32(1))), node("Neg", ["k"], ["unused"])], (None, 3))
    with pytest.raises(OnnxModelError, match="node '#2' .*not on the path from the graph input"):
        load(dead)


def test_opsets_outside_11_to_21_are_refused():
    for opset in (10, 22):
        with pytest.raises(OnnxModelError, match=f"opset {opset} is not supported; accepted: 11..21"):
            load(model([node("Relu", ["x"], ["y"])], (None, 3), opset=opset))


def test_export_bad_arguments():
    linear = nn.Sequential([nn.Linear(np.ones((2, 3)))])
    with pytest.raises(OnnxModelError, match=r"does not take input_shape \(4,\)"):
        export(linear, (4,))
    with pytest.raises(OnnxModelError, match="input_shape must be one sample's dimensions"):
        export(linear, "abc")
    with pytest.raises(OnnxModelError, match="opset must be an int in 11..21"):
        export(linear, (3,), opset=9)
    with pytest.raises(OnnxModelError, match="Softmax over 2 axes needs opset <= 12"):
        export(nn.Sequential([nn.Softmax(n_axes=2)]), (3, 4))
