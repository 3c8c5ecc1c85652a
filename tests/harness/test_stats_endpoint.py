"""serve's stats endpoint against hostile clients (issue 26), with raw sockets: every answer
is JSON, every method but GET a 405, no request closes the connection without an answer,
and a client that sends nothing is let go. The endpoint is the real one, over a real
watch of a real process group and the session's database; tests/harness/test_serve.py
covers it inside `serve`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from shared_fixtures.conformance.raw import CLOSED, OPEN, Exchange, exchange
from shared_fixtures.db import Database
from stackbench.stats_endpoint import StatsServer, stats_endpoint
from stackbench.watch import ServerWatch

IDLE = 1.0  # the endpoint's idle timeout in these tests (10 s in serve)


@pytest.fixture(scope="module")
def endpoint(db: Database) -> Iterator[tuple[str, int]]:
    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        with ServerWatch(
            sleeper.pid, db.url, database_pid=None, server_state=lambda: (True, None)
        ) as watch:
            info = {"kind": "stackbench.serve", "app": "none"}
            with stats_endpoint(("127.0.0.1", 0), watch, info, db.url, IDLE) as server:
                yield _address(server)
    finally:
        sleeper.kill()
        sleeper.wait()


def _address(server: StatsServer) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def _request(line: str, *headers: str, body: bytes = b"") -> bytes:
    return "\r\n".join([line, "Host: stats", *headers, "", ""]).encode() + body


def _json(ex: Exchange, index: int = 0) -> dict:
    answer = ex.answers[index]
    assert answer.content_type == "application/json", (answer.headers, answer.body[:200])
    document = json.loads(answer.body)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize(
    ("since", "status"),
    [("1" * 4_301, 410), ("9" * 19, 410), ("0" * 5_000, 200), ("0" * 4_300 + "1", 200)],
    ids=["4301-digits", "19-digits", "5000-zeros", "leading-zeros"],
)
def test_since_of_any_length_is_answered(
    endpoint: tuple[str, int], since: str, status: int
) -> None:
    """A seq is digits of any length: past 18 digits no reading has it (410, as for any
    seq not kept); leading zeros are its value. Never int()'s ValueError and a close."""
    request = _request(f"GET /stats?since={since} HTTP/1.1")
    ex = exchange(endpoint, request + _request("GET /info HTTP/1.1"), answers=2)
    assert ex.statuses == [status, 200], ex.describe()
    assert _json(ex)["error" if status == 410 else "reading"]


@pytest.mark.parametrize(
    "method", ["HEAD", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "get", "FOO", "X" * 200]
)
def test_every_method_but_get_is_405(endpoint: tuple[str, int], method: str) -> None:
    ex = exchange(endpoint, _request(f"{method} /info HTTP/1.1"), methods=[method])
    assert ex.statuses == [405], ex.describe()
    answer = ex.answers[0]
    assert answer.headers["allow"] == "GET"
    if method == "HEAD":
        assert answer.body == b"" and int(answer.headers["content-length"]) > 0
    else:
        assert _json(ex)["error"] == "read-only: GET only"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: s\r\n\r\n", 414),
        (_request("GET /info HTTP/1.1", *(f"X-{i}: 1" for i in range(200))), 431),
        (_request("GET /info HTTP/1.1", "X-Big: " + "a" * 70_000), 431),
        (_request("GET /info HTTP/x.y"), 400),
        (_request("GET /info HTTP/1.1 extra"), 400),
        (_request("GET"), 400),
        (_request("GET /info HTTP/2.0"), 505),  # RFC 9110's answer to a major version
    ],
    ids=["line-70k", "200-headers", "header-70k", "bad-version", "four-words", "one-word", "h2"],
)
def test_malformed_requests_get_a_json_error_and_a_close(
    endpoint: tuple[str, int], request_bytes: bytes, status: int
) -> None:
    ex = exchange(endpoint, request_bytes, linger=0.5)
    assert ex.statuses == [status], ex.describe()
    assert _json(ex)["error"] and ex.ending == CLOSED, ex.describe()


@pytest.mark.parametrize(
    "headers",
    [
        ("Content-Length: 5",),
        ("Content-Length: " + "0" * 4_300 + "5",),
        ("Transfer-Encoding: chunked",),
    ],
    ids=["length", "length-4301-digits", "chunked"],
)
def test_a_body_nothing_reads_ends_the_connection(
    endpoint: tuple[str, int], headers: tuple[str, ...]
) -> None:
    """A GET with a body is answered, then closed: the unread body is not a next request."""
    body = b"5\r\nhello\r\n0\r\n\r\n" if "chunked" in headers[0] else b"hello"
    ex = exchange(endpoint, _request("GET /info HTTP/1.1", *headers, body=body), linger=0.5)
    assert ex.statuses == [200] and ex.ending == CLOSED, ex.describe()
    assert ex.answers[0].headers["connection"] == "close"


def test_a_post_with_a_body_is_405_then_closed(endpoint: tuple[str, int]) -> None:
    request = _request("POST /stats HTTP/1.1", "Content-Length: 2", body=b"{}")
    ex = exchange(endpoint, request + _request("GET /info HTTP/1.1"), answers=2, linger=0.5)
    assert ex.statuses == [405] and ex.ending == CLOSED, ex.describe()


def test_pipelined_requests_in_order(endpoint: tuple[str, int]) -> None:
    requests = [_request(f"GET {path} HTTP/1.1") for path in ("/info", "/stats", "/nope")]
    ex = exchange(endpoint, b"".join(requests), answers=3)
    assert ex.statuses == [200, 200, 404], ex.describe()
    assert _json(ex, 0)["kind"] == "stackbench.serve" and "reading" in _json(ex, 1)


@pytest.mark.parametrize(
    "path", ["/stats?since=%ff", "/stats?since=%D9%A3", "/stats?since=+1", "/stats?since="]
)
def test_since_that_is_not_digits_is_400(endpoint: tuple[str, int], path: str) -> None:
    ex = exchange(endpoint, _request(f"GET {path} HTTP/1.1"))
    assert ex.statuses == [400] and _json(ex)["error"], ex.describe()


@pytest.mark.parametrize(
    "path", ["http://stats/info", "/info?x=%00&y", "/info#top", "//info", "/info/../info"]
)
def test_odd_targets_never_fail(endpoint: tuple[str, int], path: str) -> None:
    ex = exchange(endpoint, _request(f"GET {path} HTTP/1.1"))
    assert len(ex.answers) == 1 and ex.statuses[0] in (200, 404), ex.describe()
    _json(ex)


@pytest.mark.parametrize("sent", [b"", b"GET /in", b"GET /info HTTP/1.1\r\nHost: s\r\n"])
def test_a_silent_client_is_let_go(endpoint: tuple[str, int], sent: bytes) -> None:
    """Nothing, half a request line, half the headers: closed after the idle timeout."""
    ex = exchange(endpoint, sent, timeout=IDLE + 3)
    assert ex.ending != OPEN and IDLE - 0.2 <= ex.elapsed <= IDLE + 2, ex.describe()


def test_idle_clients_do_not_hold_up_the_others(endpoint: tuple[str, int]) -> None:
    """An endpoint that served one connection at a time would answer after the 50 idle
    ones' timeouts (50 s); 3 s leaves a loaded machine's stalls room (1.1 s was seen)."""
    idle = [socket.create_connection(endpoint, timeout=5) for _ in range(50)]
    try:
        for sock in idle[::2]:
            sock.sendall(b"GET /in")
        started = time.monotonic()
        ex = exchange(endpoint, _request("GET /info HTTP/1.1"))
        assert ex.statuses == [200] and time.monotonic() - started < 3 * IDLE, ex.describe()
    finally:
        for sock in idle:
            sock.close()
