"""fixedpoint.onnx.load: every supported operator and attribute variant against onnxruntime (float32)."""

import math

import numpy as np
import pytest

from fixedpoint import kernels, nn
from fixedpoint.onnx import load

pytest.importorskip("onnxruntime")

from onnx_graphs import assert_matches_onnxruntime, model, node, run_onnxruntime, weights  # noqa: E402

RNG = np.random.default_rng(3)


def _x(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _check(proto, x, **kwargs):
    loaded = load(proto, **kwargs)
    assert_matches_onnxruntime(proto, loaded, x)
    return loaded


@pytest.mark.parametrize("trans_b, alpha, beta, bias_shape", [
    (0, 1.0, 1.0, None), (1, 1.0, 1.0, (5,)), (1, 0.5, 2.0, (1, 5)), (0, 2.0, 0.25, (5,)), (1, 1.0, 1.0, (1,)),
])
def test_gemm_variants(trans_b, alpha, beta, bias_shape):
    b = weights(5, 8) if trans_b else weights(8, 5)
    inits = {"B": b}
    inputs = ["x", "B"]
    if bias_shape:
        inits["C"] = weights(*bias_shape)
        inputs.append("C")
    proto = model([node("Gemm", inputs, ["y"], transB=trans_b, alpha=alpha, beta=beta)], (None, 8), inits)
    loaded = _check(proto, _x(4, 8))
    assert [type(layer).__name__ for layer in loaded] == ["Linear"]


@pytest.mark.parametrize("bias_shape, bias_first", [(None, False), ((6,), False), ((1, 6), True)])
def test_matmul_with_add_as_bias(bias_shape, bias_first):
    nodes = [node("MatMul", ["x", "W"], ["m" if bias_shape else "y"])]
    inits = {"W": weights(8, 6)}
    if bias_shape:
        inits["b"] = weights(*bias_shape)
        nodes.append(node("Add", ["b", "m"] if bias_first else ["m", "b"], ["y"]))
    loaded = _check(model(nodes, (None, 8), inits), _x(3, 8))
    assert len(loaded) == 1 and (loaded.layers[0].bias is not None) == bool(bias_shape)


def test_matmul_over_the_last_axis_of_a_sequence():
    proto = model([node("MatMul", ["x", "W"], ["m"]), node("Add", ["m", "b"], ["y"])], (None, 5, 8),
                  {"W": weights(8, 3), "b": weights(3)})
    _check(proto, _x(2, 5, 8))


CONV_VARIANTS = [
    {}, {"pads": [1, 1, 1, 1]}, {"pads": [0, 1, 2, 0]}, {"strides": [2, 2]}, {"strides": [2, 1], "pads": [1, 0, 0, 2]},
    {"auto_pad": "VALID"}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER"},
    {"auto_pad": "SAME_UPPER", "kernel_shape": [3, 2]},
]


@pytest.mark.parametrize("attributes", CONV_VARIANTS)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_variants(attributes, with_bias):
    kernel = attributes.get("kernel_shape", [3, 3])
    inits = {"W": weights(4, 3, *kernel)}
    if with_bias:
        inits["B"] = weights(4)
    proto = model([node("Conv", ["x", "W"] + (["B"] if with_bias else []), ["y"], **attributes)], (None, 3, 7, 6),
                  inits)
    loaded = _check(proto, _x(2, 3, 7, 6))
    assert isinstance(loaded.layers[0], nn.Permute) and isinstance(loaded.layers[-1], nn.Permute)


@pytest.mark.parametrize("attributes", [{}, {"pads": [2, 1]}, {"pads": [1, 1], "strides": [2]},
                                        {"auto_pad": "SAME_UPPER", "strides": [3]}, {"auto_pad": "SAME_LOWER"}])
def test_conv1d_variants(attributes):
    proto = model([node("Conv", ["x", "W", "B"], ["y"], **attributes)], (None, 2, 11),
                  {"W": weights(5, 2, 4), "B": weights(5)})
    _check(proto, _x(3, 2, 11))


def test_elementwise_activations_and_clip():
    nodes = [node("Relu", ["x"], ["a"]), node("Sigmoid", ["a"], ["b"]), node("Tanh", ["b"], ["c"]),
             node("Clip", ["c", "zero", "six"], ["d"]), node("Clip", ["d", "zero"], ["y"])]
    proto = model(nodes, (None, 6), {"zero": np.float32(0), "six": np.float32(6)})
    loaded = _check(proto, 4 * _x(5, 6))
    assert [type(layer).__name__ for layer in loaded] == ["ReLU", "Sigmoid", "Tanh", "ReLU6", "ReLU"]
    six = model([node("Clip", ["x", "zero", "six"], ["y"])], (None, 6), {"zero": np.float32(0), "six": np.float32(6)})
    _check(six, 8 * _x(5, 6))


POOL_VARIANTS = [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0]}),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "count_include_pad": 0}),
]


@pytest.mark.parametrize("op, attributes", POOL_VARIANTS)
def test_pool2d_variants(op, attributes):
    _check(model([node(op, ["x"], ["y"], **attributes)], (None, 3, 7, 6)), _x(2, 3, 7, 6))


@pytest.mark.parametrize("op, attributes", [("MaxPool", {"kernel_shape": [2], "strides": [2]}),
                                            ("MaxPool", {"kernel_shape": [3], "pads": [1, 1]}),
                                            ("AveragePool", {"kernel_shape": [3], "strides": [2], "pads": [1, 0]}),
                                            ("AveragePool", {"kernel_shape": [2], "pads": [1, 1],
                                                             "count_include_pad": 1})])
def test_pool1d_variants(op, attributes):
    _check(model([node(op, ["x"], ["y"], **attributes)], (None, 3, 9)), _x(2, 3, 9))


@pytest.mark.parametrize("shape", [(None, 4, 5, 3), (None, 4, 7)])
def test_global_average_pool_then_flatten(shape):
    nodes = [node("GlobalAveragePool", ["x"], ["g"]), node("Flatten", ["g"], ["y"])]
    _check(model(nodes, shape), _x(2, *shape[1:]))


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape0", "ReshapeMinus1"])
def test_flatten_after_conv_keeps_the_onnx_element_order(flatten):
    nodes = [node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"])]
    inits = {"W": weights(4, 2, 3, 3), "B": weights(4), "G": weights(4 * 5 * 6, 3, scale=0.1)}
    if flatten == "Flatten":
        nodes.append(node("Flatten", ["r"], ["f"]))
    else:
        inits["shape"] = np.array([0, -1] if flatten == "Reshape0" else [-1, 120], dtype=np.int64)
        nodes.append(node("Reshape", ["r", "shape"], ["f"]))
    nodes.append(node("MatMul", ["f", "G"], ["y"]))
    loaded = _check(model(nodes, (None, 2, 5, 6), inits), _x(3, 2, 5, 6))
    kinds = [type(layer).__name__ for layer in loaded]
    assert kinds == ["Permute", "Conv2d", "ReLU", "Permute", "Flatten", "Linear"]


def test_conv1d_flatten_gemm_chain_like_a_torch_export():
    nodes = [node("Conv", ["x", "W1", "B1"], ["c1"], pads=[2, 2]), node("Relu", ["c1"], ["r1"]),
             node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
             node("Conv", ["p1", "W2", "B2"], ["c2"], strides=[2]), node("Relu", ["c2"], ["r2"]),
             node("Flatten", ["r2"], ["f"]), node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    inits = {"W1": weights(8, 1, 5), "B1": weights(8), "W2": weights(6, 8, 3), "B2": weights(6),
             "G": weights(10, 6 * 9, scale=0.2), "C": weights(10)}
    _check(model(nodes, (None, 1, 40), inits), _x(4, 1, 40))


@pytest.mark.parametrize("after", ["Conv", "Gemm"])
def test_batch_normalization(after):
    stats = {"s": RNG.uniform(0.5, 2, 4).astype(np.float32), "b": weights(4), "m": weights(4),
             "v": RNG.uniform(0.5, 2, 4).astype(np.float32)}
    if after == "Conv":
        first, shape = node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), (None, 2, 5, 5)
        inits = {"W": weights(4, 2, 3, 3)}
    else:
        first, shape, inits = node("Gemm", ["x", "W"], ["c"]), (None, 6), {"W": weights(6, 4)}
    proto = model([first, node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-3)], shape,
                  {**inits, **stats})
    loaded = _check(proto, _x(3, *shape[1:]))
    assert any(isinstance(layer, nn.BatchNorm) and math.isclose(layer.eps, 1e-3, rel_tol=1e-6) for layer in loaded)


@pytest.mark.parametrize("opset, shape, axis", [
    (11, (None, 6), None), (11, (None, 3, 4), None), (11, (None, 3, 4), 2), (12, (None, 2, 3, 4), 2),
    (13, (None, 3, 4), None), (13, (None, 3, 4), 1), (13, (None, 6), 1), (21, (None, 2, 3, 4), -3),
])
def test_softmax_axis_semantics_before_and_after_opset_13(opset, shape, axis):
    attributes = {} if axis is None else {"axis": axis}
    proto = model([node("Softmax", ["x"], ["y"], **attributes)], shape, opset=opset)
    loaded = _check(proto, 3 * _x(2, *shape[1:]))
    joint = opset < 13 and (1 if axis is None else axis % len(shape)) < len(shape) - 1
    softmax = next(layer for layer in loaded if isinstance(layer, nn.Softmax))
    assert (softmax.n_axes > 1) == joint


def test_softmax_over_the_channels_of_a_conv_output():
    nodes = [node("Conv", ["x", "W"], ["c"]), node("Softmax", ["c"], ["y"], axis=1)]
    loaded = _check(model(nodes, (None, 2, 4, 4), {"W": weights(3, 2, 1, 1)}, opset=13), _x(2, 2, 4, 4))
    assert [type(layer).__name__ for layer in loaded] == ["Permute", "Conv2d", "Softmax", "Permute"]


def _residual_block(prefix, source, body_first=True, skip_identity=False):
    """(nodes, initializers) of source + relu(conv(relu(conv(source)))) on 4 channels."""
    nodes = [node("Conv", [source, f"{prefix}W1", f"{prefix}B1"], [f"{prefix}c1"], pads=[1, 1, 1, 1]),
             node("Relu", [f"{prefix}c1"], [f"{prefix}r1"]),
             node("Conv", [f"{prefix}r1", f"{prefix}W2"], [f"{prefix}c2"], pads=[1, 1, 1, 1])]
    skip = source
    if skip_identity:
        nodes.append(node("Identity", [source], [f"{prefix}skip"]))
        skip = f"{prefix}skip"
    operands = [f"{prefix}c2", skip] if body_first else [skip, f"{prefix}c2"]
    nodes += [node("Add", operands, [f"{prefix}sum"]), node("Relu", [f"{prefix}sum"], [f"{prefix}out"])]
    inits = {f"{prefix}W1": weights(4, 4, 3, 3, scale=0.2), f"{prefix}B1": weights(4),
             f"{prefix}W2": weights(4, 4, 3, 3, scale=0.2)}
    return nodes, inits


def _residual_net(nested=False):
    nodes = [node("Conv", ["x", "W0"], ["c0"], pads=[1, 1, 1, 1]), node("Relu", ["c0"], ["r0"])]
    inits = {"W0": weights(4, 2, 3, 3)}
    block, block_inits = _residual_block("a", "r0", body_first=False)
    nodes += block
    inits.update(block_inits)
    block, block_inits = _residual_block("b", "aout", skip_identity=True)
    if nested:   # the second block's body holds a residual block of its own
        inner, inner_inits = _residual_block("n", "br1")
        block = block[:2] + inner + [node("Conv", ["nout", "bW2"], ["bc2"], pads=[1, 1, 1, 1])] + block[3:]
        inits.update(inner_inits)
    nodes += block
    inits.update(block_inits)
    nodes += [node("GlobalAveragePool", ["bout"], ["g"]), node("Flatten", ["g"], ["f"]),
              node("Gemm", ["f", "G"], ["y"], transB=1)]
    inits["G"] = weights(3, 4)
    return model(nodes, (None, 2, 6, 6), inits)


@pytest.mark.parametrize("nested", [False, True])
def test_residual_blocks(nested):
    loaded = _check(_residual_net(nested), _x(3, 2, 6, 6))
    residuals = [layer for layer in loaded if isinstance(layer, nn.Residual)]
    assert len(residuals) == 2
    assert any(isinstance(layer, nn.Residual) for layer in residuals[1].body.layers) == nested


def test_converted_model_of_a_loaded_graph_runs_on_every_backend():
    proto = _residual_net(nested=True)
    loaded = load(proto)
    calib, x = _x(64, 2, 6, 6), _x(8, 2, 6, 6)
    fixed = nn.quantize_model(loaded, calib, "i8")
    raw, fmt = fixed.with_backend("reference")(x, raw=True)
    for backend in kernels.available():
        np.testing.assert_array_equal(fixed.with_backend(backend)(x, raw=True)[0], raw, err_msg=backend)
    reference = run_onnxruntime(proto, x)
    assert np.abs(fixed(x) - reference).max() < 0.1 * np.abs(reference).max()
    assert len(fixed.layer_report(x)) == len(fixed.overflow_report())


@pytest.mark.parametrize("opset", [11, 12, 13, 17, 21])
def test_identity_dropout_transpose_and_pad_across_opsets(opset):
    dropout = (node("Dropout", ["r", "ratio"], ["d"]) if opset >= 12 else node("Dropout", ["r"], ["d"], ratio=0.3))
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), node("Identity", ["t"], ["i"]),
             node("Pad", ["i", "pads", "zero"], ["p"], mode="constant"), node("Conv", ["p", "W"], ["c"]),
             node("Relu", ["c"], ["r"]), dropout, node("Transpose", ["d"], ["y"], perm=[0, 2, 3, 1])]
    inits = {"pads": np.array([0, 0, 1, 0, 0, 0, 0, 2], dtype=np.int64), "zero": np.float32(0),
             "W": weights(3, 2, 2, 2)}
    if opset >= 12:
        inits["ratio"] = np.float32(0.3)
    loaded = _check(model(nodes, (None, 5, 6, 2), inits, opset=opset), _x(2, 5, 6, 2))
    assert [type(layer).__name__ for layer in loaded] == ["Pad", "Conv2d", "ReLU"]    # NHWC in and out: no Permute


def test_an_output_left_channels_first_is_returned_channels_first():
    proto = model([node("Conv", ["x", "W"], ["c"]), node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2])],
                  (None, 2, 5, 5), {"W": weights(3, 2, 2, 2)})
    loaded = _check(proto, _x(2, 2, 5, 5))
    assert loaded(_x(1, 2, 5, 5)).shape == (1, 3, 3, 3)


def test_max_pool_padding_never_wins_over_negative_inputs():
    proto = model([node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], (None, 1, 4, 4))
    x = -np.abs(_x(2, 1, 4, 4)) - 1
    loaded = _check(proto, x)
    fixed = nn.quantize_model(loaded, x, "i8")
    np.testing.assert_allclose(fixed(x), run_onnxruntime(proto, x), atol=fixed.output_format.lsb)


def test_loaded_model_from_a_file_with_a_dynamic_spatial_input(tmp_path):
    import onnx

    proto = model([node("Conv", ["x", "W"], ["c"], auto_pad="SAME_UPPER"), node("GlobalAveragePool", ["c"], ["y"])],
                  (None, 2, "H", "W"), {"W": weights(3, 2, 3, 3)})
    path = tmp_path / "dynamic.onnx"
    onnx.save(proto, path)
    loaded = load(path, input_shape=(2, 6, 5))
    assert_matches_onnxruntime(proto, loaded, _x(2, 2, 6, 5))


def _torch_export(module, x, path):
    """`module` (eval mode) exported by torch.onnx.export at opset 18; skipped where the exporter is unavailable."""
    torch = pytest.importorskip("torch")
    module.eval()
    try:
        torch.onnx.export(module, (torch.from_numpy(x),), str(path), opset_version=18)
    except ImportError as exc:          # the exporter's own optional dependencies (onnxscript)
        pytest.skip(f"torch.onnx.export unavailable: {exc}")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _torch_modules():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(4, 4, 3, padding=1), tnn.BatchNorm2d(4)
            self.conv2 = tnn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return torch.relu(x + self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    torch.manual_seed(0)
    modules = {
        "mlp": (tnn.Sequential(tnn.Linear(12, 16), tnn.ReLU(), tnn.Linear(16, 5)), (12,)),
        "cnn1d": (tnn.Sequential(tnn.Conv1d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool1d(2),
                                 tnn.Conv1d(6, 8, 3, stride=2), tnn.ReLU(), tnn.Flatten(), tnn.Linear(8 * 4, 5)),
                  (1, 20)),
        "cnn2d": (tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), Block(),
                                 tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(4 * 4 * 4, 5)), (1, 8, 8)),
    }
    for module, _ in modules.values():
        for layer in module.modules():
            if isinstance(layer, tnn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.data.uniform_(0.5, 1.5)
    return modules


@pytest.mark.parametrize("name", ["mlp", "cnn1d", "cnn2d"])
def test_models_exported_by_torch(name, tmp_path):
    module, shape = _torch_modules()[name]
    x = _x(3, *shape)
    expected = _torch_export(module, x, tmp_path / f"{name}.onnx")
    loaded = load(tmp_path / f"{name}.onnx", input_shape=shape)
    np.testing.assert_allclose(loaded(x), expected, rtol=1e-4, atol=1e-5 * float(np.abs(expected).max()))
    fixed = nn.quantize_model(loaded, _x(64, *shape), "i16")
    np.testing.assert_allclose(fixed(x), expected, atol=0.01 * float(np.abs(expected).max()))
