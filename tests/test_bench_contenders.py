"""Contenders of every class: the same job as fxbench's reference (int8 exactly), labelled when missing, failures
recorded while the run goes on."""
import json

import numpy as np
import pytest

from fixedpoint import kernels
from fixedpoint.bench import (catalog, classes, cli, contenders, metrics, model_workloads, report, results, runner,
                              workloads)
from results_files import results_file

TINY = {"linear": (3, 37, 5), "conv1d": (2, 9, 3, 4, 3), "conv2d": (2, 5, 6, 3, 4, 3)}
needs_onnxruntime = pytest.mark.skipif(classes.missing_library("onnxruntime") is not None,
                                       reason="onnxruntime is not installed (the data extra)")


def _installed(contender):
    return contenders.not_installed(contender) is None


def _params(library=None):
    return [pytest.param(op, c, id=f"{op}-{c.backend}-{c.precision}")
            for c in contenders.KERNEL_CONTENDERS for op in c.ops if library in (None, c.library)]


def _int8_inputs(op, dims, seed=0):
    x, w, kwargs = workloads.dot_inputs(op, dims, np.random.default_rng(seed))
    xq, fx = workloads.quantize_input(x, 8, None)
    wq, fw = workloads.quantize_input(w, 8, None)
    fy = workloads.frac_for(workloads.float_reference(op, x, w, kwargs), 8)
    return xq, wq, fx, fw, fy, kwargs


@pytest.mark.parametrize("op, contender", _params())
def test_every_contender_computes_fxbench_s_reference(op, contender):
    """int8 rows give exactly the reference backend's int8 result (or int32 accumulator) on the same quantized
    inputs; float rows stay within their relative RMS of the float64 reference."""
    if not _installed(contender):
        pytest.importorskip(contender.library)
    case = contenders.case(op, TINY[op], contender.precision, contender.backend)
    assert runner.check_against_reference(case)["reference_check"] == ("exact" if contender.precision == "i8"
                                                                       else "within tolerance")
    got = case.decode(case.call())
    if contender.precision != "i8":
        assert metrics.relative_rms(case.reference, got) <= contenders.TOLERANCE[contender.precision]
        return
    xq, wq, fx, fw, fy, kwargs = _int8_inputs(op, TINY[op])
    if case.extra["output"] == "int8":
        expected = getattr(kernels, op)(xq, wq, backend="reference", shift=fx + fw - fy, out_dtype=np.int8, **kwargs)
        assert np.array_equal(np.rint(got / 2.0 ** -fy).astype(np.int64), expected)
    else:
        expected = kernels.linear(xq, wq, backend="reference")
        assert expected.dtype == np.int32 and np.array_equal(got / 2.0 ** -(fx + fw), expected)


@needs_onnxruntime
def test_contender_rows_take_the_workload_s_own_inputs():
    """Same shape label, operations and weight bytes as fxbench's i8 row of the workload (defined once)."""
    mine = workloads.dot_case("conv2d", TINY["conv2d"], "i8", "reference")
    theirs = contenders.case("conv2d", TINY["conv2d"], "i8", contenders.ONNXRUNTIME_QLINEAR)
    assert (theirs.workload, theirs.ops, theirs.weight_bytes) == (mine.workload, mine.ops, mine.weight_bytes)
    assert theirs.extra["frac_y"] == mine.extra["frac_y"]
    assert theirs.extra["implementation"] == "onnxruntime QLinearConv"
    assert np.array_equal(theirs.decode(theirs.call()), mine.decode(mine.call()))


def test_a_contender_with_a_wrong_result_becomes_a_failed_record_and_the_run_goes_on(tmp_path, monkeypatch):
    case = workloads.dot_case("linear", (2, 8, 4), "i8", "reference")
    case.expected = case.decode(case.call()) + case.lsb * (np.arange(8).reshape(2, 4) == 5)
    case.tolerance = 0.0
    with pytest.raises(runner.ReferenceMismatch, match="1 of 8 outputs differ from fxbench's reference, by up to "
                                                       r".* \(1 LSB\); an int8 row must match exactly"):
        runner.check_against_reference(case)
    broken = catalog.Spec("contender", "linear", (2, 8, 4), "i8", contenders.TORCH)
    good = catalog.Spec("dot", "linear", (2, 8, 4), "i8", workloads.timed_backends()[0])
    monkeypatch.setattr(catalog.Spec, "build", lambda spec: case if spec == broken else workloads.dot_case(
        spec.op, spec.dims, spec.precision, spec.backend))
    writer = results.ResultsWriter(tmp_path / "r.json", {"cpu": "Test CPU"})
    runner._time_cases(writer, [broken, good], quick=True, progress=False, desc="kernels")
    failed, measured = writer.data["records"]
    assert failed["kind"] == "failed" and failed["reason"].startswith("ReferenceMismatch: 1 of 8 outputs differ")
    assert (failed["workload"], failed["precision"], failed["backend"]) == ("linear 2x8x4", "i8", "torch")
    assert measured["kind"] == "speed"
    row = report.verdict_rows(writer.data["records"])[0]
    assert row["absent"]["int8"][0][1].startswith("failed: ReferenceMismatch")


def test_a_contender_whose_library_crashes_is_recorded_as_failed(tmp_path, monkeypatch):
    def crash(op, dims, seed):
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation")

    monkeypatch.setitem(contenders._INT8_BUILDERS, contenders.ONNXRUNTIME_QLINEAR, crash)
    writer = results.ResultsWriter(tmp_path / "r.json", {"cpu": "Test CPU"})
    spec = catalog.Spec("contender", "conv1d", TINY["conv1d"], "i8", contenders.ONNXRUNTIME_QLINEAR)
    runner._time_cases(writer, [spec], quick=True, progress=False, desc="kernels")
    (record,) = writer.data["records"]
    assert record["kind"] == "failed" and "NOT_IMPLEMENTED" in record["reason"]
    assert record["label"] == "conv1d 2x9x3x4x3 i8 onnxruntime-qlinear"
    with pytest.raises(RuntimeError):   # fxbench's own rows still stop the run
        runner._time_cases(writer, [("linear 1x1x1 i8 c", lambda: crash(None, None, None))], quick=True,
                           progress=False, desc="kernels")


def test_a_missing_library_gives_labelled_not_installed_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(classes, "missing_library", lambda library: None if library == "numpy" else
                        f"{library} not installed (pip install {library})")
    specs, missing = catalog.kernel_plan(quick=True, backends=["reference"], precisions=["f32", "bf16", "i8"])
    assert not [s for s in specs if s.is_contender]
    linear = [r for r in missing if r["workload"] == "linear 1x784x256"]
    assert {(r["backend"], r["precision"]) for r in linear} == {
        ("torch", "f32"), ("onnxruntime", "f32"), ("torch", "bf16"), ("onnxruntime-qlinear", "i8"),
        ("onnxruntime", "i8"), ("torch", "i8")}
    records = [*missing, {"kind": "speed", "op": "linear", "workload": "linear 1x784x256", "precision": "i8",
                          "backend": "c", "median_s": 1e-5, "weight_bytes": 10}]
    path = results_file(tmp_path / "r.json", records)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| torch bf16 linear: not installed |" in text
    assert "no bfloat16 row was measured (torch bf16 linear: not installed)" in text
    assert "| linear 1x784x256 | 0.01 | not installed | not installed |" in text
    assert "Not installed: onnxruntime: onnxruntime not installed (pip install onnxruntime); torch: torch" in text


def test_bf16_rows_say_emulated_without_bfloat16_instructions(monkeypatch):
    pytest.importorskip("torch")
    from fixedpoint.bench import context

    monkeypatch.setattr(context, "cpu_flags", lambda: ["avx2", "fma"])
    case = contenders.case("linear", TINY["linear"], "bf16", contenders.TORCH)
    assert case.extra["bf16_native"] is False and case.extra["implementation"] == "torch bf16 linear (emulated)"
    monkeypatch.setattr(context, "cpu_flags", lambda: ["avx512_bf16"])
    case = contenders.case("linear", TINY["linear"], "bf16", contenders.TORCH)
    assert case.extra["bf16_native"] is True and case.extra["implementation"] == "torch bf16 linear"


def test_unknown_contender_or_op_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="no contender 'tvm' in precision 'i8'"):
        contenders.case("linear", TINY["linear"], "i8", "tvm")
    with pytest.raises(ValueError, match="has no conv2d"):
        contenders.case("conv2d", TINY["conv2d"], "i8", contenders.TORCH)
    with pytest.raises(ValueError, match="no model contender"):
        model_workloads.contender_case("digits-mlp", 1, "bf16", "onnxruntime")


def test_specs_travel_as_json_and_bad_ones_are_named():
    spec = catalog.Spec("model_contender", "model", ("digits-mlp", 256), "i8", "onnxruntime-qdq")
    again = catalog.Spec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again == spec and again.workload == "model digits-mlp batch 256" and again.is_contender
    with pytest.raises(ValueError, match="unknown spec kind 'gpu'"):
        catalog.Spec("gpu", "linear", (1, 2, 3), "i8", "c")
    with pytest.raises(ValueError, match="needs the fields"):
        catalog.Spec.from_dict({"kind": "dot"})


@needs_onnxruntime
@pytest.mark.parametrize("contender", model_workloads.MODEL_CONTENDERS, ids=lambda c: c.backend)
def test_model_sessions_run_the_exported_model_near_the_float64_one(contender):
    case = model_workloads.contender_case("digits-mlp", 2, contender.precision, contender.backend)
    check = runner.check_against_reference(case)
    assert check["reference_error"] <= model_workloads.MODEL_TOLERANCE[contender.precision]
    proto, _ = model_workloads.contender_session("digits-mlp", contender.backend, contender.precision)
    ops = {node.op_type for node in proto.graph.node}
    if contender.quant_format == "QOperator":
        assert "QGemm" in ops and "DequantizeLinear" in ops
    elif contender.quant_format == "QDQ":
        assert "QuantizeLinear" in ops and "Gemm" in ops
    else:
        assert ops == {"Gemm", "Relu", "Identity"}
    from fixedpoint.bench import tasks

    float_accuracy = tasks.get("digits-mlp").info["test_accuracy"]
    assert abs(case.extra["accuracy"] - float_accuracy) < 0.02
    assert case.extra["implementation"] == contender.implementation
    assert case.weight_bytes < 20_000 if contender.precision == "i8" else case.weight_bytes > 30_000
