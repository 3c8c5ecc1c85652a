"""What each HTTP server decides for a hostile client, held to the table in docs/servers.md.

The table ("Hostile clients: what each server decides") is the one record: its rows name a
probe below, its columns a server, its cells what was observed. Each cell is a test; an
upgrade that fixes or breaks a behaviour fails its cell, with what was observed instead.
Cells read:

    400                 one answer; 422 + 200 for two on one connection; no answer
    400, closed         ... and the server closed the connection (", open": it did not)
    HTTP/2              the server answered in HTTP/2 frames
    closed at 5 s       a connection left as described was closed after ~5 s (±2 s or 20 %)
    open at 35 s        ... or was still open when the probe stopped waiting
    answered, stalled   /health on a fresh connection answered within 3 s, or not
    —                   not recorded: the app, not the server, answers (see the notes)

ASGI servers serve gino_style and WSGI servers django_sync, one worker each (tests/conftest.py).
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from shared_fixtures.conformance.raw import CLOSED, OPEN, RESET, Exchange, exchange
from stackbench.server_process import Served
from stackbench.servers import get_server

DOC = Path(__file__).resolve().parent.parent / "docs" / "servers.md"
TABLE_START = "<!-- server behaviour: start (tests/test_server_behaviour.py reads this table) -->"
TABLE_END = "<!-- server behaviour: end -->"
NOT_RECORDED = "—"
IDLE_BOUND = 35.0  # seconds an idle probe waits for the server to close (granian: 30 s)
STALL_CONNECTIONS = 16  # half-sent connections held open while /health is asked for
STALL_BOUND = 3.0  # seconds /health may take then
LINGER = 0.5  # seconds after the last answer to see whether the server closes


@dataclass(frozen=True)
class Table:
    servers: list[str]
    cells: dict[tuple[str, str], str]  # (behaviour, server) → what was recorded
    rows: list[str]


def read_table(text: str) -> Table:
    """The behaviour table between the markers: `| `id` | what is sent | cell | ... |`."""
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    lines = [line.strip() for line in text[start:end].splitlines()[1:] if line.strip()]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    servers = [name.strip("`") for name in header[2:]]
    cells: dict[tuple[str, str], str] = {}
    rows = []
    for line in lines[2:]:
        values = [cell.strip() for cell in line.strip("|").split("|")]
        behaviour = values[0].strip("`")
        rows.append(behaviour)
        for server, value in zip(servers, values[2:], strict=True):
            cells[(behaviour, server)] = value
    return Table(servers, cells, rows)


TABLE = read_table(DOC.read_text())


def served_for(app_servers, server_id: str) -> Served:  # type: ignore[no-untyped-def]
    server = get_server(server_id)
    app = "gino_style" if "asgi" in server.interfaces else "django_sync"
    return app_servers.get(app, server_id)


# ---------------------------------------------------------------- probes


def _address(served: Served) -> tuple[str, int]:
    host, port = served.base_url.split("//")[1].rsplit(":", 1)
    return host, int(port)


def _host(served: Served) -> bytes:
    return served.base_url.split("//")[1].encode()


def answers(ex: Exchange, *, ending: bool = False) -> str:
    """A cell for an exchange: its statuses (or "HTTP/2"), and how it ended if asked."""
    if ex.unparsed.startswith(b"\x00\x00") or b"\x00\x00\x00\x04" in ex.unparsed[:16]:
        return "HTTP/2"
    said = " + ".join(map(str, ex.statuses)) or "no answer"
    if ending or not ex.answers:
        said += ", closed" if ex.ending in (CLOSED, RESET) else ", open"
    return said


def _framing(
    template: bytes, *, count: int = 1, ending: bool = False, timeout: float = 2.0
) -> Callable[[Served], str]:
    def probe(served: Served) -> str:
        request = template.replace(b"{H}", _host(served))
        ex = exchange(_address(served), request, answers=count, linger=LINGER, timeout=timeout)
        return answers(ex, ending=ending)

    return probe


def _post(*headers: bytes, body: bytes) -> bytes:
    head = [b"POST /api/troupes HTTP/1.1", b"Host: {H}", b"Content-Type: application/json"]
    return b"\r\n".join([*head, *headers]) + b"\r\n\r\n" + body


SMUGGLE = _post(
    b"Content-Length: 6",
    b"Transfer-Encoding: chunked",
    body=b"0\r\n\r\nGET /json HTTP/1.1\r\nHost: {H}\r\n\r\n",
)
GET = b"GET /json HTTP/1.1\r\nHost: {H}\r\n"

FRAMING: dict[str, Callable[[Served], str]] = {
    "cl-te": _framing(SMUGGLE, count=2, ending=True),
    "te-unknown": _framing(
        _post(b"Transfer-Encoding: xchunked", body=b"2\r\n{}\r\n0\r\n\r\n"), ending=True
    ),
    "chunk-lf": _framing(_post(b"Transfer-Encoding: chunked", body=b"2\n{}\n0\n\n")),
    "cl-4301-digits": _framing(GET + b"Content-Length: " + b"0" * 4301 + b"\r\n\r\n"),
    "path-5000-digits": _framing(
        b"GET /api/colleges/" + b"0" * 4999 + b"7 HTTP/1.1\r\nHost: {H}\r\n\r\n"
    ),
    "header-64k": _framing(GET + b"X-Big: " + b"a" * 65_536 + b"\r\n\r\n"),
    "headers-200": _framing(GET + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"),
    "no-host": _framing(b"GET /json HTTP/1.1\r\n\r\n"),
    "two-hosts": _framing(GET + b"Host: evil.example\r\n\r\n"),
    "absolute-form": _framing(b"GET http://evil.example/json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "obs-fold": _framing(GET + b"X-A: a\r\n b\r\n\r\n"),
    "version-9.9": _framing(b"GET /json HTTP/9.9\r\nHost: {H}\r\n\r\n"),
    "lower-case-method": _framing(b"get /json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "unknown-method": _framing(b"FOO /json HTTP/1.1\r\nHost: {H}\r\n\r\n"),
    "h2-preface": _framing(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    "websocket": _framing(
        GET + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ),
}

IDLE: dict[str, bytes] = {
    "idle-nothing-sent": b"",
    "idle-half-request-line": b"GET /js",
    "idle-half-headers": GET,
    "idle-half-body": _post(b"Content-Length: 100", body=b'{"na'),
    "idle-after-an-answer": GET + b"\r\n",
}


def idle_probe(served: Served, sent: bytes) -> str:
    """How long the server keeps a connection that sent ``sent`` and nothing more."""
    started = time.monotonic()
    with socket.create_connection(_address(served), timeout=IDLE_BOUND) as sock:
        sock.sendall(sent.replace(b"{H}", _host(served)))
        deadline = started + IDLE_BOUND
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                if not sock.recv(65536):
                    break
            except TimeoutError:
                return f"open at {IDLE_BOUND:g} s"
            except ConnectionResetError:
                break
        else:
            return f"open at {IDLE_BOUND:g} s"
    return f"closed at {round(time.monotonic() - started):g} s"


def stall_probe(served: Served, sent: bytes) -> str:
    """/health while STALL_CONNECTIONS connections that sent ``sent`` stay open."""
    held = [socket.create_connection(_address(served), timeout=5) for _ in range(STALL_CONNECTIONS)]
    try:
        for sock in held:
            if sent:
                sock.sendall(sent.replace(b"{H}", _host(served)))
        time.sleep(0.3)
        ex = exchange(
            _address(served),
            b"GET /health HTTP/1.1\r\nHost: " + _host(served) + b"\r\n\r\n",
            timeout=STALL_BOUND,
        )
        return "answered" if ex.statuses == [200] else "stalled"
    finally:
        for sock in held:
            sock.close()


STALL: dict[str, bytes] = {"stall-idle": b"", "stall-half-sent": GET}
PROBES = [*FRAMING, *STALL, *IDLE]


def probe_server(served: Served) -> dict[str, str]:
    """Every probe against one server: the framing ones one after the other, then the
    stalls, then the idle connections all at once (so none holds up another)."""
    found = {behaviour: probe(served) for behaviour, probe in FRAMING.items()}
    found.update({behaviour: stall_probe(served, sent) for behaviour, sent in STALL.items()})
    with concurrent.futures.ThreadPoolExecutor(len(IDLE)) as pool:
        idle = {
            behaviour: pool.submit(idle_probe, served, sent) for behaviour, sent in IDLE.items()
        }
        found.update({behaviour: future.result() for behaviour, future in idle.items()})
    return found


@pytest.fixture(scope="module")
def observed(app_servers) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    """Every server of the table probed, the servers side by side (about IDLE_BOUND s)."""
    served = {server: served_for(app_servers, server) for server in TABLE.servers}
    with concurrent.futures.ThreadPoolExecutor(len(served)) as pool:
        by_server = dict(zip(served, pool.map(probe_server, served.values()), strict=True))
    return {(b, server): cell for server, found in by_server.items() for b, cell in found.items()}


CLOSED_AT = re.compile(r"closed at (\d+(?:\.\d+)?) s")


# A server whose closing time depends on what else it is doing is recorded as a range.
CLOSED_BETWEEN = re.compile(r"closed at (\d+(?:\.\d+)?)[–-](\d+(?:\.\d+)?) s")


def matches(recorded: str, seen: str) -> bool:
    """A cell and an observation agree (closing times within ±2 s or 20 %, or in a range)."""
    if recorded == seen:
        return True
    got = CLOSED_AT.fullmatch(seen)
    if got and (between := CLOSED_BETWEEN.fullmatch(recorded)):
        low, high = float(between.group(1)), float(between.group(2))
        return low - 1.0 <= float(got.group(1)) <= high + 1.0
    want = CLOSED_AT.fullmatch(recorded)
    if want and got:
        expected, actual = float(want.group(1)), float(got.group(1))
        return abs(actual - expected) <= max(2.0, 0.2 * expected)
    return False


def test_every_row_is_probed_and_every_probe_recorded() -> None:
    assert sorted(TABLE.rows) == sorted(PROBES), "docs/servers.md's rows and the probes differ"
    assert len(set(TABLE.rows)) == len(TABLE.rows), "a row twice"
    for server in TABLE.servers:
        get_server(server)  # an unknown server id fails here


@pytest.mark.parametrize(
    ("behaviour", "server"),
    [(b, s) for (b, s), cell in TABLE.cells.items() if cell != NOT_RECORDED],
    ids=[f"{b}@{s}" for (b, s), cell in TABLE.cells.items() if cell != NOT_RECORDED],
)
def test_server_behaves_as_recorded(
    observed: dict[tuple[str, str], str], behaviour: str, server: str
) -> None:
    recorded, seen = TABLE.cells[(behaviour, server)], observed[(behaviour, server)]
    assert matches(recorded, seen), (
        f"{server} {behaviour}: docs/servers.md records {recorded!r}, observed {seen!r}: "
        "a new version changed it? update the table and what it tells users"
    )


# ---------------------------------------------------------------- the verdicts, on known input


def test_reading_the_table() -> None:
    text = "\n".join(
        [
            "before",
            TABLE_START,
            "| behaviour | sent | `uvicorn` | `granian` |",
            "|---|---|---|---|",
            "| `cl-te` | both | 400, closed | 422 + 200 |",
            f"| `websocket` | upgrade | 403 | {NOT_RECORDED} |",
            TABLE_END,
        ]
    )
    table = read_table(text)
    assert table.servers == ["uvicorn", "granian"] and table.rows == ["cl-te", "websocket"]
    assert table.cells[("cl-te", "granian")] == "422 + 200"
    assert table.cells[("websocket", "granian")] == NOT_RECORDED


@pytest.mark.parametrize(
    ("recorded", "seen", "same"),
    [
        ("closed at 5 s", "closed at 6 s", True),
        ("closed at 30 s", "closed at 35 s", True),
        ("closed at 5 s", "closed at 8 s", False),
        ("closed at 2–7 s", "closed at 2 s", True),
        ("closed at 2–7 s", "closed at 7 s", True),
        ("closed at 2–7 s", "closed at 12 s", False),
        ("closed at 2–7 s", "open at 35 s", False),
        ("closed at 30 s", "open at 35 s", False),
        ("422 + 200", "422 + 200", True),
        ("422 + 200", "422, closed", False),
        ("400, closed", "400, open", False),
    ],
)
def test_matching_a_cell(recorded: str, seen: str, same: bool) -> None:
    assert matches(recorded, seen) is same


def test_answers_render_what_happened() -> None:
    from shared_fixtures.conformance.raw import Answer

    ok, bad = Answer(200, {}, b"{}"), Answer(422, {}, b"{}")
    assert answers(Exchange([bad, ok], ending=OPEN)) == "422 + 200"
    assert answers(Exchange([bad], ending=CLOSED), ending=True) == "422, closed"
    assert answers(Exchange([], ending=CLOSED)) == "no answer, closed"
    assert answers(Exchange([], ending=OPEN)) == "no answer, open"
    h2_settings = b"\x00\x00\x18\x04\x00\x00\x00\x00\x00"
    assert answers(Exchange([], ending=OPEN, unparsed=h2_settings)) == "HTTP/2"


class _OneAtATime(BaseHTTPRequestHandler):
    """A server with one thread that lets a silent client go after a second."""

    protocol_version = "HTTP/1.1"
    timeout = 1.0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _OneThread(HTTPServer):
    request_queue_size = 64  # every held connection is accepted, then waits its turn

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the probes hang up on it: no traceback in the test's output


def test_the_stall_and_idle_probes_on_a_server_that_does_both() -> None:
    """A single-threaded server stalls behind held connections; its 1 s timeout shows."""
    server = _OneThread(("127.0.0.1", 0), _OneAtATime)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        planted = Served(None, None, f"http://{host}:{port}", [], {}, None)  # type: ignore[arg-type]
        assert stall_probe(planted, GET) == "stalled"
        assert idle_probe(planted, b"GET /js") == "closed at 1 s"
        assert matches("open at 35 s", idle_probe(planted, b"")) is False
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
