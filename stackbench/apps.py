"""The apps: each is a directory with a declaration (stackbench/declaration.py), and its
id is the directory's name.

The reference apps are the directories under ``reference_apps/``, found by their
declarations when this module is imported: copy one to a new directory there and the
matrix, the nox sessions and CI have one more app. Any other directory with a declaration
is an app too (``bench --app PATH``). The harness reads declarations; it never imports an
app's code to learn about it. Standard library only: the noxfile imports it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackbench.declaration import ASGI, WSGI, DeclarationError, read

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = ROOT / "reference_apps"

__all__ = ["APPS", "ASGI", "WSGI", "App", "DeclarationError", "UnknownAppError", "get_app"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class App:
    """An app as its declaration describes it (docs/your-app.md: each key)."""

    id: str
    directory: Path
    # interface -> "module:attribute", importable with the app's directory as cwd.
    entries: dict[str, str]
    description: str = ""
    requirements: tuple[Path, ...] = ()
    contract: bool = False
    schema: tuple[str, ...] | None = None
    setup: tuple[tuple[str, ...], ...] = ()
    health: str = "/health"
    prefixes: tuple[str, ...] = ("",)
    lifespan: bool = True
    driver_switch: bool = False
    environment: tuple[tuple[str, str], ...] = ()
    also_reads: tuple[str, ...] = ()
    scenarios: Path | None = None
    declaration: Path | None = None  # the file it was read from
    declared: Mapping[str, Any] = field(default_factory=dict)  # that table, as written
    # Not declared: the paths the smoke check may judge of an app that serves only part of
    # the contract (experiment techempower builds such apps); None: all of them.
    smoke_paths: tuple[str, ...] | None = None

    @property
    def interfaces(self) -> tuple[str, ...]:
        return tuple(self.entries)

    @property
    def declared_in(self) -> str:
        """The declaration's file as messages name it (relative to the repository inside it)."""
        if self.declaration is None:
            return f"{self.id} (not declared)"
        path = self.declaration
        return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    def environment_with(self, values: Mapping[str, str]) -> dict[str, str]:
        """The declared environment, its placeholders filled from ``values``."""
        return {name: value.format_map(values) for name, value in self.environment}

    def fixed_environment(self) -> dict[str, str]:
        """The declared variables whose values have no placeholder."""
        return {name: value for name, value in self.environment if "{" not in value}


def load_app(directory: Path) -> App:
    """The app in ``directory``, from its declaration; DeclarationError names what is wrong."""
    directory = directory.expanduser().resolve()
    declared = read(directory)
    if not _ID.fullmatch(directory.name):
        raise DeclarationError(
            f"{directory}: an app's id is its directory's name, which must be letters, "
            "digits, '_', '-' or '.'"
        )
    values = declared.values
    return App(
        id=directory.name,
        directory=directory,
        entries=dict(values["interfaces"]),
        description=values["description"],
        requirements=values["requirements"],
        contract=values["contract"],
        schema=values["schema"],
        setup=values["setup"],
        health=values["health"],
        prefixes=values["prefixes"],
        lifespan=values["lifespan"],
        driver_switch=values["driver_switch"],
        environment=values["environment"],
        also_reads=values["also_reads"],
        scenarios=values["scenarios"],
        declaration=declared.file,
        declared=declared.table,
    )


def discover(apps_dir: Path) -> tuple[dict[str, App], dict[str, DeclarationError]]:
    """Every directory under ``apps_dir`` as an app, by id; those whose declaration is
    missing or wrong, with the error (``get_app`` and the matrix raise it: an app is never
    quietly left out). Hidden and ``_`` directories are not apps."""
    found: dict[str, App] = {}
    broken: dict[str, DeclarationError] = {}
    for directory in sorted(apps_dir.iterdir()) if apps_dir.is_dir() else ():
        if not directory.is_dir() or directory.name.startswith((".", "_")):
            continue
        try:
            found[directory.name] = load_app(directory)
        except DeclarationError as exc:
            broken[directory.name] = exc
    return found, broken


APPS, BROKEN = discover(APPS_DIR)


class UnknownAppError(ValueError):
    pass


def get_app(name: str) -> App:
    """A reference app by id, or the app in a directory (a path: ``./mine``, ``~/site``)."""
    if name in APPS:
        return APPS[name]
    if name in BROKEN:
        raise BROKEN[name]
    path = Path(name).expanduser()
    if os.sep in name or name.startswith((".", "~")) or path.is_dir():
        return load_app(path)
    raise UnknownAppError(
        f"unknown app {name!r}; valid apps: {', '.join(APPS)} (or a directory with a "
        "stackbench.toml, e.g. ./myapp)"
    )


def check_apps() -> None:
    """Raise the first reference app's declaration error, if any (naming its file)."""
    for error in BROKEN.values():
        raise error
