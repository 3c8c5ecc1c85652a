"""A server process: one app under one server as a real subprocess in its own process
group (:func:`serve` yields :class:`Served`), ready when /health answers. ``bench`` measures
it on this host; the ``serve`` command (stackbench/serving_host.py) runs one for load from
other hosts."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared_fixtures.net import LOOPBACK, free_port
from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.apps import ASGI, App
from stackbench.servers import H1, TLS, Certificates, Knobs, Server
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
    protocol: str = H1  # what the server was started to speak (stackbench/servers.py)
    certificates: Certificates | None = None  # its TLS material (h1-tls, h2)
    unix_socket: Path | None = None  # where it listens instead of a port (behind a proxy)

    @property
    def cafile(self) -> Path | None:
        """What a client of this server trusts (its run's test CA), for TLS."""
        return self.certificates.ca if self.certificates is not None else None

    @property
    def admin_credentials(self) -> tuple[str, str]:
        """The staff user the contract's admin scenarios log in as (``{admin_user}``)."""
        return ADMIN_USER, ADMIN_PASSWORD


def placeholders(database_url: str, upstream_url: str, knobs: Knobs) -> dict[str, str]:
    """What a declaration's ``{placeholder}`` stands for in this job (declaration.PLACEHOLDERS)."""
    database = urlsplit(database_url)
    return {
        "database_url": database_url,
        "database_host": database.hostname or "",
        "database_port": str(database.port or 5432),
        "database_name": unquote(database.path.lstrip("/")),
        "database_user": unquote(database.username or ""),
        "database_password": unquote(database.password or ""),
        "upstream_url": upstream_url,
        "pool_size": str(knobs.pool_size),
        # Generated per run, never committed or recorded.
        "secret_key": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "admin_user": ADMIN_USER,
        "admin_password": ADMIN_PASSWORD,
    }


def app_env(
    app: App,
    server: Server | None,
    database_url: str,
    upstream_url: str,
    knobs: Knobs,
    *,
    free_threaded: bool = False,
    variant: Variant | None = None,
) -> dict[str, str]:
    """The environment an app runs with: the variables its declaration sets (placeholders
    filled in for this job) plus the server's choices (its driver, for an app with a driver
    switch; the GIL off for the free-threaded lane's servers on a free-threaded build, per
    server, never inherited), and a bench variant's settings overlay or module path for
    this job only. ``server`` None: the environment of the app's schema command."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PSYCOGREEN")) and k != "PYTHON_GIL"
    }
    env.update(app.environment_with(placeholders(database_url, upstream_url, knobs)))
    if server is not None:
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


def executable(command: tuple[str, ...], bin_dir: Path) -> list[str]:
    """A declared command as it runs: ``python`` is the serving virtualenv's, and a script
    installed there (alembic, tortoise) is found there before PATH."""
    first = command[0]
    if first in ("python", "python3"):
        first = str(bin_dir / "python")
    elif "/" not in first and (bin_dir / first).is_file():
        first = str(bin_dir / first)
    return [first, *command[1:]]


def run_declared(
    app: App, command: tuple[str, ...], env: dict[str, str], bin_dir: Path, timeout: float = 600
) -> None:
    """One of the app's declared commands, in its directory; ProcessError with its last
    lines when it fails."""
    try:
        result = subprocess.run(
            executable(command, bin_dir),
            cwd=app.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ProcessError(f"{app.id}: {' '.join(command)}: {exc}") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ProcessError(f"{app.id}: {' '.join(command)} failed:\n" + "\n".join(tail))


def prepare(app: App, env: dict[str, str], bin_dir: Path) -> None:
    """Run the app's declared setup commands (Django's own tables, the staff user)."""
    for command in app.setup:
        run_declared(app, command, env, bin_dir, timeout=120)


READY_TIMEOUT = 30.0  # seconds a server may take to answer /health after its start


UNIX = "unix:"  # a base URL that is a unix socket's path: "unix:/tmp/.../app.sock"


def trusting(cafile: Path | str | None) -> ssl.SSLContext | None:
    """A client TLS context trusting ``cafile`` (a run's test CA); None without one."""
    return ssl.create_default_context(cafile=str(cafile)) if cafile else None


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket (a server behind a proxy, ``--upstream unix``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def answers_health(
    base_url: str, timeout: float = 1.0, path: str = "/health", cafile: Path | None = None
) -> bool:
    """True when the app answers GET ``path`` (/health) with 200 within ``timeout``
    (over HTTP/1.1, with TLS for an https:// URL, trusting ``cafile``); a ``unix:PATH``
    base URL is asked over that socket."""
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
        with urllib.request.urlopen(
            base_url + path, timeout=timeout, context=trusting(cafile)
        ) as response:
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
    protocol: str = H1,
    certificates: Certificates | None = None,
    unix_socket: Path | None = None,
) -> Iterator[Served]:
    """Start ``app`` under ``server`` listening on ``host:port`` (loopback and a free port
    by default), or on ``unix_socket`` instead (for a proxy in front, HTTP/1.1 only); stop
    it (and its workers) on exit, whatever happened. ``settings``: more of the app's
    environment for this serving only (e.g. DB_POOL_TIMEOUT); ``prepared``: the database
    already has what the app's setup commands make (the app was served on it before), so
    they are not run again. ``protocol``: what the server speaks (stackbench/servers.py),
    TLS ones with ``certificates``; every server also answers HTTP/1.1 on the same port
    (over TLS for TLS ones), which is how readiness is probed."""
    knobs = knobs or Knobs()
    if server.why_not(protocol) is not None:
        raise ValueError(f"{server.id} does not speak {protocol}: {server.why_not(protocol)}")
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
    argv = server.argv(
        served_app,
        port,
        knobs,
        cpus or os.cpu_count() or 1,
        host,
        protocol,
        certificates,
        unix_socket=unix_socket,
    )
    argv[0] = str(bin_dir / argv[0])
    argv = [*(wrap or []), *argv]  # e.g. taskset -c 0: pins the server and its workers
    # Readiness is probed from here: an any-address bind answers on loopback too.
    scheme = "https" if protocol in TLS else "http"
    base_url = f"{scheme}://{LOOPBACK if host in ANY_ADDRESS else host}:{port}"
    if unix_socket is not None:
        base_url = f"{UNIX}{unix_socket}"
    cafile = certificates.ca if certificates is not None else None
    process = ManagedProcess(
        argv,
        name=f"{server.id} ({app.id})",
        log_path=log_dir / f"{app.id}-{server.id}.log",
        env=env,
        cwd=app.directory,
    )
    try:
        process.wait_until(
            lambda: answers_health(base_url, path=app.health, cafile=cafile),
            ready_timeout,
            f"answering {app.health}",
        )
        yield Served(app, server, base_url, argv, env, process, protocol, certificates, unix_socket)
    finally:
        process.stop()
