"""The contract over TLS and HTTP/2: the conformance suite's rows a protocol can change
(from shared_fixtures/conformance/test_contract.py and test_edges.py, listed below) against
one pair per server family for each protocol that family speaks, through httpx (with its
HTTP/2, h2).

The hostile section stays HTTP/1.1 in cleartext (tests/test_conformance.py): it writes
raw HTTP/1.1 bytes, which is the server's HTTP/1.1 parser on trial whatever the load
speaks. Where a server answers differently over HTTP/2, docs/servers.md says so and a
test here holds it. The pairs are the fewest that cover every family (gunicorn's
threaded worker, gunicorn's asgi worker, uvicorn, hypercorn, daphne, granian) on each
protocol, each family with another app, so that the six apps are met too: the suite's
time is bounded (this module's cost: docs/servers.md).
``STACKBENCH_PROTOCOL_PAIRS=all`` runs the same rows against every pair instead, on every
protocol its server speaks (docs/servers.md gives the command and its last result).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget

# The rows a protocol can change: every endpoint's answer, framing and headers, bodies in
# and out (chunked, refused, too large), HEAD, errors, and many requests at once (streams on
# HTTP/2). The app's own validation (its many bad-input cases) answers the same whatever
# carried the request: the cleartext suite covers it (tests/test_conformance.py).
from shared_fixtures.conformance.test_contract import (  # noqa: F401  (collected here)
    test_create_troupe,
    test_create_troupe_name_taken,
    test_db_returns_a_real_row,
    test_detail,
    test_fortunes_escapes_script_and_keeps_unicode,
    test_fortunes_markup_is_exact,
    test_framing_and_date,
    test_health,
    test_json,
    test_list_first_page,
    test_plaintext,
    test_queries_lengths,
    test_slow_db,
    test_slow_fanout,
    test_slow_http,
    test_updates_persist,
)
from shared_fixtures.conformance.test_edges import (  # noqa: F401  (collected here)
    test_head_is_get_without_a_body,
    test_no_redirect_follows_the_host_header,
    test_troupe_chunked_body,
    test_troupe_chunked_body_too_large_is_413,
    test_troupe_declared_too_large_is_413,
    test_troupe_too_large_refused_before_the_body_is_read,
    test_unknown_path_is_404_json,
    test_updates_as_techempower_counts_them,
    test_wrong_method_is_405_json,
)
from shared_fixtures.db import Database
from stackbench import matrix
from stackbench.servers import H1_TLS, H2, HTTP2, get_server

# Nine servers and about 400 rows: minutes on two cores (docs/servers.md, "TLS and HTTP/2").
pytestmark = pytest.mark.slow

# One pair per server family: (app, server); each speaks every protocol below it can.
FAMILIES = (
    ("django_sync", "gunicorn-gthread"),
    ("gino_style", "uvicorn"),
    ("fastapi_sqla", "hypercorn"),
    ("django_async", "daphne"),
    ("tortoise", "granian"),
    ("django_fastapi", "gunicorn-asgi"),  # gunicorn's own HTTP/2, in its asgi worker
)
# Every pair instead, each on every protocol its server speaks (docs/servers.md, "TLS and
# HTTP/2": the command, its time and its last result): STACKBENCH_PROTOCOL_PAIRS=all.
EVERY_PAIR = os.environ.get("STACKBENCH_PROTOCOL_PAIRS", "families")
if EVERY_PAIR not in ("all", "families"):
    raise pytest.UsageError(f"STACKBENCH_PROTOCOL_PAIRS={EVERY_PAIR!r}: say all or families")
# (A server that pins a distribution, gunicorn-eventlet's gunicorn 25.3, is not in the
# tests' venv: `pins` in stackbench/servers.py.)
EVERY = [(p.app, p.server) for p in matrix.pairs() if not get_server(p.server).pins]
PAIRS = EVERY if EVERY_PAIR == "all" else FAMILIES
TARGETS = [
    (app, server, protocol)
    for protocol in (H1_TLS, H2)
    for app, server in PAIRS
    if get_server(server).why_not(protocol) is None
]


# Where a server answers otherwise than the contract over a protocol (docs/servers.md,
# "TLS and HTTP/2"): (server, protocol or None for every protocol, test) → why. Each is a
# strict xfail: a server that starts answering as the contract says passes the row, and
# the suite fails until the row goes from here and from the doc.
DATE = "daphne sends no Date header, whatever the protocol (CONTRACT.md, section 5)"
DATE_H2 = "gunicorn's asgi worker sends no Date header over HTTP/2 (it does over HTTP/1.1)"
DATE_ROWS = ("test_health", "test_json", "test_plaintext", "test_framing_and_date")
DIFFERENCES = {
    **{("daphne", None, test): DATE for test in DATE_ROWS},
    **{("gunicorn-asgi", H2, test): DATE_H2 for test in DATE_ROWS},
    ("daphne", None, "test_troupe_too_large_refused_before_the_body_is_read"): (
        "daphne reads a request's whole body before the app sees the request"
    ),
    ("granian", H2, "test_head_is_get_without_a_body"): (
        "granian sends a HEAD response's body in DATA frames over HTTP/2"
    ),
}


@pytest.fixture(autouse=True)
def _known_difference(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or "target" not in callspec.params:
        return
    _, server, protocol = callspec.params["target"]
    test = request.node.originalname
    why = DIFFERENCES.get((server, protocol, test)) or DIFFERENCES.get((server, None, test))
    if why is not None:
        request.node.add_marker(pytest.mark.xfail(reason=why, strict=True))


@pytest.fixture(autouse=True)
def _a_connection_of_its_own(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each row starts on a new connection: hypercorn's HTTP/2 drops the whole connection
    when a request's body arrives after its answer (the 413 rows answer before the body is
    read: a KeyError in its log, pgjones/hypercorn PRs 312 and 334), and the next row sent
    on it failed for the row before ("Server disconnected", CI)."""
    yield
    if "target" in request.fixturenames:
        request.getfixturevalue("target").new_connections()


@pytest.fixture(
    scope="module",
    params=TARGETS,
    ids=[f"{app}@{server}~{protocol}" for app, server, protocol in TARGETS],
)
def target(request: pytest.FixtureRequest, app_servers, db: Database) -> Iterator[AppTarget]:
    app_id, server_id, protocol = request.param
    served = app_servers.get(app_id, server_id, protocol=protocol)
    judged = AppTarget(
        served.base_url,
        db.url,
        name=request.node.name,
        log_path=served.process.log_path,
        cafile=served.cafile,
        http2=protocol in HTTP2,
    )
    # The suite judges the protocol it was asked to: httpx would fall back to HTTP/1.1.
    first = judged.get("/health")
    wanted = "HTTP/2" if protocol in HTTP2 else "HTTP/1.1"
    assert first.http_version == wanted, f"{server_id} answered {first.http_version} to {protocol}"
    yield judged
    judged.close()


def test_the_suite_refuses_to_pass_http1_for_http2(app_servers) -> None:
    """The fixture's own check, planted: a server that speaks HTTP/1.1 only (uvicorn over
    TLS), asked HTTP/2 by httpx, answers HTTP/1.1 (ALPN), which the fixture refuses."""
    served = app_servers.get("gino_style", "uvicorn", protocol=H1_TLS)
    judged = AppTarget(served.base_url, cafile=served.cafile, http2=True)
    try:
        assert judged.get("/health").http_version == "HTTP/1.1"
    finally:
        judged.close()


# What each HTTP/2 server does with a request carrying `Connection: keep-alive`, which RFC
# 9113 8.2.2 calls malformed (docs/servers.md, "TLS and HTTP/2"): "reset" (the stream or
# the connection, with an error), or the status it answered. (A client's h2 strips such a
# header unless told not to, as httpx's does: this request is sent raw.)
CONNECTION_HEADER = {
    "gunicorn-gthread": "reset",
    "gunicorn-asgi": "reset",
    "hypercorn": "reset",
    "daphne": "reset",
    "granian": "reset",
}
H2_FAMILIES = [(app, server) for app, server in FAMILIES if (app, server, H2) in TARGETS]


@pytest.mark.parametrize(("app", "server"), H2_FAMILIES, ids=[s for _, s in H2_FAMILIES])
def test_a_connection_specific_header_on_http2(app_servers, app: str, server: str) -> None:
    served = app_servers.get(app, server, protocol=H2)
    judged = AppTarget(served.base_url, cafile=served.cafile, http2=True)
    try:
        assert _malformed_get(judged) == CONNECTION_HEADER[server]
    finally:
        judged.close()


def _malformed_get(judged: AppTarget) -> int | str:
    """GET /json on an HTTP/2 stream with `Connection: keep-alive`: the status, or "reset"."""
    import h2.config
    import h2.connection
    import h2.events

    config = h2.config.H2Configuration(
        validate_outbound_headers=False, normalize_outbound_headers=False
    )
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    with judged.connect(alpn=("h2",)) as sock:
        conn.send_headers(
            1, [*_get(judged, "/json"), ("connection", "keep-alive")], end_stream=True
        )
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                return "reset"  # closed without a word
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    return int(dict(event.headers)[b":status"])
                if isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                    return "reset"
            sock.sendall(conn.data_to_send())


def test_httpx_is_what_the_suite_speaks_http2_with() -> None:
    """httpx's HTTP/2 needs h2 (httpx[http2]): without it the h2 targets would silently
    speak HTTP/1.1, which the fixture refuses; here, that it is installed."""
    with httpx.Client(http2=True) as client:
        assert client is not None
    import h2  # noqa: F401


# hypercorn closes an HTTP/2 connection after keep_alive_max_requests (1,000) requests: at
# the 1,001st it sends GOAWAY naming the highest stream it has received as the last it
# processed, answers up to the 1,001st, and closes: the streams after it, at or below that
# last id, are never answered (RFC 9113 6.8: a client may take them as processed). A load
# with streams in flight on few connections sees them cut: protocol-costs' gino_style @
# hypercorn h2 x8 lost 0.9–1.5 % of its requests so (docs/servers.md).
HYPERCORN_REQUESTS_PER_CONNECTION = 1000


def test_hypercorn_cuts_a_connection_at_its_thousandth_request(app_servers) -> None:
    served = app_servers.get("fastapi_sqla", "hypercorn", protocol=H2)
    judged = AppTarget(served.base_url, cafile=served.cafile, http2=True)
    try:  # requests 1-999 one by one, then 1,000-1,007 together (streams 1999-2013)
        answered, goaway = _requests_on_one_connection(judged, 999, 8)
    finally:
        judged.close()
    limit = HYPERCORN_REQUESTS_PER_CONNECTION
    assert sorted(answered) == [2 * i + 1 for i in range(limit + 1)]  # up to the 1,001st
    assert goaway == (2 * (999 + 8) - 1, "NO_ERROR")  # "processed" up to the 1,007th


def _requests_on_one_connection(
    judged: AppTarget, one_by_one: int, at_once: int
) -> tuple[list[int], tuple[int, str] | None]:
    """GET /plaintext ``one_by_one`` times, each after the last one's answer, then
    ``at_once`` times together, on one HTTP/2 connection, until every one is answered or
    the connection closes: the streams answered, and the GOAWAY's (last stream id,
    error) if one came."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    conn.initiate_connection()
    answered: list[int] = []
    goaway = None
    headers = _get(judged, "/plaintext")
    batches = [[2 * i + 1] for i in range(one_by_one)]
    batches.append([2 * (one_by_one + i) + 1 for i in range(at_once)])
    with judged.connect(alpn=("h2",)) as sock:
        for batch in batches:
            for stream in batch:
                conn.send_headers(stream, headers, end_stream=True)
            sock.sendall(conn.data_to_send())
            waiting = set(batch)
            while waiting:
                data = sock.recv(65536)
                if not data:
                    return answered, goaway
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.StreamEnded):
                        answered.append(event.stream_id)
                        waiting.discard(event.stream_id)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        goaway = (event.last_stream_id, event.error_code.name)
                sock.sendall(conn.data_to_send())
    return answered, goaway


def _get(judged: AppTarget, path: str) -> list[tuple[str, str]]:
    """A GET request's pseudo-headers for ``path`` on the app, for a raw HTTP/2 stream."""
    return [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", judged.netloc),
        (":path", judged.prefix + path),
    ]
