"""The cases of a run, each named by a serializable :class:`Spec`: fxbench's rows, the baselines and the contenders.

Workloads are defined once (``workloads``, ``contenders``, ``model_workloads``); a Spec says which builder makes
its case and with which arguments, so the same list feeds ``fxbench run``, the float worker process (which gets
the specs as JSON) and the pytest-benchmark suite.  A contender whose library is missing gets no spec but a
"not_installed" record, so the report shows a labelled cell instead of a silent gap.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import classes, contenders, model_workloads, workloads

KINDS = ("dot", "quantize", "max_pool2d", "naive", "contender", "model", "model_contender")
CONTENDER_KINDS = ("contender", "model_contender")
QUANTIZE_SIZE = {True: 100_000, False: 1_000_000}
POOL_DIMS = {True: (8, 28, 28, 16), False: (32, 28, 28, 16)}


@dataclass(frozen=True)
class Spec:
    """One case: ``kind`` (which builder), ``op``, ``dims`` (a shape, or (task, batch) for a model), precision,
    backend (fxbench's backend, "numpy", the naive loop or a contender's key)."""

    kind: str
    op: str
    dims: tuple
    precision: str
    backend: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown spec kind {self.kind!r}; accepted: {', '.join(KINDS)}")
        object.__setattr__(self, "dims", tuple(self.dims))

    @property
    def workload(self) -> str:
        """The workload name its record carries (``Case.workload``)."""
        if self.op == "model":
            task, batch = self.dims
            return f"model {task} batch {batch}"
        return f"{self.op} {'x'.join(str(d) for d in self.dims)}"

    @property
    def label(self) -> str:
        return f"{self.workload} {self.precision} {self.backend}"

    @property
    def is_contender(self) -> bool:
        return self.kind in CONTENDER_KINDS

    def build(self) -> workloads.Case:
        kind, op, dims, precision, backend = self.kind, self.op, self.dims, self.precision, self.backend
        if kind == "dot":
            return workloads.dot_case(op, dims, precision, backend)
        if kind == "quantize":
            return workloads.quantize_case(dims[0], precision, backend)
        if kind == "max_pool2d":
            return workloads.max_pool_case(dims, precision, backend)
        if kind == "naive":
            return workloads.naive_linear_case(dims)
        if kind == "contender":
            return contenders.case(op, dims, precision, backend)
        if kind == "model":
            return model_workloads.model_case(dims[0], dims[1], precision, backend)
        return model_workloads.contender_case(dims[0], dims[1], precision, backend)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "op": self.op, "dims": list(self.dims), "precision": self.precision,
                "backend": self.backend}

    @classmethod
    def from_dict(cls, data: dict) -> "Spec":
        """The Spec of ``as_dict``'s output; ValueError naming what is wrong otherwise."""
        fields = ("kind", "op", "dims", "precision", "backend")
        if not isinstance(data, dict) or any(name not in data for name in fields):
            raise ValueError(f"a spec needs the fields {', '.join(fields)}, got {data!r}")
        if not isinstance(data["dims"], list):
            raise ValueError(f"spec dims must be a list, got {data['dims']!r}")
        return cls(*(data[name] for name in fields))


def _not_installed(workload: str, op: str, precision: str, backend: str, library: str, implementation: str,
                   reason: str) -> dict:
    return {"kind": "not_installed", "workload": workload, "op": op, "precision": precision, "backend": backend,
            "contender": library, "implementation": implementation, "reason": reason}


def _selected(precision, precisions) -> bool:
    return precisions is None or precision in precisions


def kernel_plan(quick: bool = False, backends=None, precisions=None) -> tuple[list[Spec], list[dict]]:
    """(specs, "not_installed" records) of the kernel workloads: each workload's fxbench rows, numpy's float
    rows (linear), then every contender; the naive baseline, quantization and pooling after them."""
    backends = list(backends) if backends else workloads.timed_backends()
    fx_precisions = [p for p in workloads.KERNEL_PRECISIONS if _selected(p, precisions)]
    shapes = workloads.QUICK_SHAPES if quick else workloads.FULL_SHAPES
    specs, missing = [], []
    for op, dims_list in shapes.items():
        for dims in dims_list:
            for precision in fx_precisions:
                numpy_row = [workloads.NUMPY] if op == "linear" and precision in ("f32", "f64") else []
                specs += [Spec("dot", op, dims, precision, backend) for backend in backends + numpy_row]
            for contender in contenders.KERNEL_CONTENDERS:
                if op not in contender.ops or not _selected(contender.precision, precisions):
                    continue
                spec = Spec("contender", op, dims, contender.precision, contender.backend)
                reason = contenders.not_installed(contender)
                if reason is None:
                    specs.append(spec)
                else:
                    missing.append(_not_installed(spec.workload, op, spec.precision, spec.backend, contender.library,
                                                  contender.implementation(op), reason))
    if "i8" in fx_precisions:
        specs += [Spec("naive", "linear", dims, "i8", workloads.NAIVE) for dims in shapes["linear"]]
    n = QUANTIZE_SIZE[quick]
    for precision in [p for p in ("i8", "i16") if p in fx_precisions]:
        specs += [Spec("quantize", "quantize", (n,), precision, backend) for backend in backends + [workloads.NUMPY]]
    for precision in [p for p in ("f64", "f32", "i16", "i8") if p in fx_precisions]:
        specs += [Spec("max_pool2d", "max_pool2d", POOL_DIMS[quick], precision, backend) for backend in backends]
    return specs, missing


def model_plan(task_names, backends, precisions=None, fx_precisions=None,
               batches=model_workloads.BATCHES) -> tuple[list[Spec], list[dict]]:
    """(specs, "not_installed" records) of the whole models: per task and batch, fxbench's rows (float on numpy,
    integer on each backend; ``fx_precisions`` narrows them further) then the contenders' sessions."""
    fx = [p for p in workloads.PRECISIONS if _selected(p, precisions) and _selected(p, fx_precisions)]
    specs, missing = [], []
    for task in task_names:
        for batch in batches:
            for precision in fx:
                row_backends = [workloads.NUMPY] if precision in model_workloads.FLOAT_DTYPES else backends
                specs += [Spec("model", "model", (task, batch), precision, backend) for backend in row_backends]
            for contender in model_workloads.MODEL_CONTENDERS:
                if not _selected(contender.precision, precisions):
                    continue
                spec = Spec("model_contender", "model", (task, batch), contender.precision, contender.backend)
                reason = classes.missing_library(contender.library)
                if reason is None:
                    specs.append(spec)
                else:
                    missing.append(_not_installed(spec.workload, "model", spec.precision, spec.backend,
                                                  contender.library, contender.implementation, reason))
    return specs, missing


def precisions() -> tuple[str, ...]:
    """Every precision a run can select: fxbench's and the contenders'."""
    names = [*workloads.PRECISIONS, *contenders.PRECISIONS, *(c.precision for c in model_workloads.MODEL_CONTENDERS)]
    return tuple(dict.fromkeys(names))
