"""Float layers: the reference models that fixed-point conversion starts from.

Every layer computes in the dtype of its input (float32 or float64); parameters are stored as float64 and cast
to the input dtype on each call, so a float64 forward pass is the reference. Layouts are channels-last:
Conv1d takes NLC (B, L, C), Conv2d takes NHWC (B, H, W, C); `Permute` converts a channels-first input
(NCL, NCHW) at the boundary.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_input(x, where: str) -> np.ndarray:
    """`x` as a float32/float64 array (other numeric dtypes become float64)."""
    arr = np.asarray(x)
    if arr.dtype in _FLOAT_DTYPES:
        return arr
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: input must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _param(value, name: str, layer: str, ndim: int) -> np.ndarray:
    """A float64 copy of `value`, read-only so that the per-dtype casts cached by `Layer.param_in` stay valid."""
    given = np.asarray(value)
    if given.dtype.kind not in "biuf":
        raise TypeError(f"{layer}: {name} must be real numbers, got dtype {given.dtype}")
    arr = np.array(given, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{layer}: {name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{layer}: {name} contains NaN or infinity")
    arr.setflags(write=False)
    return arr


def _bias(bias, n_out: int, layer: str):
    if bias is None:
        return None
    arr = _param(bias, "bias", layer, 1)
    if arr.shape != (n_out,):
        raise ValueError(f"{layer}: bias must have shape ({n_out},), got {arr.shape}")
    return arr


def _pair(value, name: str, layer: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or any(int(v) != v or int(v) < minimum for v in pair):
        raise ValueError(f"{layer}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_last_axis(x: np.ndarray, size: int, ndim: int, layer: str, layout: str) -> None:
    if x.ndim != ndim or x.shape[-1] != size:
        raise ValueError(f"{layer}: expected input {layout} with {size} channels/features, got shape {x.shape}")


class Layer:
    """Base class: a callable mapping one float array to another in the same dtype."""

    def __call__(self, x):
        raise NotImplementedError

    def param_shapes(self) -> str:
        return ""

    def param_in(self, name: str, dtype) -> np.ndarray | None:
        """Parameter `name` cast to `dtype`, cast once and cached (as a float32 model stores float32 weights).

        Parameters are read-only arrays; assigning a new array to the attribute refreshes the cache.
        """
        value = getattr(self, name)
        if value is None or value.dtype == dtype:
            return value
        cache = self.__dict__.setdefault("_casts", {})
        source, cast = cache.get((name, dtype), (None, None))
        if source is not value:
            cast = value.astype(dtype)
            cache[(name, dtype)] = (value, cast)
        return cast

    def parameters(self) -> list[np.ndarray]:
        """The stored parameter arrays (weights, biases, BatchNorm statistics)."""
        return [value for name in ("weight", "bias", "gamma", "beta", "mean", "var")
                if isinstance(value := getattr(self, name, None), np.ndarray)]

    def weight_bytes(self, dtype) -> int:
        """Bytes of the parameters stored in float `dtype` (np.float32 or np.float64)."""
        dtype = np.dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return sum(p.size for p in self.parameters()) * dtype.itemsize

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param_shapes()})"


class Linear(Layer):
    """y = x @ weight.T + bias; weight (out, in), bias (out,); input (..., in)."""

    def __init__(self, weight, bias=None):
        self.weight = _param(weight, "weight", "Linear", 2)
        self.bias = _bias(bias, self.weight.shape[0], "Linear")

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x):
        x = as_float_input(x, "Linear")
        n_in = self.weight.shape[1]
        if x.ndim < 1 or x.shape[-1] != n_in:
            raise ValueError(f"Linear: expected input (..., {n_in}), got shape {x.shape}")
        y = x @ self.param_in("weight", x.dtype).T
        return y if self.bias is None else y + self.param_in("bias", x.dtype)

    def param_shapes(self) -> str:
        out, n_in = self.weight.shape
        return f"in={n_in}, out={out}, bias={self.bias is not None}"


def conv2d_nhwc(x, weight, bias, stride, padding):
    """Float NHWC convolution with weight (O, KH, KW, C) and bias already in x.dtype, zero padding."""
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = weight.shape[1:3]
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else x
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (B, OH, OW, C, KH, KW)
    y = np.einsum("bhwcij,oijc->bhwo", windows, weight, optimize=True)
    return y if bias is None else y + bias


class Conv2d(Layer):
    """2-D convolution, NHWC input, weight (O, KH, KW, C); stride/padding int or (h, w) pair; zero padding."""

    def __init__(self, weight, bias=None, stride=1, padding=0):
        self.weight = _param(weight, "weight", "Conv2d", 4)
        self.bias = _bias(bias, self.weight.shape[0], "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d", 1)
        self.padding = _pair(padding, "padding", "Conv2d", 0)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x):
        x = as_float_input(x, "Conv2d")
        _check_last_axis(x, self.weight.shape[3], 4, "Conv2d", "NHWC (B, H, W, C)")
        kh, kw = self.weight.shape[1:3]
        if x.shape[1] + 2 * self.padding[0] < kh or x.shape[2] + 2 * self.padding[1] < kw:
            raise ValueError(f"Conv2d: input {x.shape} smaller than kernel {(kh, kw)} after padding")
        return conv2d_nhwc(x, self.param_in("weight", x.dtype), self.param_in("bias", x.dtype), self.stride,
                           self.padding)

    def param_shapes(self) -> str:
        return (f"weight={self.weight.shape}, bias={self.bias is not None}, stride={self.stride}, "
                f"padding={self.padding}")


class Conv1d(Layer):
    """1-D convolution, NLC input (B, L, C), weight (O, K, C); int stride/padding; zero padding."""

    def __init__(self, weight, bias=None, stride=1, padding=0):
        self.weight = _param(weight, "weight", "Conv1d", 3)
        self.bias = _bias(bias, self.weight.shape[0], "Conv1d")
        self.stride = _pair(stride, "stride", "Conv1d", 1)[0]
        self.padding = _pair(padding, "padding", "Conv1d", 0)[0]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x):
        x = as_float_input(x, "Conv1d")
        _check_last_axis(x, self.weight.shape[2], 3, "Conv1d", "NLC (B, L, C)")
        if x.shape[1] + 2 * self.padding < self.weight.shape[1]:
            raise ValueError(f"Conv1d: input {x.shape} shorter than kernel {self.weight.shape[1]} after padding")
        y = conv2d_nhwc(x[:, None], self.param_in("weight", x.dtype)[:, None], self.param_in("bias", x.dtype),
                        (1, self.stride), (0, self.padding))
        return y[:, 0]

    def param_shapes(self) -> str:
        return (f"weight={self.weight.shape}, bias={self.bias is not None}, stride={self.stride}, "
                f"padding={self.padding}")


class ReLU(Layer):
    """max(x, 0)."""

    def __call__(self, x):
        x = as_float_input(x, "ReLU")
        return np.maximum(x, x.dtype.type(0))


class ReLU6(Layer):
    """min(max(x, 0), 6)."""

    def __call__(self, x):
        x = as_float_input(x, "ReLU6")
        return np.clip(x, x.dtype.type(0), x.dtype.type(6))


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def __call__(self, x):
        x = as_float_input(x, "Sigmoid")
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


class Tanh(Layer):
    """tanh(x)."""

    def __call__(self, x):
        x = as_float_input(x, "Tanh")
        return np.tanh(x)


class Softmax(Layer):
    """Softmax over the last `n_axes` axes taken together (max-subtracted); default the last axis only."""

    def __init__(self, n_axes=1):
        if isinstance(n_axes, bool) or not isinstance(n_axes, (int, np.integer)) or n_axes < 1:
            raise ValueError(f"Softmax: n_axes must be an int >= 1, got {n_axes!r}")
        self.n_axes = int(n_axes)

    def __call__(self, x):
        x = as_float_input(x, "Softmax")
        if x.ndim <= self.n_axes:
            raise ValueError(f"Softmax: expected a batched input with more than {self.n_axes} axes, got {x.shape}")
        rows = x.reshape(x.shape[:x.ndim - self.n_axes] + (-1,))
        e = np.exp(rows - rows.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).reshape(x.shape)

    def param_shapes(self) -> str:
        return "" if self.n_axes == 1 else f"n_axes={self.n_axes}"


def spatial_pads(value, spatial: int, layer: str) -> tuple[tuple[int, int], ...]:
    """Per spatial axis (begin, end) zero counts from an int, (for 2-D) an (h, w) pair, or (begin, end) pairs.

    1-D layers take an int or one (begin, end) pair; 2-D layers an int, (ph, pw) or ((top, bottom), (left, right)).
    """
    def count(v):
        if isinstance(v, bool) or int(v) != v or int(v) < 0:
            raise ValueError
        return int(v)

    try:
        if np.ndim(value) == 0:
            pads = ((count(value),) * 2,) * spatial
        elif spatial == 1:
            begin, end = value
            pads = ((count(begin), count(end)),)
        elif all(np.ndim(v) == 0 for v in value) and len(value) == spatial:
            pads = tuple((count(v), count(v)) for v in value)
        else:
            pads = tuple((count(b), count(e)) for b, e in value)
            if len(pads) != spatial:
                raise ValueError
    except (TypeError, ValueError):
        shapes = ("an int or a (begin, end) pair" if spatial == 1
                  else "an int, (ph, pw) or ((top, bottom), (left, right))")
        raise ValueError(f"{layer}: padding must be {shapes} of counts >= 0, got {value!r}") from None
    return pads


def window_slices(shape, kernel, stride):
    """One index per window offset into channels-last arrays of `shape` (B, *spatial, C): the strided slice of
    every window's element at that offset (windows without padding)."""
    out = [(n - k) // s + 1 for n, k, s in zip(shape[1:-1], kernel, stride)]
    for offset in itertools.product(*(range(k) for k in kernel)):
        yield (slice(None),) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out))


def window_combine(x, kernel, stride, combine):
    """`combine` (np.maximum or np.add) over the (kernel) windows of channels-last `x` (B, *spatial, C), no padding.

    One strided slice per window offset, combined element-wise: whole-array numpy operations, as a user's fast
    float implementation would do (a reduction over a sliding-window view is many times slower). Integer input
    summed with np.add should be int64, so window sums are exact.
    """
    result = None
    for index in window_slices(x.shape, kernel, stride):
        result = x[index].copy() if result is None else combine(result, x[index], out=result)
    return result


def window_counts(spatial_shape, kernel, stride, pads) -> np.ndarray:
    """Input (not padding) elements in each window: int64 of shape (*out spatial, 1) for an input of
    `spatial_shape` padded by `pads` ((begin, end) per spatial axis)."""
    ones = np.pad(np.ones((1,) + tuple(spatial_shape) + (1,), dtype=np.int64), ((0, 0),) + tuple(pads) + ((0, 0),))
    return window_combine(ones, kernel, stride, np.add)[0]


class _Pool(Layer):
    """Window pooling over the spatial axes of channels-last input; stride defaults to kernel."""

    spatial = 2
    combine = None  # element-wise ufunc joining the window offsets: np.maximum (max) or np.add (mean)

    def __init__(self, kernel, stride=None):
        name = type(self).__name__
        if self.spatial == 2:
            self.kernel = _pair(kernel, "kernel", name, 1)
            self.stride = self.kernel if stride is None else _pair(stride, "stride", name, 1)
        else:
            self.kernel = _pair(kernel, "kernel", name, 1)[0]
            self.stride = self.kernel if stride is None else _pair(stride, "stride", name, 1)[0]

    @property
    def window(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(kernel, stride) as tuples over the spatial axes."""
        if self.spatial == 2:
            return self.kernel, self.stride
        return (self.kernel,), (self.stride,)

    def _check(self, x, pads):
        name = type(self).__name__
        kernel, _ = self.window
        if x.ndim != self.spatial + 2 or any(x.shape[1 + i] + sum(p) < k for i, (k, p) in enumerate(zip(kernel, pads))):
            raise ValueError(f"{name}: expected input (B, {'H, W' if self.spatial == 2 else 'L'}, C) "
                             f"at least as large as kernel {kernel}, got shape {x.shape}")

    def __call__(self, x):
        x = as_float_input(x, type(self).__name__)
        self._check(x, ((0, 0),) * self.spatial)
        result = window_combine(x, *self.window, type(self).combine)
        return result if type(self).combine is np.maximum else result / np.asarray(math.prod(self.window[0]), x.dtype)

    def param_shapes(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class MaxPool2d(_Pool):
    """Max over (kh, kw) windows of NHWC input (no padding: put a `Pad` with value -inf before it)."""
    spatial, combine = 2, np.maximum


class MaxPool1d(_Pool):
    """Max over k-windows of NLC input (no padding: put a `Pad` with value -inf before it)."""
    spatial, combine = 1, np.maximum


class _AvgPool(_Pool):
    """Mean over windows; `padding` adds zeros that are not counted (each window's mean is over its input
    elements only, ONNX count_include_pad=0). For zeros that count, put a `Pad` before the pool."""

    combine = np.add

    def __init__(self, kernel, stride=None, padding=0):
        super().__init__(kernel, stride)
        self.padding = spatial_pads(padding, self.spatial, type(self).__name__)

    @property
    def padded(self) -> bool:
        return any(any(p) for p in self.padding)

    def __call__(self, x):
        if not self.padded:
            return super().__call__(x)
        x = as_float_input(x, type(self).__name__)
        self._check(x, self.padding)
        sums = window_combine(np.pad(x, ((0, 0),) + self.padding + ((0, 0),)), *self.window, np.add)
        return sums / window_counts(x.shape[1:-1], *self.window, self.padding).astype(x.dtype)

    def param_shapes(self) -> str:
        return super().param_shapes() + (f", padding={self.padding}" if self.padded else "")


class AvgPool2d(_AvgPool):
    """Mean over (kh, kw) windows of NHWC input; `padding` as in `spatial_pads`, excluded from the count."""
    spatial = 2


class AvgPool1d(_AvgPool):
    """Mean over k-windows of NLC input; `padding` an int or (begin, end), excluded from the count."""
    spatial = 1


class Pad(Layer):
    """Constant padding of the spatial axes of channels-last input (B, *spatial, C).

    `pads` holds one (begin, end) pair per spatial axis, e.g. ((1, 2),) for NLC or ((0, 1), (0, 1)) for NHWC;
    `value` is 0.0 (zeros, as a convolution or counted average pads) or -inf (ignored by a following max pool).
    """

    VALUES = (0.0, -math.inf)

    def __init__(self, pads, value=0.0):
        try:
            pads = tuple((int(b), int(e)) for b, e in pads)
        except (TypeError, ValueError):
            pads = ()
        if not pads or any(p < 0 for pair in pads for p in pair):
            raise ValueError(f"Pad: pads must be one (begin, end) pair of counts >= 0 per spatial axis, got {pads!r}")
        if value not in self.VALUES:
            raise ValueError(f"Pad: value must be 0.0 or -inf, got {value!r}")
        self.pads, self.value = pads, float(value)

    def __call__(self, x):
        x = as_float_input(x, "Pad")
        if x.ndim != len(self.pads) + 2:
            raise ValueError(f"Pad: expected input (B, {len(self.pads)} spatial axes, C), got shape {x.shape}")
        return np.pad(x, ((0, 0),) + self.pads + ((0, 0),), constant_values=x.dtype.type(self.value))

    def param_shapes(self) -> str:
        return f"pads={self.pads}, value={self.value:g}"


class Permute(Layer):
    """Reorder the axes: y = x.transpose(axes) (a contiguous copy); the batch axis stays first (axes[0] == 0).

    Permute((0, 2, 3, 1)) turns NCHW into NHWC and Permute((0, 2, 1)) NCL into NLC.
    """

    def __init__(self, axes):
        axes = tuple(int(a) for a in axes)
        if sorted(axes) != list(range(len(axes))) or len(axes) < 2 or axes[0] != 0:
            raise ValueError(f"Permute: axes must be a permutation of 0..n-1 that keeps 0 first, got {axes!r}")
        self.axes = axes

    def __call__(self, x):
        x = as_float_input(x, "Permute")
        if x.ndim != len(self.axes):
            raise ValueError(f"Permute: expected an input with {len(self.axes)} axes, got shape {x.shape}")
        return np.ascontiguousarray(x.transpose(self.axes))

    def param_shapes(self) -> str:
        return f"axes={self.axes}"


class Flatten(Layer):
    """(B, ...) -> (B, prod(...)) in C order (NLC flattens as l * C + c)."""

    def __call__(self, x):
        x = as_float_input(x, "Flatten")
        if x.ndim < 1:
            raise ValueError(f"Flatten: expected a batched input, got shape {x.shape}")
        return x.reshape(x.shape[0], -1)


class BatchNorm(Layer):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last (channel) axis (inference form).

    Conversion folds it into the preceding Linear/Conv as a per-output-channel scale and offset.
    """

    def __init__(self, gamma, beta, mean, var, eps=1e-5):
        self.gamma = _param(gamma, "gamma", "BatchNorm", 1)
        n = self.gamma.shape[0]
        self.beta, self.mean, self.var = (_param(v, name, "BatchNorm", 1)
                                          for v, name in ((beta, "beta"), (mean, "mean"), (var, "var")))
        for name, v in (("beta", self.beta), ("mean", self.mean), ("var", self.var)):
            if v.shape != (n,):
                raise ValueError(f"BatchNorm: {name} must have shape ({n},) like gamma, got {v.shape}")
        if np.any(self.var < 0) or not eps >= 0:
            raise ValueError("BatchNorm: var and eps must be non-negative")
        self.eps = float(eps)

    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (scale, offset) with y = x * scale + offset, in float64."""
        scale = self.gamma / np.sqrt(self.var + self.eps)
        return scale, self.beta - self.mean * scale

    def __call__(self, x):
        x = as_float_input(x, "BatchNorm")
        _check_last_axis(x, self.gamma.shape[0], x.ndim, "BatchNorm", "(..., C)")
        scale, offset = self.scale_offset()
        return x * scale.astype(x.dtype) + offset.astype(x.dtype)

    def param_shapes(self) -> str:
        return f"channels={self.gamma.shape[0]}, eps={self.eps:g}"


class Add(Layer):
    """Elementwise a + b of two same-shaped tensors (the join of a residual branch)."""

    def __call__(self, a, b):
        a, b = as_float_input(a, "Add"), as_float_input(b, "Add")
        if a.shape != b.shape:
            raise ValueError(f"Add: operand shapes differ: {a.shape} vs {b.shape}")
        return a + b.astype(a.dtype)
