"""The import structure of kernels/, fixedpoint/ and bench/, read from their source with ``ast``.

Checks: no import cycle between modules, no module importing another module's private
(underscore) name, imports pointing down the layering of DESIGN.md (bench -> fixedpoint ->
kernels; kernels imports nothing from the rest of fixedpoint), and no backend-name checks
in routing code.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fixedpoint

ROOT = Path(fixedpoint.__file__).resolve().parents[1]
PACKAGES = {"fixedpoint": ROOT / "fixedpoint", "fixedpoint.kernels": ROOT / "kernels",
            "fixedpoint.bench": ROOT / "bench"}
SOURCE_CHECKOUT = (ROOT / "kernels").is_dir() and (ROOT / "bench").is_dir()
pytestmark = pytest.mark.skipif(not SOURCE_CHECKOUT, reason="needs the source layout (an editable install)")


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if path.parent.name == "__pycache__" or (package == "fixedpoint" and path.is_relative_to(
                    ROOT / "fixedpoint" / "kernels")):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package] + parts)] = path
    return modules


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str):
    """(imported module, imported name or None, line) for every import inside the project."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fixedpoint"):
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if not target.startswith("fixedpoint"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    yield sub, None, node.lineno
                else:
                    yield target, alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def test_the_project_modules_are_found():
    assert {"fixedpoint.kernels.api", "fixedpoint.kernels.layers", "fixedpoint.nn.convert",
            "fixedpoint.bench.cli"} <= set(MODULES)


def test_no_import_cycles():
    """Package __init__ files re-export, so an edge into a package's __init__ from inside it is allowed."""
    graph = _graph()
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not (MODULES[t].name == "__init__.py" and module.startswith(t + "."))}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_private_names_imported_from_another_module():
    offenders = [f"{module}:{line} imports {name} from {target}"
                 for module in MODULES for target, name, line in _imports(module)
                 if name is not None and name.startswith("_") and target != module]
    assert not offenders, "\n".join(offenders)


def test_imports_point_down_the_layers():
    """kernels imports nothing of fixedpoint outside kernels; fixedpoint (but bench) imports nothing of bench."""
    offenders = []
    for module in MODULES:
        for target, _, line in _imports(module):
            if module.startswith("fixedpoint.kernels") and not target.startswith("fixedpoint.kernels"):
                offenders.append(f"{module}:{line} -> {target}")
            if not module.startswith("fixedpoint.bench") and target.startswith("fixedpoint.bench"):
                offenders.append(f"{module}:{line} -> {target}")
    assert not offenders, "\n".join(offenders)


def test_routing_checks_capabilities_not_backend_names():
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith(("fixedpoint.kernels", "fixedpoint.nn")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(side, ast.Attribute) and side.attr == "NAME"
                                                     for side in [node.left, *node.comparators]):
                offenders.append(f"{module}:{node.lineno}")
    assert not offenders, "backend name compared in " + ", ".join(offenders)


def test_an_uninstalled_source_checkout_says_to_install(tmp_path):
    """Without the installed package mapping (python -S: no site, no editable finder) the import fails clearly."""
    out = subprocess.run([sys.executable, "-S", "-c", "import fixedpoint"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "pip install -e ." in out.stderr


def test_the_command_line_module_loads_before_numpy(tmp_path):
    """fxbench installs its Ctrl-C handling and thread settings before numpy, numba or the kernels load."""
    code = ("import sys, fixedpoint.bench.cli; "
            "print(sorted(m for m in ('numpy', 'numba', 'fixedpoint.kernels', 'fixedpoint.nn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
