"""Layers of a float-format model: float32 arrays in and out whose values are values of the format
(times the tensor's power-of-two scale ``2**-exponent``), every step through numpy or the kernel API.

A forward call gets a :class:`FloatRun` carrying the backend, the rounding mode, the generator of
stochastic rounding and one :class:`~fixedpoint.FloatStats` per layer.

Where rounding and saturation happen:
- Input: the float32/float64 input rounded once to the format (saturating; counted).
- Linear / Conv (weights rounded to the format once, at conversion): products of format values and their
  sums in float32 on the kernel backend (``kernels.prepare_linear`` / ``prepare_conv*``; every product of
  two values of a format with at most 11 significant bits is exact in float32, the sums round in float32
  as a float32 GEMM does), the float32 bias added, ReLU fused, ReLU6 clamped at 6, then ONE rounding of
  the layer's output into the format (saturating; overflowed and flushed elements counted).  Where the
  inputs and weights are bf16 numbers (bf16 and the fp8 formats) the GEMM is the bf16 kind (the C
  backend's vdpbf16ps, which treats bf16 subnormals as zero), else the float32 kind (fp16).
- ReLU, MaxPool, Flatten: exact on values of the format; nothing rounds.
- ReLU6, AvgPool, Sigmoid, Tanh, Softmax: the float layer in float32 (numpy), then one rounding.
- Residual join: the float32 sum of both branches, then one rounding.
Rounding is :func:`~fixedpoint.float_rounding.round_scaled` for the deterministic modes and the
reference :func:`~fixedpoint.quantize_float` for stochastic rounding: the same results bit for bit.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..float_conversion import quantize_float
from ..kernels import bf16
from ..float_rounding import round_scaled
from ..kernels.modes import Rounding
from ..stats import FloatStats

_BIAS_BYTES = 4      # biases stay float32
EXPONENT_BYTES = 1   # one stored power-of-two scale exponent


class FloatRun:
    """Settings and counters of one forward call."""

    def __init__(self, backend: str, rounding: Rounding, seed):
        self.backend, self.rounding = backend, rounding
        self.rng = np.random.default_rng(seed) if rounding.is_stochastic else None
        self.stats: dict[str, FloatStats] = {}

    def counter(self, name: str) -> FloatStats:
        return self.stats.setdefault(name, FloatStats())

    def round(self, name: str, y: np.ndarray, fmt, exponent: int) -> np.ndarray:
        """``y`` rounded to ``fmt`` at scale ``2**exponent`` and scaled back, float32, counted under ``name``."""
        stats = self.counter(name)
        if not self.rounding.is_stochastic:
            return round_scaled(y, fmt, self.rounding, exponent, stats)
        values = quantize_float(np.ldexp(y.astype(np.float64), exponent), fmt, self.rounding, seed=self.rng,
                                stats=stats)
        return np.ldexp(values.astype(np.float64), -exponent).astype(np.float32)


def scaled_text(fmt, exponent: int) -> str:
    """"E4M3FN" for values of the format, "E4M3FN*2^-5" for values of the format times 2**-5."""
    return str(fmt) if exponent == 0 else f"{fmt}*2^{-exponent}"


class FloatLayer:
    """Base: ``forward(x, run)`` maps float32 values at scale ``2**-in_exp`` to values at ``2**-out_exp``."""

    weight_text = None

    def __init__(self, name: str, fmt, in_exp: int, out_exp: int):
        self.name, self.fmt, self.in_exp, self.out_exp = name, fmt, in_exp, out_exp

    def forward(self, x, run: FloatRun):
        raise NotImplementedError

    def stored_bytes(self) -> int:
        """Bytes of parameters a device stores for this layer."""
        return 0

    def rows(self) -> list[dict]:
        return [{"layer": self.name, "input": scaled_text(self.fmt, self.in_exp), "weight": self.weight_text,
                 "output": scaled_text(self.fmt, self.out_exp), "scale": self.scale}]

    @property
    def scale(self) -> str:
        return "pow2" if self.in_exp or self.out_exp else "none"

    def names(self) -> list[str]:
        return [self.name]


class FloatInput(FloatLayer):
    """Float32/float64 input -> values of the format (one rounding of the exact input, saturating)."""

    def __init__(self, name, fmt, out_exp):
        super().__init__(name, fmt, out_exp, out_exp)

    def forward(self, x, run: FloatRun):
        return run.round(self.name, x, self.fmt, self.out_exp)


class FloatGemm(FloatLayer):
    """Linear (x (..., K)), Conv1d (NLC) or Conv2d (NHWC) on format values, bias and ReLU fused, then rounding.

    ``weight``: float32 values of the format times ``2**-w_exp``; ``bias``: float32 or None; ``clamp``: 6.0
    for a fused ReLU6, else None; ``exponent_bytes``: bytes of the stored scale exponents; ``bf16``: run on
    the bf16 GEMM kind (inputs and weights are bf16 numbers), else on the float32 kind.
    """

    def __init__(self, name, kind, fmt, in_exp, out_exp, weight, bias, w_exp, *, relu, clamp, stride, padding,
                 exponent_bytes, bf16):
        super().__init__(name, fmt, in_exp, out_exp)
        self.kind, self.weight, self.bias, self.w_exp = kind, weight, bias, w_exp
        self.relu, self.clamp, self.stride, self.padding = relu, clamp, stride, padding
        self.exponent_bytes, self.bf16 = exponent_bytes, bf16
        self.weight_text = scaled_text(fmt, w_exp)
        self._kernels = {}

    @property
    def scale(self) -> str:
        return "pow2" if self.in_exp or self.out_exp or self.w_exp else "none"

    def forward(self, x, run: FloatRun):
        kernel = self._prepared(run.backend)
        if self.bf16:
            x = bf16.from_float32(x)
        if self.kind == "Linear":
            y = kernel(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1] + (-1,))
        else:
            y = kernel(x)
        if self.clamp is not None:
            np.minimum(y, np.float32(self.clamp), out=y)
        return run.round(self.name, y, self.fmt, self.out_exp)

    def _prepared(self, backend):
        """The bf16 or float32 kernel with weights and bias bound, made once per backend."""
        kernel = self._kernels.get(backend)
        if kernel is None:
            weight = bf16.from_float32(self.weight) if self.bf16 else self.weight
            options = dict(relu=self.relu, x_dtype=weight.dtype, backend=backend)
            if self.kind == "Linear":
                kernel = kernels.prepare_linear(weight, self.bias, **options)
            else:
                prepare = kernels.prepare_conv1d if self.kind == "Conv1d" else kernels.prepare_conv2d
                kernel = prepare(weight, self.bias, stride=self.stride, padding=self.padding, **options)
            self._kernels[backend] = kernel
        return kernel

    def __getstate__(self):
        """Prepared kernels are rebuilt after a copy."""
        return dict(self.__dict__, _kernels={})

    def stored_bytes(self) -> int:
        bias = 0 if self.bias is None else self.bias.size * _BIAS_BYTES
        return self.weight.size * self.fmt.container.itemsize + bias + self.exponent_bytes


class FloatPointwise(FloatLayer):
    """A float layer applied in float32: ReLU, MaxPool, Flatten, Permute and Pad exactly (``rounds=False``: the format's
    values map to values of the format, the scale is kept); ReLU6, AvgPool, Sigmoid, Tanh and Softmax
    followed by one rounding."""

    def __init__(self, name, layer, fmt, in_exp, out_exp, rounds: bool):
        super().__init__(name, fmt, in_exp, out_exp)
        self.layer, self.rounds = layer, rounds

    def forward(self, x, run: FloatRun):
        y = self.layer(x)
        if self.rounds:
            return run.round(self.name, y, self.fmt, self.out_exp)
        run.counter(self.name).add(0, 0, y.size)
        return y


class FloatResidual(FloatLayer):
    """y = x + body(x): the body's layers, then the float32 sum of both branches rounded into the format."""

    def __init__(self, name, fmt, in_exp, out_exp, body):
        super().__init__(name, fmt, in_exp, out_exp)
        self.body = body
        self.add_name = f"{name}.add"

    def forward(self, x, run: FloatRun):
        y = x
        for layer in self.body:
            y = layer.forward(y, run)
        return run.round(self.add_name, x + y, self.fmt, self.out_exp)

    def stored_bytes(self) -> int:
        return sum(layer.stored_bytes() for layer in self.body)

    def rows(self) -> list[dict]:
        body_exp = self.body[-1].out_exp if self.body else self.in_exp
        add_row = {"layer": self.add_name, "input": f"{scaled_text(self.fmt, self.in_exp)} + "
                   f"{scaled_text(self.fmt, body_exp)}", "weight": None,
                   "output": scaled_text(self.fmt, self.out_exp), "scale": self.scale}
        return [row for layer in self.body for row in layer.rows()] + [add_row]

    def names(self) -> list[str]:
        return [name for layer in self.body for name in layer.names()] + [self.add_name]

