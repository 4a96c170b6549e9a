"""Build script: package layout (kernels/ and bench/ install under fixedpoint) and the C extension.

Metadata lives in pyproject.toml.  kernels/ and bench/ install as fixedpoint.kernels and
fixedpoint.bench because PyPI already has distributions named "kernels" and "bench".
"""
from setuptools import find_packages, setup

SOURCE_DIRS = {"fixedpoint": "fixedpoint", "fixedpoint.kernels": "kernels", "fixedpoint.bench": "bench"}


def _packages():
    names = []
    for package, folder in SOURCE_DIRS.items():
        names.append(package)
        names.extend(f"{package}.{sub}" for sub in find_packages(where=folder))
    return names


setup(
    packages=_packages(),
    package_dir=SOURCE_DIRS,
    package_data={"fixedpoint.bench": ["weights/*.npz"]},
    cffi_modules=["kernels/c/build_ffi.py:ffibuilder"],
)
