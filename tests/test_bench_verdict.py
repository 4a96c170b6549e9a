"""The verdict from the best of each class, the answer computed from the records, and the trade-off pictures."""

import pytest

from fixedpoint.bench import classes, cli, plots, report, verdict
from results_files import results_file


def _speed(workload, precision, backend, ms, implementation=None, **extra):
    record = {"kind": "speed", "op": "model" if workload.startswith("model ") else workload.split()[0],
              "workload": workload, "precision": precision, "backend": backend, "median_s": ms * 1e-3,
              "weight_bytes": 100, **extra}
    if implementation:
        record.update(implementation=implementation, contender=implementation.split()[0])
    return record


LINEAR = [
    _speed("linear 1x8x4", "f32", "numpy", 4.0, "numpy @", blas=[{"library": "openblas", "core": "SkylakeX"}]),
    _speed("linear 1x8x4", "f32", "c", 5.0),
    _speed("linear 1x8x4", "bf16", "torch", 2.0, "torch bf16 linear"),
    _speed("linear 1x8x4", "i8", "c", 1.0),
    _speed("linear 1x8x4", "i8", "onnxruntime-qlinear", 0.5, "onnxruntime QLinearMatMul"),
    _speed("linear 2x8x4", "f32", "numpy", 8.0, "numpy @", blas=[{"library": "openblas", "core": "SkylakeX"}]),
    _speed("linear 2x8x4", "i8", "c", 1.0),
    _speed("linear 2x8x4", "i8", "onnxruntime-qlinear", 2.0, "onnxruntime QLinearMatMul"),
    {"kind": "not_installed", "workload": "linear 2x8x4", "op": "linear", "precision": "bf16", "backend": "torch",
     "contender": "torch", "implementation": "torch bf16 linear", "reason": "torch not installed"},
]
MODELS = [
    _speed("model t batch 1", "f32", "numpy", 1.0, task="t", batch=1, accuracy=0.95),
    _speed("model t batch 1", "f32", "onnxruntime", 0.1, "onnxruntime float32 session", task="t", batch=1,
           accuracy=0.95),
    _speed("model t batch 1", "i8", "c", 0.2, task="t", batch=1, accuracy=0.94),
    _speed("model t batch 1", "i8", "onnxruntime-qdq", 0.05, "onnxruntime int8 session (QDQ)", task="t", batch=1,
           accuracy=0.93),
    _speed("model t batch 256", "f32", "numpy", 10.0, task="t", batch=256, accuracy=0.95),
    _speed("model t batch 256", "i8", "c", 2.0, task="t", batch=256, accuracy=0.94),
]


def test_each_class_takes_its_fastest_record_over_fxbench_and_the_contenders():
    rows = {row["workload"]: row for row in verdict.rows(LINEAR + MODELS)}
    first = rows["linear 1x8x4"]
    assert first["classes"]["float32"]["backend"] == "numpy" and first["classes"]["bfloat16"]["backend"] == "torch"
    assert first["classes"]["int8"]["backend"] == "onnxruntime-qlinear"
    assert first["best"]["f32"]["backend"] == "c"          # fxbench's own precisions leave the contenders out
    assert first["speedup"]["i8"] == pytest.approx(4.0)     # ... but compare with the best float32 of all
    assert verdict.ratio(first, "int8", "float32") == pytest.approx(8.0)
    assert verdict.ratio(first, "int8", "bfloat16") == pytest.approx(4.0)
    mine, other, value = verdict.fxbench_vs_contenders(first)
    assert (mine["backend"], other["backend"], value) == ("c", "onnxruntime-qlinear", pytest.approx(0.5))
    assert verdict.fxbench_vs_contenders(rows["linear 2x8x4"])[2] == pytest.approx(2.0)   # fxbench ahead
    assert rows["linear 2x8x4"]["absent"]["bfloat16"] == [("torch bf16 linear", "not installed")]
    assert rows["model t batch 1"]["group"] == "whole models at batch 1"


def test_the_answer_is_computed_from_the_records():
    rows = verdict.rows(LINEAR + MODELS)
    text = verdict.answer(rows, "Test CPU", LINEAR + MODELS)
    assert text.startswith("The environment pins no BLAS core: float rows ran at the BLAS's own choice "
                           "(openblas SkylakeX).")
    assert ("Kernel class linear (2 workloads): the best int8 (onnxruntime QLinearMatMul on 1, fxbench c on 1) runs "
            "at 8.00x the speed of the best float32 (numpy @ [openblas SkylakeX]; faster on 2 of 2); at 4.00x the "
            "speed of the best bfloat16 (torch bf16 linear; faster on 1 of 1); fxbench's own int8 runs at 0.50-2.00x "
            "the speed of the fastest other library's (onnxruntime QLinearMatMul), ahead on 1 of 2.") in text
    assert ("Whole models at batch 1 (1 workload): the best int8 (onnxruntime int8 session (QDQ)) runs at 2.00x the "
            "speed of the best float32 (onnxruntime float32 session; faster on 1 of 1); no bfloat16 row exists for "
            "these workloads; fxbench's own int8 runs at 0.25x the speed of the fastest other library's (onnxruntime "
            "int8 session (QDQ)), ahead on 0 of 1; the best int8's test accuracy is at most 2.0 points below the best "
            "float32's.") in text
    assert "Whole models at batch 256 (1 workload): the best int8 (fxbench c) runs at 5.00x" in text
    faster = [dict(r, median_s=r["median_s"] / 10) if r["backend"] == "c" else r for r in LINEAR]
    assert ("runs at 5.00-20.00x the speed of the fastest other library's (onnxruntime QLinearMatMul), ahead on 2 of 2"
            in verdict.answer(verdict.rows(faster), "Test CPU", faster))


def test_the_verdict_table_names_who_and_labels_missing_contenders():
    lines = verdict.class_table(verdict.rows(LINEAR + MODELS))
    assert lines[0] == ("| workload | best float32 ms (who) | best bfloat16 ms (who) | best int8 ms (who) | best int8 "
                        "vs best float32 | best int8 vs best bfloat16 | fxbench int8 ms (backend) | fxbench int8 vs "
                        "best other int8 | test accuracy % of each best |")
    assert ("| linear 2x8x4 | 8 (numpy @ [openblas SkylakeX]) | torch bf16 linear: not installed | 1 (fxbench c) "
            "| 8.00 | - | 1 (c) | 2.00 | - |") in lines
    assert ("| model t batch 1 | 0.1 (onnxruntime float32 session) | - | 0.05 (onnxruntime int8 session (QDQ)) "
            "| 2.00 | - | 0.2 (c) | 0.25 | float32 95.0 / int8 93.0 |") in lines


def test_a_new_precision_class_is_one_entry_of_the_table(monkeypatch):
    monkeypatch.setitem(classes.PRECISION_CLASSES, "fp8", ("fp8e4m3",))
    records = LINEAR + [_speed("linear 1x8x4", "fp8e4m3", "c", 0.8)]
    rows = {row["workload"]: row for row in verdict.rows(records)}
    assert rows["linear 1x8x4"]["classes"]["fp8"]["precision"] == "fp8e4m3"
    assert "best int8 vs best fp8" in verdict.class_table(list(rows.values()))[0]
    assert "at 1.60x the speed of the best fp8 (fxbench c; faster on 1 of 1)" in verdict.answer(
        list(rows.values()), "Test CPU", records)


def test_pareto_front_keeps_the_points_nothing_beats_in_speed_and_accuracy():
    points = [{"median_s": 1.0, "accuracy": 0.90}, {"median_s": 2.0, "accuracy": 0.95},
              {"median_s": 3.0, "accuracy": 0.94}, {"median_s": 0.5, "accuracy": 0.80},
              {"median_s": 2.0, "accuracy": 0.97}]
    assert plots.pareto_front(points) == [points[3], points[0], points[4]]


def test_the_report_draws_one_tradeoff_picture_per_task_model(tmp_path):
    path = results_file(tmp_path / "r.json", LINEAR + MODELS)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "![t: accuracy vs latency](tradeoff-t.png)" in text
    assert (tmp_path / "out" / "tradeoff-t.png").stat().st_size > 0
    assert "latency_vs_sqnr" not in text
    assert cli.main(["report", str(path), str(path), "--out", str(tmp_path / "two")]) == 0
    assert {"tradeoff-t-1.png", "tradeoff-t-2.png"} <= {p.name for p in (tmp_path / "two").iterdir()}
    assert report.verdict_rows(LINEAR)[0]["workload"] == "linear 1x8x4"
