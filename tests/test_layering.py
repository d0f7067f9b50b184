"""The layers of the source tree (README.md "Architecture: layers"), checked on the imports themselves.

Every `import` of a ferrogate module is read with `ast` from the files: at module level, inside
functions (deferred) and under `if TYPE_CHECKING:` alike, so neither a lazy import nor a type-only
one can reach a layer above. Import-time imports (module level, not type-only) must form no cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_packaging import LAYOUT  # directory of the user's layout -> the package it installs as

# modules every layer may use: they import nothing of ferrogate themselves (checked below)
LEAVES = (
    "ferrogate.gateway.reading",
    "ferrogate.gateway.timeutil",
    "ferrogate.gateway.metrics",
    "ferrogate.gateway.redact",
    "ferrogate.gateway.positions",
    "ferrogate.gateway.ports",
)
MODEL_BASE = "ferrogate.gateway.model_base"
DRIVER_MODELS = ("ferrogate.drivers.config", "ferrogate.drivers.*.config")
# a driver's protocol codec where no library exists (HJ 212): pure, no driver runtime; the
# simulators speak it as the others speak pymodbus and asyncua
DRIVER_PROTOCOLS = ("ferrogate.drivers.*.protocol", "ferrogate.drivers.*.protocol.*")


def tree(package: str) -> tuple[str, str]:
    """Patterns for a package and every module in it."""
    return package, package + ".*"


ENERGY = tree("ferrogate.gateway.energy")
COMPLIANCE = tree("ferrogate.gateway.compliance")
COST = tree("ferrogate.gateway.cost")
POLLUTION = tree("ferrogate.gateway.pollution")
SIMULATORS = tree("ferrogate.simulators")
OWN_DRIVER = "{driver}"  # stands for the importing module's own driver package

# module (pattern) -> the ferrogate modules (patterns) it may import; the first pattern that matches wins.
# Modules that match none (gateway runtime, api, the CLI) sit on top and may import any of these.
ALLOWED: list[tuple[str, tuple[str, ...]]] = [
    (MODEL_BASE, ("ferrogate.gateway.redact",)),  # secrets read are remembered for masking in logs
    *((leaf, ()) for leaf in LEAVES),
    ("ferrogate.api.config", ()),
    # the plant model: the bottom and the drivers' device models, nothing of their runtime
    ("ferrogate.gateway.config", (MODEL_BASE, *DRIVER_MODELS)),
    ("ferrogate.gateway.alarms", ("ferrogate.gateway.reading",)),
    # accounting: the plant model and its own modules; no I/O clients, simulators, API or drivers
    *(
        (p, (*ENERGY, "ferrogate.gateway.config", "ferrogate.gateway.lineprotocol", MODEL_BASE, *LEAVES))
        for p in ENERGY
    ),
    # compliance: a pure layer on the books (accounting), the plant model and its own modules
    *((p, (*COMPLIANCE, *ENERGY, "ferrogate.gateway.config", MODEL_BASE, *LEAVES)) for p in COMPLIANCE),
    # electricity cost: pure logic above the books (and the alarm book for the demand alarm)
    *((p, (*COST, *ENERGY, "ferrogate.gateway.config", "ferrogate.gateway.alarms", MODEL_BASE, *LEAVES)) for p in COST),
    # pollutant accounting: as pure, beside the energy books (their reference-data types), raising alarms
    *(
        (p, (*POLLUTION, *ENERGY, "ferrogate.gateway.alarms", "ferrogate.gateway.config", MODEL_BASE, *LEAVES))
        for p in POLLUTION
    ),
    *(
        (p, (*SIMULATORS, "ferrogate.gateway.config", MODEL_BASE, *DRIVER_MODELS, *DRIVER_PROTOCOLS, *LEAVES))
        for p in SIMULATORS
    ),
    # shared driver pieces, then each driver package: itself and the shared pieces only (drivers apart)
    ("ferrogate.drivers", ()),
    ("ferrogate.drivers.base", LEAVES),
    ("ferrogate.drivers.config", (MODEL_BASE,)),
    ("ferrogate.drivers.*", (OWN_DRIVER, "ferrogate.drivers.base", "ferrogate.drivers.config", MODEL_BASE, *LEAVES)),
]


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the ferrogate module imported
    line: int
    deferred: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        how = " (type-only)" if self.type_only else " (deferred)" if self.deferred else ""
        return f"{self.module}:{self.line} imports {self.target}{how}"


def module_files(root: Path) -> dict[str, Path]:
    files = {}
    for top, package in LAYOUT.items():
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root / top).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join((package, *parts))] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import module` names a module; `from module import name` the module
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        else:
            targets = []
        for target in dict.fromkeys(targets):
            if target == "ferrogate" or target.startswith("ferrogate."):
                found.append(Import(module, target, node.lineno, deferred, type_only))  # type: ignore[attr-defined]
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, deferred, True)
            for child in node.orelse:
                visit(child, deferred, type_only)
            return
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    return found


@cache
def all_imports(root: Path = ROOT) -> tuple[Import, ...]:
    files = module_files(root)
    return tuple(i for module, path in files.items() for i in imports_of(module, path, set(files)))


def allowed_for(module: str) -> tuple[str, ...] | None:
    allowed = next((allowed for pattern, allowed in ALLOWED if fnmatch(module, pattern)), None)
    if allowed is None or OWN_DRIVER not in allowed:
        return allowed
    own = tree(".".join(module.split(".")[:3]))
    return tuple(p for a in allowed for p in (own if a == OWN_DRIVER else (a,)))


def layer_violations(imports: tuple[Import, ...]) -> list[str]:
    out = []
    for imp in imports:
        allowed = allowed_for(imp.module)
        if allowed is not None and not any(fnmatch(imp.target, pattern) for pattern in allowed):
            out.append(str(imp))
    return out


def cycles(imports: tuple[Import, ...]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself) in the
    graph of import-time imports (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.deferred and not imp.type_only:
            graph.setdefault(imp.module, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_scanner_sees_the_imports_the_rules_are_about() -> None:
    """So that the checks below cannot pass on an empty or misread import list."""
    seen = {(i.module, i.target) for i in all_imports()}
    assert ("ferrogate.gateway.config", "ferrogate.drivers.modbus.config") in seen
    assert ("ferrogate.gateway.plant_file", "ferrogate.simulators.config") in seen
    assert ("ferrogate.drivers.modbus.driver", "ferrogate.gateway.reading") in seen
    deferred = {(i.module, i.target) for i in all_imports() if i.deferred}
    assert ("ferrogate.gateway.collect", "ferrogate.drivers.opcua.driver") in deferred
    assert all(allowed_for(m) is not None for m in ("ferrogate.drivers.modbus.plan", "ferrogate.simulators.plant"))


def test_every_import_respects_the_layers() -> None:
    assert layer_violations(all_imports()) == []


def test_no_import_cycles() -> None:
    assert cycles(all_imports()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a lower layer reaching up, also lazily or for typing only
        ("from ferrogate.simulators.config import Simulation\n", "ferrogate.simulators.config"),
        ("def f():\n    from ferrogate.gateway.energy.model import resolve\n", "ferrogate.gateway.energy.model"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ferrogate.api.config import ApiConfig\n",
            "ferrogate.api.config",
        ),
    ],
)
def test_a_plant_model_reaching_up_is_a_violation(tmp_path: Path, source: str, expected: str) -> None:
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "config.py").write_text(source)
    for top in LAYOUT:
        (tmp_path / top).mkdir(exist_ok=True)
    violations = layer_violations(all_imports(tmp_path))
    assert [v.split(" imports ")[1].split(" ")[0] for v in violations] == [expected]


def test_a_cycle_is_found(tmp_path: Path) -> None:
    for top in LAYOUT:
        (tmp_path / top).mkdir()
    (tmp_path / "gateway" / "a.py").write_text("from ferrogate.gateway import b\n")
    (tmp_path / "gateway" / "b.py").write_text("from ferrogate.gateway.a import X\n")
    (tmp_path / "gateway" / "c.py").write_text("def f():\n    from ferrogate.gateway.a import X\n")
    assert cycles(all_imports(tmp_path)) == [["ferrogate.gateway.a", "ferrogate.gateway.b"]]
