"""A proxy in front of a served pair (``bench --proxy nginx``, ``serve --proxy nginx``).

Production puts a proxy between clients and a Python app server. Here that is nginx
(Debian's ``nginx-light``) in the shape production runs it: it ends the client side
(``bench --protocol`` h1, h1-tls or h2: TLS with the run's certificate, HTTP/2 by ALPN,
:func:`listen_lines`) and speaks HTTP/1.1 to the app server, reads
whole requests and whole responses into its buffers before passing them on, times out
clients that are slow to send, and keeps HTTP/1.1 keep-alive connections to the app
server over TCP or a unix socket (``--upstream tcp|unix``).

The configuration is generated for each serving (:func:`nginx_conf`, pure) and written to
the run directory beside nginx's logs and pid file; nginx runs with ``daemon off`` in its
own process group (a :class:`~shared_fixtures.processes.ManagedProcess`, stopped like the
server; the leak check finds its master by the owner's tag in its arguments and its workers
by their process group), listens on loopback only, and is ready when the app's health path
answers through it. When the harness is root, nginx's master runs as root (as it
does in production) and its workers as ``nobody``; what the workers touch while they run
(their temporary files, the app's unix socket) is then in a directory of their own under
the system's temporary directory, which the run directory may not let them reach (a 0700
clone) and which keeps a unix socket's path short (108 bytes at most).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared_fixtures.net import LOOPBACK, free_port
from shared_fixtures.processes import OWNER, ManagedProcess, ProcessError, owner_tag
from stackbench.server_process import ANY_ADDRESS, READY_TIMEOUT, Served, answers_health
from stackbench.servers import H1, H1_TLS, H2, TLS, Certificates

NGINX = "nginx"
PROXIES = (NGINX,)  # --proxy NAME
UPSTREAMS = ("tcp", "unix")  # how the proxy reaches the app server (--upstream)
TCP, UNIX = UPSTREAMS
# What clients may speak to the proxy (bench --protocol); it speaks HTTP/1.1 to the server.
# Not h2c: nginx 1.22's cleartext HTTP/2 port takes HTTP/2 only (no HTTP/1.1 beside it).
CLIENT_PROTOCOLS = (H1, H1_TLS, H2)
TLS_PROTOCOLS = TLS
WORKER_USER = "nobody"  # nginx's own default for its workers when the master is root
INSTALL = "Debian: apt-get install nginx-light, which puts it in /usr/sbin"


class ProxyError(ValueError):
    """A proxy that cannot be used here; one line, exit 2, before anything starts."""


def missing(name: str = NGINX) -> str | None:
    """Why ``--proxy name`` cannot run here (one line), or None."""
    if name not in PROXIES:
        return f"unknown proxy {name!r}; proxies: {', '.join(PROXIES)}"
    if shutil.which(NGINX) is None:
        return f"nginx is not installed here, or not on PATH ({INSTALL})"
    return None


def check(name: str) -> str:
    """``name`` if it can be used here, else ProxyError."""
    problem = missing(name)
    if problem is not None:
        raise ProxyError(problem)
    return name


def nginx_version(binary: str = NGINX) -> str:
    """'1.22.1' (nginx -v writes 'nginx version: nginx/1.22.1' to stderr)."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"nginx/(\S+)", done.stderr + done.stdout)
    return found.group(1) if found else "unknown"


@dataclass(frozen=True)
class Tls:
    """A certificate and key for a TLS client side (h1-tls, h2)."""

    certificate: Path
    key: Path


def listen_lines(
    port: int, client_protocol: str, tls: Tls | None, host: str = LOOPBACK
) -> list[str]:
    """The server block's listen lines for what clients speak. HTTP/2 is switched on in the
    listen line in nginx 1.22 (``http2 on;`` is 1.25.1's)."""
    address = f"{host}:{port}"
    if client_protocol == "h1":
        return [f"listen {address};"]
    if client_protocol not in TLS_PROTOCOLS:
        raise ValueError(f"unknown client protocol {client_protocol!r}")
    if tls is None:
        raise ValueError(f"{client_protocol} needs a certificate and key")
    h2 = " http2" if client_protocol == "h2" else ""
    return [
        f"listen {address} ssl{h2};",
        f"ssl_certificate {tls.certificate};",
        f"ssl_certificate_key {tls.key};",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_session_cache shared:tls:1m;",
    ]


@dataclass(frozen=True)
class Layout:
    """Where one nginx keeps its files: ``prefix`` (configuration, logs, pid: the run
    directory's) and ``runtime`` (what its workers touch while they run)."""

    prefix: Path
    runtime: Path

    @property
    def config(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    @property
    def pid(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def socket(self) -> Path:
        """The app server's unix socket (``--upstream unix``)."""
        return self.runtime / "app.sock"


def nginx_conf(
    *,
    title: str,
    port: int,
    upstream: str,
    layout: Layout,
    workers: int = 1,
    client_protocol: str = "h1",
    tls: Tls | None = None,
    user: tuple[str, str] | None = None,
    host: str = LOOPBACK,
) -> str:
    """nginx's configuration for one serving: listen on ``host:port`` (loopback unless
    ``serve --bind`` says otherwise), pass everything to ``upstream`` (``127.0.0.1:PORT``
    or ``unix:PATH``). ``user``: (user, group) the workers run as when the master is root."""
    temp = layout.runtime
    lines = [
        f"# {title}",
        "# Written by stackbench (stackbench/proxy.py) for this serving only.",
        "daemon off;  # the harness keeps it in the foreground, in its own process group",
        "master_process on;",
        f"worker_processes {workers};",
        f"pid {layout.pid};",
        f"error_log {layout.error_log} warn;",
        *([f"user {user[0]} {user[1]};"] if user else []),
        "worker_rlimit_nofile 8192;",
        "",
        "events {",
        "    worker_connections 4096;",
        "}",
        "",
        "http {",
        "    log_format stackbench '$server_protocol $status $request_time';",
        f"    access_log {layout.access_log} stackbench buffer=64k flush=1s;",
        "    server_tokens off;",
        f"    client_body_temp_path {temp / 'client_body'};",
        f"    proxy_temp_path {temp / 'proxy'};",
        f"    fastcgi_temp_path {temp / 'fastcgi'};",
        f"    uwsgi_temp_path {temp / 'uwsgi'};",
        f"    scgi_temp_path {temp / 'scgi'};",
        "",
        "    # The client side: nginx's defaults, written out. A client has 60 s to send its",
        "    # head and 60 s between two reads of its body, then it is answered 408 and",
        "    # closed; nothing reaches the app server before the request is whole.",
        "    client_header_timeout 60s;",
        "    client_body_timeout 60s;",
        "    client_max_body_size 1m;",
        "    send_timeout 60s;",
        "    keepalive_timeout 75s;",
        "    keepalive_requests 1000;",
        "",
        "    upstream app {",
        f"        server {upstream};",
        "        # Idle HTTP/1.1 connections kept open to the app server, per worker.",
        "        keepalive 64;",
        "        keepalive_requests 10000;",
        "        # Below every app server's own keep-alive timeout (gunicorn's is 2 s): nginx,",
        "        # not the server, closes an idle connection, so no request is sent on one",
        "        # the server is closing.",
        "        keepalive_timeout 1s;",
        "    }",
        "",
        "    server {",
        *(f"        {line}" for line in listen_lines(port, client_protocol, tls, host)),
        "        location / {",
        "            proxy_pass http://app;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $http_host;",
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "            proxy_set_header X-Forwarded-Proto $scheme;",
        "            # Whole requests before the app server sees them, whole responses",
        "            # before a slow client reads them (nginx's defaults, written out).",
        "            proxy_request_buffering on;",
        "            proxy_buffering on;",
        "            proxy_connect_timeout 5s;",
        "            proxy_read_timeout 60s;",
        "        }",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _worker_user() -> tuple[str, str] | None:
    """(user, group) for nginx's workers when this process is root, else None (nginx then
    runs as this user, master and workers)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(WORKER_USER)
    return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name


def _runtime_prefix(owner: str) -> str:
    # The owner's tag in the name: a leak check finds what one run left (a socket path
    # stays far below its 108 bytes).
    return f"stackbench-nginx-{owner[:12]}-"


def runtime_dirs(owner: str = OWNER) -> list[Path]:
    """The runtime directories of ``owner``'s proxies that exist now (none, after a run)."""
    return sorted(Path(tempfile.gettempdir()).glob(_runtime_prefix(owner) + "*"))


@contextlib.contextmanager
def runtime_dir() -> Iterator[Path]:
    """A directory for what nginx's workers touch while they run, theirs alone; removed
    afterwards, whatever happened."""
    path = Path(tempfile.mkdtemp(prefix=_runtime_prefix(OWNER)))
    try:
        user = _worker_user()
        if user is not None:
            entry = pwd.getpwnam(user[0])
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Spec:
    """What a proxy in front is asked to be (from --proxy, --upstream and the CPUs)."""

    name: str = NGINX
    upstream: str = TCP
    client_protocol: str = H1  # bench --protocol: what the clients speak to it
    workers: int = 1


@dataclass(frozen=True)
class Proxied:
    """nginx running in front of a served pair."""

    spec: Spec
    base_url: str
    upstream_address: str  # what nginx passes to: 127.0.0.1:PORT or unix:PATH
    layout: Layout
    argv: list[str]
    version: str
    process: ManagedProcess
    cafile: Path | None = None  # what its clients trust (the run's test CA), for TLS

    def stopped(self) -> str | None:
        """None while nginx runs, else why it does not."""
        code = self.process.popen.poll()
        return None if code is None else f"nginx exited with code {code} during the run"

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = self.layout.error_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def upstream_of(served: Served) -> str:
    """Where nginx finds the app server: its unix socket, or its loopback host:port."""
    if served.unix_socket is not None:
        return f"unix:{served.unix_socket}"
    return served.base_url.split("//", 1)[1]


def open_socket_to_workers(socket: Path) -> None:
    """The app server's socket, connectable by nginx's workers (a server binds it 0755 or
    0777 as it likes; connecting needs write permission): theirs, 0600."""
    user = _worker_user()
    if user is not None:
        entry = pwd.getpwnam(user[0])
        os.chown(socket, entry.pw_uid, entry.pw_gid)
        os.chmod(socket, 0o600)


@contextlib.contextmanager
def front(
    served: Served,
    spec: Spec,
    layout: Layout,
    *,
    wrap: list[str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    host: str = LOOPBACK,
    port: int | None = None,
    certificates: Certificates | None = None,
) -> Iterator[Proxied]:
    """nginx in front of ``served``, listening on ``host`` (loopback unless ``serve --bind``
    says otherwise) and ``port`` (a free one by default), configured per ``spec``, its
    files per ``layout``, a TLS client protocol with ``certificates`` (the run's); stopped
    on exit, whatever happened."""
    check(spec.name)
    tls = None
    if spec.client_protocol in TLS_PROTOCOLS:
        if certificates is None:
            raise ValueError(f"{spec.client_protocol} needs a certificate and its key")
        tls = Tls(certificates.cert, certificates.key)
    cafile = certificates.ca if tls is not None and certificates is not None else None
    if served.unix_socket is not None:
        open_socket_to_workers(served.unix_socket)
    port = port or free_port(host)
    upstream = upstream_of(served)
    user = _worker_user()
    layout.prefix.mkdir(parents=True, exist_ok=True)
    text = nginx_conf(
        title=f"nginx in front of {served.app.id} @ {served.server.id} ({spec.upstream})",
        port=port,
        upstream=upstream,
        layout=layout,
        workers=spec.workers,
        client_protocol=spec.client_protocol,
        tls=tls,
        user=user,
        host=host,
    )
    layout.config.write_text(text)
    binary = shutil.which(NGINX) or NGINX
    argv = [
        *(wrap or []),
        binary,
        "-p",
        str(layout.prefix),
        "-c",
        str(layout.config),
        "-e",
        str(layout.error_log),
        # nginx writes its title over its environment: the owner's tag goes in its
        # arguments, where the leak check reads it (its workers: by process group).
        "-g",
        f"env {owner_tag()};",
    ]
    # Readiness is probed from here (over HTTP/1.1, TLS for a TLS client protocol, as
    # nginx answers HTTP/1.1 beside HTTP/2): an any-address listen answers on loopback too.
    scheme = "https" if tls is not None else "http"
    base_url = f"{scheme}://{LOOPBACK if host == ANY_ADDRESS[0] else host}:{port}"
    process = ManagedProcess(
        argv, name=f"nginx (in front of {served.server.id})", log_path=layout.prefix / "nginx.out"
    )
    try:
        try:
            process.wait_until(
                lambda: answers_health(base_url, path=served.app.health, cafile=cafile),
                ready_timeout,
                f"answering {served.app.health} through it",
            )
        except ProcessError as exc:
            reason = str(exc).partition("; last log lines:")[0]
            tail = "\n".join(part for part in (process.log_tail(), _tail(layout.error_log)) if part)
            raise ProcessError(f"{reason}; last log lines:\n{tail}") from None
        version = nginx_version(binary)
        yield Proxied(spec, base_url, upstream, layout, argv, version, process, cafile)
    finally:
        process.stop()


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return ""
