"""Quantization-noise model of a converted model: a simulated error for every activation element.

Model. Each rounding inside the network adds an error independent of everything else, of zero mean and
uniform over its possible values (round-to-nearest modes):
- a real value rounded to an LSB (weights, table activations, multiplier requantization): variance LSB**2 / 12;
- an integer divided by d and rounded (pow2 requantization by d = 2**shift, an average over d elements):
  (d**2 - 1) / (12 d**2) LSB**2 for odd d, (d**2 + 2) / (12 d**2) LSB**2 for even d (a tie costs LSB**2 / 4),
  0 when nothing is dropped (d = 1);
- nothing is rounded where the value is exact: a pool, table or softmax output whose float64 value lies on the
  output grid (zero windows after a ReLU, sigmoid(0) = 0.5), a residual add whose operands with dropped bits
  are zero (sparse activations: without this rule the add's noise is overstated by 2x on post-ReLU skips).
The input quantizer's error is not modelled but taken as it is (its input is given): input data often sit on a
grid of their own (8-bit pixels k / 255), whose rounding error to the Q grid is not uniform (MNIST: 1 dB more
than LSB**2 / 12 at 16 bits), and that would mask how well the model describes the layers.

Propagation. The errors are propagated to first order through the float64 network: each sample of the batch
carries one draw of every rounding error (independent uniform draws of those variances, a fixed seed), and the
linearized layers move them: Linear/Conv apply their weights to the incoming error and add the draws of their
weight roundings (w[o, k] off by U(+-lsb_w[o] / 2), one draw per group of samples, acting on the float64 input)
and of their output rounding; ReLU / ReLU6 keep the error where the float64 output is active; a max pool
passes the error of the element the float64 maximum picks; an average pool averages the errors of its window;
Sigmoid / Tanh multiply by the slope f'(x); Softmax by its Jacobian, dy_i = y_i (e_i - sum_j y_j e_j); a
residual add sums both branches. Flatten, Permute and Pad move the errors (padding carries none).

Why sampled rather than variances propagated in closed form: errors of different elements become correlated
as they pass through trained weights (a layer's output errors share its inputs' errors), so summing
w**2 * variance underestimates what later layers pass on (4.5x, 6.5 dB, at the last layer of mnist1d-mlp at
8 bits, whose SQNR it then overstated by 4.7 dB); carrying per-sample draws keeps every correlation the
linearized network creates, at the cost of a sampling error that shrinks with the number of samples and
elements (about 0.1 dB for a few hundred samples).

The predicted SQNR of a layer is sum(y**2) / sum(error**2) over the batch. Not modelled: saturation (the report
counts it beside), the bias of directed rounding modes (floor, ceil, ...: their measured SQNR is lower),
stochastic rounding's larger variance, and the bias rounding (at the accumulator's LSB).
"""

from __future__ import annotations

import numpy as np

from .fixed_layers import (FixedElementwise, FixedGemm, FixedPad, FixedPermute, FixedPool, FixedResidual,
                           FixedSoftmax, FixedTable)
from .layers import Linear, ReLU6, window_combine, window_counts, window_slices

WEIGHT_DRAWS = 8   # independent weight-rounding draws, each acting on its share of the batch


def rounding_variance(divisor) -> np.ndarray:
    """Mean squared error, in output LSB**2, of rounding an integer divided by `divisor` (>= 1) to nearest."""
    d = np.asarray(divisor, dtype=np.float64)
    even = (d * d + 2) / (12 * d * d)
    odd = (d * d - 1) / (12 * d * d)
    return np.where(d <= 1, 0.0, np.where(np.mod(d, 2) == 1, odd, even))


class NoiseModel:
    """Draws and propagates the simulated errors; one instance per report (seeded, so reproducible)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def uniform(self, shape, variance) -> np.ndarray:
        """Zero-mean uniform draws of `variance` (broadcast against `shape`)."""
        return self.rng.uniform(-0.5, 0.5, shape) * np.sqrt(12 * np.asarray(variance, dtype=np.float64))

    def propagate(self, layer, error, ref_in, ref_out) -> np.ndarray:
        """Error after `layer` (not a Residual) from its input's error and the float64 activations around it."""
        lsb2 = layer.out_fmt.lsb ** 2
        if isinstance(layer, FixedGemm):
            return self._gemm(layer, error, ref_in, ref_out)
        if isinstance(layer, FixedElementwise):
            if layer.kind == "Flatten":
                return error.reshape(error.shape[0], -1)
            return error * _active(ref_out, layer.kind == "ReLU6")
        if isinstance(layer, FixedPermute):
            return np.ascontiguousarray(error.transpose(layer.axes))
        if isinstance(layer, FixedPad):
            return np.pad(error, ((0, 0),) + layer.pads + ((0, 0),))
        if isinstance(layer, FixedPool):
            return self._pool(layer, error, ref_in, ref_out)
        if isinstance(layer, FixedTable):
            slope = ref_out * (1 - ref_out) if layer.kind == "Sigmoid" else 1 - ref_out ** 2
            return slope * error + self.rounded(ref_out, layer.out_fmt, lsb2 / 12)
        if isinstance(layer, FixedSoftmax):
            lead = ref_out.ndim - layer.n_axes
            y = ref_out.reshape(ref_out.shape[:lead] + (-1,))
            e = error.reshape(y.shape)
            dy = y * (e - np.sum(y * e, axis=-1, keepdims=True))
            return dy.reshape(error.shape) + self.rounded(ref_out, layer.out_fmt, lsb2 / 12)
        raise TypeError(f"no noise model for layer {layer.name} ({type(layer).__name__})")

    def rounded(self, values, fmt, variance) -> np.ndarray:
        """Rounding draws of `variance` for float64 `values` rounded to `fmt`, none where a value is on its grid."""
        scaled = np.ldexp(values, fmt.frac)
        return self.uniform(values.shape, variance) * (scaled != np.rint(scaled))

    def residual(self, layer: FixedResidual, skip_error, body_error, skip_ref, body_ref) -> np.ndarray:
        """Error after the residual add: both branches' errors plus the add's rounding where bits are dropped."""
        out_frac = layer.out_fmt.frac
        shift = max(layer.in_fmt.frac, layer.body_fmt.frac) - out_frac
        variance = rounding_variance(2.0 ** shift) * layer.out_fmt.lsb ** 2
        dropping = np.zeros(skip_ref.shape, dtype=bool)
        for ref, fmt in ((skip_ref, layer.in_fmt), (body_ref, layer.body_fmt)):
            if fmt.frac > out_frac:
                dropping |= ref != 0
        return skip_error + body_error + self.uniform(skip_error.shape, variance) * dropping

    def _gemm(self, layer: FixedGemm, error, ref_in, ref_out):
        gemm, activation = layer.source[0], layer.source[1:]
        out = _like(gemm, gemm.weight)(error)
        half_lsb = (layer.weight_lsb() / 2).reshape((-1,) + (1,) * (gemm.weight.ndim - 1))
        for part in np.array_split(np.arange(ref_in.shape[0]), min(WEIGHT_DRAWS, ref_in.shape[0])):
            delta = self.rng.uniform(-1, 1, gemm.weight.shape) * half_lsb
            out[part] += _like(gemm, delta)(ref_in[part])
        if layer.multiplier is None:
            rounding = rounding_variance(2.0 ** np.asarray(layer.shift, dtype=np.float64))
        else:
            rounding = np.full(gemm.weight.shape[0], 1 / 12)
        out += self.uniform(out.shape, rounding * layer.out_fmt.lsb ** 2)
        if activation:
            out *= _active(ref_out, isinstance(activation[0], ReLU6))
        return out

    def _pool(self, layer: FixedPool, error, ref_in, ref_out):
        window = (layer.kernel, layer.stride) if layer.kind.endswith("2d") else ((layer.kernel,), (layer.stride,))
        if layer.kind.startswith("Max"):
            best, chosen = None, None
            for index in window_slices(ref_in.shape, *window):
                if best is None:
                    best, chosen = ref_in[index].copy(), error[index].copy()
                else:
                    take = ref_in[index] > best
                    best[take], chosen[take] = ref_in[index][take], error[index][take]
            return chosen
        pads = layer.padding if layer.padding is not None else ((0, 0),) * len(window[0])
        counts = window_counts(error.shape[1:-1], *window, pads)
        sums = window_combine(np.pad(error, ((0, 0),) + pads + ((0, 0),)), *window, np.add)
        return sums / counts + self.rounded(ref_out, layer.out_fmt, rounding_variance(counts) * layer.out_fmt.lsb ** 2)


def _active(ref_out, six) -> np.ndarray:
    active = ref_out > 0
    if six:
        active &= ref_out < 6
    return active


def _like(gemm, weight):
    """A float layer of `gemm`'s type and geometry with `weight` and no bias (linear in its input)."""
    if isinstance(gemm, Linear):
        return Linear(weight)
    return type(gemm)(weight, None, stride=gemm.stride, padding=gemm.padding)
