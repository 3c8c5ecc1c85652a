"""The servers: what each serves, what it needs installed, and its command line, for each
protocol it speaks (``PROTOCOLS``: cleartext HTTP/1.1, TLS, HTTP/2 by ALPN, cleartext h2c).

One place declares this; the noxfile's parametrization, the matrix and the tests derive
from it. Defaults are each server's production-style setup for the CPUs it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stackbench.apps import ASGI, WSGI, App

DEFAULT_POOL_SIZE = 10

# The protocols a bench speaks to a server (``bench --protocol``): the client's side is
# loadgen's (an https:// URL, --h2), the server's is its command line (``Speaks`` below).
H1, H1_TLS, H2, H2C = "h1", "h1-tls", "h2", "h2c"
PROTOCOLS: dict[str, str] = {
    H1: "HTTP/1.1 in cleartext",
    H1_TLS: "HTTP/1.1 over TLS",
    H2: "HTTP/2 over TLS, chosen by ALPN",
    H2C: "HTTP/2 in cleartext, by prior knowledge",
}
TLS = (H1_TLS, H2)  # the protocols that need a certificate
HTTP2 = (H2, H2C)  # the protocols loadgen speaks with --h2
# What loadgen's report calls the protocol each connection spoke (its protocol.negotiated).
NEGOTIATED = {H1: "http/1.1", H1_TLS: "http/1.1", H2: "h2", H2C: "h2c"}


@dataclass(frozen=True)
class Certificates:
    """A server's TLS material for one run (made by stackbench/certificates.py): its
    certificate chain and private key, and the CA certificate a client trusts."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class Speaks:
    """How a server speaks the protocols beyond cleartext HTTP/1.1, its own way.

    ``tls``: the flags that serve TLS, with ``{cert}``, ``{key}``, ``{host}`` and ``{port}``
    filled in (daphne's replace its bind flags). ``h2`` / ``h2c``: the flags that switch
    HTTP/2 on over TLS (ALPN) / in cleartext (prior knowledge), ``()`` when it is on
    by default, None when the server has none; ``why_not`` says why, for each protocol
    missing. ``requirements``: what a protocol needs installed beside the server's own.
    ``notes``: a caveat a protocol has on this server; ``loopback_only``: the protocols it
    speaks only to peers on loopback (``serve`` refuses them on another address)."""

    tls: tuple[str, ...] | None
    h2: tuple[str, ...] | None
    h2c: tuple[str, ...] | None
    why_not: dict[str, str] = field(default_factory=dict)
    requirements: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    loopback_only: tuple[str, ...] = ()

    def flags(self, protocol: str) -> tuple[str, ...] | None:
        """The flags ``protocol`` adds to the command line (templates), or None."""
        if protocol == H1:
            return ()
        if protocol == H1_TLS:
            return self.tls
        if protocol == H2:
            return None if self.tls is None or self.h2 is None else (*self.tls, *self.h2)
        if protocol == H2C:
            return self.h2c
        raise ValueError(f"unknown protocol {protocol!r}; protocols: {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class Knobs:
    """What a user may override; None means "the server's default for these CPUs"."""

    workers: int | None = None
    threads: int | None = None
    pool_size: int = DEFAULT_POOL_SIZE


@dataclass(frozen=True)
class Listen:
    """How a server is told where to listen: its TCP bind, and its unix-socket bind (a proxy
    in front reaches it there: ``--upstream unix``), with ``{host}``, ``{port}`` and
    ``{path}`` filled in; ``unix`` None: it cannot bind one."""

    tcp: tuple[str, ...]
    unix: tuple[str, ...] | None

    def words(self, host: str, port: int, unix_socket: Path | None = None) -> list[str]:
        if unix_socket is None:
            return [word.format(host=host, port=port) for word in self.tcp]
        if self.unix is None:
            raise ValueError("this server cannot listen on a unix socket")
        return [word.format(path=unix_socket) for word in self.unix]


GUNICORN_LISTEN = Listen(("-b", "{host}:{port}"), ("-b", "unix:{path}"))


@dataclass(frozen=True)
class Server:
    id: str
    interfaces: tuple[str, ...]
    requirements: tuple[str, ...]
    notes: str
    listen: Listen = GUNICORN_LISTEN  # every gunicorn worker class binds as gunicorn does
    # Environment that selects the app's driver/patching under this server, for apps that
    # declare a driver switch (django_sync, django_fastapi).
    env: dict[str, str] = field(default_factory=dict)
    # Needs its green-thread-capable driver: only apps that read DJANGO_DB_DRIVER can honour it.
    needs_driver_switch: bool = False
    # Runs with the GIL off on a free-threaded interpreter (the free-threaded lane): its
    # concurrency is threads in one process, which is what free-threading speeds up.
    free_threading: bool = False
    # TLS, HTTP/2 and h2c: its flags, what they need installed, why one is missing.
    speaks: Speaks = field(default_factory=lambda: _UNDECLARED)

    def why_not(self, protocol: str) -> str | None:
        """None when this server speaks ``protocol``, else why not, in a few words."""
        if self.speaks.flags(protocol) is not None:
            return None
        return self.speaks.why_not[protocol]

    def protocols(self) -> list[str]:
        """The protocols this server speaks, in PROTOCOLS' order."""
        return [protocol for protocol in PROTOCOLS if self.why_not(protocol) is None]

    def requirements_for(self, protocol: str = H1) -> tuple[str, ...]:
        """What serving ``protocol`` needs installed: the server's own and the protocol's."""
        return (*self.requirements, *self.speaks.requirements.get(protocol, ()))

    def protocol_flags(
        self, protocol: str, certificates: Certificates | None, host: str, port: int
    ) -> list[str]:
        """The flags that make this server speak ``protocol`` on ``host:port``."""
        flags = self.speaks.flags(protocol)
        if flags is None:
            raise ValueError(f"{self.id} does not speak {protocol}: {self.why_not(protocol)}")
        if protocol in TLS and certificates is None:
            raise ValueError(f"{protocol} needs a certificate and its key")
        fill = {"host": host, "port": str(port)}
        if certificates is not None:
            fill.update(
                cert=str(certificates.cert),
                key=str(certificates.key),
                # inside a Twisted endpoint string (daphne -e), a colon is escaped
                endpoint_cert=str(certificates.cert).replace(":", "\\:"),
                endpoint_key=str(certificates.key).replace(":", "\\:"),
            )
        return [flag.format(**fill) for flag in flags]

    @property
    def pins(self) -> bool:
        """Its requirements pin a distribution to one version (gunicorn-eventlet's
        gunicorn 25.3): in a venv shared with other servers, that pin is what they run."""
        return any("==" in requirement for requirement in self.requirements)

    def interface_for(self, app: App) -> str | None:
        """The app interface this server would serve (ASGI preferred), or None."""
        for interface in (ASGI, WSGI):
            if interface in self.interfaces and interface in app.entries:
                return interface
        return None

    def resolve(self, knobs: Knobs, cpus: int) -> dict[str, int]:
        """Workers and threads after defaults; stored with every result."""
        workers = knobs.workers or default_workers(self.id, cpus)
        threads = knobs.threads or default_threads(self.id, knobs.pool_size)
        return {"workers": workers, "threads": threads, "pool_size": knobs.pool_size}

    @property
    def binds_unix(self) -> bool:
        """It can listen on a unix socket (``--upstream unix`` behind a proxy)."""
        return self.listen.unix is not None

    def argv(
        self,
        app: App,
        port: int,
        knobs: Knobs,
        cpus: int,
        host: str = "127.0.0.1",
        protocol: str = H1,
        certificates: Certificates | None = None,
        unix_socket: Path | None = None,
    ) -> list[str]:
        """The server's command line, listening on ``host:port`` (loopback by default), or
        on ``unix_socket`` instead when given (behind a proxy: HTTP/1.1 only), speaking
        ``protocol`` (TLS ones with ``certificates``)."""
        interface = self.interface_for(app)
        if interface is None:
            raise ValueError(f"{self.id} cannot serve {app.id}")
        if unix_socket is not None and not self.binds_unix:
            raise ValueError(f"{self.id} cannot listen on a unix socket")
        if unix_socket is not None and protocol != H1:
            raise ValueError(f"on a unix socket (behind a proxy) {self.id} speaks {H1} only")
        speaking = self.protocol_flags(protocol, certificates, host, port)
        entry = app.entries[interface]
        settings = self.resolve(knobs, cpus)
        workers, threads = str(settings["workers"]), str(settings["threads"])
        where = self.listen.words(host, port, unix_socket)
        # An app without a lifespan handler (Django) gets it switched off where servers probe.
        lifespan_off = not app.lifespan
        if self.id.startswith("gunicorn-"):
            worker_class = {
                "gunicorn-sync": ["-k", "sync"],
                "gunicorn-gthread": ["-k", "gthread", "--threads", threads],
                "gunicorn-gevent": ["-k", "gevent", "--worker-connections", threads],
                "gunicorn-gevent-blocking": ["-k", "gevent", "--worker-connections", threads],
                "gunicorn-eventlet": ["-k", "eventlet", "--worker-connections", threads],
                "gunicorn-uvicorn": ["-k", "uvicorn_worker.UvicornWorker"],
                "gunicorn-asgi": [
                    "-k",
                    "asgi",
                    "--asgi-loop",
                    "uvloop",
                    "--asgi-lifespan",
                    "off" if lifespan_off else "auto",
                ],
            }[self.id]
            # --no-control-socket: gunicorn 25.1+ opens one in ~/.gunicorn; several run here.
            return [
                "gunicorn",
                *worker_class,
                "-w",
                workers,
                *where,
                "--no-control-socket",
                "--graceful-timeout",
                "5",
                *speaking,
                entry,
            ]
        if self.id == "uvicorn":
            return [
                "uvicorn",
                *where,
                "--workers",
                workers,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--lifespan",
                "off" if lifespan_off else "auto",
                *speaking,
                entry,
            ]
        if self.id == "hypercorn":
            return ["hypercorn", "-k", "uvloop", "-w", workers, *where, *speaking, entry]
        if self.id == "daphne":  # its TLS is a Twisted endpoint, which binds instead of -b/-p
            listen = speaking if protocol in TLS else where
            return ["daphne", *listen, entry]
        if self.id == "granian":
            granian_interface = interface
            if interface == ASGI and lifespan_off:
                granian_interface = "asginl"  # ASGI without lifespan
            extra = ["--blocking-threads", threads] if interface == WSGI else []
            return [
                "granian",
                "--interface",
                granian_interface,
                *where,
                "--workers",
                workers,
                *extra,
                "--no-ws",
                *speaking,
                entry,
            ]
        raise AssertionError(self.id)

    def gil_env(self, free_threaded_python: bool) -> dict[str, str]:
        """Environment for the server on this interpreter: on a free-threaded build, the
        servers of the free-threaded lane run with the GIL off (``PYTHON_GIL=0`` keeps an
        extension module that does not declare free-threading support from turning it back
        on); everything else runs as the interpreter starts."""
        if free_threaded_python and self.free_threading:
            return dict(GIL_OFF)
        return {}


GIL_OFF = {"PYTHON_GIL": "0"}


def default_workers(server_id: str, cpus: int) -> int:
    if server_id == "gunicorn-sync":
        return 2 * cpus + 1  # gunicorn's rule of thumb for blocking workers
    if server_id == "daphne":
        return 1  # daphne is one process; scale it with more daphnes behind a balancer
    return cpus  # one event loop (or thread pool) per CPU


def default_threads(server_id: str, pool_size: int) -> int:
    if server_id in ("gunicorn-gevent", "gunicorn-gevent-blocking", "gunicorn-eventlet"):
        return 100  # greenlets per worker; DB connections stay bounded by the pool
    return pool_size  # one thread per pooled connection


# 25.1 is the first gunicorn with --no-control-socket, which every command line passes; a
# floor, not 27, so one venv can still hold gunicorn-eventlet's 25.3 pin (docs/servers.md).
_GUNICORN = "gunicorn>=25.1"
_GUNICORN_GEVENT = "gunicorn[gevent]>=25.1"  # its gevent worker imports `packaging`, an extra
_FAST_LOOP = ("uvloop>=0.19", "httptools>=0.6")

# How each family serves TLS and HTTP/2 (docs/servers.md, "TLS and HTTP/2"). gunicorn's
# HTTP/2 is beta (25.0+, TLS; h2c 26.2+), for its gthread, gevent and asgi workers, with the
# h2 package (its http2 extra); its h2c answers only peers in forwarded_allow_ips, which is
# loopback by default. "both": prior knowledge, and HTTP/1.1 (with Upgrade) still answered,
# so the readiness probe and the smoke check keep speaking HTTP/1.1.
_GUNICORN_TLS = ("--certfile", "{cert}", "--keyfile", "{key}")
_GUNICORN_H2 = ("--http-protocols", "h2,h1")
_GUNICORN_H2C_NOTE = (
    "gunicorn answers h2c only to peers in forwarded_allow_ips (127.0.0.1 and ::1 by "
    "default): loopback, or a proxy listed there"
)


_UNDECLARED: Speaks = Speaks(
    tls=None,
    h2=None,
    h2c=None,
    why_not=dict.fromkeys(
        (H1_TLS, H2, H2C), "not declared for this server in stackbench/servers.py"
    ),
)


def _gunicorn_http2(extra: str = "gunicorn[http2]>=25.1") -> Speaks:
    return Speaks(
        tls=_GUNICORN_TLS,
        h2=_GUNICORN_H2,
        h2c=(*_GUNICORN_H2, "--http2-cleartext", "both"),
        requirements={H2: (extra,), H2C: (extra,)},
        notes={H2: "gunicorn's HTTP/2 is beta", H2C: _GUNICORN_H2C_NOTE},
        loopback_only=(H2C,),
    )


def _no_http2(why: str, tls: tuple[str, ...] = _GUNICORN_TLS, h2c: str | None = None) -> Speaks:
    return Speaks(tls=tls, h2=None, h2c=None, why_not={H2: why, H2C: h2c or why})


SERVERS: dict[str, Server] = {
    server.id: server
    for server in (
        Server(
            "gunicorn-sync",
            (WSGI,),
            (_GUNICORN,),
            "sync workers: one request per process at a time (patch nothing)",
            speaks=_no_http2(
                "gunicorn's sync worker has no HTTP/2 (gthread, gevent and asgi workers do)"
            ),
        ),
        Server(
            "gunicorn-gthread",
            (WSGI,),
            (_GUNICORN,),
            "workers x threads, threads sized to the DB pool (TechEmpower's Django setup)",
            free_threading=True,
            speaks=_gunicorn_http2(),
        ),
        Server(
            "gunicorn-gevent",
            (WSGI,),
            (_GUNICORN_GEVENT, "gevent>=24"),
            "gevent workers; psycopg 3 is cooperative under gevent without a patch",
            env={"DJANGO_DB_DRIVER": "psycopg"},
            speaks=_gunicorn_http2(),
        ),
        Server(
            "gunicorn-gevent-blocking",
            (WSGI,),
            (_GUNICORN_GEVENT, "gevent>=24", "psycopg2-binary"),
            "gevent workers with psycopg2 NOT patched: DB calls serialize per worker",
            env={"DJANGO_DB_DRIVER": "psycopg2"},
            needs_driver_switch=True,
            speaks=_gunicorn_http2(),
        ),
        Server(
            "gunicorn-eventlet",
            (WSGI,),
            ("gunicorn==25.3.0", "eventlet>=0.36", "psycopg2-binary", "psycogreen"),
            "gunicorn 26+ has no eventlet worker (pinned 25.3); psycopg2 + psycogreen",
            env={"DJANGO_DB_DRIVER": "psycopg2", "PSYCOGREEN": "eventlet"},
            needs_driver_switch=True,
            speaks=_no_http2(
                "gunicorn's HTTP/2 is for its gthread, gevent and asgi workers, not eventlet's",
                h2c="h2c came with gunicorn 26.2; the eventlet worker is 25.3's (pinned)",
            ),
        ),
        Server(
            "uvicorn",
            (ASGI,),
            ("uvicorn>=0.30", *_FAST_LOOP),
            "uvloop + httptools, --workers N",
            Listen(("--host", "{host}", "--port", "{port}"), ("--uds", "{path}")),
            speaks=_no_http2(
                "uvicorn has no HTTP/2", tls=("--ssl-certfile", "{cert}", "--ssl-keyfile", "{key}")
            ),
        ),
        Server(
            "gunicorn-uvicorn",
            (ASGI,),
            (_GUNICORN, "uvicorn-worker", *_FAST_LOOP),
            "gunicorn arbiter with uvicorn_worker.UvicornWorker",
            # the worker takes gunicorn's --certfile/--keyfile; its protocol is uvicorn's
            speaks=_no_http2("the uvicorn worker speaks uvicorn's HTTP/1.1 only (no HTTP/2)"),
        ),
        Server(
            "gunicorn-asgi",
            (ASGI,),
            ("gunicorn>=27", "uvloop>=0.19"),
            "gunicorn's own asyncio ASGI worker (-k asgi, beta), uvloop, lifespan off for Django",
            speaks=_gunicorn_http2("gunicorn[http2]>=27"),
        ),
        Server(
            "hypercorn",
            (ASGI,),
            ("hypercorn>=0.17", "uvloop>=0.19"),
            "uvloop worker class",
            Listen(("-b", "{host}:{port}"), ("-b", "unix:{path}")),
            # h2 (a dependency of hypercorn) by ALPN and h2c by prior knowledge, always on
            speaks=Speaks(tls=("--certfile", "{cert}", "--keyfile", "{key}"), h2=(), h2c=()),
        ),
        Server(
            "daphne",
            (ASGI,),
            ("daphne>=4",),
            "Django's own ASGI server, one process",
            Listen(("-b", "{host}", "-p", "{port}"), ("-u", "{path}")),
            # Twisted's TLS endpoint; its HTTP/2 is on by ALPN once its http2 extra is there
            speaks=Speaks(
                tls=(
                    "-e",
                    "ssl:{port}:privateKey={endpoint_key}:certKey={endpoint_cert}:interface={host}",
                ),
                h2=(),
                h2c=None,
                why_not={H2C: "Twisted speaks HTTP/2 only when ALPN chose it: no h2c"},
                requirements={H1_TLS: ("twisted[tls]",), H2: ("twisted[http2,tls]",)},
            ),
        ),
        Server(
            "granian",
            (ASGI, WSGI),
            ("granian>=2",),
            "Rust server; --interface asgi (asginl for Django) or wsgi",
            Listen(("--host", "{host}", "--port", "{port}"), ("--uds", "{path}")),
            free_threading=True,
            # --http auto (its default): HTTP/2 by ALPN over TLS, by prior knowledge in
            # cleartext, HTTP/1.1 otherwise
            speaks=Speaks(
                tls=("--ssl-certificate", "{cert}", "--ssl-keyfile", "{key}"),
                h2=("--http", "auto"),
                h2c=("--http", "auto"),
            ),
        ),
    )
}


class UnknownServerError(ValueError):
    pass


def get_server(server_id: str) -> Server:
    try:
        return SERVERS[server_id]
    except KeyError:
        raise UnknownServerError(
            f"unknown server {server_id!r}; valid servers: {', '.join(SERVERS)}"
        ) from None
