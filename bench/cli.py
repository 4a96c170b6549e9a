"""The ``fxbench`` command: ``info``, ``run``, ``sweep``, ``report RESULTS.json [...] --out DIR``.
``run --model FILE.onnx`` and ``sweep --model FILE.onnx`` measure the user's own model (see ``user_model``);
``run --threads N`` times every row at N threads (see ``threads``).

Bad input (unknown task, backend, precision or bit range, missing or foreign results file, a report --out
that is not a directory) prints one line to stderr and exits 2; so do results with records or fields the
report cannot read, after the report is written without them (it lists them). A failed measurement exits 1;
Ctrl-C exits 130 and leaves the results measured so far in the JSON file.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .threads import pin_environment

DEFAULT_OUT = "fxbench-results"


class _Interrupts:
    """Ctrl-C while a command runs: remembered, then raised as KeyboardInterrupt.

    Python only prints (as "Exception ignored") a KeyboardInterrupt raised inside a finalizer, such as
    tqdm's ``__del__``, and a library may turn one into another exception that a keep-going loop records
    as a failed case; either way the run would go on.  Every SIGINT is therefore also remembered, the
    printed traceback is suppressed, and ``check()`` (called before each record is stored and at the
    end) raises KeyboardInterrupt again, so an interrupted run always ends with status 130.
    """

    seen = False

    def __enter__(self):
        self.seen = False
        self._handler = signal.signal(signal.SIGINT, self._on_sigint)
        self._hook, sys.unraisablehook = sys.unraisablehook, self._on_unraisable
        return self

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGINT, self._handler)
        sys.unraisablehook = self._hook

    def _on_sigint(self, signum, frame):
        self.seen = True
        raise KeyboardInterrupt

    def _on_unraisable(self, unraisable):
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            self.seen = True
        else:
            self._hook(unraisable)

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


_interrupts = _Interrupts()


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def thread_count(text: str) -> int:
    """``--threads``'s value: an integer >= 1 (argparse names the option in its error)."""
    problem = argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    try:
        count = int(text)
    except ValueError:
        raise problem from None
    if count < 1:
        raise problem
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fxbench", description="Fixed point vs float on this CPU.")
    parser.set_defaults(threads=1)   # info, sweep and report time nothing: one thread
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="CPU, ISA, peaks, BLAS core, threads, backends, contenders (a summary)")
    info.add_argument("--json", action="store_true", help="the whole context block as JSON (as results.json has it)")
    run = sub.add_parser("run", help="run the default benchmark and write results JSON + report.md")
    run.add_argument("--quick", action="store_true", help="small shapes, short timing (under 2 minutes)")
    run.add_argument("--out", default=DEFAULT_OUT, help=f"parent directory of the run (default ./{DEFAULT_OUT})")
    run.add_argument("--backend", action="append", help="backend to time (repeatable; default: all fast ones)")
    run.add_argument("--precision", action="append", help="precision to time (repeatable; default: all)")
    run.add_argument("--task", action="append", help="task model to time (repeatable; default: all)")
    run.add_argument("--threads", type=thread_count, default=1,
                     help="threads every row is timed at: BLAS, OpenMP, Numba, onnxruntime, torch and fxbench's "
                          "C integer GEMMs (default 1)")
    _model_arguments(run)
    run.add_argument("--weight-bits", type=int, help="with --model: convert at this weight width (2..16)")
    run.add_argument("--activation-bits", type=int, help="with --model: convert at this activation width (2..16)")
    sweep = sub.add_parser("sweep", help="accuracy vs bit width of the task models, results JSON + report.md")
    sweep.add_argument("--task", action="append", help="task (repeatable; default: all)")
    sweep.add_argument("--weight-bits", default="2-16", help="weight widths: N, A-B or A,B,C (default 2-16)")
    sweep.add_argument("--activation-bits", default="2-16", help="activation widths (default 2-16)")
    sweep.add_argument("--test-samples", type=int, default=None,
                       help="evaluate on a fixed subset of this many test samples (default: the whole test set)")
    sweep.add_argument("--backend", default=None, help="kernel backend (default: the fastest available)")
    sweep.add_argument("--out", default=DEFAULT_OUT, help=f"parent directory of the run (default ./{DEFAULT_OUT})")
    _model_arguments(sweep)
    report = sub.add_parser("report", help="redraw the report from results files (several compare machines)")
    report.add_argument("results", nargs="+", help="results JSON files")
    report.add_argument("--out", required=True, help="directory for report.md and PNGs")
    return parser


def _model_arguments(command) -> None:
    command.add_argument("--model", help="your ONNX model file instead of the task models")
    command.add_argument("--calib", help="with --model: calibration inputs, an .npy array (N, ...)")
    command.add_argument("--test", help="with --model: evaluation inputs, an .npz with x (and labels y)")


def _user_model(build, *arguments) -> int:
    """Run ``build(*arguments)``'s measurement of the --model file; its bad input exits 2."""
    from .user_model import InputError

    try:
        measure = build(*arguments)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return _measure_into_new_run(arguments[0], measure)


def _check_choices(values, accepted, what):
    for value in values or ():
        if value not in accepted:
            raise UsageError(f"unknown {what} {value!r}; accepted: {', '.join(accepted)}")


def cmd_info(args) -> int:
    from .context import collect_context
    from .threads import pin_threads

    limiter = pin_threads(args.threads)  # noqa: F841 (kept alive while the context is read)
    context = collect_context()
    if args.json:
        print(json.dumps(context, indent=1))
        return 0
    from .info import summary

    native = None
    if context.get("blas_pins"):   # ask a process without the pinning variables which core the BLAS picks
        from . import native_blas

        probe = native_blas.run_worker([], lambda record: None, quick=True, timeout=60)
        native = probe.get("blas") if probe["status"] == "ok" else probe.get("reason")
    print(summary(context, native))
    return 0


def _check_tasks(names):
    from . import tasks

    _check_choices(names, tasks.names(), "task")


def _measure_into_new_run(args, measure) -> int:
    """Run ``measure(writer)`` at ``args.threads`` threads into a fresh run directory under ``args.out``, then
    write report.md there."""
    from . import report, results
    from .context import collect_context
    from .threads import pin_threads

    limiter = pin_threads(args.threads)  # noqa: F841
    run_dir = results.new_run_dir(Path(args.out))
    writer = results.ResultsWriter(run_dir / "results.json", collect_context(), before_add=_interrupts.check)
    started = time.perf_counter()
    try:
        measure(writer)
        _interrupts.check()
    except KeyboardInterrupt:
        print(f"interrupted: partial results in {writer.path}", file=sys.stderr)
        return 130
    writer.finish(time.perf_counter() - started)
    path = report.write_report([writer.data], run_dir)
    rows = report.verdict_rows(writer.data["records"])
    if rows:
        from . import verdict

        print("\n".join(verdict.class_table(rows)))
    print(f"\nresults: {writer.path}\nreport:  {path}  ({time.perf_counter() - started:.0f} s)")
    return 0


def cmd_run(args) -> int:
    from fixedpoint import kernels

    from . import catalog, runner

    _check_choices(args.backend, [b for b in kernels.available()], "backend")
    _check_choices(args.precision, catalog.precisions(), "precision")
    _check_tasks(args.task)
    if args.model is not None:
        from .user_model import run_measure

        return _user_model(run_measure, args)
    if args.calib or args.test or args.weight_bits is not None or args.activation_bits is not None:
        raise UsageError("--calib, --test, --weight-bits and --activation-bits go with --model")
    return _measure_into_new_run(args, lambda writer: runner.run(
        writer, quick=args.quick, backends=args.backend, precisions=args.precision, task_names=args.task))


def cmd_sweep(args) -> int:
    from fixedpoint import kernels

    from . import sweeps, tasks
    from .model_workloads import quantize_model_function
    from .runner import peak_rss_bytes

    _check_tasks(args.task)
    if args.backend is not None:
        _check_choices([args.backend], kernels.available(), "backend")
    try:
        weight_bits = sweeps.parse_bits(args.weight_bits, "--weight-bits")
        activation_bits = sweeps.parse_bits(args.activation_bits, "--activation-bits")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.test_samples is not None and args.test_samples < 1:
        raise UsageError(f"--test-samples must be a positive count, got {args.test_samples}")
    _, reason = quantize_model_function()
    if reason is not None:
        raise UsageError(f"sweep not available: {reason}")
    if args.model is not None:
        from .user_model import sweep_measure

        return _user_model(sweep_measure, args, weight_bits, activation_bits)
    points = sweeps.sweep_points(args.task or tasks.names(), weight_bits, activation_bits)
    def measure(writer):
        sweeps.run_sweep(points, writer.add, n_test=args.test_samples, backend=args.backend)
        writer.add({"kind": "memory", "peak_rss_bytes": peak_rss_bytes()})

    return _measure_into_new_run(args, measure)


def cmd_report(args) -> int:
    """Write the report; results it cannot fully read still give one (without those parts), then exit 2."""
    from . import report, results

    datasets = []
    for name in args.results:
        try:
            datasets.append(results.load(name))
        except results.ResultsFileError as exc:
            raise UsageError(str(exc)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; it must name a directory (created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from None
    path = report.write_report(datasets, out)
    print(path)
    problems = [f"{name}: {problem}" for name, data in zip(args.results, datasets)
                for problem in results.check(data)[1]]
    if problems:
        more = f"; {len(problems) - 1} more problems" if len(problems) > 1 else ""
        raise UsageError(f"{problems[0]}{more} (all listed in {path})")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``fxbench`` console script; returns the exit status."""
    with _interrupts:
        try:
            status = _main(argv)
            if status != 130:   # an interrupt that was swallowed on its way
                _interrupts.check()
            return status
        except KeyboardInterrupt:
            print("fxbench: interrupted", file=sys.stderr)
            return 130


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    pin_environment(args.threads)   # before numpy and anything else loads (reading the arguments loads neither)
    command = {"info": cmd_info, "run": cmd_run, "sweep": cmd_sweep, "report": cmd_report}[args.command]
    try:
        return command(args)
    except UsageError as exc:
        print(f"fxbench: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a failed measurement: one line, non-zero exit
        print(f"fxbench: {args.command} failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
