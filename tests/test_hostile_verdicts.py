"""The hostile section's verdicts, on known-bad input: a planted server that does each thing
the section forbids (a 500, a hang, a traceback in a body or in its log, -0, documentation
routes, a 101, an upstream's internals, a 503 without Retry-After) fails the test meant to
catch it; the raw reader reads what HTTP/1.1 allows (pipelined answers, HEAD, 100 Continue,
a body ended by the close)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared_fixtures.conformance import test_generated, test_hostile
from shared_fixtures.conformance.raw import ANSWER_TIMEOUT, CLOSED, Exchange, exchange
from shared_fixtures.conformance.target import AppTarget, Strained


class _Planted(BaseHTTPRequestHandler):
    """Every fault the hostile section must see, one per path or framing."""

    protocol_version = "HTTP/1.1"
    log_path: Path = Path("/dev/null")

    def _answer(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.close_connection = True  # granian's answer when the app raised
            self._answer(500, b"Internal Server Error")
            return
        length = self.headers.get("Content-Length", "0")
        if len(length) > 4300:
            time.sleep(8)  # a hang: the suite must give up on its own bound
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):  # the client left mid-body
            with open(self.log_path, "a") as log:
                log.write("Traceback (most recent call last):\n  File x\nClientDisconnect\n")
            return
        self._answer(422, b'{"detail": "bad"}')

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if self.headers.get("Upgrade") == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.end_headers()
            self.close_connection = True
        elif url.path == "/docs":
            self._answer(200, b"<html>Swagger</html>")
        elif url.path == "/queries":
            value = query.get("queries", ["1"])[0]
            if value.isdigit():
                self._answer(200, b'[{"id": 1, "randomNumber": 1}]')
            else:
                self._answer(500, b"Internal Server Error")
        elif url.path == "/slow/db":
            seconds = float(query["seconds"][0])
            if seconds == 0:
                self._answer(200, json.dumps({"slept": seconds}).encode())  # -0.0 echoed
            else:
                self._answer(503, b'{"detail": "Database busy, retry later."}')  # no Retry-After
        elif url.path.startswith("/slow/"):
            repr_ = "upstream call failed: ConnectError('[Errno 111] Connection refused')"
            self._answer(502, json.dumps({"detail": repr_}).encode())
        elif url.path == "/json" and "X-Leak" in self.headers:
            self._answer(400, b'Traceback (most recent call last):\n  File "/app/main.py"')
        else:
            self._answer(200, b'{"message": "Hello, World!"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[AppTarget]:
    log = tmp_path / "app.log"
    log.write_text("")
    handler = type("Planted", (_Planted,), {"log_path": log})
    with _serving(handler) as url:
        strained = Strained(url, pool_size=2, pool_timeout=1.0, log_path=log)
        judged = AppTarget(url, log_path=log, strained_by=lambda: strained)
        yield judged
        judged.close()


def _fails(check: Callable[[], object], *needles: str) -> str:
    with pytest.raises(AssertionError) as failed:
        check()
    message = str(failed.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_a_500_to_a_malformed_chunk_fails(planted: AppTarget) -> None:
    _fails(lambda: test_hostile.test_malformed_chunked_body_is_400(planted, "size zz"), "500")


def test_a_hang_fails_within_its_bound(planted: AppTarget) -> None:
    started = time.monotonic()
    _fails(
        lambda: test_hostile.test_content_length_of_thousands_of_digits(planted, "POST, value 2"),
        "a hang",
    )
    assert time.monotonic() - started < ANSWER_TIMEOUT + 2


def test_a_traceback_in_a_body_fails(planted: AppTarget) -> None:
    leak = test_hostile.Case(b"GET {P}/json HTTP/1.1\r\nHost: {H}\r\nX-Leak: 1\r\n\r\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(test_hostile.FRAMING, "planted", leak)
        _fails(
            lambda: test_hostile.test_framing_and_headers_never_get_a_5xx(planted, "planted"),
            "Traceback",
        )


def test_a_traceback_in_the_log_fails(planted: AppTarget) -> None:
    _fails(
        lambda: test_hostile.test_disconnecting_clients_leave_one_line_not_a_traceback(planted),
        "traceback(s) in the app's log",
        "ClientDisconnect",
    )


def test_negative_zero_fails(planted: AppTarget) -> None:
    _fails(lambda: test_hostile.test_negative_zero_seconds_is_zero(planted, "db", "-0"), "-0.0")


def test_documentation_routes_fail(planted: AppTarget) -> None:
    _fails(lambda: test_hostile.test_documentation_routes_are_404(planted, "/docs"), "200")


def test_switching_to_websocket_fails(planted: AppTarget) -> None:
    _fails(
        lambda: test_hostile.test_websocket_upgrade_is_refused_without_a_5xx(planted, "/json", 200),
        "switched protocols",
    )


def _strained(planted: AppTarget) -> tuple[AppTarget, Strained]:
    settings = planted.strained()
    return AppTarget(settings.base_url, log_path=settings.log_path), settings


def test_an_upstream_repr_fails(planted: AppTarget) -> None:
    pair = _strained(planted)
    _fails(
        lambda: test_hostile.test_upstream_down_is_a_502_without_internals(
            pair, "/slow/http?seconds=0"
        ),
        "ConnectError(",
    )


def test_a_503_without_retry_after_fails(planted: AppTarget) -> None:
    pair = _strained(planted)
    _fails(lambda: test_hostile.test_pool_exhaustion_is_a_503_with_retry_after(pair), "503")


def test_a_generated_input_that_gets_a_500_fails(planted: AppTarget) -> None:
    _fails(
        lambda: test_generated.test_generated_queries_is_always_a_list(target=planted),
        "queries=",
    )


# ---------------------------------------------------------------- the raw reader


class _Scripted(BaseHTTPRequestHandler):
    """Writes back a fixed byte string whatever is asked, then closes."""

    reply = b""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(self.reply)


def _reply(reply: bytes, **options: Any) -> Exchange:
    handler = type("Scripted", (_Scripted,), {"reply": reply})
    with _serving(handler) as url:
        port = int(url.rsplit(":", 1)[1])
        return exchange(("127.0.0.1", port), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", **options)


def test_the_reader_splits_pipelined_answers_and_knows_head() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # HEAD: the length, no body
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
        b"HTTP/1.0 400 Bad Request\r\n\r\nread to the close"
    )
    ex = _reply(reply, answers=4, methods=["GET", "HEAD", "GET", "GET"], linger=1.0)
    assert ex.statuses == [200, 200, 404, 400] and ex.informational == [100]
    assert [a.body for a in ex.answers] == [b"ab", b"", b"xyz", b"read to the close"]
    assert ex.ending == CLOSED


def test_the_reader_keeps_what_is_not_http1() -> None:
    ex = _reply(b"\x00\x00\x18\x04\x00\x00\x00\x00\x00garbage")
    assert ex.statuses == [] and ex.unparsed.startswith(b"\x00\x00\x18")


def test_the_reader_gives_up_at_its_bound() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        started = time.monotonic()
        ex = exchange(listener.getsockname(), b"GET / HTTP/1.1\r\n\r\n", timeout=0.5)
    assert ex.statuses == [] and ex.ending == "open" and 0.4 < time.monotonic() - started < 2


# ---------------------------------------------------------------- the suite run on its own

ROOT = Path(__file__).resolve().parent.parent


def _suite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "shared_fixtures/conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_suite_on_its_own_reads_the_log_and_the_strained_instance(planted: AppTarget) -> None:
    """Its options reach the tests: the planted log's traceback and upstream repr fail them."""
    assert planted.log_path is not None
    done = _suite(
        "--base-url", planted.base_url,
        "--app-log", str(planted.log_path),
        "--strained-base-url", planted.base_url,
        "--strained-pool-size", "2",
        "--strained-pool-timeout", "1",
        "-k", "disconnecting or upstream_down",
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert re.search(r"^4 failed, \d+ deselected", done.stdout.splitlines()[-1]), done.stdout
    assert "traceback(s) in the app's log" in done.stdout and "ConnectError(" in done.stdout


def test_a_half_given_strained_instance_is_a_usage_error() -> None:
    done = _suite("--base-url", "http://127.0.0.1:9", "--strained-base-url", "http://127.0.0.1:9")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "ERROR: --strained-base-url, --strained-pool-size and --strained-pool-timeout go together"
    )
