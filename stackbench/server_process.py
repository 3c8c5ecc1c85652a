"""A server process: one app under one server as a real subprocess in its own process
group (:func:`serve` yields :class:`Served`), ready when /health answers. ``bench`` measures
it on this host; the ``serve`` command (stackbench/serving_host.py) runs one for load from
other hosts."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from shared_fixtures.net import LOOPBACK, free_port
from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.apps import ASGI, App
from stackbench.servers import Knobs, Server
from stackbench.variants import Variant

ADMIN_USER = "stackbench-admin"
ANY_ADDRESS = ("0.0.0.0", "")
# One password per harness process: the Django apps share one auth_user table, so a
# password per serve() would let the last app served lock the others' logins out. A bench
# on another host (`bench --target`) logs in with the one its serving host was given.
ADMIN_PASSWORD = os.environ.get("STACKBENCH_ADMIN_PASSWORD") or secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Served:
    app: App
    server: Server
    base_url: str  # "unix:PATH" when it listens on a unix socket: reached through a proxy
    argv: list[str]
    env: dict[str, str]
    process: ManagedProcess
    unix_socket: Path | None = None

    @property
    def admin_credentials(self) -> tuple[str, str]:
        return self.env["DJANGO_SUPERUSER_USERNAME"], self.env["DJANGO_SUPERUSER_PASSWORD"]


def app_env(
    app: App,
    server: Server,
    database_url: str,
    upstream_url: str,
    knobs: Knobs,
    *,
    free_threaded: bool = False,
    variant: Variant | None = None,
) -> dict[str, str]:
    """The environment an app runs with: the contract's variables plus the server's choices
    (the GIL off for the free-threaded lane's servers on a free-threaded build, per server,
    never inherited), and a bench variant's settings overlay or module path for this job only."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PSYCOGREEN")) and k != "PYTHON_GIL"
    }
    env.update(
        DATABASE_URL=database_url,
        UPSTREAM_URL=upstream_url,
        DB_POOL_SIZE=str(knobs.pool_size),
        # Generated per run, never committed; the login flow reads them from here.
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.invalid",
    )
    env.update(dict(app.env))
    if app.driver_switch:
        env.update(server.env)
    env.update(server.gil_env(free_threaded))
    if variant is not None:
        env.update(variant.env(env.get("PYTHONPATH")))
    return env


def is_free_threaded(python: Path) -> bool:
    """True for a build with Py_GIL_DISABLED (asked of the interpreter that will serve)."""
    ask = "import sysconfig; print(bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"
    try:
        done = subprocess.run(
            [str(python), "-c", ask], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ProcessError(f"cannot run {python}: {exc}") from None
    return done.stdout.strip() == "True"


def prepare(app: App, env: dict[str, str], bin_dir: Path) -> None:
    """Run the app's setup commands (Django's own tables, the staff user)."""
    for command in app.setup_commands():
        result = subprocess.run(
            [str(bin_dir / "python"), *command],
            cwd=app.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise ProcessError(f"{app.id}: {' '.join(command)} failed:\n" + "\n".join(tail))


READY_TIMEOUT = 30.0  # seconds a server may take to answer /health after its start


UNIX = "unix:"  # a base URL that is a unix socket's path: "unix:/tmp/.../app.sock"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket (a server behind a proxy, ``--upstream unix``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def answers_health(base_url: str, timeout: float = 1.0, path: str = "/health") -> bool:
    """True when the app answers GET ``path`` (/health) with 200 within ``timeout``; a
    ``unix:PATH`` base URL is asked over that socket."""
    if base_url.startswith(UNIX):
        connection = _UnixConnection(base_url[len(UNIX) :], timeout)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
    try:
        with urllib.request.urlopen(base_url + path, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def serve(
    app: App,
    server: Server,
    *,
    database_url: str,
    upstream_url: str,
    bin_dir: Path,
    log_dir: Path,
    knobs: Knobs | None = None,
    cpus: int | None = None,
    ready_timeout: float = READY_TIMEOUT,
    wrap: list[str] | None = None,
    host: str = LOOPBACK,
    port: int | None = None,
    variant: Variant | None = None,
    settings: Mapping[str, str] | None = None,
    prepared: bool = False,
    unix_socket: Path | None = None,
) -> Iterator[Served]:
    """Start ``app`` under ``server`` listening on ``host:port`` (loopback and a free port
    by default), or on ``unix_socket`` instead (for a proxy in front); stop it (and its
    workers) on exit, whatever happened. ``settings``: more of the app's environment for
    this serving only (e.g. DB_POOL_TIMEOUT); ``prepared``: the database already has what
    the app's setup commands make (the app was served on it before), so they are not run
    again."""
    knobs = knobs or Knobs()
    env = app_env(
        app,
        server,
        database_url,
        upstream_url,
        knobs,
        free_threaded=is_free_threaded(bin_dir / "python"),
        variant=variant,
    )
    env.update(settings or {})
    if not prepared:
        prepare(app, env, bin_dir)
    port = port or (0 if unix_socket else free_port(host))
    # An ASGI variant is served instead of the app's entry, from the app's directory.
    entries = {ASGI: variant.entry} if variant is not None and variant.entry else app.entries
    served_app = replace(app, entries=entries)
    argv = server.argv(served_app, port, knobs, cpus or os.cpu_count() or 1, host, unix_socket)
    argv[0] = str(bin_dir / argv[0])
    argv = [*(wrap or []), *argv]  # e.g. taskset -c 0: pins the server and its workers
    # Readiness is probed from here: an any-address bind answers on loopback too.
    base_url = f"http://{LOOPBACK if host in ANY_ADDRESS else host}:{port}"
    if unix_socket is not None:
        base_url = f"{UNIX}{unix_socket}"
    process = ManagedProcess(
        argv,
        name=f"{server.id} ({app.id})",
        log_path=log_dir / f"{app.id}-{server.id}.log",
        env=env,
        cwd=app.directory,
    )
    try:
        process.wait_until(
            lambda: answers_health(base_url, path=app.ready_path),
            ready_timeout,
            f"answering {app.ready_path}",
        )
        yield Served(app, server, base_url, argv, env, process, unix_socket)
    finally:
        process.stop()
