"""Which (app, server) pairs exist, and why each missing one is missing.

A pair exists where the server serves one of the app's interfaces (and, for servers that
run psycopg2 under green threads, where the app can switch its driver). The noxfile's
``bench`` parametrization and the CI job list are both this list, over the reference apps
found by their declarations (stackbench/apps.py); an app elsewhere pairs the same way
(``bench --app PATH``, ``--pairs PATH@server``). Every CI job also
measures the reference pair (``REFERENCE_PAIR``).

A reference app whose declaration is missing or wrong (a lost requirement file, an entry
module that is not there) is an error naming its file and key (``check_apps``), never an
app quietly left out of the matrix, the noxfile's installs or the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stackbench.apps import APPS, App, get_app
from stackbench.apps import check_apps as check_apps
from stackbench.servers import PROTOCOLS, SERVERS, Server, get_server

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
    app: str  # the app's id: its directory's name
    server: str
    # The app's directory when it is not one of reference_apps/ (bench --app PATH).
    home: Path | None = None

    @property
    def session(self) -> str:
        """The nox session id: nox's default format for parametrized sessions."""
        return f"bench(app='{self.app}', server='{self.server}')"

    @property
    def name(self) -> str:
        """How the command line names it: app@server, the app by its path when it has one."""
        return f"{self.home or self.app}@{self.server}"


class PairError(ValueError):
    pass


def app_of(pair: Pair) -> App:
    """The pair's app: a reference app by id, or the one in its directory."""
    return get_app(str(pair.home)) if pair.home is not None else get_app(pair.app)


def pair_of(app: App, server: str) -> Pair:
    """The pair of ``app`` (a reference app, or one in a directory) and ``server``."""
    reference = APPS.get(app.id)
    home = None if reference is not None and reference.directory == app.directory else app.directory
    return Pair(app.id, server, home)


def why_missing(app: App, server: Server) -> str | None:
    """None when the pair exists, else the reason in a few words."""
    if server.interface_for(app) is None:
        return (
            f"{server.id} serves {'/'.join(server.interfaces).upper()}; "
            f"{app.id} is {'/'.join(app.interfaces).upper()} (interfaces in {app.declared_in})"
        )
    if server.needs_driver_switch and not app.driver_switch:
        return (
            f"{server.id} needs psycopg2 under green threads; {app.id} has no driver switch "
            f"(driver_switch in {app.declared_in})"
        )
    return None


def pairs(*, check_files: bool = True) -> list[Pair]:
    """Every valid pair of the reference apps and the servers.

    With ``check_files`` (the default) a reference app whose declaration is missing or
    wrong raises DeclarationError instead of being left out.
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
    """'app@server,PATH@server' → exact pairs, each checked (one line naming what is wrong);
    an app is a reference app's id or a directory with a declaration."""
    found = []
    for item in text.split(","):
        app, sep, server = item.strip().rpartition("@")
        if not sep or not app or not server:
            raise PairError(f"not app@server: {item.strip()!r} in --pairs {text!r}")
        found.append(pair_of(get_pair(app, server)[0], server))
    return distinct(list(dict.fromkeys(found)))


def distinct(chosen: list[Pair]) -> list[Pair]:
    """``chosen``, refused when two different directories would share an app id in one run
    (their results would share file names)."""
    homes: dict[str, Path] = {}
    for pair in chosen:
        directory = app_of(pair).directory
        if homes.setdefault(pair.app, directory) != directory:
            raise PairError(
                f"two apps are named {pair.app} in one run ({homes[pair.app]}, {directory}): "
                "an app's id is its directory's name; rename one"
            )
    return chosen


def scenario_file_of(chosen: list[Pair]) -> Path | None:
    """The scenario file a run's apps declare: None when they serve the contract (its
    scenarios are loadgen's built-ins). One run measures one set of scenarios, so apps of
    their own must share one file, and are not mixed with apps of the contract."""
    apps = list({app.directory: app for app in map(app_of, chosen)}.values())
    own = [app for app in apps if not app.contract]
    if not own:
        return None
    for app in own:
        if app.scenarios is None:
            raise PairError(
                f"{app.declared_in}: scenarios: {app.id} does not serve the contract and "
                "declares no scenario file (scenarios.toml beside it, or --scenario-file FILE)"
            )
    files = {app.scenarios for app in own}
    if len(files) > 1 or len(own) < len(apps):
        sources = ", ".join(f"{app.id}: {app.scenarios or 'the contract'}" for app in apps)
        raise PairError(
            f"one run measures one set of scenarios, and these apps declare different ones "
            f"({sources}): bench them in separate runs, or give --scenario-file FILE"
        )
    (file,) = files
    return file


def requirements(chosen: list[Pair], protocols: Iterable[str] = ("h1",)) -> list[str]:
    """pip arguments for one venv serving every pair in ``protocols``: each app's files,
    each server's specs and what each protocol it speaks needs."""
    files = dict.fromkeys(str(path) for pair in chosen for path in app_of(pair).requirements)
    servers = [get_server(pair.server) for pair in chosen]
    specs = dict.fromkeys(
        req
        for server in servers
        for protocol in protocols
        if server.why_not(protocol) is None
        for req in server.requirements_for(protocol)
    )
    specs.update(dict.fromkeys(req for server in servers for req in server.requirements))
    return [*(arg for path in files for arg in ("-r", path)), *specs]


class ProtocolError(PairError):
    """A server asked for a protocol it does not speak; one line, exit 2."""


def check_protocol(server_ids: Iterable[str], protocol: str) -> None:
    """Raise ProtocolError naming the first server that does not speak ``protocol``, and
    the servers that do."""
    for server_id in server_ids:
        server = get_server(server_id)
        reason = server.why_not(protocol)
        if reason is not None:
            speaking = [s.id for s in SERVERS.values() if s.why_not(protocol) is None]
            raise ProtocolError(
                f"{server.id} does not speak {protocol}: {reason}; servers that do: "
                f"{', '.join(speaking)}"
            )


def protocol_rows() -> list[tuple[str, str, str | None, str | None]]:
    """(server, protocol, why it is missing or None, a caveat or None) for every server
    and protocol: the matrix's protocol dimension (a protocol is the server's to speak,
    whichever app it serves)."""
    return [
        (server.id, protocol, server.why_not(protocol), server.speaks.notes.get(protocol))
        for server in SERVERS.values()
        for protocol in PROTOCOLS
    ]


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
        get_pair(app, server)  # the app itself: one in a directory has no id to look up
    return chosen


def is_valid(pair: Pair) -> bool:
    """True for a pair that exists; unknown apps or servers raise."""
    return why_missing(app_of(pair), get_server(pair.server)) is None


def get_pair(app_name: str | App, server_id: str) -> tuple[App, Server]:
    """The pair's app (an id, a directory, or the App) and server, or one line saying what
    is valid (or what is wrong in a declaration)."""
    app = app_name if isinstance(app_name, App) else get_app(app_name)
    server = get_server(server_id)
    reason = why_missing(app, server)
    if reason is not None:
        valid = [s.id for s in SERVERS.values() if why_missing(app, s) is None]
        raise PairError(
            f"no pair ({app.id}, {server_id}): {reason}; servers for {app.id}: "
            f"{', '.join(valid) or 'none'}"
        )
    return app, server


def resolve(pair: Pair) -> tuple[App, Server]:
    """``get_pair`` for a Pair (its app by directory when it has one)."""
    return get_pair(app_of(pair), pair.server)


def as_json() -> str:
    return json.dumps(
        {
            "apps": [
                {
                    "app": app.id,
                    "interfaces": list(app.interfaces),
                    "contract": app.contract,
                    "description": app.description,
                    "declaration": app.declared_in,
                }
                for app in APPS.values()
            ],
            "pairs": [
                {
                    "app": p.app,
                    "server": p.server,
                    "session": p.session,
                    "protocols": get_server(p.server).protocols(),
                }
                for p in pairs()
            ],
            "missing": [
                {"app": app, "server": server, "reason": reason}
                for app, server, reason in missing()
            ],
            "protocols": [
                {"server": server, "protocol": protocol, "reason": reason, "note": note}
                for server, protocol, reason, note in protocol_rows()
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
    return Pair(match.group(1), match.group(2)) if match else None


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
