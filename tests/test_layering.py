"""The stages import one way: nothing imports a later stage, and no module imports itself back.

The order (README "How it works"): the shared result model and settings, then the libraries
(FHIR JSON and datatypes, FHIRPath, DICOM tables), then the stages compile -> load -> select ->
evaluate -> run -> report, then the entry points (API, CLI, pytest plugin, suites). Imports made
only for type checking count too: they are dependencies a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "validator"

# Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS: list[tuple[str, set[str]]] = [
    ("shared", {"model", "limits", "rule_ids", "resources", "versions"}),
    ("fhir", {"fhir"}),
    ("fhirpath", {"fhirpath"}),
    ("dicom tables", {"dicom"}),
    ("network", {"net"}),
    ("compile", {"compile"}),
    ("load", {"load"}),
    ("select", {"select"}),
    ("evaluate", {"evaluate"}),
    ("run", {"run"}),
    ("report", {"report"}),
    ("entry points", {"__init__", "api", "cli", "config", "pytest_plugin", "testing", "progress", "suites", "probe",
                      "spark"}),
]
STAGE_PACKAGES = ["compile", "load", "select", "evaluate", "run", "report"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for rank, (_, names) in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"validator.{module} belongs to no layer: add it to LAYERS in {__file__}")


def _imports(module: str) -> set[str]:
    """The validator modules that `module` imports (anywhere in it), by name inside the package."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
                if not target.startswith("validator"):
                    continue
                target = target.removeprefix("validator").lstrip(".")
            # `from validator.x import y`: y may be a module of the package itself
            names = [f"{target}.{a.name}".lstrip(".") for a in node.names]
            names = [n if n in MODULES else target for n in names]
        else:
            continue
        for name in names:
            name = name.removeprefix("validator").lstrip(".") if name.startswith("validator") else name
            out.add(name or "__init__")
    return {n for n in out if n in MODULES and n != module}


GRAPH = {m: _imports(m) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_nothing_from_a_later_stage(module: str) -> None:
    later = sorted(f"validator.{i} ({LAYERS[_layer(i)][0]})" for i in GRAPH[module] if _layer(i) > _layer(module))
    assert not later, f"validator.{module} ({LAYERS[_layer(module)][0]}) imports a later layer: {later}"


def test_no_module_imports_itself_back_through_others() -> None:
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join([*path[path.index(n):], n]))
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("stage", STAGE_PACKAGES)
def test_each_stage_says_what_comes_in_and_what_goes_out(stage: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text())) or ""
    assert len(doc.split()) >= 25, f"validator/{stage}/__init__.py needs a paragraph on its input and output"


def test_the_layer_check_sees_an_upward_import() -> None:
    # The checker itself: a report module importing the CLI would be caught.
    assert _layer("cli") > _layer("report.text")
    assert "model" in GRAPH["report.text"]
