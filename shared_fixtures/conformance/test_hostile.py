"""Hostile clients (shared_fixtures/CONTRACT.md, section 5): whatever a client sends, the app
answers a 4xx or a documented 503 within a bound, never a 5xx, a hang or a traceback.

Requests go out as raw bytes (shared_fixtures/conformance/raw.py), each on its own
connection and bounded in time. Where the HTTP server, not the app, decides the answer
(framing, smuggling, limits, idle connections), this section asks only for no 5xx and no
hang; what each server answers exactly is recorded in docs/servers.md and checked by the
project's tests/test_server_behaviour.py. Generated inputs: test_generated.py.

    pytest shared_fixtures/conformance --base-url URL [--database-url URL] [--app-log PATH]
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared_fixtures.conformance.raw import OPEN, Answer, Exchange, exchange
from shared_fixtures.conformance.target import AppTarget, Strained

WAIT_BOUND = 1.0  # seconds to watch a request that a parser may read as unfinished

# What an answer must never carry: a stack trace, an exception's repr, a DSN or a driver.
INTERNALS = re.compile(
    rb"Traceback \(most recent call last\)|File \"/|\b\w+(?:Error|Exception)\(|postgres(?:ql)?://"
    rb"|psycopg|asyncpg|sqlalchemy|SECRET_KEY",
    re.IGNORECASE,
)


def fill(template: bytes, target: AppTarget) -> bytes:
    """A raw request template: {P} is the mount prefix, {H} the Host a client would send."""
    return template.replace(b"{P}", target.prefix.encode()).replace(b"{H}", target.netloc.encode())


def send(target: AppTarget, template: bytes, **options: object) -> Exchange:
    return exchange(target.address, fill(template, target), **options)  # type: ignore[arg-type]


def assert_no_internals(answer: Answer, what: str) -> None:
    leaked = INTERNALS.search(answer.body)
    assert leaked is None, (
        f"{what}: {answer.status} carries {leaked.group(0)!r}: {answer.body[:300]!r}"
    )


def assert_no_5xx(
    ex: Exchange, what: str, *, allow_501: bool = False, may_wait: bool = False
) -> None:
    """No 5xx (a 501 only where ``allow_501``: RFC 9110/9112's answer to a method or a
    transfer coding the server does not implement), nothing but HTTP/1.1 answers, nothing
    internal in a body, and an answer or a close within the bound unless ``may_wait``."""
    assert not ex.unparsed, f"{what}: not an HTTP/1.1 answer: {ex.unparsed[:120]!r}"
    allowed = {501} if allow_501 else set()
    failed = [a for a in ex.answers if a.status >= 500 and a.status not in allowed]
    assert not failed, f"{what}: {ex.describe()}: {failed[0].body[:300] if failed else b''!r}"
    for answer in ex.answers:
        assert_no_internals(answer, what)
    if not may_wait:
        assert ex.answers or ex.ending != OPEN, f"{what}: {ex.describe()}: a hang"


def assert_error_json(answer: Answer, status: int, what: str) -> dict:
    assert answer.status == status, f"{what}: {answer.status} {answer.body[:300]!r}"
    assert answer.content_type == "application/json", f"{what}: {answer.headers}"
    body = json.loads(answer.body)
    assert isinstance(body, dict) and isinstance(body.get("detail"), str | list), body
    return body


# ---------------------------------------------------------------- framing and headers


@dataclass(frozen=True)
class Case:
    template: bytes
    allow_501: bool = False  # a transfer coding or method the server may not implement
    may_wait: bool = False  # a parser may read it as unfinished and wait for the rest
    answers: int = 1  # requests in it (a smuggled one counts)


def _get(path: bytes, *headers: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    lines = [b"GET {P}" + path + b" " + version, b"Host: {H}", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _post(body: bytes, *headers: bytes) -> bytes:
    lines = [b"POST {P}/api/troupes HTTP/1.1", b"Host: {H}", b"Content-Type: application/json"]
    return b"\r\n".join([*lines, *headers]) + b"\r\n\r\n" + body


def _chunked(body: bytes, coding: bytes = b"chunked") -> bytes:
    return _post(body, b"Transfer-Encoding: " + coding)


SMUGGLED = b"0\r\n\r\nGET {P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n"

FRAMING: dict[str, Case] = {
    # The request line and its target.
    "absolute-form, this host": Case(b"GET http://{H}{P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "absolute-form, another host": Case(
        b"GET http://evil.example{P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n"
    ),
    "HTTP/1.1 without Host": Case(b"GET {P}/json HTTP/1.1\r\n\r\n"),
    "two Host headers": Case(_get(b"/json", b"Host: evil.example")),
    "empty Host": Case(b"GET {P}/json HTTP/1.1\r\nHost: \r\n\r\n"),
    "Host with a space": Case(b"GET {P}/json HTTP/1.1\r\nHost: a b\r\n\r\n"),
    "Host of 10,000 characters": Case(
        b"GET {P}/json HTTP/1.1\r\nHost: " + b"h" * 10_000 + b"\r\n\r\n"
    ),
    "Host with port 99999": Case(b"GET {P}/json HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n\r\n"),
    "HTTP/1.0 without Host": Case(b"GET {P}/json HTTP/1.0\r\n\r\n"),
    "HTTP/1.0 keep-alive": Case(_get(b"/json", b"Connection: keep-alive", version=b"HTTP/1.0")),
    "HTTP/9.9": Case(_get(b"/json", version=b"HTTP/9.9")),
    "HTTP/2.0 in a request line": Case(_get(b"/json", version=b"HTTP/2.0")),
    "lower-case version": Case(_get(b"/json", version=b"http/1.1")),
    "no version": Case(b"GET {P}/json\r\n\r\n", may_wait=True),
    "two spaces in the request line": Case(b"GET  {P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "a tab in the request line": Case(b"GET\t{P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "target *": Case(b"OPTIONS * HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "target //json": Case(_get(b"//json")),
    "target /../json": Case(_get(b"/../json")),
    "target /./json": Case(_get(b"/./json")),
    "target %2e%2e": Case(_get(b"/%2e%2e/json")),
    "target with a fragment": Case(_get(b"/json#top")),
    "target with ;params": Case(_get(b"/json;a=b")),
    "raw UTF-8 in the target": Case(_get("/jsön".encode())),
    "raw 0xff in the target": Case(_get(b"/json\xff")),
    "%ff in the path": Case(_get(b"/api/colleges/%ff")),
    "%00 in the path": Case(_get(b"/api/colleges/1%00")),
    "%00 in the query": Case(_get(b"/queries?queries=1%00")),
    "a lone % in the query": Case(_get(b"/queries?queries=%")),
    "a path of 8,000 characters": Case(_get(b"/" + b"a" * 8_000)),
    "3,000 query parameters": Case(_get(b"/json?" + b"&".join(b"a%d=1" % i for i in range(3000)))),
    "lower-case method": Case(b"get {P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n", allow_501=True),
    "unknown method": Case(b"FOO {P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n", allow_501=True),
    "a method of 300 letters": Case(
        b"X" * 300 + b" {P}/json HTTP/1.1\r\nHost: {H}\r\n\r\n", allow_501=True
    ),
    "CONNECT": Case(b"CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n\r\n", allow_501=True),
    # Header fields.
    "obsolete line folding": Case(_get(b"/json", b"X-A: a\r\n b")),
    "space before the colon": Case(_get(b"/json", b"X-A : a")),
    "a header without a colon": Case(_get(b"/json", b"X-A")),
    "a space in a header name": Case(_get(b"/json", b"X A: a")),
    "UTF-8 in a header name": Case(_get(b"/json", "X-Ä: a".encode())),
    "NUL in a header value": Case(_get(b"/json", b"X-A: a\x00b")),
    "a lone CR in a header value": Case(_get(b"/json", b"X-A: a\rb")),
    "Latin-1 in a header value": Case(_get(b"/json", b"X-A: caf\xe9")),
    "200 header fields": Case(_get(b"/json", *(b"X-%d: 1" % i for i in range(200)))),
    "a header value of 64 KiB": Case(_get(b"/json", b"X-Big: " + b"a" * 65_536)),
    "a cookie of junk": Case(_get(b"/json", b'Cookie: ;;=;=a=b;"\xe9; csrftoken=\x01')),
    "a cookie of 8 KiB": Case(_get(b"/json", b"Cookie: " + b"a=b; " * 1_600)),
    "Range": Case(_get(b"/json", b"Range: bytes=0-1, 5-")),
    "If-None-Match": Case(_get(b"/json", b"If-None-Match: *")),
    "If-Modified-Since junk": Case(_get(b"/json", b"If-Modified-Since: yesterday")),
    "Accept junk": Case(_get(b"/fortunes", b"Accept: */*;q=x, text/\xff")),
    "Accept-Encoding junk": Case(_get(b"/json", b"Accept-Encoding: gzip;q=2, br;q=-1, *;q=")),
    "Authorization junk": Case(_get(b"/json", b"Authorization: Basic !!!")),
    "X-Forwarded-Host and a trailing slash": Case(
        _get(b"/json/", b"X-Forwarded-Host: evil.example", b"X-Forwarded-Proto: gopher")
    ),
    "X-Forwarded-For junk": Case(_get(b"/json", b"X-Forwarded-For: not-an-address, ::1, ")),
    "Connection: close": Case(_get(b"/json", b"Connection: close")),
    "Expect: 100-continue": Case(_post(b"{}", b"Expect: 100-continue", b"Content-Length: 2")),
    "Expect: something else": Case(_post(b"{}", b"Expect: foo", b"Content-Length: 2")),
    "Content-Type UTF-16 on UTF-8": Case(
        b"POST {P}/api/troupes HTTP/1.1\r\nHost: {H}\r\n"
        b"Content-Type: application/json; charset=utf-16\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "no Content-Type": Case(
        b"POST {P}/api/troupes HTTP/1.1\r\nHost: {H}\r\nContent-Length: 2\r\n\r\n{}"
    ),
    # Content-Length.
    "Content-Length -1": Case(_post(b"{}", b"Content-Length: -1")),
    "Content-Length +2": Case(_post(b"{}", b"Content-Length: +2")),
    "Content-Length 0x2": Case(_post(b"{}", b"Content-Length: 0x2")),
    "Content-Length 2 2": Case(_post(b"{}", b"Content-Length: 2 2")),
    "Content-Length 2, 2": Case(_post(b"{}", b"Content-Length: 2, 2")),
    "Content-Length abc": Case(_post(b"{}", b"Content-Length: abc")),
    "two Content-Lengths": Case(_post(b"{}", b"Content-Length: 2", b"Content-Length: 3")),
    "Content-Length of 20 digits": Case(_post(b"{}", b"Content-Length: 99999999999999999999")),
    "Content-Length 0 on a POST": Case(_post(b"", b"Content-Length: 0")),
    # Transfer-Encoding, and both framings at once (request smuggling).
    "Transfer-Encoding xchunked": Case(_chunked(b"2\r\n{}\r\n0\r\n\r\n", b"xchunked"), True),
    "Transfer-Encoding chunked, gzip": Case(
        _chunked(b"2\r\n{}\r\n0\r\n\r\n", b"chunked, gzip"), True
    ),
    "Transfer-Encoding gzip, chunked": Case(
        _chunked(b"2\r\n{}\r\n0\r\n\r\n", b"gzip, chunked"), True
    ),
    "Transfer-Encoding identity": Case(_post(b"{}", b"Transfer-Encoding: identity"), True),
    "Transfer-Encoding Chunked": Case(_chunked(b"2\r\n{}\r\n0\r\n\r\n", b"Chunked"), True),
    "Transfer-Encoding twice": Case(
        _post(
            b"2\r\n{}\r\n0\r\n\r\n", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"
        ),
        True,
    ),
    "Transfer-Encoding on HTTP/1.0": Case(
        b"POST {P}/api/troupes HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        True,
    ),
    "Content-Length then Transfer-Encoding": Case(
        _post(SMUGGLED, b"Content-Length: 6", b"Transfer-Encoding: chunked"), answers=2
    ),
    "Transfer-Encoding then Content-Length": Case(
        _post(SMUGGLED, b"Transfer-Encoding: chunked", b"Content-Length: 6"), answers=2
    ),
    # Chunked bodies that are valid, or that a parser may still be waiting on.
    "chunk extension": Case(_chunked(b"2;a=b\r\n{}\r\n0\r\n\r\n")),
    "chunk trailer": Case(_chunked(b"2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n")),
    "chunk size in upper-case hex": Case(_chunked(b"A\r\n{}        \r\n0\r\n\r\n")),
    "chunk size with leading zeros": Case(_chunked(b"0000000000000000002\r\n{}\r\n0\r\n\r\n")),
    "chunk size with a space": Case(_chunked(b"2 \r\n{}\r\n0\r\n\r\n")),
    "chunk size of 20 hex digits": Case(_chunked(b"f" * 20 + b"\r\n{}\r\n0\r\n\r\n"), True, True),
    "chunked lines ended by LF alone": Case(_chunked(b"2\n{}\n0\n\n"), may_wait=True),
}


@pytest.mark.parametrize("case", FRAMING)
def test_framing_and_headers_never_get_a_5xx(target: AppTarget, case: str) -> None:
    spec = FRAMING[case]
    timeout = {"timeout": WAIT_BOUND} if spec.may_wait else {}
    ex = send(target, spec.template, answers=spec.answers, **timeout)
    assert_no_5xx(ex, case, allow_501=spec.allow_501, may_wait=spec.may_wait)


# The contract's answers (CONTRACT.md, "One input, one answer").

MALFORMED_CHUNKS = {
    "size zz": b"zz\r\n{}\r\n0\r\n\r\n",
    "size -2": b"-2\r\n{}\r\n0\r\n\r\n",
    "size +2": b"+2\r\n{}\r\n0\r\n\r\n",
    "size 0x2": b"0x2\r\n{}\r\n0\r\n\r\n",
    "more data than the size": b"2\r\n{}x\r\n0\r\n\r\n",
    "less data than the size": b"5\r\n{}\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", MALFORMED_CHUNKS)
def test_malformed_chunked_body_is_400(target: AppTarget, case: str) -> None:
    ex = send(target, _chunked(MALFORMED_CHUNKS[case]))
    assert_no_5xx(ex, case)
    assert ex.statuses == [400], f"{case}: {ex.describe()}"


DIGITS = 4_301  # one more than CPython's int() reads from a string (int_max_str_digits)
LONG_LENGTHS = {
    "GET, value 0": (_get(b"/json", b"Content-Length: " + b"0" * DIGITS), {200, 400, 413}),
    "POST, value 2": (_post(b"{}", b"Content-Length: " + b"0" * DIGITS + b"2"), {422, 400, 413}),
    "POST, 5,000 nines": (_post(b"{}", b"Content-Length: " + b"9" * 5_000), {400, 413}),
}


@pytest.mark.parametrize("case", LONG_LENGTHS)
def test_content_length_of_thousands_of_digits(target: AppTarget, case: str) -> None:
    """By its value (a GET of nothing, a POST of ``{}``: 422), or 400/413; never a 5xx.
    A server that cannot read the number itself closes the connection without an answer
    before any app sees it (daphne, gunicorn's ASGI worker: docs/servers.md)."""
    template, allowed = LONG_LENGTHS[case]
    ex = send(target, template)
    assert_no_5xx(ex, case)  # so no answer means closed
    if ex.answers:
        assert len(ex.statuses) == 1 and ex.statuses[0] in allowed, f"{case}: {ex.describe()}"


# ---------------------------------------------------------------- pipelining


def test_pipelined_requests_are_answered_in_order(target: AppTarget) -> None:
    request = b"".join(
        [_get(b"/json"), _get(b"/plaintext"), b"HEAD {P}/health HTTP/1.1\r\nHost: {H}\r\n\r\n"]
    )
    ex = send(target, request + _get(b"/health"), answers=4, methods=["GET", "GET", "HEAD", "GET"])
    assert ex.statuses == [200] * 4, ex.describe()
    first, second, head, last = ex.answers
    assert json.loads(first.body) == {"message": "Hello, World!"}
    assert second.body == b"Hello, World!"
    assert head.body == b"" and json.loads(last.body) == {"status": "ok"}


def test_pipelined_after_a_refused_body(target: AppTarget) -> None:
    ex = send(target, _post(b"{}", b"Content-Length: 2") + _get(b"/json"), answers=2)
    assert ex.statuses == [422, 200], ex.describe()
    assert json.loads(ex.answers[1].body) == {"message": "Hello, World!"}


def test_a_get_with_a_body_is_read_past(target: AppTarget) -> None:
    """A body on a GET is framed by its Content-Length: the next request is the next one."""
    ex = send(target, _get(b"/json", b"Content-Length: 5") + b"hello" + _get(b"/health"), answers=2)
    assert ex.statuses == [200, 200], ex.describe()
    assert json.loads(ex.answers[1].body) == {"status": "ok"}


def test_a_request_trickled_in_small_pieces(target: AppTarget) -> None:
    request = fill(_get(b"/json", b"Accept: application/json"), target)
    pieces = [request[i : i + 7] for i in range(0, len(request), 7)]
    ex = exchange(target.address, pieces, pause=0.01)
    assert ex.statuses == [200], ex.describe()


# ---------------------------------------------------------------- every method on every path

GET_PATHS = [
    "/health",
    "/json",
    "/plaintext",
    "/db",
    "/queries?queries=2",
    "/updates?queries=2",
    "/fortunes",
    "/api/colleges?page_size=2",
    "/api/colleges/1",
    "/api/troupes?page_size=2",
    "/api/troupes/1",
    "/slow/db?seconds=0",
    "/slow/http?seconds=0",
    "/slow/both?seconds=0",
    "/slow/fanout?n=2&seconds=0",
]
OTHER_PATHS = ["/no/such/thing", "/admin/", "/static/x.css", "/.env", "/api/troupes/1/members"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
NOT_METHODS_HERE = ["PROPFIND", "QUERY", "BREW"]  # tokens no path of the contract serves


def _one(target: AppTarget, method: str, path: str) -> Exchange:
    request = f"{method} {{P}}{path} HTTP/1.1\r\nHost: {{H}}\r\nContent-Length: 0\r\n\r\n"
    return send(target, request.encode(), methods=[method])


def _all(target: AppTarget, method: str, paths: list[str]) -> dict[str, Exchange]:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return dict(zip(paths, pool.map(lambda p: _one(target, method, p), paths), strict=True))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_every_path(target: AppTarget, method: str) -> None:
    """GET and HEAD are served; POST /api/troupes of nothing is 422; everything else on a
    contract path is a 405 error; other paths never get a 5xx."""
    for path, ex in _all(target, method, GET_PATHS).items():
        what = f"{method} {path}"
        assert_no_5xx(ex, what)
        assert len(ex.answers) == 1, f"{what}: {ex.describe()}"
        (answer,) = ex.answers
        if method in ("GET", "HEAD"):
            assert answer.status == 200, f"{what}: {answer.status} {answer.body[:200]!r}"
            assert method == "GET" or answer.body == b"", f"{what}: a body"
        elif method == "POST" and path == "/api/troupes?page_size=2":
            assert_error_json(answer, 422, what)
        else:
            assert_error_json(answer, 405, what)
    for path, ex in _all(target, method, OTHER_PATHS).items():
        assert_no_5xx(ex, f"{method} {path}")


@pytest.mark.parametrize("method", NOT_METHODS_HERE)
def test_methods_no_path_serves(target: AppTarget, method: str) -> None:
    """The app's 405, or the server's own 400 or 501 for a method it does not know."""
    for path, ex in _all(target, method, GET_PATHS[:3] + OTHER_PATHS[:1]).items():
        assert_no_5xx(ex, f"{method} {path}", allow_501=True)
        assert ex.answers and ex.statuses[0] in (400, 404, 405, 501), ex.describe()


# ---------------------------------------------------------------- upgrades, documentation, -0

WEBSOCKET = (
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13",
)


@pytest.mark.parametrize(("path", "plain"), [("/json", 200), ("/health", 200), ("/nope", 404)])
def test_websocket_upgrade_is_refused_without_a_5xx(
    target: AppTarget, path: str, plain: int
) -> None:
    """No app serves WebSocket: an ASGI server refuses the handshake (403), a WSGI server
    answers it as plain HTTP; never 101, never a 5xx."""
    ex = send(target, _get(path.encode(), *WEBSOCKET))
    assert not ex.unparsed.startswith(b"HTTP/1.1 101"), f"switched protocols: {ex.unparsed!r}"
    assert_no_5xx(ex, f"Upgrade: websocket on {path}")
    assert ex.statuses in ([403], [plain]), ex.describe()


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_documentation_routes_are_404(target: AppTarget, path: str) -> None:
    """Off unless the app's API_DOCS=1 is set (and the suite is run without it)."""
    (answer,) = send(target, _get(path.encode())).answers
    assert_error_json(answer, 404, path)


@pytest.mark.parametrize("seconds", ["-0", "-0.0", "-0e3"])
@pytest.mark.parametrize("endpoint", ["db", "http", "both"])
def test_negative_zero_seconds_is_zero(target: AppTarget, endpoint: str, seconds: str) -> None:
    (answer,) = send(target, _get(f"/slow/{endpoint}?seconds={seconds}".encode())).answers
    assert answer.status == 200, answer.body[:300]
    assert b"-0" not in answer.body, answer.body
    body = json.loads(answer.body)
    for key, value in [("slept", body.get("slept")), ("delay", body.get("upstream", {}))]:
        value = value.get("delay") if isinstance(value, dict) else value
        if value is not None:
            assert value == 0 and math.copysign(1.0, value) == 1.0, (key, body)


# ---------------------------------------------------------------- clients that go away

DISCONNECTS = {
    "half a request line": b"GET {P}/js",
    "half the headers": b"GET {P}/json HTTP/1.1\r\nHost: {H}\r\nAccept: ",
    "half a body": _post(b'{"name": "Gone', b"Content-Length: 100"),
    "half a chunked body": _chunked(b'20\r\n{"name": "Gone'),
    "a malformed chunk": _chunked(MALFORMED_CHUNKS["size zz"]),
    "a request it leaves during": _get(b"/slow/db?seconds=0.3"),
}
LOG_QUIET = 0.3  # seconds the app's log must stay unchanged before it is read
LOG_SETTLE = 5.0  # seconds at most to wait for that


def _settled_log(target: AppTarget, mark: int) -> str:
    deadline, last, stable_since = time.monotonic() + LOG_SETTLE, None, time.monotonic()
    while True:
        text = target.log_since(mark)
        now = time.monotonic()
        if text != last:
            last, stable_since = text, now
        elif now - stable_since >= LOG_QUIET or now >= deadline:
            return text
        time.sleep(0.05)


def _tracebacks(log: str) -> str:
    """How many tracebacks, and the lines that end them (the exceptions), in one message."""
    ends = [line for line in log.splitlines() if line and not line[0].isspace()]
    ends = [line for line in ends if not line.startswith("Traceback")]
    return f"{log.count('Traceback')} traceback(s) in the app's log: " + " | ".join(ends[:8])


def test_disconnecting_clients_leave_one_line_not_a_traceback(target: AppTarget) -> None:
    """Clients that leave mid-request, mid-body or while the app works: the app goes on
    answering, and logs at most a line for each, never a traceback (a client must not be
    able to flood the log)."""
    mark = target.log_mark()
    for template in DISCONNECTS.values():
        with socket.create_connection(target.address, timeout=3) as sock:
            sock.sendall(fill(template, target))
            time.sleep(0.05)  # let the server read it before the close
    time.sleep(0.4)  # the request left behind finishes its 0.3 s
    ex = send(target, _get(b"/health"))
    assert ex.statuses == [200], ex.describe()
    log = _settled_log(target, mark)
    assert log.count("Traceback") == 0, _tracebacks(log)
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) <= len(DISCONNECTS) + 1, "\n".join(lines[-40:])  # +1: /health's own


# ---------------------------------------------------------------- a strained app


@pytest.fixture
def strained(target: AppTarget) -> Iterator[tuple[AppTarget, Strained]]:
    """The strained instance (target.py: Strained) and a target to send it requests."""
    settings = target.strained()
    judged = AppTarget(settings.base_url, log_path=settings.log_path)
    yield judged, settings
    judged.close()


def test_pool_exhaustion_is_a_503_with_retry_after(strained: tuple[AppTarget, Strained]) -> None:
    """More requests than connections, each holding one longer than DB_POOL_TIMEOUT: the
    ones that get none wait at most that long, then 503 with Retry-After: 1."""
    judged, settings = strained
    extra, hold = 3, settings.pool_timeout + 1.5
    request = _get(f"/slow/db?seconds={hold}".encode())
    started = time.monotonic()

    def one() -> tuple[Answer, float]:
        ex = send(judged, request, timeout=hold + settings.pool_timeout + 5)
        assert len(ex.answers) == 1, ex.describe()
        return ex.answers[0], time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(settings.pool_size + extra) as pool:
        results = list(pool.map(lambda _: one(), range(settings.pool_size + extra)))
    statuses = sorted(answer.status for answer, _ in results)
    assert statuses == [200] * settings.pool_size + [503] * extra, (
        f"{len(results)} requests holding a connection {hold:g} s, {settings.pool_size} "
        f"connections that wait {settings.pool_timeout:g} s: {statuses}, expected {extra} x 503"
    )
    for answer, took in results:
        if answer.status == 503:
            assert json.loads(answer.body) == {"detail": "Database busy, retry later."}
            assert answer.content_type == "application/json", answer.headers
            assert answer.headers.get("retry-after") == "1", answer.headers
            assert took < settings.pool_timeout + 1.0, f"a 503 after {took:.1f} s"
        else:
            assert json.loads(answer.body) == {"slept": hold} and took >= hold


@pytest.mark.parametrize(
    "path", ["/slow/http?seconds=0", "/slow/both?seconds=0", "/slow/fanout?n=3&seconds=0"]
)
def test_upstream_down_is_a_502_without_internals(
    strained: tuple[AppTarget, Strained], path: str
) -> None:
    judged, _ = strained
    ex = send(judged, _get(path.encode()), timeout=15)
    assert len(ex.answers) == 1, ex.describe()
    assert_no_internals(ex.answers[0], path)
    body = assert_error_json(ex.answers[0], 502, path)
    assert body == {"detail": "Upstream unavailable."}
