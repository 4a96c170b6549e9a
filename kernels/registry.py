"""Which compute backends work on this machine, which one is the default, and why any is missing.

Backends are imported lazily, on first use.  A backend whose module raises at import
(or lacks a function of the protocol) is recorded with the reason and left out of
:func:`available`; it is never silently replaced by another one when asked for by
name.  The default is the first available of ``c > numba > reference``, unless the
environment variable ``FXBENCH_BACKEND`` names one (read at every call).
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV_VAR = "FXBENCH_BACKEND"
BACKEND_MODULES = {
    "c": "fixedpoint.kernels.c_backend",
    "numba": "fixedpoint.kernels.numba_kernels",
    "reference": "fixedpoint.kernels.reference.backend",
}
PREFERENCE = ("c", "numba", "reference")
PROTOCOL_FUNCTIONS = ("gemm", "prepare_gemm", "requant", "quantize", "maxpool", "avgpool", "add_requant", "divide",
                      "lut")

_loaded: dict[str, ModuleType] = {}
_failures: dict[str, str] = {}


def available() -> list[str]:
    """Names of the backends that imported and provide the whole protocol, in preference order."""
    return [name for name in PREFERENCE if _load(name) is not None]


def unavailable_reasons() -> dict[str, str]:
    """Backend name -> why it cannot be used (the import error, or the missing functions)."""
    for name in PREFERENCE:
        _load(name)
    return dict(_failures)


def default_backend() -> str:
    """``$FXBENCH_BACKEND`` if set (it must name an available backend), else the first available."""
    forced = os.environ.get(ENV_VAR, "").strip()
    if forced:
        _require_known(forced, f"${ENV_VAR}")
        _require_loaded(forced)
        return forced
    return available()[0]


def get_backend(name: str | None = None) -> ModuleType:
    """The backend module called ``name`` (``None``: :func:`default_backend`).

    Unknown names raise ``ValueError`` listing the accepted ones; a known backend that
    failed to load raises ``ValueError`` with the recorded reason.
    """
    if name is None:
        name = default_backend()
    _require_known(name, "backend")
    return _require_loaded(name)


def _require_known(name, argument) -> None:
    if not isinstance(name, str) or name not in BACKEND_MODULES:
        accepted = ", ".join(repr(n) for n in PREFERENCE)
        raise ValueError(f"{argument}={name!r} is not a known backend; accepted: {accepted} (or None for the default)")


def _require_loaded(name) -> ModuleType:
    module = _load(name)
    if module is None:
        raise ValueError(f"backend {name!r} is not available on this machine: {_failures[name]}")
    return module


def _load(name: str) -> ModuleType | None:
    if name in _loaded:
        return _loaded[name]
    if name in _failures:
        return None
    try:
        module = importlib.import_module(BACKEND_MODULES[name])
    except Exception as exc:  # any import-time failure is the reason, reported by unavailable_reasons()
        _failures[name] = f"import of {BACKEND_MODULES[name]} failed: {type(exc).__name__}: {exc}"
        return None
    missing = [fn for fn in PROTOCOL_FUNCTIONS if not callable(getattr(module, fn, None))]
    if missing:
        _failures[name] = f"{BACKEND_MODULES[name]} lacks protocol function(s): {', '.join(missing)}"
        return None
    _loaded[name] = module
    return module
