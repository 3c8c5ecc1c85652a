"""The experiments (README, "Experiments"): questions earlier benchmarks asked, one command
each.

An experiment is data (this module, standard library only, so the noxfile can read it):
cells of (app, server, workers, endpoint) under one load shape,
each with the total time the concurrency model predicts and the reason in one line. It
runs through the bench machinery into one run directory and answers with a table of
measured beside predicted. (The server shootout became the ``capacity`` command:
stackbench/capacity.py.)
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from stackbench.matrix import Pair, get_pair
from stackbench.servers import H1, H1_TLS, H2, Knobs, get_server

# The pairs python-versions compares unless told otherwise: one per kind of stack.
VERSIONS_PAIRS = (
    Pair("django_sync", "gunicorn-gthread"),
    Pair("fastapi_sqla", "uvicorn"),
    Pair("gino_style", "uvicorn"),
)
# The features experiments (stackbench/experiments/features.py) and the pairs each may price,
# the first by default; their variants: stackbench/variants.
FEATURES_PAIRS = {
    "django-features": (Pair("django_sync", "gunicorn-gthread"), Pair("django_async", "uvicorn")),
    "fastapi-features": (Pair("fastapi_sqla", "uvicorn"),),
}
# protocol-costs (stackbench/experiments/protocols.py): one pair per server family that
# speaks TLS, and HTTP/2 where it has it (uvicorn: TLS only).
PROTOCOL_PAIRS = (
    Pair("gino_style", "granian"),
    Pair("gino_style", "hypercorn"),
    Pair("django_async", "daphne"),
    Pair("django_sync", "gunicorn-gthread"),
    Pair("gino_style", "uvicorn"),
)
# slow-clients (stackbench/experiments/slow_clients.py): each WSGI worker class of gunicorn
# and every ASGI server, on a thin app of each interface.
SLOW_CLIENTS_PAIRS = (
    Pair("django_sync", "gunicorn-sync"),
    Pair("django_sync", "gunicorn-gthread"),
    Pair("django_sync", "gunicorn-gevent"),
    Pair("gino_style", "uvicorn"),
    Pair("gino_style", "gunicorn-uvicorn"),
    Pair("gino_style", "gunicorn-asgi"),
    Pair("gino_style", "hypercorn"),
    Pair("gino_style", "daphne"),
    Pair("gino_style", "granian"),
)
# tls-termination (stackbench/experiments/tls_termination.py): two apps, each under the
# servers that end TLS themselves (uvicorn: no HTTP/2, its h2 lane at the server says so).
TLS_TERMINATION_PAIRS = (
    Pair("gino_style", "uvicorn"),
    Pair("gino_style", "hypercorn"),
    Pair("gino_style", "granian"),
    Pair("django_sync", "gunicorn-gthread"),
)
DELAY = 1.0  # seconds each slow endpoint waits (pg_sleep and/or the upstream)
N, C = 10, 10  # 10 requests at concurrency 10, closed model: the blog post's load
TOLERANCE = 0.15


@dataclass(frozen=True)
class Cell:
    app: str
    server: str
    endpoint: str  # a loadgen scenario: slow-db, slow-http, slow-both, slow-fanout
    predicted_s: float
    why: str
    workers: int = 1
    prefix: str = ""

    @property
    def config(self) -> tuple[str, str, int, str]:
        return self.app, self.server, self.workers, self.prefix

    @property
    def label(self) -> str:
        return f"w{self.workers}" + (self.prefix.replace("/", "-") if self.prefix else "")


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    cells: tuple[Cell, ...] = ()
    notes: str = ""


SERIAL = "one sync worker serves one request at a time: 10 x {d:g} s"
GREEN = "greenlets overlap the waits: about one request's {d:g} s"
DB_SERIAL = "the unpatched driver blocks the worker's one thread: DB waits add up"


def _gevent_patching() -> tuple[Cell, ...]:
    d = DELAY
    cells = []
    for endpoint, per_request in (("slow-http", d), ("slow-db", d), ("slow-both", 2 * d)):
        cells.append(
            Cell(
                "django_sync",
                "gunicorn-sync",
                endpoint,
                N * per_request,
                SERIAL.format(d=per_request),
            )
        )
    cells += [
        Cell(
            "django_sync",
            "gunicorn-gevent-blocking",
            "slow-http",
            d,
            "the HTTP call is on a patched socket: all 10 wait together",
        ),
        Cell("django_sync", "gunicorn-gevent-blocking", "slow-db", N * d, DB_SERIAL),
        Cell(
            "django_sync",
            "gunicorn-gevent-blocking",
            "slow-both",
            d + N * d,
            "HTTP waits overlap (1 s), then the 10 DB waits add up (10 s)",
        ),
    ]
    for server, how in (
        ("gunicorn-gevent", "psycopg 3 cooperates with gevent"),
        ("gunicorn-eventlet", "psycopg2 patched by psycogreen"),
    ):
        cells += [
            Cell("django_sync", server, "slow-http", d, GREEN.format(d=d)),
            Cell("django_sync", server, "slow-db", d, f"{how}: DB waits overlap"),
            Cell("django_sync", server, "slow-both", 2 * d, f"{how}: each request's 1 s + 1 s"),
        ]
    # What the blog never measured: 10 upstream calls inside each request.
    cells += [
        Cell(
            "django_sync",
            "gunicorn-sync",
            "slow-fanout",
            N * d,
            "a thread pool overlaps each request's 10 calls; requests still queue: 10 x 1 s",
        ),
        Cell(
            "django_sync",
            "gunicorn-gevent",
            "slow-fanout",
            d,
            "10 requests x 10 greenlet calls, all overlapping",
        ),
        Cell(
            "django_sync",
            "gunicorn-eventlet",
            "slow-fanout",
            d,
            "10 requests x 10 green calls, all overlapping",
        ),
    ]
    return tuple(cells)


def _wsgi_mounted_asgi() -> tuple[Cell, ...]:
    cells = []
    for server, workers in itertools.product(("gunicorn-eventlet", "gunicorn-gevent"), (1, 2)):
        cells.append(
            Cell(
                "django_fastapi",
                server,
                "slow-db",
                DELAY,
                "a2wsgi runs FastAPI on its own loop; sync endpoints in threads that "
                "the patch makes green: waits overlap",
                workers,
                "/fastapi",
            )
        )
    cells.append(
        Cell(
            "django_fastapi",
            "uvicorn",
            "slow-db",
            DELAY,
            "ASGI entry: FastAPI's threadpool (40) > 10 requests, pool of 10",
            1,
            "/fastapi",
        )
    )
    return tuple(cells)


def _django_async_orm() -> tuple[Cell, ...]:
    cells = []
    for server in ("uvicorn", "daphne", "gunicorn-uvicorn"):
        cells += [
            Cell(
                "django_async",
                server,
                "slow-http",
                DELAY,
                "httpx.AsyncClient awaits on the event loop: calls overlap",
            ),
            Cell(
                "django_async",
                server,
                "slow-db",
                DELAY,
                "the query runs via sync_to_async, but Django's ASGI handler gives each "
                "request its own thread-sensitive context: one thread each, waits overlap",
            ),
        ]
    for app in ("fastapi_sqla", "gino_style"):
        cells += [
            Cell(app, "uvicorn", "slow-http", DELAY, "async HTTP client: calls overlap"),
            Cell(app, "uvicorn", "slow-db", DELAY, "asyncpg awaits each pg_sleep: overlap"),
        ]
    return tuple(cells)


@dataclass(frozen=True)
class Lane:
    """One way protocol-costs or tls-termination loads a pair: a protocol, HTTP/2's streams
    per connection (the same requests in flight over 1/streams of the connections), and
    what ends the protocol toward the clients: the server (``front`` None) or the proxy
    named (which speaks HTTP/1.1 to the server)."""

    name: str
    protocol: str
    streams: int = 1
    front: str | None = None

    @property
    def label(self) -> str:
        """The lane in its results' file names: 'h2x8', 'h1-tls-nginx'."""
        return self.name.replace(" at ", "-").replace(" ", "")


def protocol_lanes(streams: int) -> tuple[Lane, ...]:
    """h1 (the baseline), h1-tls, h2 with one stream per connection, h2 with ``streams``."""
    return (
        Lane("h1", H1),
        Lane("h1-tls", H1_TLS),
        Lane("h2", H2),
        Lane(f"h2 x{streams}", H2, streams),
    )


# Where each server does TLS and HTTP/2: what its price follows from.
_TLS_IN = {
    "granian": ("rustls, in Rust", 0.95),
    "daphne": ("pyOpenSSL's memory BIO under Twisted, a Python layer per read and write", 0.8),
    "uvicorn": ("asyncio's SSL protocol (uvloop's), a layer over the transport", 0.8),
    "hypercorn": ("asyncio's SSL protocol (uvloop's), a layer over the transport", 0.8),
    "gunicorn-asgi": ("asyncio's SSL protocol (uvloop's), a layer over the transport", 0.8),
    "gunicorn-uvicorn": ("asyncio's SSL protocol (uvloop's), a layer over the transport", 0.8),
}
_GUNICORN_TLS = ("OpenSSL on the worker's blocking socket, in C", 0.9)
_H2_IN = {"granian": ("hyper, in Rust: framing and HPACK cost about what HTTP/1.1's do", 0.95)}
_PYTHON_H2 = ("python-hyper's h2, in pure Python: frames, HPACK and flow control per request", 0.6)
# gunicorn's gthread and gevent workers serve an HTTP/2 connection's streams one after the
# other (gunicorn/workers/gthread.py and base_async.py, handle_http2); the others run them
# as concurrent tasks.
_SERIAL_STREAMS = ("gunicorn-gthread", "gunicorn-gevent", "gunicorn-gevent-blocking")


def protocol_prediction(
    server_id: str, lane: Lane, waits: bool, connections: int, cpus: int, knobs: Knobs
) -> tuple[float, str]:
    """What protocol-costs predicts for ``lane`` on ``server_id``, as a ratio to h1 over
    the same requests in flight (``connections`` of h1's), and why. ``waits``: a slow-*
    scenario (its requests wait, so the ratio is of req/s); else the ratio is of requests
    per server CPU-second."""
    if lane.protocol == H1:
        return 1.0, "the baseline"
    if waits:
        if lane.streams > 1 and server_id in _SERIAL_STREAMS:
            settings = get_server(server_id).resolve(knobs, cpus)
            capacity = settings["workers"] * settings["threads"]
            conns = max(1, connections // lane.streams)
            ratio = min(conns, capacity) / min(connections, capacity)
            return ratio, (
                f"gunicorn serves a connection's streams one after another: {conns} "
                f"connections wait at once, not {min(connections, capacity)}"
            )
        return 1.0, "the waits dominate; streams run concurrently, as connections do"
    tls, tls_ratio = _TLS_IN.get(server_id, _GUNICORN_TLS)
    if lane.protocol == H1_TLS:
        return tls_ratio, f"one handshake per kept-alive connection, then {tls}"
    h2, h2_ratio = _H2_IN.get(server_id, _PYTHON_H2)
    if lane.streams > 1:  # fewer connections: fewer reads and writes for the same requests
        return min(1.0, tls_ratio * h2_ratio + 0.05), f"{h2}; fewer, fuller reads and writes"
    return tls_ratio * h2_ratio, f"{h2}, over TLS"


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "gevent-patching",
            "What do gevent workers buy a Django app waiting on a database and an HTTP "
            "service, and what if the DB driver is not patched?",
            _gevent_patching(),
            "The blog post's table: patch nothing / both ≈ 20.9 s; gevent unpatched / db ≈ "
            "10.2 s; gevent patched / db ≈ 1.1 s; gevent patched / both ≈ 2.1 s.",
        ),
        Experiment(
            "wsgi-mounted-asgi",
            "Does FastAPI mounted into a legacy WSGI Django (a2wsgi) under eventlet/gevent "
            "serve slow endpoints concurrently?",
            _wsgi_mounted_asgi(),
            "benchmark-django-fastapi measured 6.06 s for 10 requests of 1 s on eventlet, "
            "2 workers, with ab.",
        ),
        Experiment(
            "django-async-orm",
            "Is Django under an ASGI server with the async ORM concurrent for slow queries?",
            _django_async_orm(),
        ),
        Experiment(
            "python-versions",
            "What does moving to a newer Python do to each stack's throughput and CPU per request?",
            notes="The same pairs on every installed interpreter, each from its own virtualenv, "
            "in one run directory, the interpreter order alternating per repeat; ratios to "
            "the oldest interpreter in the same repeat.",
        ),
        Experiment(
            "django-features",
            "What does each production feature of a Django app cost, in requests per CPU-second?",
            notes="The app as shipped and each bench variant (one feature removed or "
            "replaced), in one run directory, the order reversing each round; each "
            "variant's ratio to the baseline of the same round, median and range.",
        ),
        Experiment(
            "fastapi-features",
            "What does each production feature of fastapi_sqla cost, in requests per CPU-second?",
            notes="As django-features, with fastapi_sqla's variants: SQLAlchemy ORM vs "
            "Core, the Pydantic response model, Jinja2, the per-request transaction and "
            "the session dependency's scope.",
        ),
        Experiment(
            "techempower",
            "Is each app as fast as TechEmpower's implementation of its stack, per server "
            "CPU-second?",
            notes="Ours and TechEmpower's app of the same stack (a copy of a checkout given "
            "by --techempower, only its database location changed) under the same server, "
            "pinning and load, as duets in one run directory, rounds alternating the order; "
            "median ratios ours / theirs with their range (docs/techempower.md).",
        ),
        Experiment(
            "protocol-costs",
            "What do TLS and HTTP/2 cost each server per request, and where does HTTP/2's "
            "multiplexing change the answer?",
            notes="Each pair under h1, h1-tls, h2 (one stream per connection) and h2 with N "
            "streams over 1/N of the connections, the same requests in flight, served one "
            "right after the other, rounds reversing the order; ratios to h1 of the same "
            "round: requests per server CPU-second on db, requests per second on the slow-* "
            "scenarios (their requests wait), beside the predicted ratio and its reason.",
        ),
        Experiment(
            "slow-clients",
            "What do clients that stay idle or send slowly cost each server, and does nginx "
            "in front take that cost away?",
            notes="Each WSGI worker class and each ASGI server, reached directly and through "
            "--proxy nginx: the /db load alone, then beside 25 and 200 idle or slow-headers "
            "connections (loadgen --misbehaving) held from before the warm-up to the end, "
            "each cell its own server start; p99 and req/s against the same pair alone, "
            "beside what the concurrency model predicts (a held connection holds a sync "
            "worker or a gthread thread; a gevent worker's pool bounds the connections it "
            "accepts; an event loop pays a socket; nginx passes on only whole requests).",
        ),
        Experiment(
            "tls-termination",
            "Where should TLS and HTTP/2 end: at the app server or at nginx in front?",
            notes="Each pair under h1 direct (the baseline), h1-tls and h2 ended at the server "
            "(where it speaks them) and at nginx (which speaks HTTP/1.1 to the server), "
            "served one right after the other, rounds reversing the order; each lane's "
            "requests per total CPU-second (server + proxy + database + client) and p99, "
            "its ratio to the same protocol ended at the other place in the same round, "
            "beside the predicted ratio and its reason.",
        ),
    )
}
# Experiments that became something else: their name says where they went.
RETIRED = {
    "server-shootout": "server-shootout is now the capacity command: python -m stackbench "
    "capacity --app APP (nox -s \"capacity(app='APP')\"; docs/capacity.md)",
}


class UnknownExperimentError(ValueError):
    pass


def get_experiment(name: str) -> Experiment:
    if name in RETIRED:
        raise UnknownExperimentError(RETIRED[name])
    try:
        experiment = EXPERIMENTS[name]
    except KeyError:
        raise UnknownExperimentError(
            f"unknown experiment {name!r}; valid experiments: {', '.join(EXPERIMENTS)}"
        ) from None
    return validate(experiment)


def validate(experiment: Experiment) -> Experiment:
    """The experiment, or one line naming its first cell with an invalid app or server."""
    for cell in experiment.cells:
        try:
            get_pair(cell.app, cell.server)
        except ValueError as exc:
            raise UnknownExperimentError(f"experiment {experiment.name!r}: {exc}") from None
        if cell.predicted_s <= 0 or cell.workers < 1:
            raise UnknownExperimentError(
                f"experiment {experiment.name!r}: {cell.app} @ {cell.server} needs a positive "
                "prediction and at least one worker"
            )
    return experiment


_SESSION = re.compile(r"experiment\(name='([^']*)'\)")


def check_requested_sessions(names: Iterable[str]) -> str | None:
    """A clear error for an ``experiment(...)`` session nox would not find, else None."""
    for name in names:
        if name.startswith("experiment("):
            match = _SESSION.fullmatch(name)
            if match is not None and match.group(1) in RETIRED:
                return RETIRED[match.group(1)]
            if match is None or match.group(1) not in EXPERIMENTS:
                return f"unknown experiment session {name!r}; valid: " + ", ".join(
                    f"experiment(name='{e}')" for e in EXPERIMENTS
                )
    return None


def requirements(experiment: Experiment) -> list[tuple[str, str]]:
    """The (app, server) pairs whose packages an experiment's environment needs."""
    if experiment.name == "python-versions":
        return [(p.app, p.server) for p in VERSIONS_PAIRS]
    if experiment.name in FEATURES_PAIRS:
        return [(p.app, p.server) for p in FEATURES_PAIRS[experiment.name]]
    if experiment.name == "techempower":
        return [(p.app, p.server) for p in VERSIONS_PAIRS]  # the three with a counterpart
    if experiment.name == "protocol-costs":
        return [(p.app, p.server) for p in PROTOCOL_PAIRS]
    if experiment.name == "slow-clients":
        return [(p.app, p.server) for p in SLOW_CLIENTS_PAIRS]
    if experiment.name == "tls-termination":
        return [(p.app, p.server) for p in TLS_TERMINATION_PAIRS]
    return sorted({(c.app, c.server) for c in experiment.cells})
