"""The :class:`Task` record: a trained float model with its preprocessing, calibration and test data."""
import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A classification task the benchmark measures.

    ``model`` is the trained float ``fixedpoint.nn`` model; ``preprocess`` maps raw samples (as the data
    source returns them) to the float32 model input; ``x_calib`` (training samples) and ``x_test`` are
    already preprocessed, ``y_test`` holds int64 labels; ``info`` is the training record of the weights
    (``info["test_accuracy"]`` is the float64 accuracy of ``model`` on the test set, as a fraction).
    """

    name: str
    description: str
    model: object
    preprocess: Callable[[np.ndarray], np.ndarray]
    x_calib: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict

    def accuracy(self, logits):
        """Fraction of test samples whose largest logit is the label; ``logits`` has shape (n_test, classes)."""
        logits = np.asarray(logits)
        expected = (self.y_test.shape[0], self.info["n_classes"])
        if logits.shape != expected:
            raise ValueError(f"logits must have shape {expected} for task {self.name!r}, got {logits.shape}")
        return float(np.mean(np.argmax(logits, axis=1) == self.y_test))

    def evaluate(self, model=None, batch_size=500):
        """Test accuracy (fraction) of ``model`` (default: the float model), run in batches of ``batch_size``.

        ``model`` is any callable mapping a float32 input batch to logits, e.g. a converted fixed model.
        """
        model = self.model if model is None else model
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        batches = [np.asarray(model(self.x_test[start:start + batch_size]))
                   for start in range(0, self.x_test.shape[0], batch_size)]
        return self.accuracy(np.concatenate(batches))
