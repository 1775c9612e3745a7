"""The import rule, enforced by walking every import of the product code with ``ast``.

Every ``import``/``from ... import`` counts wherever it is written: at module level, inside
functions, in ``with workflow.unsafe.imports_passed_through():`` blocks, under
``if TYPE_CHECKING:``, in ``try`` blocks (plus ``importlib.import_module("literal")``).

Layers of ``lifecycle``, bottom to top; a module imports only its own layer or those below:

    lifecycle.domain
    lifecycle.config, lifecycle.faults, lifecycle.logs   (the foundation: one layer)
    lifecycle.persistence
    lifecycle.storage
    lifecycle.client
    lifecycle.api
    lifecycle.dev
    lifecycle.cli

``lifecycle.domain`` imports no other layer; ``workflows`` import only ``lifecycle.domain``,
``activities`` (activity references) and ``workflows``; ``activities`` and ``workflows`` sit
between ``lifecycle.storage`` and ``lifecycle.client`` (the client starts workflows by
reference); nothing in ``lifecycle`` imports ``worker``, ``starter_api`` or ``examples``; the
project's modules have no import cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lifecycle", "workflows", "activities")
TOP_LEVEL = ("worker", "starter_api", "examples")  # modules (examples: if it ever exists)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("lifecycle.domain",),
    ("lifecycle.config", "lifecycle.faults", "lifecycle.logs"),
    ("lifecycle.persistence",),
    ("lifecycle.storage",),
    ("lifecycle.client",),
    ("lifecycle.api", "lifecycle.console"),
    ("lifecycle.dev",),
    ("lifecycle.cli",),
)
LAYER_NAMES = ["domain", "config/faults/logs", *(names[0].split(".")[1] for names in LAYERS[2:])]


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (both project modules) at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} -> {self.target}"


@cache
def modules() -> dict[str, Path]:
    """Every module of the product code: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    for name in TOP_LEVEL:
        if (ROOT / f"{name}.py").is_file():
            found[name] = ROOT / f"{name}.py"
        elif (ROOT / name / "__init__.py").is_file():
            found[name] = ROOT / name / "__init__.py"
    return found


def project_module(name: str) -> str | None:
    """The project module ``name`` refers to (its longest known prefix), None if external."""
    known = modules()
    parts = name.split(".")
    if parts[0] not in PACKAGES + TOP_LEVEL:
        return None
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return name  # a project name that does not exist (yet): still an edge to judge


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every dotted name ``module`` imports, anywhere in the file, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            yield base, node.lineno
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}", node.lineno  # a submodule, if one
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
        ):
            yield node.args[0].value, node.lineno


@cache
def edges() -> tuple[Edge, ...]:
    """Every import of one project module by another (self-imports left out)."""
    found: set[Edge] = set()
    for module, path in modules().items():
        for name, line in imported_names(module, path):
            target = project_module(name)
            if target is None or target == module:
                continue
            # ``from pkg import sub`` yields both ``pkg`` and ``pkg.sub``: keep the deeper one
            found.add(Edge(module, target, path, line))
    deepest: dict[tuple[str, Path, int], set[str]] = defaultdict(set)
    for e in found:
        deepest[(e.source, e.path, e.line)].add(e.target)
    kept = {
        e
        for e in found
        if not any(t.startswith(e.target + ".") for t in deepest[(e.source, e.path, e.line)])
    }
    return tuple(sorted(kept, key=lambda e: (e.source, e.line, e.target)))


def layer(module: str) -> int | None:
    for index, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return index
    return None


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def report(title: str, bad: list[Edge]) -> str:
    return f"{title} ({len(bad)}):\n" + "\n".join(f"  {e}" for e in bad)


# -- the walker itself -------------------------------------------------------------------


def test_the_walker_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "from temporalio import workflow\n"
        "with workflow.unsafe.imports_passed_through():\n"
        "    from lifecycle.domain.states import TenantState\n"
        "if TYPE_CHECKING:\n"
        "    from lifecycle.client.lifecycle import LifecycleClient\n"
        "def later():\n"
        "    import worker\n"
        "    from . import common\n"
        "    from ..lifecycle import config\n"
        "    importlib.import_module('starter_api')\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source)
    names = {name for name, _ in imported_names("workflows.probe", path)}
    assert {
        "lifecycle.domain.states",
        "lifecycle.client.lifecycle",
        "worker",
        "workflows.common",
        "lifecycle.config",
        "starter_api",
    } <= names
    assert project_module("lifecycle.domain.states.TenantState") == "lifecycle.domain.states"
    assert project_module("temporalio.workflow") is None


def test_the_walker_finds_the_code_and_its_imports() -> None:
    found = modules()
    assert {"lifecycle.domain.states", "workflows.upgrade", "activities.billing", "worker"} <= set(
        found
    )
    pairs = {(e.source, e.target) for e in edges()}
    # imports made inside ``imports_passed_through`` blocks are seen
    assert ("workflows.upgrade", "lifecycle.domain.states") in pairs
    assert ("worker", "workflows.upgrade") in pairs


def test_every_lifecycle_module_is_in_a_layer() -> None:
    loose = [m for m in modules() if in_package(m, "lifecycle") and m != "lifecycle"]
    unplaced = sorted(m for m in loose if layer(m) is None)
    assert not unplaced, f"lifecycle modules in no layer (add them to LAYERS): {unplaced}"


# -- the rules -----------------------------------------------------------------------------


def test_lifecycle_imports_only_its_own_layer_or_below() -> None:
    bad = []
    for e in edges():
        src, dst = layer(e.source), layer(e.target)
        if src is not None and dst is not None and dst > src:
            bad.append(e)
    assert not bad, report(
        "upward imports (layers: " + " < ".join(LAYER_NAMES) + ")",
        bad,
    )


def test_domain_imports_no_other_layer() -> None:
    bad = [
        e
        for e in edges()
        if in_package(e.source, "lifecycle.domain")
        and not in_package(e.target, "lifecycle.domain")
        and e.target != "lifecycle"
    ]
    assert not bad, report("lifecycle.domain importing outside lifecycle.domain", bad)


def test_workflows_import_only_domain_activities_and_workflows() -> None:
    allowed = ("lifecycle.domain", "activities", "workflows")
    bad = [
        e
        for e in edges()
        if in_package(e.source, "workflows")
        and not any(in_package(e.target, a) for a in allowed)
        and e.target != "lifecycle"
    ]
    assert not bad, report("workflows importing beyond domain, activities, workflows", bad)


def test_activities_and_workflows_sit_between_storage_and_client() -> None:
    client = layer("lifecycle.client")
    bad = [
        e
        for e in edges()
        if (
            (in_package(e.source, "activities") or in_package(e.source, "workflows"))
            and (layer(e.target) or 0) >= client
        )
        or (
            (in_package(e.target, "activities") or in_package(e.target, "workflows"))
            and layer(e.source) is not None
            and layer(e.source) < client
        )
    ]
    assert not bad, report("activities/workflows above client, or imported below it", bad)


def test_lifecycle_never_imports_worker_starter_api_or_examples() -> None:
    bad = [
        e
        for e in edges()
        if in_package(e.source, "lifecycle") and any(in_package(e.target, t) for t in TOP_LEVEL)
    ]
    assert not bad, report("lifecycle importing worker/starter_api/examples", bad)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_strongly_connected_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert shortest_cycle(graph, ["a", "b", "c"]) == ["a", "b", "a"]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def shortest_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """A shortest cycle inside one component: ``[a, b, ..., a]``."""
    best: list[str] = []
    for start in members:
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    if not best or len(paths[node]) + 1 < len(best):
                        best = [*paths[node], start]
                    queue = []
                    break
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
    return best


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges():
        graph[e.source].add(e.target)
        where[(e.source, e.target)].append(e)
    cycles = strongly_connected(graph)
    lines = []
    for members in cycles:
        loop = shortest_cycle(graph, members)
        lines.append(f"{len(members)} modules in a cycle: {', '.join(members)}")
        lines.append("  e.g. " + " -> ".join(loop) + ", by the imports:")
        lines += [f"    {e}" for a, b in pairwise(loop) for e in where[(a, b)]]
    assert not cycles, f"import cycles ({len(cycles)}):\n" + "\n".join(lines)
