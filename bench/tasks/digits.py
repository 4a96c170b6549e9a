"""scikit-learn's bundled 8x8 digits (1,797 images, 16 gray levels), fixed stratified 75/25 split.

Raw samples are rows of 64 pixel values in 0..16 (float64, as ``load_digits`` returns them).
"""
import functools

import numpy as np

from .splits import frozen, stratified_split

SPLIT_SEED = 20240601
TEST_FRACTION = 0.25
N_CLASSES = 10


@functools.cache
def load():
    """``(x_train, y_train, x_test, y_test)``: raw pixels (N, 64) float64 and labels int64, read-only."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data, bunch.target.astype(np.int64)
    train, test = stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    return tuple(frozen(a) for a in (x[train], y[train], x[test], y[test]))


def preprocess(x):
    """Raw 0..16 pixel rows (N, 64) -> float32 model input in [0, 1], shape (N, 64)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 64:
        raise ValueError(f"digits samples must have shape (N, 64), got {x.shape}")
    return x / np.float32(16.0)
