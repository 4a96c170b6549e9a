"""Fixed-point activation tables, checked exhaustively over every raw input."""

import numpy as np
import pytest

from fixedpoint import kernels
from fixedpoint.nn.activations import FUNCTIONS, activation_table, apply_table
from fixedpoint.qformat import QFormat

CASES = [("sigmoid", QFormat(8, 4), QFormat(8, 7)), ("tanh", QFormat(8, 5), QFormat(8, 7)),
         ("sigmoid", QFormat(16, 11), QFormat(16, 15)), ("tanh", QFormat(16, 12), QFormat(16, 15))]


@pytest.mark.parametrize("name,in_fmt,out_fmt", CASES)
def test_table_error_at_most_half_lsb(name, in_fmt, out_fmt):
    raw = np.arange(in_fmt.qmin, in_fmt.qmax + 1).astype(in_fmt.dtype)
    out = apply_table(raw, activation_table(name, in_fmt, out_fmt))
    truth = FUNCTIONS[name](raw * 2.0 ** -in_fmt.frac) * 2.0 ** out_fmt.frac
    in_range = (truth >= out_fmt.qmin) & (truth <= out_fmt.qmax)
    assert np.abs(out[in_range] - truth[in_range]).max() <= 0.5 + 1e-9
    assert np.array_equal(out[~in_range], np.clip(np.rint(truth[~in_range]), out_fmt.qmin, out_fmt.qmax))
    assert np.all(np.diff(out.astype(np.int64)) >= 0)


@pytest.mark.parametrize("name,in_fmt,out_fmt", CASES)
def test_bit_identical_across_backends(name, in_fmt, out_fmt):
    raw = np.arange(in_fmt.qmin, in_fmt.qmax + 1).astype(in_fmt.dtype)
    table = activation_table(name, in_fmt, out_fmt)
    outs = [apply_table(raw, table, backend=be) for be in kernels.available()]
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        activation_table("gelu", QFormat(8, 4), QFormat(8, 7))
    with pytest.raises(ValueError, match="in_fmt must be a signed 8- or 16-bit"):
        activation_table("tanh", QFormat(12, 4), QFormat(8, 7))
    with pytest.raises(TypeError, match="out_fmt must be a QFormat"):
        activation_table("tanh", QFormat(8, 4), 7)
