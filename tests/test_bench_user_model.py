"""`fxbench run --model` / `fxbench sweep --model` end to end on a small ONNX file written here, and bad input."""

import numpy as np
import onnx
import pytest

from fixedpoint.bench import cli, results, workloads

pytest.importorskip("onnxruntime")

from onnx_graphs import model, node, run_onnxruntime, weights  # noqa: E402
from thread_variables import restore_pools, restore_thread_variables  # noqa: F401  (fixtures; the second is autouse)

RNG = np.random.default_rng(4)


def _proto():
    """NCL (2, 16) -> Conv1d 4ch, ReLU, MaxPool 2, Flatten, Gemm 5: a small channels-first classifier."""
    nodes = [node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1]), node("Relu", ["c"], ["r"]),
             node("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]), node("Flatten", ["p"], ["f"]),
             node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    return model(nodes, (None, 2, 16), {"W": weights(4, 2, 3), "B": weights(4), "G": weights(5, 32, scale=0.3),
                                        "C": weights(5)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-model")
    proto = _proto()
    onnx.save(proto, folder / "small.onnx")
    calib = RNG.normal(size=(32, 2, 16)).astype(np.float32)
    x = RNG.normal(size=(40, 2, 16)).astype(np.float32)
    np.save(folder / "calib.npy", calib)
    np.savez(folder / "test.npz", x=x, y=np.argmax(run_onnxruntime(proto, x), axis=1))
    np.savez(folder / "unlabelled.npz", x=x)
    return folder


def _run(argv, tmp_path):
    out = tmp_path / "out"
    assert cli.main(argv + ["--out", str(out)]) == 0
    (run_dir,) = out.iterdir()
    return results.load(run_dir / "results.json"), (run_dir / "report.md").read_text(), run_dir


def test_run_model_times_every_precision_and_onnxruntime(files, tmp_path):
    backend = workloads.timed_backends()[0]
    data, text, run_dir = _run(["run", "--model", str(files / "small.onnx"), "--calib", str(files / "calib.npy"),
                                "--test", str(files / "test.npz"), "--quick", "--backend", backend], tmp_path)
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    rows = {(r["precision"], r["backend"], r["batch"]) for r in speed}
    for batch in (1, 32):
        assert {(p, "numpy", batch) for p in ("f64", "f32")} <= rows
        assert {(p, backend, batch) for p in ("i16", "a16w8", "i8")} <= rows
        assert {("f32", "onnxruntime", batch), ("i8", "onnxruntime", batch)} <= rows
    by_row = {(r["precision"], r["backend"]): r for r in speed if r["batch"] == 32}
    assert by_row[("f64", "numpy")]["accuracy"] == 1.0 and by_row[("f64", "numpy")]["float64_accuracy"] == 1.0
    assert by_row[("f32", "onnxruntime")]["sqnr_db"] > 100
    assert 20 < by_row[("i8", backend)]["sqnr_db"] < 60 and 20 < by_row[("i8", "onnxruntime")]["sqnr_db"] < 60
    assert by_row[("i8", backend)]["weight_bytes"] < by_row[("f32", "numpy")]["weight_bytes"]
    reports = [r for r in data["records"] if r["kind"] == "layer_report"]
    assert [r["precision"] for r in reports] == ["i16", "a16w8", "i8"]
    assert [row["layer"] for row in reports[-1]["rows"]][:3] == ["input", "0:Permute", "1:Conv1d+ReLU"]
    assert not [r for r in data["records"] if r["kind"] == "failed"]
    assert "### Your model: small" in text and "| onnxruntime int8 (static, QDQ) |" in text
    assert "#### Per-layer error, i8 on" in text and "| 1:Conv1d+ReLU |" in text
    assert "fxbench i8 runs at" in text and "| model small batch 32 |" in text
    assert (run_dir / "speedup.png").stat().st_size > 0


def test_run_model_at_two_threads_times_and_reports_every_row_there(files, tmp_path, restore_pools):
    data, text, _ = _run(["run", "--model", str(files / "small.onnx"), "--calib", str(files / "calib.npy"),
                          "--quick", "--threads", "2", "--backend", workloads.timed_backends()[0],
                          "--precision", "f32", "--precision", "i8"], tmp_path)
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    assert {r["backend"] for r in speed} >= {"numpy", "onnxruntime"} and {r["threads"] for r in speed} == {2}
    assert data["context"]["threads"]["count"] == 2
    assert "Median latency of one forward pass on 2 threads" in text


def test_run_model_at_given_widths(files, tmp_path):
    data, text, _ = _run(["run", "--model", str(files / "small.onnx"), "--calib", str(files / "calib.npy"),
                          "--quick", "--backend", "reference", "--precision", "i8", "--weight-bits", "6",
                          "--activation-bits", "8"], tmp_path)
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    assert {(r["precision"], r["backend"]) for r in speed} == {("i8", "reference"), ("i8", "onnxruntime")}
    assert {r.get("quantized_as") for r in speed if r["backend"] == "reference"} == {"w6a8"}
    assert all(r["accuracy"] is None for r in speed)      # no labels: errors on the calibration samples
    assert "| w6a8 (reference) |" in text and "errors on the calibration samples" in text


def test_run_model_without_calibration_times_the_float_rows_only(files, tmp_path):
    data, text, _ = _run(["run", "--model", str(files / "small.onnx"), "--test", str(files / "test.npz"), "--quick"],
                         tmp_path)
    speed = [r for r in data["records"] if r["kind"] == "speed"]
    assert {(r["precision"], r["backend"]) for r in speed} == {("f64", "numpy"), ("f32", "numpy"),
                                                                ("f32", "onnxruntime")}
    assert {r["batch"] for r in speed} == {1, 40}
    assert "calibration needs sample inputs" in text and "Integer precisions: not available" in text


def test_sweep_model_records_sqnr_and_accuracy(files, tmp_path):
    data, text, _ = _run(["sweep", "--model", str(files / "small.onnx"), "--calib", str(files / "calib.npy"),
                          "--test", str(files / "test.npz"), "--weight-bits", "4,8", "--activation-bits", "8",
                          "--backend", "reference"], tmp_path)
    points = [r for r in data["records"] if r["kind"] == "sweep"]
    floats = [p for p in points if p.get("float_format")]
    assert not [r for r in data["records"] if r["kind"] == "failed"]
    assert len(points) - len(floats) == 2 + 4 * 2         # the grid, then four variants over the weight widths
    assert {p["float_format"] for p in floats} >= {"E4M3FN", "E5M2"}   # float formats of the same 8 bits
    assert all(p["weight_bits"] == p["activation_bits"] and p["sqnr_db"] > 0 for p in floats)
    grid = {p["weight_bits"]: p for p in points if p["variant"] == "default"}
    assert grid[8]["sqnr_db"] > grid[4]["sqnr_db"] and 0 <= grid[4]["accuracy"] <= 1
    assert "SQNR of the outputs vs float64 (dB)" in text and "### Accuracy vs bit width" in text


def test_sweep_model_without_labels_reports_sqnr_only(files, tmp_path):
    data, text, _ = _run(["sweep", "--model", str(files / "small.onnx"), "--calib", str(files / "calib.npy"),
                          "--test", str(files / "unlabelled.npz"), "--weight-bits", "6", "--activation-bits", "6,8",
                          "--backend", "reference"], tmp_path)
    assert all(p["accuracy"] is None for p in data["records"] if p["kind"] == "sweep")
    assert "SQNR of the outputs vs float64" in text and "### Accuracy vs bit width" not in text


def _bad_files(folder):
    np.save(folder / "nan.npy", np.full((4, 2, 16), np.nan, np.float32))
    np.save(folder / "wrong.npy", np.zeros((4, 3, 16), np.float32))
    np.save(folder / "flat.npy", np.zeros(5, np.float32))
    np.savez(folder / "nox.npz", inputs=np.zeros((4, 2, 16)))
    np.savez(folder / "badlabels.npz", x=np.zeros((4, 2, 16)), y=np.zeros(3, np.int64))
    (folder / "text.onnx").write_text("not a model")
    leaky = model([node("LeakyRelu", ["x"], ["y"], name="leaky")], (None, 2, 16))
    onnx.save(leaky, folder / "leaky.onnx")


@pytest.mark.parametrize("argv, message", [
    (["run", "--model", "{f}/absent.onnx", "--calib", "{f}/calib.npy"], "absent.onnx: no such file"),
    (["run", "--model", "{f}/text.onnx", "--calib", "{f}/calib.npy"], "text.onnx: not an ONNX model"),
    (["run", "--model", "{f}/leaky.onnx", "--calib", "{f}/calib.npy"],
     "node 'leaky' (LeakyRelu): op type 'LeakyRelu' is not supported; supported: Add,"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/nan.npy"], "nan.npy: 128 values are NaN or infinite"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/wrong.npy"],
     "--calib {f}/wrong.npy: samples of shape (3, 16) do not fit the model"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/flat.npy"], "needs a batch of samples (N, ...)"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/absent.npy"], "--calib {f}/absent.npy: no such file"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/test.npz"], "expected a .npy file"),
    (["run", "--model", "{f}/small.onnx", "--test", "{f}/nox.npz"], "needs an array 'x'"),
    (["run", "--model", "{f}/small.onnx", "--test", "{f}/badlabels.npz"], "y must hold one integer label"),
    (["run", "--model", "{f}/small.onnx"], "calibration needs sample inputs"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/calib.npy", "--task", "digits-mlp"], "cannot be combined"),
    (["run", "--calib", "{f}/calib.npy"], "go with --model"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/calib.npy", "--weight-bits", "20"],
     "--weight-bits must be one width in 2..16"),
    (["run", "--model", "{f}/small.onnx", "--calib", "{f}/calib.npy", "--precision", "i16", "--weight-bits", "4"],
     "run in the i8 containers; --precision i16 names another"),
    (["sweep", "--model", "{f}/small.onnx", "--test", "{f}/test.npz"], "sweep --model: calibration needs sample"),
])
def test_bad_model_input_is_one_line_and_exits_2(files, tmp_path, capsys, argv, message):
    _bad_files(files)
    argv = [part.format(f=files) for part in argv]
    assert cli.main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message.format(f=files) in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())                   # bad input is found before a run directory is made
