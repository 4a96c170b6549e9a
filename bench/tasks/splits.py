"""Deterministic data splits shared by the task loaders (no global random state is touched)."""
import numpy as np


def stratified_split(labels, test_fraction, seed):
    """Indices ``(train, test)`` putting ``round(test_fraction * n_c)`` samples of each class ``c`` in test.

    The split depends only on ``labels``, ``test_fraction`` and ``seed`` (a private
    ``numpy.random.default_rng(seed)``); both index arrays are sorted.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(test_fraction * members.size))
        test_parts.append(rng.permutation(members)[:count])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(labels.size), test)
    return train, test


def frozen(array):
    """``array`` marked read-only, so cached data cannot be modified by a caller."""
    array.flags.writeable = False
    return array
