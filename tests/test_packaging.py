"""The distribution installs one import package, fixedpoint, with kernels/ and bench/ inside it."""
import importlib.metadata
import subprocess
import sys

import fixedpoint


def test_only_fixedpoint_is_a_top_level_package():
    top_level = importlib.metadata.distribution("fxbench").read_text("top_level.txt").split()
    assert top_level == ["fixedpoint"]


def test_kernels_and_bench_are_subpackages():
    import fixedpoint.bench
    import fixedpoint.kernels

    assert fixedpoint.kernels.__name__ == "fixedpoint.kernels"
    assert fixedpoint.bench.__name__ == "fixedpoint.bench"
    assert "kernels" not in sys.modules and "bench" not in sys.modules


def test_imports_work_from_another_directory(tmp_path):
    code = "import fixedpoint.kernels, fixedpoint.bench, fixedpoint; print(fixedpoint.QFormat(8, 6))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Q1.6"


def test_public_names():
    for name in ("QFormat", "Rounding", "Overflow", "quantize", "dequantize", "FixedArray", "OverflowStats"):
        assert hasattr(fixedpoint, name)
