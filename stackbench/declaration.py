"""An app's declaration: what the harness knows about an app, read from the app's own
directory and never from its code (docs/your-app.md).

It is ``stackbench.toml`` in the app's directory, or the ``[tool.stackbench]`` table of
its ``pyproject.toml`` (one of the two, read the same way). ``KEYS`` below is its one
schema: each key's kind, default and meaning. ``read`` checks a declaration against it
and against the directory (the requirement files and entry modules exist, placeholders
are known) and names the file and the key of the first problem in one line. Standard
library only: the noxfile reads declarations to list the pairs.
"""

from __future__ import annotations

import re
import shlex
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DECLARATION = "stackbench.toml"
PYPROJECT = "pyproject.toml"
SCENARIO_FILE = "scenarios.toml"  # the default scenario file, beside the declaration
ASGI, WSGI = "asgi", "wsgi"

# What the harness fills in where an environment value names it (``"{database_url}"``).
PLACEHOLDERS = {
    "database_url": "the PostgreSQL URL of the app's database (postgresql://user:password@host:port/name)",
    "database_host": "that database's host",
    "database_port": "its port",
    "database_name": "its name",
    "database_user": "its user",
    "database_password": "its password (empty for the embedded PostgreSQL)",
    "upstream_url": "the slow upstream service the contract's /slow/http endpoints call",
    "pool_size": "--pool-size: database connections per server process (default 10)",
    "secret_key": "$SECRET_KEY when set, else a new random key per run (never written anywhere)",
    "admin_user": "the staff user the contract's admin scenarios log in as",
    "admin_password": "its password, random per harness process",
}


class DeclarationError(ValueError):
    """A declaration that cannot be used: one line naming the file and the key; exit 2."""


def _fail(where: str, key: str, problem: str) -> DeclarationError:
    return DeclarationError(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


# -- the kinds of values --------------------------------------------------------------
Check = Callable[[Any, Path], Any]  # (the value read, the app's directory) -> the value kept


class Problem(ValueError):
    """A value of the wrong kind; the caller names the file and the key."""


def text(value: Any, directory: Path) -> str:
    if not isinstance(value, str):
        raise Problem(f"must be a string, not {_kind(value)}")
    return value


def flag(value: Any, directory: Path) -> bool:
    if not isinstance(value, bool):
        raise Problem(f"must be true or false, not {_kind(value)}")
    return value


def url_path(value: Any, directory: Path) -> str:
    path = text(value, directory)
    if not path.startswith("/"):
        raise Problem(f"must be a URL path starting with /, not {path!r}")
    return path


def prefixes(value: Any, directory: Path) -> tuple[str, ...]:
    items = _list(value, text, directory)
    for prefix in items:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise Problem(f"each is '' or a path like /api (no trailing /), not {prefix!r}")
    if not items:
        raise Problem("must name at least one prefix ('' is the root)")
    return tuple(items)


def files(value: Any, directory: Path) -> tuple[Path, ...]:
    names = _list(value, text, directory)
    if not names:
        raise Problem("must name at least one file")
    return tuple(existing_file(name, directory) for name in names)


def existing_file(value: Any, directory: Path) -> Path:
    name = text(value, directory)
    path = (directory / name).resolve()
    if not path.is_file():
        raise Problem(f"{name} does not exist in {directory}")
    return path


def command(value: Any, directory: Path) -> tuple[str, ...]:
    line = text(value, directory)
    try:
        argv = tuple(shlex.split(line))
    except ValueError as exc:
        raise Problem(f"cannot split {line!r} as a shell would: {exc}") from None
    if not argv:
        raise Problem("is an empty command")
    script = argv[1] if len(argv) > 1 and argv[0].startswith("python") else ""
    if script.endswith(".py") and not (directory / script).is_file():
        raise Problem(f"{line!r}: {script} does not exist in {directory}")
    return argv


def commands(value: Any, directory: Path) -> tuple[tuple[str, ...], ...]:
    return tuple(_list(value, command, directory))


def entries(value: Any, directory: Path) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise Problem('must be a table naming asgi and/or wsgi, e.g. asgi = "main:app"')
    found = {}
    for interface, entry in value.items():
        if interface not in (ASGI, WSGI):
            raise Problem(f"{interface!r} is not an interface (asgi, wsgi)")
        found[interface] = _entry(interface, text(entry, directory), directory)
    return found


_ENTRY = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)")


def _entry(interface: str, entry: str, directory: Path) -> str:
    """``module:attribute`` whose module is a file in the directory (it is not imported)."""
    match = _ENTRY.fullmatch(entry)
    if match is None:
        raise Problem(f"{interface} = {entry!r} is not module:attribute (e.g. main:app)")
    module = directory.joinpath(*match.group(1).split("."))
    if not (module.with_suffix(".py").is_file() or (module / "__init__.py").is_file()):
        raise Problem(
            f"{interface} = {entry!r}: module {match.group(1)} does not exist in {directory} "
            f"(no {module.relative_to(directory)}.py or its package)"
        )
    return entry


def environment(value: Any, directory: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise Problem("must be a table of VARIABLE = value")
    pairs = []
    for name, setting in value.items():
        if not isinstance(setting, str):
            raise Problem(f"{name} must be a string, not {_kind(setting)}")
        for named in placeholders_in(setting):
            if named not in PLACEHOLDERS:
                raise Problem(
                    f"{name}: unknown placeholder {{{named}}} (known: {', '.join(PLACEHOLDERS)})"
                )
        pairs.append((name, setting))
    return tuple(pairs)


def names(value: Any, directory: Path) -> tuple[str, ...]:
    return tuple(_list(value, text, directory))


def placeholders_in(value: str) -> list[str]:
    """The ``{name}`` fields of an environment value (``{{`` is a literal brace)."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as exc:
        raise Problem(f"{value!r}: {exc} (a literal brace is written {{{{ or }}}})") from None


def _list(value: Any, each: Check, directory: Path) -> list[Any]:
    if not isinstance(value, list):
        raise Problem(f"must be a list, not {_kind(value)}")
    return [each(item, directory) for item in value]


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), type(value).__name__
    )


# -- the schema -----------------------------------------------------------------------
REQUIRED = object()


@dataclass(frozen=True)
class Key:
    check: Check
    default: Any
    doc: str


KEYS: dict[str, Key] = {
    "description": Key(text, "", "one line saying what the app is (`matrix --json` gives it)"),
    "interfaces": Key(
        entries,
        REQUIRED,
        "its entry points, `module:attribute` importable from the app's directory: "
        "`asgi = ...` and/or `wsgi = ...`; the servers that speak one of them serve it",
    ),
    "requirements": Key(
        files,
        REQUIRED,
        "its requirement files, relative to the directory (`pip install -r` each); the "
        "server's package is added by the harness",
    ),
    "contract": Key(
        flag,
        False,
        "true: it serves the project's contract (shared_fixtures/CONTRACT.md), so it is "
        "served on the contract's schema and seed, smoke-checked against it and loaded "
        "with the contract's scenarios",
    ),
    "schema": Key(
        command,
        None,
        "the command that creates its tables on an empty database, run in the directory "
        "(e.g. `python manage.py migrate --noinput`, `alembic upgrade head`)",
    ),
    "setup": Key(
        commands,
        (),
        "commands run in the directory before each server starts, after the schema (e.g. "
        "`python manage.py ensure_admin`)",
    ),
    "health": Key(url_path, "/health", "a path that answers 200 once the app is ready"),
    "prefixes": Key(
        prefixes,
        ("",),
        "where it serves the contract: the root ('') and any mount (django_fastapi's "
        "/fastapi); each is smoke-checked and conformance-tested",
    ),
    "lifespan": Key(
        flag,
        True,
        "false for an ASGI app with no lifespan handler (Django): servers that probe for "
        "one get it switched off",
    ),
    "driver_switch": Key(
        flag,
        False,
        "true when it reads DJANGO_DB_DRIVER (psycopg or psycopg2) and PSYCOGREEN: the "
        "servers that run psycopg2 under green threads set them, and serve only such apps",
    ),
    "environment": Key(
        environment,
        (),
        "each variable the harness sets for the app (its servers, schema and setup "
        "commands): a fixed value, or `{placeholder}`s it fills in",
    ),
    "also_reads": Key(
        names,
        (),
        "variables the app reads with defaults of its own; they reach it from your shell "
        "as they are set there",
    ),
    "scenarios": Key(
        existing_file,
        None,
        "its scenario file, relative to the directory; `bench --scenarios NAME` runs its "
        "scenario NAME, and all of them by default",
    ),
}


@dataclass(frozen=True)
class Declaration:
    """A checked declaration: the file it came from, each key's value, and the table as
    written (results record it)."""

    file: Path
    values: Mapping[str, Any]
    table: Mapping[str, Any]


def find(directory: Path) -> tuple[Path, dict[str, Any]]:
    """The declaration's file and its table; DeclarationError when there is none (or two)."""
    own, pyproject = directory / DECLARATION, directory / PYPROJECT
    tables = []
    if own.is_file():
        tables.append((own, _toml(own)))
    if pyproject.is_file():
        tool = _toml(pyproject).get("tool", {})
        if isinstance(tool, dict) and "stackbench" in tool:
            if not isinstance(tool["stackbench"], dict):
                raise _fail(str(pyproject), "tool.stackbench", "must be a table")
            tables.append((pyproject, tool["stackbench"]))
    if not tables:
        if not directory.is_dir():
            raise DeclarationError(f"{directory}: no such directory")
        raise DeclarationError(
            f"{directory}: no {DECLARATION} (nor a [tool.stackbench] table in "
            f"{PYPROJECT}): an app declares itself (docs/your-app.md)"
        )
    if len(tables) > 1:
        raise _fail(
            str(own), "", f"declared twice: here and in {pyproject}'s [tool.stackbench]; keep one"
        )
    return tables[0]


def read(directory: Path) -> Declaration:
    """The directory's declaration, checked against ``KEYS`` and the directory."""
    directory = directory.resolve()
    file, table = find(directory)
    where = str(file) + (" [tool.stackbench]" if file.name == PYPROJECT else "")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise _fail(where, unknown[0], f"unknown key (keys: {', '.join(KEYS)})")
    values: dict[str, Any] = {}
    for name, key in KEYS.items():
        if name not in table:
            if key.default is REQUIRED:
                raise _fail(where, name, "missing (docs/your-app.md)")
            values[name] = key.default
            continue
        try:
            values[name] = key.check(table[name], directory)
        except Problem as exc:
            raise _fail(where, name, str(exc)) from None
    if values["scenarios"] is None and (directory / SCENARIO_FILE).is_file():
        values["scenarios"] = directory / SCENARIO_FILE
    return Declaration(file, values, table)


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{path}: not TOML: {exc}") from None
    except OSError as exc:
        raise DeclarationError(f"{path}: unreadable: {exc.strerror or exc}") from None
