"""The reference apps: where each lives, what it serves, and how it is prepared.

One place declares this; tests, the bench sessions and the matrix derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = ROOT / "reference_apps"

ASGI, WSGI = "asgi", "wsgi"


@dataclass(frozen=True)
class App:
    id: str
    # interface -> "module:attribute", importable with the app's directory as cwd.
    entries: dict[str, str]
    stack: str
    # URL prefixes where the whole contract is served ("" is the root).
    prefixes: tuple[str, ...] = ("",)
    django: bool = False
    # Extra environment the app's servers need (e.g. which Django settings module).
    env: tuple[tuple[str, str], ...] = ()
    # Reads DJANGO_DB_DRIVER / PSYCOGREEN, so it can run psycopg2 under green threads.
    driver_switch: bool = False
    # An app that is not one of ours (experiment techempower): where it is served from, the
    # path that answers 200 once it is ready, and the paths the smoke check may judge.
    home: Path | None = None
    ready_path: str = "/health"
    smoke_paths: tuple[str, ...] | None = None  # None: every one of the contract's checks

    @property
    def directory(self) -> Path:
        return self.home or APPS_DIR / self.id

    @property
    def requirements(self) -> Path:
        return self.directory / "requirements.txt"

    @property
    def interfaces(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def exists(self) -> bool:
        """True once the app's directory has landed (the matrix grows as apps do)."""
        return self.requirements.is_file()

    def setup_commands(self) -> list[list[str]]:
        """Run in the app's directory before serving: Django's tables and staff user.

        schema.sql has made the contract's tables already (the circus migration's
        `IF NOT EXISTS` DDL leaves them as they are); the other apps' migrations are not
        run: schema.sql stays the one source of the benchmark's tables.
        """
        if not self.django:
            return []
        return [
            ["manage.py", "migrate", "--noinput", "--verbosity", "0"],
            ["manage.py", "ensure_admin"],
        ]


_DJANGO_ENV = (("DJANGO_SETTINGS_MODULE", "project.settings"),)

APPS: dict[str, App] = {
    app.id: app
    for app in (
        App(
            "django_sync",
            {WSGI: "project.wsgi:application"},
            "Django, sync views, Django ORM on psycopg 3 (or psycopg2)",
            django=True,
            env=_DJANGO_ENV,
            driver_switch=True,
        ),
        App(
            "django_async",
            {ASGI: "project.asgi:application"},
            "Django, async views, the async ORM API, httpx.AsyncClient",
            django=True,
            env=_DJANGO_ENV,
        ),
        App(
            "fastapi_sqla",
            {ASGI: "main:app"},
            "FastAPI + SQLAlchemy 2 async ORM on asyncpg",
        ),
        App(
            "tortoise",
            {ASGI: "main:app"},
            "FastAPI + Tortoise ORM on asyncpg",
        ),
        App(
            "gino_style",
            {ASGI: "main:app"},
            "Starlette + SQLAlchemy Core on a raw asyncpg pool",
        ),
        App(
            "django_fastapi",
            {ASGI: "project.asgi:application", WSGI: "project.wsgi:application"},
            "Django with FastAPI mounted at /fastapi on the Django ORM",
            prefixes=("", "/fastapi"),
            django=True,
            env=_DJANGO_ENV,
            driver_switch=True,
        ),
    )
}


class UnknownAppError(ValueError):
    pass


def get_app(app_id: str) -> App:
    try:
        return APPS[app_id]
    except KeyError:
        raise UnknownAppError(f"unknown app {app_id!r}; valid apps: {', '.join(APPS)}") from None
