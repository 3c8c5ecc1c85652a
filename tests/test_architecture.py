"""The shape the code keeps (docs/architecture.md): one job per module, imports one way,
and the map names every module.

Read from the source with ``ast``, imports inside functions included, so a cycle cannot
hide behind a lazy import. The map is read from docs/architecture.md: in each section
headed by a package (``## `stackbench/` …``), the tables whose first column is "module"
name that package's modules, one row per job, paths relative to the package.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackbench.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stackbench", "loadgen", "shared_fixtures", "benchmarks")
MAP = ROOT / "docs" / "architecture.md"
APPS = ROOT / "reference_apps"
LONG_LINES = 400  # over this a module is listed (a warning); the map says why it is one
MAX_LINES = 600  # over this a module fails
# Bench variants' code runs inside an app's server, its directory on PYTHONPATH: their
# imports are top-level names (a sibling module, or the app's own modules).
SERVED = {variant.directory.relative_to(ROOT) for variant in VARIANTS.values()}


class LongModuleWarning(UserWarning):
    """A module over LONG_LINES lines, or the map's list of them out of date."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _served(path: Path) -> bool:
    return path.parent.relative_to(ROOT) in SERVED


def _import_nodes(tree: ast.AST) -> Iterable[tuple[int, str, list[str]]]:
    """(level, module, names) of every import, at any depth of the code."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", [alias.name for alias in node.names]


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for level, module, names in _import_nodes(ast.parse(path.read_text())):
        base = module
        if level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - level + 1]
            base = ".".join([*anchor, *([module] if module else [])])
        elif _served(path) and (path.parent / f"{module.split('.')[0]}.py").exists():
            base = f"{package}.{module}"  # a sibling, imported by its top-level name
        for target in [base, *(f"{base}.{alias}" for alias in names)]:
            # the deepest project module the import names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how packages are built
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _app_module(app: Path, dotted: str) -> str | None:
    """The deepest module of the app at ``app`` that ``dotted`` names, if it names one."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        where = app.joinpath(*parts[:n])
        if where.with_suffix(".py").is_file() or (where / "__init__.py").is_file():
            return ".".join(parts[:n])
    return None


def _app_imports(path: Path, apps: Iterable[Path]) -> set[str]:
    """The modules of ``apps`` that the module at ``path`` imports (absolute imports)."""
    found = set()
    for level, module, names in _import_nodes(ast.parse(path.read_text())):
        if level:
            continue
        for dotted in [module, *(f"{module}.{alias}" for alias in names)]:
            for app in apps:
                if (hit := _app_module(app, dotted)) is not None:
                    found.add(hit)
    return found


def _served_apps(directory: Path) -> list[Path]:
    """The apps whose servers put ``directory`` on their PYTHONPATH."""
    names = {app for v in VARIANTS.values() if v.directory == ROOT / directory for app in v.apps}
    return [APPS / name for name in sorted(names)]


# --------------------------------------------------------------------------- the map


@dataclass
class Map:
    """What docs/architecture.md declares."""

    modules: list[str] = field(default_factory=list)  # repo-relative paths, as named
    app_imports: set[tuple[str, str]] = field(default_factory=set)  # (served module, app module)
    loadgen_importers: set[str] = field(default_factory=set)  # harness modules
    long: set[str] = field(default_factory=set)  # modules the map says are long


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def read_map(text: str) -> Map:
    """The modules, app imports, loadgen importers and long modules the map names."""
    found = Map()
    root = ""  # the package a "## `pkg/`" section is about
    header: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("## "):
            packages = [c for c in _code(line) if c.rstrip("/") in PACKAGES]
            root = packages[0] if packages else ""
            continue
        if not line.startswith("|"):
            header = []
            continue
        if not header:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if set(following.replace("|", "").strip()) <= set("-: ") and following.strip():
                header = [h.lower() for h in _cells(line)]
            continue
        cells = _cells(line)
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        named = [c for c in _code(cells[0]) if c.endswith(".py")]
        if header[0] == "module" and root:
            paths = [root + module for module in named]
            found.modules += paths
            if "imports of the app" in header:
                declared = _code(cells[header.index("imports of the app")])
                found.app_imports |= {(path, module) for path in paths for module in declared}
        elif header[0] == "harness module":
            found.loadgen_importers |= set(named)
        elif header[0] == "long module":
            found.long |= set(named)
    return found


def _doc_only(path: Path) -> bool:
    """An ``__init__.py`` holding only its docstring: a package marker, named by its package."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body
    )


def map_problems(declared: Map, files: dict[str, bool]) -> list[str]:
    """Modules the map does not name, names it gives that are not modules, names twice.
    ``files``: each module's path, and whether the map must name it."""
    problems = [
        f"{name}: not in the map"
        for name, required in sorted(files.items())
        if required and name not in declared.modules
    ]
    problems += [
        f"{name}: named by the map, but no such module"
        for name in declared.modules
        if name not in files
    ]
    seen: set[str] = set()
    for name in declared.modules:
        if name in seen:
            problems.append(f"{name}: named twice by the map")
        seen.add(name)
    return problems


def _module_files() -> dict[str, bool]:
    """Every module by its repo-relative path, and whether the map must name it."""
    return {
        str(path.relative_to(ROOT)): not _doc_only(path)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def line_counts() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def too_long(counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """The modules over MAX_LINES (they fail) and those over LONG_LINES (listed)."""
    return (
        {m: n for m, n in counts.items() if n > MAX_LINES},
        {m: n for m, n in counts.items() if n > LONG_LINES},
    )


def warn_long(long: dict[str, int], listed: set[str]) -> None:
    """The long modules, as a warning; another if the map's list of them is not theirs."""
    if long:
        listing = ", ".join(f"{m} ({n})" for m, n in sorted(long.items()))
        warnings.warn(f"over {LONG_LINES} lines: {listing}", LongModuleWarning, stacklevel=2)
    if listed != set(long):
        warnings.warn(
            "docs/architecture.md's list of long modules is out of date: "
            f"add {sorted(set(long) - listed)}, remove {sorted(listed - set(long))}",
            LongModuleWarning,
            stacklevel=2,
        )


# --------------------------------------------------------------------------- the tests


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_has_teeth() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_and_served_imports() -> None:
    graph = _graph()
    assert "loadgen" in graph["stackbench.run"]  # `import loadgen` inside a function
    overlays = "stackbench.variants.django_settings"
    assert f"{overlays}.sb_overlay" in graph[f"{overlays}.sb_no_csrf"]  # a sibling, top-level
    assert f"{overlays}.sb_psycopg2" in graph[f"{overlays}.sb_no_middleware_psycopg2"]


def test_imports_flow_one_way() -> None:
    graph = _graph()
    rules = {  # package -> the packages it may not import
        "loadgen": {"stackbench", "shared_fixtures", "benchmarks"},
        "shared_fixtures": {"stackbench", "loadgen", "benchmarks"},
        "stackbench": {"benchmarks"},
        # it runs the loadgen it measures (this one, or --baseline's) as a subprocess
        "benchmarks": {"stackbench", "shared_fixtures", "loadgen"},
    }
    for name, targets in graph.items():
        banned = rules[name.split(".")[0]]
        assert not {t for t in targets if t.split(".")[0] in banned}, (name, targets)
    for path in APPS.rglob("*.py"):
        for level, module, _ in _import_nodes(ast.parse(path.read_text())):
            assert level or not module.startswith(PACKAGES), (
                f"{path.relative_to(ROOT)} imports {module}: an app stands alone"
            )


def test_no_module_imports_app_code_but_the_variants_the_map_declares() -> None:
    """The harness never imports app code; a bench variant imports exactly what the map's
    "imports of the app" column says (it runs inside the app's server)."""
    declared = read_map(MAP.read_text())
    every_app = sorted(path for path in APPS.iterdir() if path.is_dir())
    found: set[tuple[str, str]] = set()
    modules = _modules()
    for name, path in modules.items():
        relative = str(path.relative_to(ROOT))
        if not _served(path):
            assert not _app_imports(path, every_app), f"{relative} imports app code"
            continue
        apps = _served_apps(path.parent.relative_to(ROOT))
        found |= {(relative, module) for module in _app_imports(path, apps)}
        outside = {
            t
            for t in _imports(name, path, set(modules))
            if not t.startswith(name.rpartition(".")[0])
        }
        assert not outside, f"{relative} runs in the app's server: it cannot import {outside}"
    assert found == declared.app_imports, (
        f"not declared in docs/architecture.md: {sorted(found - declared.app_imports)}; "
        f"declared but not imported: {sorted(declared.app_imports - found)}"
    )
    assert len(found) >= 19  # the 10 overlays' project.settings, fastapi_sqla's main/db/models


def test_the_harness_modules_that_import_loadgen_are_the_ones_the_map_names() -> None:
    graph, modules = _graph(), _modules()
    importers = {
        str(modules[name].relative_to(ROOT))
        for name, targets in graph.items()
        if name.startswith("stackbench.") and any(t.split(".")[0] == "loadgen" for t in targets)
    }
    declared = read_map(MAP.read_text()).loadgen_importers
    assert importers == declared, (
        f"import loadgen but the map does not say so: {sorted(importers - declared)}; "
        f"named by the map but do not: {sorted(declared - importers)}"
    )


def test_the_map_names_every_module() -> None:
    assert map_problems(read_map(MAP.read_text()), _module_files()) == []


def test_the_map_check_has_teeth() -> None:
    text = """
## `loadgen/`: the load generator

| module | its one job |
|---|---|
| `cli.py`, `api.py` | entry |
| `gone.py` | a module since removed |
| `cli.py` | named again |

## `stackbench/`

| module | its one change | imports of the app |
|---|---|---|
| `variants/fastapi_sqla/sb_x.py` | x | `main`, `models` |

| harness module | what it takes |
|---|---|
| `stackbench/options.py` | durations |
"""
    files = {
        "loadgen/cli.py": True,
        "loadgen/api.py": True,
        "loadgen/run.py": True,
        "loadgen/scenarios/__init__.py": False,  # only a docstring: need not be named
        "stackbench/variants/fastapi_sqla/sb_x.py": True,
    }
    declared = read_map(text)
    assert map_problems(declared, files) == [
        "loadgen/run.py: not in the map",
        "loadgen/gone.py: named by the map, but no such module",
        "loadgen/cli.py: named twice by the map",
    ]
    sb_x = "stackbench/variants/fastapi_sqla/sb_x.py"
    assert declared.app_imports == {(sb_x, "main"), (sb_x, "models")}
    assert declared.loadgen_importers == {"stackbench/options.py"}


def test_no_module_is_over_the_line_limit() -> None:
    """Over MAX_LINES fails; over LONG_LINES is a warning (the map lists them and why)."""
    over, long = too_long(line_counts())
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"
    warn_long(long, read_map(MAP.read_text()).long)


def test_the_line_limits_have_teeth() -> None:
    counts = {"a.py": MAX_LINES + 1, "b.py": LONG_LINES + 1, "c.py": LONG_LINES}
    over, long = too_long(counts)
    assert over == {"a.py": MAX_LINES + 1}
    assert long == {"a.py": MAX_LINES + 1, "b.py": LONG_LINES + 1}
    with pytest.warns(LongModuleWarning) as caught:
        warn_long(long, {"a.py", "gone.py"})
    assert [str(w.message) for w in caught] == [
        f"over {LONG_LINES} lines: a.py ({MAX_LINES + 1}), b.py ({LONG_LINES + 1})",
        "docs/architecture.md's list of long modules is out of date: "
        "add ['b.py'], remove ['gone.py']",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_long({}, set())  # nothing long, nothing listed: silent
