"""Bytes on a socket, and what came back: the hostile section's one way to talk to a server.

A hostile request is sent exactly as written (no client library would send most of them)
and the server's bytes are read back through h11, the HTTP/1.1 parser httpx itself uses,
so a server's malformed answer is seen as such. Every exchange is bounded in time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import h11

ANSWER_TIMEOUT = 3.0  # seconds a complete request may take to be answered (or closed)

# How an exchange ended, as recorded in docs/servers.md: the server closed the connection,
# reset it, or left it open when the client stopped waiting.
CLOSED, RESET, OPEN = "closed", "reset", "open"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated name keeps its last value
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Exchange:
    """What one connection gave back for the bytes sent on it."""

    answers: list[Answer] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)  # 100 Continue and the like
    ending: str = OPEN
    elapsed: float = 0.0  # seconds from the first byte sent to the ending (or the give-up)
    unparsed: bytes = b""  # bytes that were not an HTTP/1.1 answer (an h2 frame, garbage)

    @property
    def statuses(self) -> list[int]:
        return [answer.status for answer in self.answers]

    def describe(self) -> str:
        """One line for an assertion message: statuses, how it ended, and when."""
        said = ", ".join(map(str, self.statuses)) or "no answer"
        extra = f", {len(self.unparsed)} bytes not HTTP/1.1" if self.unparsed else ""
        return f"{said}; {self.ending} after {self.elapsed:.1f} s{extra}"


class _Reader:
    """h11 as a client that has sent ``methods`` (what it needs to know of each request:
    HEAD's answer has no body), fed whatever the server sends."""

    def __init__(self, methods: Sequence[str]) -> None:
        self.methods = list(methods) or ["GET"]
        self.exchange = Exchange()
        self._body: list[bytes] = []
        self._head: h11.Response | None = None
        self._conn = self._connection(b"")
        self.broken = False

    def _connection(self, pending: bytes) -> h11.Connection:
        index = min(len(self.exchange.answers), len(self.methods) - 1)
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
        conn.send(h11.Request(method=self.methods[index], target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        if pending:
            conn.receive_data(pending)
        return conn

    def feed(self, data: bytes) -> None:
        """Parse ``data`` (b"" for the end of the stream) into answers."""
        if self.broken:
            self.exchange.unparsed += data
            return
        try:
            self._conn.receive_data(data)
            self._events()
        except h11.RemoteProtocolError:
            self.broken = True
            self.exchange.unparsed += self._conn.trailing_data[0] + data

    def _events(self) -> None:
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.InformationalResponse):
                self.exchange.informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                self._head, self._body = event, []
            elif isinstance(event, h11.Data):
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in self._head.headers}
                self.exchange.answers.append(
                    Answer(self._head.status_code, headers, b"".join(self._body))
                )
                # The next answer (pipelined) starts afresh, with what is left of the bytes.
                pending, closed = self._conn.trailing_data
                self._conn = self._connection(pending)
                if closed:
                    self._conn.receive_data(b"")
            elif isinstance(event, h11.ConnectionClosed):
                return


def exchange(
    address: tuple[str, int],
    data: bytes | Sequence[bytes],
    *,
    answers: int = 1,
    methods: Sequence[str] = ("GET",),
    timeout: float = ANSWER_TIMEOUT,
    linger: float = 0.0,
    pause: float = 0.0,
) -> Exchange:
    """Send ``data`` on a new connection and read until ``answers`` final answers have come
    (then ``linger`` seconds more, to see whether the server closes), the server closes,
    or ``timeout`` seconds have passed. A list of byte strings is sent as separate writes,
    ``pause`` seconds apart (a request trickled in). ``methods``: each request's method,
    in order (the last repeats), so that an answer to HEAD is read without a body."""
    reader = _Reader(methods)
    parts = [data] if isinstance(data, bytes) else list(data)
    started = time.monotonic()
    deadline = started + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            for index, part in enumerate(parts):
                if index and pause:
                    time.sleep(pause)
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading (it answered, or closed): read what it said
        done_at: float | None = None
        while True:
            now = time.monotonic()
            if done_at is None and len(reader.exchange.answers) >= answers:
                done_at = now
            limit = deadline if done_at is None else min(deadline, done_at + linger)
            if now >= limit:
                break
            sock.settimeout(max(limit - now, 0.001))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                reader.exchange.ending = RESET
                break
            reader.feed(chunk)
            if not chunk:
                reader.exchange.ending = CLOSED
                break
    reader.exchange.elapsed = time.monotonic() - started
    return reader.exchange
