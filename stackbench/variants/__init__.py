"""Bench variants (docs/feature-prices.md): an app served with one production feature
changed, to price that feature side by side with the app as shipped. Not a fork: the
app's directory is untouched, the change lives here.

For the Django apps a variant is a settings overlay, a module in ``django_settings/``
that does ``from project.settings import *`` and changes one thing. A job served with a
variant gets ``DJANGO_SETTINGS_MODULE`` set to the overlay and the overlay's directory
on ``PYTHONPATH``; the app's directory stays the cwd, so ``project.settings`` still
imports.

For fastapi_sqla a variant is an ASGI module in ``fastapi_sqla/``: it imports the app's
``main``, changes one thing through FastAPI's own mechanisms (a route rebuilt by the app's
router with another endpoint, response model or session) and is served instead of
``main:app`` (e.g. ``sb_core_queries:app``), its directory on ``PYTHONPATH`` and the
app's directory still the cwd. A module that cannot find what it changes refuses to
start. Standard library only: the noxfile may import it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OVERLAYS = HERE / "django_settings"
FASTAPI_SQLA = HERE / "fastapi_sqla"
DJANGO_APPS = ("django_sync", "django_async")  # their settings share MIDDLEWARE and the pool
_MW = "django.middleware."


@dataclass(frozen=True)
class Variant:
    """One feature changed, served one of two ways: a Django settings overlay
    (``settings``) or an ASGI entry served instead of the app's (``entry``)."""

    name: str
    changes: str  # one line: what differs from the app as shipped
    settings: str | None = None  # Django: the overlay module (its file in django_settings/)
    apps: tuple[str, ...] = DJANGO_APPS
    entry: str | None = None  # ASGI: "module:app", the module's file in ``directory``
    directory: Path = OVERLAYS  # put first on the server's PYTHONPATH
    environment: tuple[tuple[str, str], ...] = ()  # more of the server's environment
    requirements: tuple[str, ...] = ()  # what the variant needs installed beside the app

    def __post_init__(self) -> None:
        if (self.settings is None) == (self.entry is None):
            raise AssertionError(f"variant {self.name}: give settings or entry, not both")

    @property
    def module_file(self) -> Path:
        """The file that makes the change (the overlay, or the ASGI module)."""
        module = self.settings or str(self.entry).partition(":")[0]
        return self.directory / f"{module}.py"

    def env(self, inherited_pythonpath: str | None = None) -> dict[str, str]:
        """What the server's (and its setup commands') environment gets on top of the app's."""
        path = [str(self.directory), *([inherited_pythonpath] if inherited_pythonpath else [])]
        env = {"PYTHONPATH": os.pathsep.join(path), **dict(self.environment)}
        if self.settings is not None:
            env["DJANGO_SETTINGS_MODULE"] = self.settings
        return env


def _fastapi_sqla(name: str, changes: str, module: str) -> Variant:
    return Variant(
        name, changes, apps=("fastapi_sqla",), entry=f"{module}:app", directory=FASTAPI_SQLA
    )


def _without(middleware: str) -> str:
    return f"without {middleware.rpartition('.')[2]}"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("no-security-mw", _without(_MW + "security.SecurityMiddleware"), "sb_no_security"),
        Variant(
            "no-session-mw",
            "without SessionMiddleware, and so without the Authentication and Message "
            "middleware that cannot run without a session",
            "sb_no_session",
        ),
        Variant("no-common-mw", _without(_MW + "common.CommonMiddleware"), "sb_no_common"),
        Variant("no-csrf-mw", _without(_MW + "csrf.CsrfViewMiddleware"), "sb_no_csrf"),
        Variant("no-auth-mw", "without AuthenticationMiddleware", "sb_no_auth"),
        Variant("no-messages-mw", "without MessageMiddleware", "sb_no_messages"),
        Variant(
            "no-xframe-mw",
            _without(_MW + "clickjacking.XFrameOptionsMiddleware"),
            "sb_no_xframe",
        ),
        Variant("no-middleware", "MIDDLEWARE = [] (all seven removed)", "sb_no_middleware"),
        Variant(
            "persistent-conns",
            "psycopg 3 without its pool: one persistent connection per thread "
            "(CONN_MAX_AGE=None), as TechEmpower's Django app does",
            "sb_persistent_conns",
        ),
        Variant(
            "psycopg2",
            "psycopg2 instead of psycopg 3 and its pool, one persistent connection per "
            "thread (CONN_MAX_AGE=None): TechEmpower's Django driver and connections",
            "sb_psycopg2",
            apps=("django_sync",),  # django_async has no psycopg2 path
            environment=(("DJANGO_DB_DRIVER", "psycopg2"),),
            requirements=("psycopg2-binary>=2.9,<3",),
        ),
        Variant(
            "no-middleware-psycopg2",
            "no-middleware and psycopg2 together: every priced feature TechEmpower's Django "
            "app goes without, removed at once",
            "sb_no_middleware_psycopg2",
            apps=("django_sync",),
            environment=(("DJANGO_DB_DRIVER", "psycopg2"),),
            requirements=("psycopg2-binary>=2.9,<3",),
        ),
        _fastapi_sqla(
            "core-queries",
            "/db and /fortunes select through SQLAlchemy Core on the tables (rows, not ORM "
            "objects), in the same session",
            "sb_core_queries",
        ),
        _fastapi_sqla(
            "no-response-model",
            "/db returns a JSONResponse itself (response_model=None): no Pydantic "
            "validation and serialization of its dict[str, int] (/fortunes has none)",
            "sb_no_response_model",
        ),
        _fastapi_sqla(
            "no-templates",
            "/fortunes rendered by str.join and markupsafe.escape (Jinja2's own escape) "
            "instead of the Jinja2 template: the same bytes",
            "sb_no_templates",
        ),
        _fastapi_sqla(
            "autocommit-session",
            "/db and /fortunes open their session on a connection in AUTOCOMMIT: no "
            "BEGIN and ROLLBACK around each request's SELECT",
            "sb_autocommit_session",
        ),
        _fastapi_sqla(
            "session-dependency",
            "/db and /fortunes take their session from Depends(get_session), FastAPI's "
            "documented yield dependency, default scope: it closes after the response is sent",
            "sb_session_dependency",
        ),
    )
}


class VariantError(ValueError):
    """An unknown variant, or one for an app it does not apply to: one line, exit 2."""


def get_variant(name: str, apps: list[str] | tuple[str, ...] = ()) -> Variant:
    """The variant, checked against every app it will be served with."""
    try:
        variant = VARIANTS[name]
    except KeyError:
        raise VariantError(
            f"unknown variant {name!r}; valid variants: {', '.join(VARIANTS)}"
        ) from None
    for app in apps:
        if app not in variant.apps:
            raise VariantError(
                f"variant {name!r} does not apply to {app}; it applies to {', '.join(variant.apps)}"
            )
    return variant


def requirements_for(names: Iterable[str]) -> list[str]:
    """What the variants ``names`` need installed beside the app; none for an unknown name
    (the bench refuses it itself)."""
    return [req for name in names if name in VARIANTS for req in VARIANTS[name].requirements]
