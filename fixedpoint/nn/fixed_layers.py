"""Integer layers of a converted model: raw integers in, raw integers out, every step through the kernel API.

Each layer knows its input and output `QFormat` (fixed at conversion) and the container dtype its output is
stored in (int8 for <= 8-bit activations of an int8 x int8 model, int16 otherwise). A forward call gets a
`Run` carrying the backend, the rounding mode, the random generator of the stochastic modes and one
`OverflowStats` per layer.

Where rounding and saturation happen:
- Linear / Conv (weights bound once per backend and rounding, packed by the backend: `kernels.prepare_linear`):
  exact accumulator (int32 for int8 x int8, int64 for int16 x int16 and int16 x int8), bias added exactly; ONE
  rounding in the kernel's fused requantization y = round(acc * multiplier / 2**shift), optional fused ReLU, then
  saturation into the activation bits (counted). The accumulator is never materialized here.
- ReLU6 clamps at the raw value of 6 in the output format (after the fused ReLU); ReLU/pools/Flatten/Permute/Pad
  keep the format (Pad fills with raw 0, or with the format's lowest value where the float layer pads -inf);
  average pools round the window mean once (deterministic modes; half_even under stochastic ones); with
  uncounted padding the exact int64 window sum is divided by each window's element count, rounded once.
- Add (residual join): both inputs aligned exactly, one rounding into the output format, saturation (counted).
- Sigmoid / Tanh: lookup tables (see `activations`): at most 0.5 output LSB of error.
- Softmax: see `FixedSoftmax`.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels.modes import Rounding, as_rounding
from ..qformat import QFormat
from ..stats import OverflowStats
from .activations import activation_table, apply_table
from .layers import window_combine, window_counts


class Run:
    """Settings and overflow counters of one forward call."""

    def __init__(self, backend: str, rounding: Rounding | str, seed):
        self.backend = backend
        self.rounding = as_rounding(rounding)
        self.rng = np.random.default_rng(seed) if self.rounding.is_stochastic else None
        self.stats: dict[str, OverflowStats] = {}

    def counter(self, name: str) -> OverflowStats:
        return self.stats.setdefault(name, OverflowStats())

    @property
    def deterministic_rounding(self) -> Rounding:
        """The rounding of kernels that take deterministic modes only (average pools)."""
        return Rounding.HALF_EVEN if self.rounding.is_stochastic else self.rounding


class FixedLayer:
    """Base: `forward(raw, run)` maps raw integers in `in_fmt` to raw integers in `out_fmt`.

    `FixedLayer.edits` counts attribute assignments on every layer, so a compiled model notices (cheaply)
    that some layer may have changed since it was compiled.
    """

    kind = "layer"
    edits = 0
    weight_text = None
    scale = "pow2"   # activations are always power-of-two Q formats; Linear/Conv may use "multiplier"
    source = ()      # the (folded) float layers this layer computes, set at conversion (see FixedModel.layer_report)

    def __init__(self, name: str, in_fmt: QFormat, out_fmt: QFormat, out_dtype):
        self.name, self.in_fmt, self.out_fmt, self.out_dtype = name, in_fmt, out_fmt, np.dtype(out_dtype)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        FixedLayer.edits += 1

    def forward(self, raw, run: Run):
        raise NotImplementedError

    def stored_bytes(self) -> int:
        """Bytes of integer parameters a device stores for this layer."""
        return 0

    def rows(self) -> list[dict]:
        return [{"layer": self.name, "input": str(self.in_fmt), "weight": self.weight_text,
                 "output": str(self.out_fmt), "scale": self.scale}]

    def names(self) -> list[str]:
        return [self.name]


class FixedInput(FixedLayer):
    """Float input -> raw integers in `out_fmt` (one rounding, saturation counted), no float64 temporary."""

    kind = "input"

    def forward(self, x, run: Run):
        raw, count = kernels.quantize(x, self.out_fmt.frac, self.out_fmt.bits, rounding=run.rounding,
                                      rng=run.rng, backend=run.backend)
        run.counter(self.name).add(count, raw.size)
        return raw if raw.dtype == self.out_dtype else raw.astype(self.out_dtype)


class FixedGemm(FixedLayer):
    """Linear (x (..., K)), Conv1d (NLC) or Conv2d (NHWC) with a fused requantizing epilogue.

    `shift[o]` (and `multiplier[o]` for scale="multiplier") per output channel; `relu` fused; `clamp`
    (ReLU6) is the raw upper limit applied after it, or None; `bias_saturated` counts the bias entries that
    were saturated at conversion.
    """

    def __init__(self, name, kind, in_fmt, out_fmt, out_dtype, weight, bias, shift, multiplier, *, relu, clamp,
                 stride, padding, weight_text, scale, bias_saturated):
        super().__init__(name, in_fmt, out_fmt, out_dtype)
        self.bias_saturated = bias_saturated
        self.kind, self.weight, self.bias = kind, weight, bias
        self.shift, self.multiplier = shift, multiplier
        self.relu, self.clamp, self.stride, self.padding = relu, clamp, stride, padding
        self.weight_text, self.scale = weight_text, scale
        self._kernels = {}

    def forward(self, raw, run: Run):
        kernel = self._prepared(raw.dtype, run)
        stats = run.counter(self.name)
        if self.kind == "Linear":
            y = kernel(raw.reshape(-1, raw.shape[-1]), rng=run.rng, stats=stats).reshape(raw.shape[:-1] + (-1,))
        else:
            y = kernel(raw, rng=run.rng, stats=stats)
        if self.clamp is not None:
            np.minimum(y, self.clamp, out=y)
        return y

    def _prepared(self, in_dtype, run: Run):
        return self.prepared(in_dtype, run.backend, run.rounding)

    def prepared(self, in_dtype, backend, rounding: Rounding, threads=None):
        """The kernel with weights, bias and epilogue bound (weights packed by the backend), made once per
        (backend, rounding, input dtype, threads) and reused by every call; ``threads`` None: the default of
        ``kernels.prepare_linear`` ($FXBENCH_THREADS, else 1)."""
        backend = backend if backend is not None else kernels.default_backend()
        key = (backend, rounding, np.dtype(in_dtype), threads)
        kernel = self._kernels.get(key)
        if kernel is None:
            epilogue = dict(shift=self.shift, multiplier=self.multiplier, rounding=rounding,
                            out_dtype=self.out_dtype, out_bits=self.out_fmt.bits, relu=self.relu, x_dtype=in_dtype,
                            backend=backend, threads=threads)
            if self.kind == "Linear":
                kernel = kernels.prepare_linear(self.weight, self.bias, **epilogue)
            else:
                prepare = kernels.prepare_conv1d if self.kind == "Conv1d" else kernels.prepare_conv2d
                kernel = prepare(self.weight, self.bias, stride=self.stride, padding=self.padding, **epilogue)
            self._kernels[key] = kernel
        return kernel

    def weight_lsb(self) -> np.ndarray:
        """Real value of one weight LSB per output channel: M * 2**(in_frac - out_frac - shift) (M = 1 for pow2)."""
        multiplier = 1.0 if self.multiplier is None else np.asarray(self.multiplier, dtype=np.float64)
        shift = np.broadcast_to(self.shift, (self.weight.shape[0],)).astype(np.int64)
        return np.ldexp(multiplier, self.in_fmt.frac - self.out_fmt.frac - shift)

    def __getstate__(self):
        """Prepared kernels (bound to backend modules and packed buffers) are rebuilt after a copy."""
        return dict(self.__dict__, _kernels={})

    def rows(self) -> list[dict]:
        return [dict(super().rows()[0], bias_saturated=self.bias_saturated)]

    def stored_bytes(self) -> int:
        per_channel = self.weight.shape[0]
        shifts = per_channel if np.ndim(self.shift) else 1   # one int8 shift per channel
        multipliers = 0 if self.multiplier is None else 4 * shifts
        return self.weight.nbytes + self.bias.nbytes + shifts + multipliers


class FixedElementwise(FixedLayer):
    """ReLU, ReLU6 (raw clamp), Flatten: the format is unchanged and nothing rounds or saturates."""

    def __init__(self, name, kind, fmt, out_dtype, clamp=None):
        super().__init__(name, fmt, fmt, out_dtype)
        self.kind, self.clamp = kind, clamp

    def forward(self, raw, run: Run):
        if self.kind == "Flatten":
            y = raw.reshape(raw.shape[0], -1)
        else:
            y = np.maximum(raw, 0)
            if self.clamp is not None:
                np.minimum(y, self.clamp, out=y)
        run.counter(self.name).add(0, y.size)
        return y


class FixedPermute(FixedLayer):
    """Permute: the raw integers transposed (a contiguous copy); the format is unchanged."""

    kind = "Permute"

    def __init__(self, name, fmt, out_dtype, axes):
        super().__init__(name, fmt, fmt, out_dtype)
        self.axes = axes

    def forward(self, raw, run: Run):
        y = np.ascontiguousarray(raw.transpose(self.axes))
        run.counter(self.name).add(0, y.size)
        return y


class FixedPad(FixedLayer):
    """Pad: raw 0 for zero padding, the format's lowest raw value for -inf padding (before a max pool)."""

    kind = "Pad"

    def __init__(self, name, fmt, out_dtype, pads, value):
        super().__init__(name, fmt, fmt, out_dtype)
        self.pads = pads
        self.fill = 0 if value == 0 else fmt.qmin

    def forward(self, raw, run: Run):
        y = np.pad(raw, ((0, 0),) + self.pads + ((0, 0),), constant_values=self.fill)
        run.counter(self.name).add(0, y.size)
        return y


class FixedPool(FixedLayer):
    """MaxPool1d/2d and AvgPool1d/2d through the kernel API; the format is unchanged.

    An average pool with uncounted `padding` ((begin, end) per spatial axis) sums each window exactly in int64
    and rounds the sum divided by the window's element count once.
    """

    _FUNCTIONS = {"MaxPool1d": kernels.max_pool1d, "MaxPool2d": kernels.max_pool2d,
                  "AvgPool1d": kernels.avg_pool1d, "AvgPool2d": kernels.avg_pool2d}

    def __init__(self, name, kind, fmt, out_dtype, kernel, stride, padding=None):
        super().__init__(name, fmt, fmt, out_dtype)
        self.kind, self.kernel, self.stride, self.padding = kind, kernel, stride, padding

    def forward(self, raw, run: Run):
        function = self._FUNCTIONS[self.kind]
        if self.padding is not None:
            window = (self.kernel, self.stride) if self.kind == "AvgPool2d" else ((self.kernel,), (self.stride,))
            wide = np.pad(raw.astype(np.int64), ((0, 0),) + self.padding + ((0, 0),))
            counts = window_counts(raw.shape[1:-1], *window, self.padding)
            y = kernels.divide(window_combine(wide, *window, np.add), counts, out_bits=8 * self.out_dtype.itemsize,
                               rounding=run.deterministic_rounding, backend=run.backend)
        elif self.kind.startswith("Avg"):
            y = function(raw, self.kernel, self.stride, rounding=run.deterministic_rounding, backend=run.backend)
        else:
            y = function(raw, self.kernel, self.stride, backend=run.backend)
        run.counter(self.name).add(0, y.size)
        return y


class FixedTable(FixedLayer):
    """Sigmoid / Tanh as a lookup table over every raw input of the 8- or 16-bit container (<= 0.5 LSB error)."""

    def __init__(self, name, kind, in_fmt, out_fmt, out_dtype):
        super().__init__(name, in_fmt, out_fmt, out_dtype)
        self.kind = kind
        container = QFormat(8 * np.dtype(out_dtype).itemsize, in_fmt.frac)
        self.table = activation_table(kind.lower(), container, out_fmt).astype(out_dtype)

    def forward(self, raw, run: Run):
        y = apply_table(raw, self.table, backend=run.backend)
        run.counter(self.name).add(0, y.size)
        return y


class FixedSoftmax(FixedLayer):
    """Softmax over the last axis with a fixed-point exp.

    d = x - max(x) (exact, int64, raw input units) indexes a table of exp(d * 2**-in_frac) rounded half to even
    to 30 fraction bits (2**30 at d = 0); the row sum s >= 2**30 is exact in int64; each output is
    round(e * 2**out_frac / s) in the run's rounding mode (the backend's `kernels.divide`), then saturated
    into the output bits (counted).
    Worst-case error against the exact softmax, for a row of n entries: 0.5 output LSB + (n + 1) * 2**(out_frac
    - 31) LSB in the round-to-nearest modes (1 LSB + the same term in the directed ones); with a 16-bit output
    (out_frac 14) and n <= 1000 that is below 0.508 LSB.
    """

    kind = "Softmax"
    EXP_FRAC = 30

    def __init__(self, name, in_fmt, out_fmt, out_dtype, n_axes=1):
        super().__init__(name, in_fmt, out_fmt, out_dtype)
        self.n_axes = n_axes
        container_bits = 8 * np.dtype(out_dtype).itemsize
        steps = np.arange(1 << container_bits, dtype=np.float64)          # -d = 0 .. 2**bits - 1
        self.exp_table = np.rint(np.ldexp(np.exp(-np.ldexp(steps, -in_fmt.frac)), self.EXP_FRAC)).astype(np.int64)

    def forward(self, raw, run: Run):
        """Softmax over the last `n_axes` axes taken together (one row of the table per leading index)."""
        shape = raw.shape
        wide = raw.reshape(shape[:raw.ndim - self.n_axes] + (-1,)).astype(np.int64)
        e = self.exp_table[wide.max(axis=-1, keepdims=True) - wide]
        total = e.sum(axis=-1, keepdims=True)
        out = kernels.divide(e << self.out_fmt.frac, total, out_bits=self.out_fmt.bits, rounding=run.rounding,
                             rng=run.rng, backend=run.backend, stats=run.counter(self.name))
        return out.astype(self.out_dtype, copy=False).reshape(shape)


class FixedResidual(FixedLayer):
    """y = x + body(x): the body's layers, then a fixed-point add of both branches into `out_fmt` (counted)."""

    kind = "Residual"

    def __init__(self, name, in_fmt, out_fmt, out_dtype, body):
        super().__init__(name, in_fmt, out_fmt, out_dtype)
        self.body = body
        self.add_name = f"{name}.add"

    @property
    def body_fmt(self) -> QFormat:
        return self.body[-1].out_fmt if self.body else self.in_fmt

    def forward(self, raw, run: Run):
        y = raw
        for layer in self.body:
            y = layer.forward(y, run)
        return self.join(raw, y, run)

    def join(self, raw, body_raw, run: Run):
        """The add of the skip `raw` (in_fmt) and the body's output `body_raw` (body_fmt) into out_fmt."""
        out = kernels.add(raw, self.in_fmt.frac, body_raw, self.body_fmt.frac, self.out_fmt.frac,
                          out_bits=self.out_fmt.bits, rounding=run.rounding, backend=run.backend, rng=run.rng,
                          stats=run.counter(self.add_name))
        return out.astype(self.out_dtype, copy=False)

    def stored_bytes(self) -> int:
        return sum(layer.stored_bytes() for layer in self.body)

    def rows(self) -> list[dict]:
        add_row = {"layer": self.add_name, "input": f"{self.in_fmt} + {self.body_fmt}", "weight": None,
                   "output": str(self.out_fmt), "scale": "pow2"}
        return [row for layer in self.body for row in layer.rows()] + [add_row]

    def names(self) -> list[str]:
        return [name for layer in self.body for name in layer.names()] + [self.add_name]
