"""What every conversion starts from: the float model as a flat layer list with BatchNorm folded, and the
walk over it that names each converted layer and runs the float64 calibration forward.

Both converters (``convert`` for fixed point, ``float_model`` for float formats) use it, so their
layers carry the same names ("0:Linear+ReLU", "3:Residual.0:Conv1d", "3:Residual.add").
"""

from __future__ import annotations

from .containers import Residual, Sequential
from .layers import AvgPool1d, AvgPool2d, BatchNorm, Conv1d, Conv2d, Linear, MaxPool1d, MaxPool2d, ReLU, ReLU6

GEMMS = (Linear, Conv1d, Conv2d)
POOLS = (MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)
RESIDUAL = "residual"   # a Residual body appears in the flat list as (RESIDUAL, [its layers])


def flatten_and_fold(model) -> list:
    """Flat list of float layers (nested Sequentials inlined, BatchNorm folded); Residual bodies likewise."""
    items = list(model) if isinstance(model, Sequential) else [model]
    out = []
    for layer in items:
        if isinstance(layer, Sequential):
            out.extend(flatten_and_fold(layer))
        elif isinstance(layer, Residual):
            out.append((RESIDUAL, flatten_and_fold(layer.body)))
        elif isinstance(layer, BatchNorm):
            if not out or not isinstance(out[-1], GEMMS):
                raise ValueError(f"BatchNorm at position {len(out)} must follow a Linear/Conv1d/Conv2d to be folded")
            out[-1] = _fold(out[-1], layer)
        else:
            out.append(layer)
    return out


def _fold(gemm, bn: BatchNorm):
    """A copy of `gemm` with w'[o] = w[o] * scale[o] and b' = b * scale + offset (float64)."""
    scale, offset = bn.scale_offset()
    if scale.shape[0] != gemm.out_channels:
        raise ValueError(f"BatchNorm has {scale.shape[0]} channels but the {type(gemm).__name__} before it "
                         f"has {gemm.out_channels} outputs")
    bias = offset if gemm.bias is None else gemm.bias * scale + offset
    weight = gemm.weight * scale.reshape((-1,) + (1,) * (gemm.weight.ndim - 1))
    if isinstance(gemm, Linear):
        return Linear(weight, bias)
    return type(gemm)(weight, bias, stride=gemm.stride, padding=gemm.padding)


def steps(layers, prefix: str):
    """(name, layer, fused activation or None) along a flat list.

    A Linear/Conv followed by ReLU or ReLU6 is one step ("i:Linear+ReLU"); a Residual entry is named
    "i:Residual" and its layer is the (RESIDUAL, body) pair.
    """
    i = 0
    while i < len(layers):
        layer = layers[i]
        follower = layers[i + 1] if i + 1 < len(layers) else None
        fused = isinstance(layer, GEMMS) and isinstance(follower, (ReLU, ReLU6))
        name = f"{prefix}{i}:{'Residual' if isinstance(layer, tuple) else type(layer).__name__}"
        if fused:
            name += f"+{type(follower).__name__}"
        yield name, layer, follower if fused else None
        i += 2 if fused else 1


def calibration_forward(layer, x, name):
    """``layer(x)`` of the float model on calibration data; a shape mismatch names the layer."""
    try:
        return layer(x)
    except ValueError as exc:
        raise ValueError(f"calibration_data does not fit the model at layer {name}: {exc}") from None
