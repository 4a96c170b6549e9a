"""`fxbench run --model FILE.onnx` and `fxbench sweep --model FILE.onnx`: the user's own model, measured like the
task models.

The file is read by `fixedpoint.onnx.load` (in the graph's own input layout) and converted by
`fixedpoint.nn.quantize_model` on the calibration samples (`--calib FILE.npy`: an array (N, ...) of graph
inputs). `run` times f64 / f32 (numpy), the integer precisions (every fast backend) and onnxruntime float32 and
static int8 sessions of the same file at batch 1 and at the calibration batch size N; errors are against the
float64 model on the same inputs. The evaluation samples are those of `--test FILE.npz` (array `x`, and labels
`y` for accuracy) or, without it, the calibration samples. Without --calib only the float rows run (on the test
samples): calibration needs sample inputs, and none are invented.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import metrics, ort_sessions, sweeps
from .model_workloads import ACTIVATION_ITEMSIZE, FLOAT_DTYPES, layer_profile
from .workloads import INT_BITS, NUMPY, PRECISIONS, Case

ONNXRUNTIME = "onnxruntime"
EVALUATION_BATCH = 500
LAYER_REPORT_SAMPLES = {True: 256, False: 1000}   # quick -> samples the per-layer report runs on
NEEDS_CALIBRATION = ("calibration needs sample inputs: pass --calib FILE.npy, a batch (N, ...) of the model's "
                     "inputs (nothing is invented)")


class InputError(Exception):
    """Bad --model / --calib / --test input: one line naming the file or argument."""


@dataclass(frozen=True, eq=False)
class UserModel:
    """The loaded model, its ONNX graph and the sample data."""

    path: Path
    proto: object
    model: object
    calib: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def evaluation(self) -> tuple[np.ndarray, str]:
        """(samples the errors are taken on, "test" or "calibration")."""
        return (self.x_test, "test") if self.x_test is not None else (self.calib, "calibration")


def _samples(array, what: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise InputError(f"{what}: dtype {array.dtype} is not numeric")
    if array.ndim < 2 or array.shape[0] == 0:
        raise InputError(f"{what}: needs a batch of samples (N, ...), got shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise InputError(f"{what}: {bad} values are NaN or infinite")
    return np.ascontiguousarray(array, dtype=np.float32)


def _open(path, option: str, suffix: str):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{option} {path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{option} {path}: not a {suffix} file ({exc.__class__.__name__})") from None
    if isinstance(data, np.lib.npyio.NpzFile) != (suffix == ".npz"):
        raise InputError(f"{option} {path}: expected a {suffix} file")
    return path, data


def load_calibration(path) -> np.ndarray:
    path, data = _open(path, "--calib", ".npy")
    return _samples(data, f"--calib {path}")


def load_test(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y or None) from an .npz holding `x` and optionally integer labels `y` (N,)."""
    path, data = _open(path, "--test", ".npz")
    with data:
        if "x" not in data.files:
            raise InputError(f"--test {path}: needs an array 'x' (and labels 'y'), found {', '.join(data.files)}")
        x = _samples(data["x"], f"--test {path}: x")
        y = data["y"] if "y" in data.files else None
    if y is not None and (y.dtype.kind not in "iu" or y.shape != (x.shape[0],) or (y.size and y.min() < 0)):
        raise InputError(f"--test {path}: y must hold one integer label >= 0 per sample of x ({x.shape[0]}), "
                         f"got dtype {y.dtype} shape {y.shape}")
    return x, None if y is None else y.astype(np.int64)


def prepare(model_path, calib_path=None, test_path=None) -> UserModel:
    """Read and check the model and data files; InputError names the file or argument at fault."""
    from fixedpoint.onnx import OnnxModelError, load
    from fixedpoint.onnx.reader import read_model

    calib = None if calib_path is None else load_calibration(calib_path)
    x_test, y_test = (None, None) if test_path is None else load_test(test_path)
    if calib is None and x_test is None:
        raise InputError(f"--model needs sample inputs: {NEEDS_CALIBRATION}; --test FILE.npz also gives timing inputs")
    if calib is not None and x_test is not None and calib.shape[1:] != x_test.shape[1:]:
        raise InputError(f"--test {test_path}: samples of shape {x_test.shape[1:]} differ from the --calib "
                         f"samples' {calib.shape[1:]}")
    samples, option, data_path = (calib, "--calib", calib_path) if calib is not None else (x_test, "--test", test_path)
    try:
        proto, _ = read_model(model_path)
        model = load(model_path, input_shape=samples.shape[1:])
    except OnnxModelError as exc:
        if exc.argument == "input_shape":
            raise InputError(f"{option} {data_path}: samples of shape {samples.shape[1:]} do not fit the model: "
                             f"{exc}") from None
        raise InputError(str(exc)) from None
    if y_test is not None:
        out = model(samples[:1])
        if out.ndim != 2 or y_test.max(initial=0) >= out.shape[1]:
            raise InputError(f"--test {test_path}: labels y need an output (batch, classes) with more than "
                             f"{y_test.max(initial=0)} classes, the model gives {out.shape[1:]} per sample")
    return UserModel(Path(model_path), proto, model, calib, x_test, y_test)


# ----------------------------------------------------------------------------- conversions


@dataclass(frozen=True)
class Conversion:
    """One integer conversion: the container precision it runs in and the widths (None: the precision's)."""

    precision: str
    weight_bits: int | None = None
    activation_bits: int | None = None

    @property
    def label(self) -> str:
        if self.weight_bits is None and self.activation_bits is None:
            return self.precision
        return f"w{self.weight_bits}a{self.activation_bits}"


def conversions(precisions, weight_bits=None, activation_bits=None) -> list[Conversion]:
    """The integer conversions of a run: each selected integer precision, or one at the given widths (2..16; a
    missing one is 8) in the container that holds them; InputError when --precision names another."""
    selected = [p for p in (precisions or PRECISIONS) if p in INT_BITS]
    if weight_bits is None and activation_bits is None:
        return [Conversion(p) for p in selected]
    widths = []
    for option, value in (("--weight-bits", weight_bits), ("--activation-bits", activation_bits)):
        if value is not None and not sweeps.MIN_BITS <= value <= sweeps.MAX_BITS:
            raise InputError(f"{option} must be one width in {sweeps.MIN_BITS}..{sweeps.MAX_BITS}, got {value}")
        widths.append(8 if value is None else value)
    container = sweeps.container_precision(*widths)
    others = [p for p in selected if p != container] if precisions else []
    if others:
        raise InputError(f"--weight-bits/--activation-bits {widths[0]}/{widths[1]} run in the {container} "
                         f"containers; --precision {others[0]} names another")
    return [Conversion(container, *widths)]


@functools.cache
def _converted(user: UserModel, conversion: Conversion, backend: str):
    from fixedpoint import nn

    return nn.quantize_model(user.model, user.calib, conversion.precision, weight_bits=conversion.weight_bits,
                             activation_bits=conversion.activation_bits, backend=backend)


def check_conversions(user: UserModel, conversions_, backend: str) -> None:
    """Convert once per conversion now, so an unconvertible model is bad input rather than failed rows."""
    for conversion in conversions_:
        try:
            _converted(user, conversion, backend)
        except ValueError as exc:
            raise InputError(f"{user.path}: cannot convert to {conversion.label}: {exc}") from None


# ----------------------------------------------------------------------------- timed rows


def _batch(x: np.ndarray, batch: int) -> np.ndarray:
    """The first `batch` samples of x (repeated when x is smaller), float32."""
    repeats = -(-batch // x.shape[0])
    return np.ascontiguousarray(np.concatenate([x] * repeats)[:batch], dtype=np.float32)


def _in_batches(forward, x):
    return np.concatenate([np.asarray(forward(x[i:i + EVALUATION_BATCH]), dtype=np.float64)
                           for i in range(0, x.shape[0], EVALUATION_BATCH)])


class _Rows:
    """Forward functions, weight bytes and accuracies of every row of one run (sessions built once)."""

    def __init__(self, user: UserModel):
        self.user = user
        self._accuracy = {}

    @functools.cached_property
    def float32_session(self):
        return ort_sessions.float32_session(self.user.proto)

    @functools.cached_property
    def int8_proto(self):
        return ort_sessions.quantized_int8(self.user.proto, self.user.calib)

    @functools.cached_property
    def int8_session(self):
        return ort_sessions.session(self.int8_proto)

    def forward(self, precision, backend, conversion=None):
        if backend == ONNXRUNTIME:
            session = self.float32_session if precision == "f32" else self.int8_session
            return lambda x: ort_sessions.run(session, x)
        if backend == NUMPY:
            dtype = FLOAT_DTYPES[precision]
            return lambda x: self.user.model(np.asarray(x, dtype=dtype))
        return _converted(self.user, conversion, backend)

    def weight_bytes(self, precision, backend, conversion=None) -> int:
        if backend == ONNXRUNTIME:
            return ort_sessions.weight_bytes(self.user.proto if precision == "f32" else self.int8_proto)
        if backend == NUMPY:
            return self.user.model.weight_bytes(FLOAT_DTYPES[precision])
        return int(_converted(self.user, conversion, backend).weight_bytes)

    def accuracy(self, key, forward):
        """Test accuracy of `forward` (None without labels), computed once per row kind."""
        if self.user.y_test is None:
            return None
        if key not in self._accuracy:
            logits = _in_batches(forward, self.user.x_test)
            self._accuracy[key] = float(np.mean(np.argmax(logits, axis=1) == self.user.y_test))
        return self._accuracy[key]

    def case(self, batch, precision, backend, conversion=None) -> Case:
        user = self.user
        samples, source = user.evaluation
        x32 = _batch(samples, batch)
        x = x32.astype(FLOAT_DTYPES.get(precision, np.float32))
        forward = self.forward(precision, backend, conversion)
        reference = user.model(x32.astype(np.float64))
        ops, largest = layer_profile(user.model, x32.astype(np.float64))
        key = (precision, backend, conversion)
        extra = {"task": user.name, "batch": batch, "user_model": True, "samples": source,
                 "accuracy": self.accuracy(key, forward),
                 "float64_accuracy": self.accuracy(("f64", NUMPY, None), self.forward("f64", NUMPY))}
        if backend == ONNXRUNTIME:
            extra.update(contender=ONNXRUNTIME, implementation="onnxruntime float32 session" if precision == "f32"
                         else "onnxruntime int8 session (QDQ)")
        if conversion is not None and conversion.label != conversion.precision:
            extra.update(quantized_as=conversion.label, weight_bits=conversion.weight_bits,
                         activation_bits=conversion.activation_bits)
        return Case("model", f"{user.name} batch {batch}", precision, backend, lambda: forward(x), ops,
                    self.weight_bytes(precision, backend, conversion), largest * ACTIVATION_ITEMSIZE[precision],
                    reference, decode=lambda y: np.asarray(y, dtype=np.float64), extra=extra)


def row_factories(user: UserModel, rows: _Rows, batches, precisions, conversions_, backends, with_onnxruntime):
    """(label, builder) of every timed row: float rows on numpy, integer rows per backend, onnxruntime rows."""
    selected = list(precisions or PRECISIONS)
    factories = []
    for batch in batches:
        plan = [(p, NUMPY, None) for p in FLOAT_DTYPES if p in selected]
        if user.calib is not None:
            plan += [(c.precision, b, c) for c in conversions_ for b in backends]
        if with_onnxruntime:
            plan += [(p, ONNXRUNTIME, None) for p in ("f32", "i8")
                     if p in selected and (p == "f32" or user.calib is not None)]
        for precision, backend, conversion in plan:
            label = f"model {user.name} batch {batch} {conversion.label if conversion else precision} {backend}"
            factories.append((label, lambda b=batch, p=precision, be=backend, c=conversion: rows.case(b, p, be, c)))
    return factories


def time_rows(writer, factories, *, quick: bool) -> None:
    """Time each row as the task models are timed (median of one call after a warm-up, at the run's thread count);
    a row that raises becomes a "failed" record and the run goes on."""
    from tqdm import tqdm

    from .runner import case_record, failure_record
    from .timing import measure

    for label, build in tqdm(factories, desc="model", unit="case"):
        try:
            case = build()
            timing = measure(case.call, min_time=0.05 if quick else 0.2, max_time=2.0)
            record = case_record(case, timing)
        except Exception as exc:
            record = failure_record(label, exc)
        writer.add(record)


def layer_reports(user: UserModel, conversions_, backend: str, quick: bool) -> list[dict]:
    """One "layer_report" record per integer conversion, on the first evaluation samples."""
    samples, source = user.evaluation
    x = samples[:LAYER_REPORT_SAMPLES[quick]]
    records = []
    for conversion in conversions_:
        report = _converted(user, conversion, backend).layer_report(x)
        records.append({"kind": "layer_report", "model": user.name, "precision": conversion.label,
                        "backend": backend, "samples": int(x.shape[0]), "source": source, "rows": report.rows})
    return records


def describe(user: UserModel, batches, settings: dict) -> dict:
    """The "user_model" record that opens the model's report section."""
    samples, source = user.evaluation
    return {"kind": "user_model", "name": user.name, "path": str(user.path), "input_shape": list(samples.shape[1:]),
            "calibration_samples": None if user.calib is None else int(user.calib.shape[0]),
            "test_samples": None if user.x_test is None else int(user.x_test.shape[0]),
            "labels": user.y_test is not None, "evaluation": source, "batches": list(batches), **settings}


def run_measure(args):
    """Check the --model run's input now; return `measure(writer)` for the CLI's run directory."""
    from fixedpoint import kernels

    from . import runner, workloads

    if args.task:
        raise InputError("--model and --task cannot be combined")
    user = prepare(args.model, args.calib, args.test)
    backends = list(args.backend) if args.backend else (workloads.timed_backends() or [kernels.default_backend()])
    conversions_ = conversions(args.precision, args.weight_bits, args.activation_bits)
    if user.calib is not None:
        check_conversions(user, conversions_, backends[0])
    batches = sorted({1, (user.calib if user.calib is not None else user.x_test).shape[0]})
    missing_ort = ort_sessions.available()
    settings = {"precisions": list(args.precision or PRECISIONS), "conversions": [c.label for c in conversions_],
                "backends": backends, "quantization": "quantize_model defaults (max calibration, per-channel "
                "pow2 weights, round half to even)"}

    def measure(writer):
        rows = _Rows(user)
        writer.add(describe(user, batches, settings))
        if user.calib is None:
            for section in ("integer precisions", "onnxruntime int8 session", "per-layer error report"):
                writer.add({"kind": "not_available", "section": section, "reason": NEEDS_CALIBRATION})
        if missing_ort is not None:
            writer.add({"kind": "not_available", "section": "onnxruntime sessions", "reason": missing_ort})
        time_rows(writer, row_factories(user, rows, batches, args.precision, conversions_, backends,
                                        missing_ort is None), quick=args.quick)
        if user.calib is not None:
            for record in layer_reports(user, conversions_, backends[0], args.quick):
                writer.add(record)
        runner.add_ratios(writer.data["records"])
        writer.add({"kind": "memory", "peak_rss_bytes": runner.peak_rss_bytes()})

    return measure


# ----------------------------------------------------------------------------- sweep


def evaluate_point(user: UserModel, point, reference, float64_accuracy, backend=None) -> dict:
    """One sweep point on the user's model: SQNR of the outputs against float64, and accuracy given labels."""
    from fixedpoint import nn

    samples, source = user.evaluation
    seed = 0 if point.rounding == "stochastic" else None
    if point.float_format is not None:       # a float-format point: the format sets both widths
        fixed = nn.quantize_model(user.model, user.calib, point.float_format, rounding=point.rounding, seed=seed,
                                  backend=backend)
    else:
        fixed = nn.quantize_model(user.model, user.calib,
                                  sweeps.container_precision(point.weight_bits, point.activation_bits),
                                  weight_bits=point.weight_bits, activation_bits=point.activation_bits,
                                  per_channel=point.per_channel, scale=point.scale, rounding=point.rounding,
                                  seed=seed, backend=backend)
    out = _in_batches(fixed, samples)
    accuracy = None if user.y_test is None else float(np.mean(np.argmax(out, axis=1) == user.y_test))
    return {"kind": "sweep", **asdict(point), "accuracy": accuracy, "float64_accuracy": float64_accuracy,
            "n_test": int(samples.shape[0]), "samples": source, "sqnr_db": metrics.sqnr_db(reference, out)}


def sweep_measure(args, weight_bits, activation_bits):
    """Check the --model sweep's input now; return `measure(writer)`."""
    from tqdm import tqdm

    from . import runner

    if args.task:
        raise InputError("--model and --task cannot be combined")
    if args.calib is None:
        raise InputError(f"sweep --model: {NEEDS_CALIBRATION}")
    user = prepare(args.model, args.calib, args.test)
    points = sweeps.sweep_points([user.name], weight_bits, activation_bits)
    samples, _ = user.evaluation
    reference = _in_batches(lambda x: user.model(np.asarray(x, dtype=np.float64)), samples)
    float64_accuracy = None if user.y_test is None else float(np.mean(np.argmax(reference, axis=1) == user.y_test))

    def measure(writer):
        writer.add(describe(user, [], {"sweep": True}))
        for point in tqdm(points, desc="sweep", unit="model"):
            try:
                record = evaluate_point(user, point, reference, float64_accuracy, backend=args.backend)
            except Exception as exc:
                record = runner.failure_record(f"sweep {point}", exc)
            writer.add(record)
        writer.add({"kind": "memory", "peak_rss_bytes": runner.peak_rss_bytes()})

    return measure
