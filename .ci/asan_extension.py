"""Build the C backend once more with AddressSanitizer, as the top-level module ``_fxp_c_asan``.

Usage: ``python .ci/asan_extension.py OUT_DIR [C_SOURCES]`` (C_SOURCES: the folder with
``build_ffi.py`` and the C files, default ``kernels/c``).  The sources are copied into
OUT_DIR and built there, so nothing is written beside them; the module lands in OUT_DIR.
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
    copy = os.path.join(out_dir, "src")
    shutil.copytree(sources, copy, ignore=shutil.ignore_patterns("*.o", "__pycache__"), dirs_exist_ok=True)
    # make_builder names the sources relative to the working directory and cffi compiles
    # inside its tmpdir: build from inside out_dir.
    os.chdir(out_dir)
    spec = importlib.util.spec_from_file_location("fxbench_build_ffi", os.path.join("src", "build_ffi.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    builder = build.make_builder(FLAGS, ["-fsanitize=address"], MODULE)
    print(builder.compile(tmpdir="."))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.join("kernels", "c"))
