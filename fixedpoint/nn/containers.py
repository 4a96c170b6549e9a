"""Containers: Sequential (a chain of layers) and Residual (y = x + body(x))."""

from __future__ import annotations

from .layers import Add, Layer, as_float_input


class Sequential(Layer):
    """Apply `layers` in order; the output keeps the input's float dtype."""

    def __init__(self, layers):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: layers[{i}] is not callable: {layer!r}")
        self.layers = layers

    def __call__(self, x):
        x = as_float_input(x, "Sequential")
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers if isinstance(layer, Layer) for p in layer.parameters()]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


class Residual(Layer):
    """y = x + body(x); `body` must preserve the shape. The join is an Add (fixed-point add after conversion)."""

    def __init__(self, body):
        if not isinstance(body, Sequential):
            body = Sequential(body if isinstance(body, (list, tuple)) else [body])
        self.body = body
        self.add = Add()

    def __call__(self, x):
        x = as_float_input(x, "Residual")
        return self.add(x, self.body(x))

    def parameters(self):
        return self.body.parameters()

    def __repr__(self) -> str:
        return "Residual(" + repr(self.body) + ")"
