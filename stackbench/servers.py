"""The servers: what each serves, what it needs installed, and its command line.

One place declares this; the noxfile's parametrization, the matrix and the tests derive
from it. Defaults are each server's production-style setup for the CPUs it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stackbench.apps import ASGI, WSGI, App

DEFAULT_POOL_SIZE = 10


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
    # Environment that selects the app's driver/patching under this server (django_sync).
    env: dict[str, str] = field(default_factory=dict)
    # Needs its green-thread-capable driver: only apps that read DJANGO_DB_DRIVER can honour it.
    needs_driver_switch: bool = False
    # Runs with the GIL off on a free-threaded interpreter (the free-threaded lane): its
    # concurrency is threads in one process, which is what free-threading speeds up.
    free_threading: bool = False

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
        unix_socket: Path | None = None,
    ) -> list[str]:
        """The server's command line, listening on ``host:port`` (loopback by default), or
        on ``unix_socket`` instead when given."""
        interface = self.interface_for(app)
        if interface is None:
            raise ValueError(f"{self.id} cannot serve {app.id}")
        if unix_socket is not None and not self.binds_unix:
            raise ValueError(f"{self.id} cannot listen on a unix socket")
        entry = app.entries[interface]
        settings = self.resolve(knobs, cpus)
        workers, threads = str(settings["workers"]), str(settings["threads"])
        where = self.listen.words(host, port, unix_socket)
        # Django has no lifespan handler; servers that probe for one get it switched off.
        lifespan_off = app.django
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
                entry,
            ]
        if self.id == "hypercorn":
            return ["hypercorn", "-k", "uvloop", "-w", workers, *where, entry]
        if self.id == "daphne":
            return ["daphne", *where, entry]
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

SERVERS: dict[str, Server] = {
    server.id: server
    for server in (
        Server(
            "gunicorn-sync",
            (WSGI,),
            (_GUNICORN,),
            "sync workers: one request per process at a time (patch nothing)",
        ),
        Server(
            "gunicorn-gthread",
            (WSGI,),
            (_GUNICORN,),
            "workers x threads, threads sized to the DB pool (TechEmpower's Django setup)",
            free_threading=True,
        ),
        Server(
            "gunicorn-gevent",
            (WSGI,),
            (_GUNICORN_GEVENT, "gevent>=24"),
            "gevent workers; psycopg 3 is cooperative under gevent without a patch",
            env={"DJANGO_DB_DRIVER": "psycopg"},
        ),
        Server(
            "gunicorn-gevent-blocking",
            (WSGI,),
            (_GUNICORN_GEVENT, "gevent>=24", "psycopg2-binary"),
            "gevent workers with psycopg2 NOT patched: DB calls serialize per worker",
            env={"DJANGO_DB_DRIVER": "psycopg2"},
            needs_driver_switch=True,
        ),
        Server(
            "gunicorn-eventlet",
            (WSGI,),
            ("gunicorn==25.3.0", "eventlet>=0.36", "psycopg2-binary", "psycogreen"),
            "gunicorn 26+ has no eventlet worker (pinned 25.3); psycopg2 + psycogreen",
            env={"DJANGO_DB_DRIVER": "psycopg2", "PSYCOGREEN": "eventlet"},
            needs_driver_switch=True,
        ),
        Server(
            "uvicorn",
            (ASGI,),
            ("uvicorn>=0.30", *_FAST_LOOP),
            "uvloop + httptools, --workers N",
            Listen(("--host", "{host}", "--port", "{port}"), ("--uds", "{path}")),
        ),
        Server(
            "gunicorn-uvicorn",
            (ASGI,),
            (_GUNICORN, "uvicorn-worker", *_FAST_LOOP),
            "gunicorn arbiter with uvicorn_worker.UvicornWorker",
        ),
        Server(
            "gunicorn-asgi",
            (ASGI,),
            ("gunicorn>=27", "uvloop>=0.19"),
            "gunicorn's own asyncio ASGI worker (-k asgi, beta), uvloop, lifespan off for Django",
        ),
        Server(
            "hypercorn",
            (ASGI,),
            ("hypercorn>=0.17", "uvloop>=0.19"),
            "uvloop worker class",
            Listen(("-b", "{host}:{port}"), ("-b", "unix:{path}")),
        ),
        Server(
            "daphne",
            (ASGI,),
            ("daphne>=4",),
            "Django's own ASGI server, one process",
            Listen(("-b", "{host}", "-p", "{port}"), ("-u", "{path}")),
        ),
        Server(
            "granian",
            (ASGI, WSGI),
            ("granian>=2",),
            "Rust server; --interface asgi (asginl for Django) or wsgi",
            Listen(("--host", "{host}", "--port", "{port}"), ("--uds", "{path}")),
            free_threading=True,
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
