"""Clients that misbehave beside the load (``--misbehaving KIND=N``, loadgen/misbehave.py),
against planted servers whose answer to each kind is known: one that closes a connection
that stays silent, one that records every byte as it comes and closes nothing, one that
answers 408 to a body that stopped, and a single-threaded one that a silent connection
stalls. Each run is about a second."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from loadgen import run_sync
from loadgen.config import Config
from loadgen.misbehave import BODY_LENGTH, slow_head, stalled_request

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Policy:
    """How the planted server treats a connection."""

    silence: float | None = None  # close (or answer) after this long without a byte
    on_silence: bytes = b""  # sent before closing a silent connection
    close_after_answer: bool = False  # one request per connection (HTTP/1.0 style)
    seen: list[list[bytes]] = field(default_factory=list)  # each connection's reads
    open: int = 0  # connections whose handler has not returned
    lock: threading.Lock = field(default_factory=threading.Lock)


def _complete(buffer: bytes) -> int:
    """Length of the first whole request in ``buffer`` (head and Content-Length body), or 0."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return 0
    length = 0
    for line in buffer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    total = end + 4 + length
    return total if len(buffer) >= total else 0


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        policy: Policy = self.server.policy  # type: ignore[attr-defined]
        reads: list[bytes] = []
        with policy.lock:
            policy.seen.append(reads)
            policy.open += 1
        try:
            self._serve(policy, reads)
        finally:
            with policy.lock:
                policy.open -= 1

    def _serve(self, policy: Policy, reads: list[bytes]) -> None:
        sock: socket.socket = self.request
        sock.settimeout(policy.silence)
        buffer = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if policy.on_silence:
                    sock.sendall(policy.on_silence)
                return
            except OSError:
                return
            if not data:
                return
            reads.append(data)
            buffer += data
            while length := _complete(buffer):
                buffer = buffer[length:]
                sock.sendall(OK)
                if policy.close_after_answer:
                    return


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _OneThread(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 64  # held connections are accepted in turn


@contextlib.contextmanager
def planted(policy: Policy, threaded: bool = True) -> Iterator[str]:
    server = (_Threaded if threaded else _OneThread)(("127.0.0.1", 0), _Handler)
    server.policy = policy  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def load(url: str, seconds: float = 1.0, **misbehaving: object) -> dict:
    config = Config(url=url, duration=seconds, concurrency=2, timeout=5.0, **misbehaving)  # type: ignore[arg-type]
    return run_sync(config).to_dict()


def test_idle_connections_closed_by_the_server_are_counted_with_when() -> None:
    with planted(Policy(silence=0.3)) as url:
        report = load(url, misbehaving=(("idle", 4),))
    idle = report["misbehaving"]["idle"]
    assert (idle["asked"], idle["opened"], idle["failed"]) == (4, 4, 0)
    assert (idle["closed"], idle["held"], idle["answered"]) == (4, 0, {})
    assert 0.25 <= idle["closed_after_s"]["min"] <= idle["closed_after_s"]["max"] < 0.9
    assert report["summary"]["ok"] > 0 and report["summary"]["errors"] == 0  # the load ran


def test_slow_headers_send_one_byte_at_a_time_and_never_finish() -> None:
    policy = Policy()  # waits for ever, closes nothing
    with planted(policy) as url:
        report = load(url, misbehaving=(("slow-headers", 3),), misbehaving_pace=0.1)
    slow = report["misbehaving"]["slow-headers"]
    assert (slow["opened"], slow["held"], slow["closed"]) == (3, 3, 0)
    assert slow["closed_after_s"] is None
    head = slow_head("/x", url.split("//")[1].split("/")[0])
    trickled = [reads for reads in policy.seen if reads and not reads[0].endswith(b"\r\n\r\n")]
    assert len(trickled) == 3
    for reads in trickled:
        sent = b"".join(reads)
        assert {len(read) for read in reads} == {1}, "more than one byte in one read"
        assert 5 <= len(sent) <= 20 and head.startswith(sent)  # ~1 s at 10 bytes a second


def test_a_stalled_body_sends_half_and_the_servers_answer_is_counted() -> None:
    policy = Policy(silence=0.3, on_silence=b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    with planted(policy) as url:
        report = load(url, misbehaving=(("stalled-body", 2),), misbehaving_path="/api/troupes?x=1")
    stalled = report["misbehaving"]["stalled-body"]
    assert (stalled["opened"], stalled["closed"], stalled["held"]) == (2, 2, 0)
    assert stalled["answered"] == {"408": 2}
    expected = stalled_request("/api/troupes?x=1", url.split("//")[1].split("/")[0])
    bodies = [b"".join(reads) for reads in policy.seen if reads and reads[0].startswith(b"POST")]
    assert bodies == [expected, expected]
    assert len(expected.split(b"\r\n\r\n", 1)[1]) == BODY_LENGTH // 2
    assert f"Content-Length: {BODY_LENGTH}".encode() in expected


def test_the_loads_latency_shows_what_held_connections_cost_a_one_thread_server() -> None:
    """A server that serves one connection at a time and waits 0.5 s for a silent one: two
    idle connections opened before the load hold it up for about a second."""
    policy = Policy(silence=0.5, close_after_answer=True)
    with planted(policy, threaded=False) as url:
        without = load(url, seconds=0.5)
        held = load(url, seconds=1.5, misbehaving=(("idle", 2),))
    assert without["misbehaving"] is None
    assert without["latency"]["uncorrected"]["percentiles_ns"]["100"] < 0.3e9
    assert held["latency"]["uncorrected"]["percentiles_ns"]["100"] > 0.4e9
    assert held["misbehaving"]["idle"]["closed"] == 2  # the server let each go at 0.5 s


def test_the_text_report_says_what_was_held() -> None:
    with planted(Policy(silence=0.3)) as url:
        config = Config(url=url, duration=0.6, concurrency=1, misbehaving=(("idle", 2),))
        text = run_sync(config).text()
    assert "Misbehaving connections" in text
    assert "idle:\t2 of 2 opened, 0 held to the end, 2 closed by the server after" in text


def test_a_refused_connect_is_counted_not_raised() -> None:
    """A port nothing listens on: each misbehaving connect fails and is counted as failed
    (the load's own errors are the load's)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connects are refused
    config = Config(url=f"http://127.0.0.1:{port}/", duration=0.2, check_target=False)
    started = time.monotonic()
    report = run_sync(config.replace(misbehaving=(("idle", 3),))).to_dict()
    assert report["misbehaving"]["idle"]["failed"] == 3
    assert report["misbehaving"]["idle"]["opened"] == 0
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("kind", ["idle", "slow-headers", "stalled-body"])
def test_nothing_is_left_open_after_the_run(kind: str) -> None:
    policy = Policy()  # closes nothing itself: only loadgen's release ends them
    with planted(policy) as url:
        report = load(url, seconds=0.3, misbehaving=((kind, 3),))
        deadline = time.monotonic() + 2
        while policy.open and time.monotonic() < deadline:
            time.sleep(0.02)
        assert report["misbehaving"][kind]["held"] == 3 and policy.open == 0
