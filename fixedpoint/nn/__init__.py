"""Neural-network layers on top of the fixed-point kernels: float reference layers and containers."""

from .containers import Residual, Sequential
from .layers import (Add, AvgPool1d, AvgPool2d, BatchNorm, Conv1d, Conv2d, Flatten, Layer, Linear, MaxPool1d,
                     MaxPool2d, ReLU, ReLU6, Sigmoid, Softmax, Tanh)

__all__ = ["Add", "AvgPool1d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d", "Flatten", "Layer", "Linear",
           "MaxPool1d", "MaxPool2d", "ReLU", "ReLU6", "Residual", "Sequential", "Sigmoid", "Softmax", "Tanh"]
