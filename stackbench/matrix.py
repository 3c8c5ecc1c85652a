"""Which (app, server) pairs exist, and why each missing one is missing.

A pair exists where the server serves one of the app's interfaces (and, for servers that
run psycopg2 under green threads, where the app can switch its driver). The noxfile's
``bench`` parametrization and the CI job list are both this list.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass

from stackbench.apps import APPS, App, get_app
from stackbench.servers import SERVERS, Server, get_server


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


def pairs(*, landed_only: bool = True) -> list[Pair]:
    return [
        Pair(app.id, server.id)
        for app in APPS.values()
        if app.exists() or not landed_only
        for server in SERVERS.values()
        if why_missing(app, server) is None
    ]


def missing() -> list[tuple[str, str, str]]:
    """(app, server, reason) for every pair that does not exist."""
    rows = []
    for app in APPS.values():
        for server in SERVERS.values():
            reason = why_missing(app, server)
            if reason is None and not app.exists():
                reason = f"{app.id} has not landed in reference_apps/ yet"
            if reason is not None:
                rows.append((app.id, server.id, reason))
    return rows


def is_valid(pair: Pair) -> bool:
    """True for a pair that exists; unknown apps or servers raise."""
    return why_missing(get_app(pair.app), get_server(pair.server)) is None


def get_pair(app_id: str, server_id: str) -> tuple[App, Server]:
    """The pair's app and server, or one line saying what is valid."""
    app, server = get_app(app_id), get_server(server_id)
    reason = why_missing(app, server)
    if reason is not None:
        valid = [p.server for p in pairs(landed_only=False) if p.app == app_id]
        raise PairError(
            f"no pair ({app_id}, {server_id}): {reason}; servers for {app_id}: {', '.join(valid)}"
        )
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


_SESSION = re.compile(r"bench\(app='([^']*)', server='([^']*)'\)")


def check_requested_sessions(argv: list[str]) -> str | None:
    """A clear error for a ``bench(...)`` session nox would not find, else None."""
    requested = [
        name
        for flag, name in itertools.pairwise(argv)
        if flag in ("-s", "--session", "--sessions", "-e")
    ]
    valid = {p.session for p in pairs()}
    for name in requested:
        if not name.startswith("bench(") or name in valid:
            continue
        match = _SESSION.fullmatch(name)
        if match is None:
            return f"bench session {name!r} is not of the form bench(app='APP', server='SERVER')"
        try:
            app, _ = get_pair(*match.groups())
        except (PairError, ValueError) as exc:
            return str(exc)
        return f"{app.id} has not landed in reference_apps/ yet: no {app.requirements}"
    return None
