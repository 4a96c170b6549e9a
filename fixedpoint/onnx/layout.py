"""Axis permutations relating an ONNX tensor to the channels-last array a `fixedpoint.nn` layer holds.

A layout `p` (a tuple, batch axis first: p[0] == 0) means nn_array = onnx_tensor.transpose(p). The identity
layout holds the ONNX tensor as it is; `channels_last(rank)` holds an NCL / NCHW tensor as NLC / NHWC, as
`fixedpoint.nn` convolutions and pools take it. numpy's rule x.transpose(p).transpose(q) ==
x.transpose(compose(p, q)) gives every step:

- an nn `Permute(axes)` turns layout p into compose(p, axes);
- an ONNX `Transpose(perm)` turns layout p into compose(inverse(perm), p) (the nn array is unchanged);
- `permute_to(p, q)` is the nn Permute's axes from layout p to q, `transpose_to(p, q)` the ONNX Transpose's perm.
"""
from __future__ import annotations


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """(0, 2, ..., rank - 1, 1): NCL -> NLC, NCHW -> NHWC (the identity below rank 3)."""
    return (0,) + tuple(range(2, rank)) + (1,) if rank >= 3 else identity(rank)


def compose(p, q) -> tuple[int, ...]:
    return tuple(p[i] for i in q)


def inverse(p) -> tuple[int, ...]:
    out = [0] * len(p)
    for i, axis in enumerate(p):
        out[axis] = i
    return tuple(out)


def permute_to(p, q) -> tuple[int, ...]:
    """Axes of the nn Permute that turns layout p into q."""
    return compose(inverse(p), q)


def transpose_to(p, q) -> tuple[int, ...]:
    """perm of the ONNX Transpose that turns layout p into q."""
    return compose(p, inverse(q))


def nn_shape(onnx_shape, p) -> tuple:
    """Shape of the nn array of an ONNX tensor of `onnx_shape` held in layout p."""
    return tuple(onnx_shape[i] for i in p)
