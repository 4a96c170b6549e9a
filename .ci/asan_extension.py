"""Build the C backend once more with AddressSanitizer, as the top-level module ``_fxp_c_asan``.

Usage: ``python .ci/asan_extension.py OUT_DIR [C_SOURCES]`` (C_SOURCES: the folder with
``build_ffi.py`` and the C files, default ``kernels/c``).  The sources and the Python tables
they are built from (the folder above them) are copied into OUT_DIR and built there, so
nothing is written beside them; the module lands in OUT_DIR.
Load it with ``PYTHONPATH=OUT_DIR FXBENCH_C_EXTENSION=_fxp_c_asan`` and the ASan runtime
preloaded (``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``): Python itself is not
instrumented.
"""
import importlib.util
import os
import shutil
import sys

MODULE = "_fxp_c_asan"
FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]


def main(out_dir: str, sources: str) -> None:
    # build_ffi.py reads the rule and kind tables from the Python modules beside its folder
    # (kernels/modes.py, kinds.py, limits.py): copy that parent folder, C sources included.
    copy = os.path.join(out_dir, "src")
    parent = os.path.dirname(os.path.abspath(sources))
    shutil.copytree(parent, copy, ignore=shutil.ignore_patterns("*.o", "*.so", "__pycache__"), dirs_exist_ok=True)
    # make_builder names the sources relative to the working directory and cffi compiles
    # inside its tmpdir: build from inside out_dir.
    os.chdir(out_dir)
    build_script = os.path.join("src", os.path.basename(os.path.abspath(sources)), "build_ffi.py")
    spec = importlib.util.spec_from_file_location("fxbench_build_ffi", build_script)
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    builder = build.make_builder(FLAGS, ["-fsanitize=address"], MODULE)
    print(builder.compile(tmpdir="."))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.join("kernels", "c"))
