"""Which (app, server) pairs exist, and why each missing one is missing.

A pair exists where the server serves one of the app's interfaces (and, for servers that
run psycopg2 under green threads, where the app can switch its driver). The noxfile's
``bench`` parametrization and the CI job list are both this list; every CI job also
measures the reference pair (``REFERENCE_PAIR``).

Every registered app must be on disk: its directory, ``requirements.txt``, entry modules
and (for Django) ``manage.py``. A lost file is an error naming it (``check_apps``), never
an app quietly left out of the matrix, the noxfile's installs or the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stackbench.apps import APPS, ROOT, App, get_app
from stackbench.servers import SERVERS, Server, get_server

# The reference pair, measured in every CI bench job beside that job's own pairs. Numbers
# from different runs (different machines, or one machine at different times) are compared
# only as ratios to it, measured in the same run and scenario (docs/ci.md). gino_style @
# uvicorn, because it is the cheapest stable yardstick: the thinnest stack (Starlette +
# SQLAlchemy Core on a raw asyncpg pool) under the plainest production ASGI server (uvicorn,
# uvloop, no arbiter, no green-thread patching), with the fewest dependencies to install
# beside any other app and servers, and the narrowest spread in this project's own runs.
REFERENCE_APP = "gino_style"
REFERENCE_SERVER = "uvicorn"
REFERENCE_PAIR = f"{REFERENCE_APP} @ {REFERENCE_SERVER}"


@dataclass(frozen=True)
class Pair:
    app: str
    server: str

    @property
    def session(self) -> str:
        """The nox session id: nox's default format for parametrized sessions."""
        return f"bench(app='{self.app}', server='{self.server}')"


class PairError(ValueError):
    pass


class AppFilesMissingError(PairError):
    """A registered app lacks files it needs; the message names each one, in one line."""


def missing_files(app: App) -> list[Path]:
    """The files ``app`` needs that are not on disk (none for an intact app)."""
    if not app.directory.is_dir():
        return [app.directory]
    needed = [app.requirements]
    if app.django:
        needed.append(app.directory / "manage.py")
    for entry in app.entries.values():
        module = app.directory.joinpath(*entry.split(":")[0].split("."))
        package = module / "__init__.py"
        needed.append(package if module.is_dir() else module.with_suffix(".py"))
    return [path for path in needed if not path.is_file()]


def check_apps(apps: Iterable[App] | None = None) -> None:
    """Raise AppFilesMissingError naming every missing file of ``apps`` (default: all)."""
    lost = [
        path for app in (APPS.values() if apps is None else apps) for path in missing_files(app)
    ]
    if lost:
        listed = ", ".join(
            str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path) for path in lost
        )
        raise AppFilesMissingError(
            f"registered app files are missing: {listed} "
            "(restore them, or remove the app from stackbench/apps.py)"
        )


def why_missing(app: App, server: Server) -> str | None:
    """None when the pair exists, else the reason in a few words."""
    if server.interface_for(app) is None:
        return (
            f"{server.id} serves {'/'.join(server.interfaces).upper()}; "
            f"{app.id} is {'/'.join(app.interfaces).upper()}"
        )
    if server.needs_driver_switch and not app.driver_switch:
        return f"{server.id} needs psycopg2 under green threads; {app.id} has no driver switch"
    return None


def pairs(*, check_files: bool = True) -> list[Pair]:
    """Every valid pair of the registries.

    With ``check_files`` (the default) a registered app missing its files raises
    AppFilesMissingError instead of being left out.
    """
    if check_files:
        check_apps()
    return [
        Pair(app.id, server.id)
        for app in APPS.values()
        for server in SERVERS.values()
        if why_missing(app, server) is None
    ]


def missing() -> list[tuple[str, str, str]]:
    """(app, server, reason) for every pair that does not exist."""
    rows = []
    for app in APPS.values():
        for server in SERVERS.values():
            reason = why_missing(app, server)
            if reason is not None:
                rows.append((app.id, server.id, reason))
    return rows


def parse_pairs(text: str) -> list[Pair]:
    """'app@server,app@server' → exact pairs, each checked (one line naming what is wrong)."""
    found = []
    for item in text.split(","):
        app, sep, server = item.strip().partition("@")
        if not sep or not app or not server:
            raise PairError(f"not app@server: {item.strip()!r} in --pairs {text!r}")
        get_pair(app, server)
        found.append(Pair(app, server))
    return list(dict.fromkeys(found))


def requirements(chosen: list[Pair]) -> list[str]:
    """pip arguments for one venv serving every pair: each app's file, each server's specs."""
    files = dict.fromkeys(str(get_app(pair.app).requirements) for pair in chosen)
    specs = dict.fromkeys(req for pair in chosen for req in get_server(pair.server).requirements)
    return [*(arg for path in files for arg in ("-r", path)), *specs]


def shared_venv_servers(app: App) -> list[str]:
    """The app's servers that can share one virtualenv: a server that pins a distribution
    exactly (gunicorn-eventlet's gunicorn 25.3) would change what the others run there, so
    it is left out (a capacity run measures it when named)."""
    return [
        server.id
        for server in SERVERS.values()
        if why_missing(app, server) is None and not server.pins
    ]


def app_servers(app: App, named: str | None) -> list[str]:
    """The servers a capacity run of ``app`` searches: those ``named`` (``--servers a,b``),
    each checked against the app, else ``shared_venv_servers``; PairError (one line) for
    an unknown server, a missing pair or an empty list."""
    if not named:
        return shared_venv_servers(app)
    chosen = list(dict.fromkeys(s.strip() for s in named.split(",") if s.strip()))
    if not chosen:
        raise PairError("--servers: name at least one server")
    for server in chosen:
        get_pair(app.id, server)
    return chosen


def is_valid(pair: Pair) -> bool:
    """True for a pair that exists; unknown apps or servers raise."""
    return why_missing(get_app(pair.app), get_server(pair.server)) is None


def get_pair(app_id: str, server_id: str) -> tuple[App, Server]:
    """The pair's app and server, or one line saying what is valid (or which file is lost)."""
    app, server = get_app(app_id), get_server(server_id)
    reason = why_missing(app, server)
    if reason is not None:
        valid = [p.server for p in pairs(check_files=False) if p.app == app_id]
        raise PairError(
            f"no pair ({app_id}, {server_id}): {reason}; servers for {app_id}: {', '.join(valid)}"
        )
    check_apps([app])
    return app, server


def as_json() -> str:
    return json.dumps(
        {
            "pairs": [{"app": p.app, "server": p.server, "session": p.session} for p in pairs()],
            "missing": [
                {"app": app, "server": server, "reason": reason}
                for app, server, reason in missing()
            ],
        },
        indent=2,
    )


_SESSION = re.compile(r"(?:bench|serve)\(app='([^']*)', server='([^']*)'\)")
_APP_SESSION = re.compile(r"capacity\(app='([^']*)'\)")
PAIR_SESSIONS = ("bench", "serve")  # the noxfile's sessions parametrized by pair
APP_SESSION = "capacity"  # the noxfile's session parametrized by app


def session_pair(name: str) -> Pair | None:
    """The pair a ``bench(app='A', server='S')`` (or ``serve(...)``) session names, or None."""
    match = _SESSION.fullmatch(name)
    return Pair(*match.groups()) if match else None


def session_app(name: str) -> str | None:
    """The app a ``capacity(app='A')`` session names, or None."""
    match = _APP_SESSION.fullmatch(name)
    return match.group(1) if match else None


def check_requested_sessions(names: Iterable[str]) -> str | None:
    """A clear error for a ``bench(...)``, ``serve(...)`` or ``capacity(...)`` session nox
    would not find, else None."""
    valid = {p.session.replace("bench", kind, 1) for p in pairs() for kind in PAIR_SESSIONS}
    for name in names:
        kind = name.partition("(")[0]
        if kind == APP_SESSION and "(" in name:
            app = session_app(name)
            if app is None:
                return f"{kind} session {name!r} is not of the form {kind}(app='APP')"
            if app not in APPS:
                return f"unknown app {app!r} in {name}; valid apps: {', '.join(APPS)}"
            continue
        if kind not in PAIR_SESSIONS or "(" not in name or name in valid:
            continue
        pair = session_pair(name)
        if pair is None:
            return f"{kind} session {name!r} is not of the form {kind}(app='APP', server='SERVER')"
        try:
            get_pair(pair.app, pair.server)
        except (PairError, ValueError) as exc:
            return str(exc)
    return None
