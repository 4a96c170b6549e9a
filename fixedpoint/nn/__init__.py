"""Neural-network layers on top of the fixed-point kernels: float reference layers, containers, and conversion
of a float model to fixed point (`quantize_model` -> `FixedModel`) or to a low-precision float format
(`quantize_model(..., precision="bf16" | "fp8e4m3" | ...)` -> `FloatModel`)."""

from .containers import Residual, Sequential
from .convert import quantize_model
from .fixed_model import FixedModel
from .float_model import FloatModel
from .layers import (Add, AvgPool1d, AvgPool2d, BatchNorm, Conv1d, Conv2d, Flatten, Layer, Linear, MaxPool1d,
                     MaxPool2d, Pad, Permute, ReLU, ReLU6, Sigmoid, Softmax, Tanh)

__all__ = ["Add", "AvgPool1d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d", "FixedModel", "Flatten", "FloatModel",
           "Layer", "Linear", "MaxPool1d", "MaxPool2d", "Pad", "Permute", "ReLU", "ReLU6", "Residual", "Sequential",
           "Sigmoid", "Softmax", "Tanh", "quantize_model"]
