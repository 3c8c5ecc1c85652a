"""loadgen's import graph: no cycle (counting every import: inside functions and under
TYPE_CHECKING too), no internal import hidden in a function, nothing imported from
outside loadgen but the standard library and the optional uvloop/httptools. (Module
length: tests/test_architecture.py, for every package.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "loadgen"
# the fast engines, and JSON Schema for a scenario file's check.schema (imported by
# loadgen/scenario_file.py only when a file uses it)
OPTIONAL = {"uvloop", "httptools", "jsonschema"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _package_of(mod: str, path: Path) -> str:
    return mod if path.name == "__init__.py" else mod.rpartition(".")[0]


def _imports(mod: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import statement of ``mod``."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_func: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_func or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                out.extend((a.name, func) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = _package_of(mod, path)
                    for _ in range(child.level - 1):
                        base = base.rpartition(".")[0]
                    target = f"{base}.{child.module}" if child.module else base
                else:
                    target = child.module or ""
                for a in child.names:
                    sub = f"{target}.{a.name}"
                    out.append((sub if sub in MODULES else target, func))
            visit(child, func)

    visit(tree, False)
    return out


def _graph() -> dict[str, set[str]]:
    return {
        mod: {m for m, _ in _imports(mod, path) if m in MODULES and m != mod}
        for mod, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_walker_sees_imports_everywhere() -> None:
    # the walker itself: a cycle through a function-level import is still a cycle
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert len(MODULES) > 20 and "loadgen.scenarios.admin_login" in MODULES
    edges = _graph()
    assert "loadgen.scenarios" in edges["loadgen.scenario"]
    assert "loadgen.version" in edges["loadgen.request"]


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_no_internal_import_inside_a_function() -> None:
    hidden = [
        (mod, m)
        for mod, path in MODULES.items()
        for m, in_func in _imports(mod, path)
        if in_func and (m == "loadgen" or m.startswith("loadgen."))
    ]
    assert hidden == []


def test_nothing_imported_from_outside_loadgen() -> None:
    allowed = set(sys.stdlib_module_names) | OPTIONAL | {"loadgen", "__future__"}
    outside = sorted(
        {
            (mod, m)
            for mod, path in MODULES.items()
            for m, _ in _imports(mod, path)
            if m.split(".")[0] not in allowed
        }
    )
    assert outside == []
