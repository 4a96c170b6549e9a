"""The one rounding rule table (kernels/modes.py) against an independent statement, and every backend's
use of it over all (sign, floor parity, dropped part vs half) cases, plus the GEMM kinds table."""
from fractions import Fraction

import numpy as np
import pytest

import fixedpoint as fx
from fixedpoint import kernels as K
from fixedpoint.kernels import DETERMINISTIC_ROUNDINGS
from fixedpoint.kernels.kinds import GEMM_KINDS
from fixedpoint.kernels.modes import REST_ABOVE, REST_BELOW, REST_HALF, REST_ZERO, ROUND_UP_MASKS, rounds_up
from exact_oracle import round_fraction

# rest class -> the dropped part, in quarters of an LSB
DROPPED = {REST_ZERO: 0, REST_BELOW: 1, REST_HALF: 2, REST_ABOVE: 3}


def _cases():
    """(q, negative, rest, v in quarters): q = floor(v) of each parity and sign, v = q + dropped."""
    for negative in (False, True):
        for q in ((-4, -3) if negative else (2, 3)):
            for rest, quarters in DROPPED.items():
                yield q, negative, rest, 4 * q + quarters


CASES = list(_cases())


def _expected(mode):
    return [q + rounds_up(mode, bool(q & 1), negative, rest) for q, negative, rest, _ in CASES]


@pytest.mark.parametrize("mode", DETERMINISTIC_ROUNDINGS, ids=str)
def test_the_rule_matches_the_design_table(mode):
    """rounds_up, as written once, against exact_oracle (written from DESIGN.md's table)."""
    assert _expected(mode) == [round_fraction(Fraction(v, 4), mode.value) for *_, v in CASES]


def test_the_masks_pack_the_rule():
    for mode in DETERMINISTIC_ROUNDINGS:
        mask = ROUND_UP_MASKS[mode.code]
        for q_odd in (0, 1):
            for negative in (0, 1):
                for rest in DROPPED:
                    bit = (mask >> (q_odd | negative << 1 | rest << 2)) & 1
                    assert bit == rounds_up(mode, bool(q_odd), bool(negative), rest)


def test_the_c_build_and_numba_read_the_same_table():
    from fixedpoint.kernels.numba_kernels.rounding import rounding_mask

    for mode in DETERMINISTIC_ROUNDINGS:
        assert rounding_mask(mode) == ROUND_UP_MASKS[mode.code]
    c_backend = pytest.importorskip("fixedpoint.kernels.c_backend")
    for mode in DETERMINISTIC_ROUNDINGS:
        assert c_backend.round_up_mask(mode) == ROUND_UP_MASKS[mode.code]


def _targets():
    for backend in K.available():
        if backend == "c":
            from fixedpoint.kernels import c_backend

            for path in c_backend.supported_paths():
                yield backend, path
        else:
            yield backend, None


@pytest.fixture(params=list(_targets()), ids=lambda t: "-".join(filter(None, t)))
def backend(request):
    name, path = request.param
    if path:
        from fixedpoint.kernels import c_backend

        c_backend.force_path(path)
    yield name
    if path:
        c_backend.force_path(None)


@pytest.mark.parametrize("mode", DETERMINISTIC_ROUNDINGS, ids=str)
def test_every_entry_point_of_every_backend_follows_the_rule(backend, mode):
    quarters = np.array([v for *_, v in CASES])
    want = _expected(mode)
    for dtype in (np.int32, np.int64):      # requantization by a shift of 2 (scalar and SIMD paths)
        acc = np.tile(quarters.astype(dtype), (3, 1))
        y = K.requantize(acc, 2, rounding=mode, overflow="saturate", out_bits=16, backend=backend)
        assert (y == want).all()
    x = np.array([[1, 0], [0, 1]], np.int8)  # a fused GEMM epilogue
    w = np.stack([quarters, np.zeros_like(quarters)]).T.clip(-128, 127).astype(np.int8)
    assert K.linear(x, w, shift=2, rounding=mode, backend=backend)[0].tolist() == want
    for dtype in (np.float32, np.float64):   # quantize of exact quarters into 2 fraction bits fewer
        assert fx.quantize((quarters / 4).astype(dtype), fx.QFormat(8, 0), mode, backend=backend).tolist() == want
    quotient = K.divide(quarters.astype(np.int64), np.full(quarters.size, 4, np.int64), out_bits=8, rounding=mode,
                        backend=backend)
    assert quotient.tolist() == want


def test_the_kinds_table_is_the_design():
    table = {(k.x.name, k.w.name): k.acc.name for k in GEMM_KINDS}
    assert table == {("float32", "float32"): "float32", ("float64", "float64"): "float64",
                     ("int8", "int8"): "int32", ("int16", "int16"): "int64", ("int16", "int8"): "int64",
                     ("uint16", "uint16"): "float32"}   # bf16 bit patterns, float32 sums
    assert sorted(k.code for k in GEMM_KINDS) == list(range(len(GEMM_KINDS)))
