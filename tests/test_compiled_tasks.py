"""Compiled task models (the benchmark's five models) are bit-identical with layer-by-layer execution.

Apart from tests/test_compiled_model.py because the tasks load their datasets through libraries (mnist1d
imports matplotlib) that the AddressSanitizer run of CI cannot load."""

import numpy as np
import pytest

from fixedpoint import kernels, nn

pytestmark = pytest.mark.skipif("c" not in kernels.available(), reason="the C backend is not built")


@pytest.mark.parametrize("precision", ["i8", "a16w8"])
def test_task_models_are_bit_identical(precision):
    from fixedpoint.bench import tasks

    for name in tasks.names():
        task = tasks.get(name)
        fixed = nn.quantize_model(task.model, task.x_calib, precision, backend="c")
        layers = fixed.with_backend("reference")
        for batch in (1, 257):
            x = task.x_test[:batch].astype(np.float32)
            raw, fmt = fixed(x, raw=True)
            assert fixed.plan_status() == "compiled"
            report = fixed.overflow_report()
            np.testing.assert_array_equal(raw, layers(x, raw=True)[0], err_msg=f"{name} batch {batch}")
            assert report == layers.overflow_report()
