"""FXBENCH_C_EXTENSION: the C backend loads the extension module it names (CI's AddressSanitizer
build), and a name that does not import is a clear ImportError, reported by the registry."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("fixedpoint.kernels._fxp_c")


def _run(code, tmp_path, extension):
    env = dict(os.environ, FXBENCH_C_EXTENSION=extension)
    env.pop("FXBENCH_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_the_named_extension_is_loaded(tmp_path):
    # A stand-in for the ASan build: the same ffi and lib under another module name.
    (tmp_path / "fxbench_other_build.py").write_text(
        "from fixedpoint.kernels._fxp_c import ffi, lib\nLOADED = True\n")
    result = _run("""
        import sys
        import numpy as np
        from fixedpoint import kernels as K
        from fixedpoint.kernels import c_backend
        assert c_backend.EXTENSION == "fxbench_other_build", c_backend.EXTENSION
        assert c_backend.lib is sys.modules["fxbench_other_build"].lib
        assert "c" in K.available()
        y = K.linear(np.ones((2, 3), np.int8), np.ones((4, 3), np.int8), backend="c")
        assert y.tolist() == [[3] * 4] * 2
        print("ok")
    """, tmp_path, "fxbench_other_build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_default_extension_without_the_variable(tmp_path):
    result = _run("""
        from fixedpoint.kernels import c_backend
        print(c_backend.EXTENSION)
    """, tmp_path, "")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fixedpoint.kernels._fxp_c"


def test_a_missing_extension_is_a_clear_import_error(tmp_path):
    result = _run("""
        from fixedpoint.kernels import registry
        try:
            import fixedpoint.kernels.c_backend
        except ImportError as exc:
            print("ImportError:", exc)
        print("c available:", "c" in registry.available())
        print("reason:", registry.unavailable_reasons()["c"])
    """, tmp_path, "fxbench_no_such_build")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ImportError:") and "fxbench_no_such_build" in lines[0]
    assert "FXBENCH_C_EXTENSION" in lines[0]
    assert lines[1] == "c available: False"
    assert "fxbench_no_such_build" in lines[2]
