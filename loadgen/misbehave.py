"""Clients that misbehave, held beside the load (``--misbehaving KIND=N``).

A server in production meets clients that open a connection and send nothing, that send
their request head a byte at a time, or that stop in the middle of a body. Each kind
costs some servers a worker or a thread for as long as the client waits (docs/servers.md,
"Hostile clients"). Here N such connections are opened before the warm-up and held until
the run ends, beside the normal load, so that the load's own latency and errors show
what they cost the server; the report says how many were held and how many the server
closed (and after how long, and with what answer).

Bounded: at most :data:`MAX_HELD` connections in all, each connect bounded by the connect
timeout, nothing held after the run (which has its own deadline), and only against a
loopback target (``Config.validate``). The connections are never reopened: a server
that closes one has rid itself of that client, and the count says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

IDLE, SLOW_HEADERS, STALLED_BODY = "idle", "slow-headers", "stalled-body"
KINDS = (IDLE, SLOW_HEADERS, STALLED_BODY)
MAX_HELD = 1000  # connections held in all, every kind together
BODY_LENGTH = 1000  # stalled-body: the Content-Length declared; half of it is sent


def slow_head(path: str, host: str) -> bytes:
    """The head slow-headers sends a byte at a time: it never ends (after ``X-Slow: `` comes
    ``a`` after ``a``), so the server never has a whole request from it."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()


def stalled_request(path: str, host: str) -> bytes:
    """What stalled-body sends at once: a whole head declaring BODY_LENGTH bytes of JSON,
    and the first half of that body; the rest never comes."""
    half = BODY_LENGTH // 2
    body = b'{"name": "' + b"a" * (half - 10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY_LENGTH}\r\n\r\n"
    )
    return head.encode() + body


class _Held(asyncio.Protocol):
    """One misbehaving connection: what it sent, and whether the server closed it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.transport: asyncio.Transport | None = None
        self.opened_at = 0.0
        self.closed_after: float | None = None  # seconds after opening the server closed it
        self.status: str | None = None  # the status of an answer, if the server sent one
        self.sent = 0  # slow-headers: bytes of the head sent so far
        self.released = False  # closed by us at the end of the run

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.opened_at = time.monotonic()

    def data_received(self, data: bytes) -> None:
        if self.status is None:  # an answer before the request was whole: 400, 408, ...
            words = data.split(b"\r\n", 1)[0].split()
            self.status = words[1].decode(errors="replace") if len(words) > 1 else "?"

    def eof_received(self) -> bool | None:
        return None  # close our side too -> connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.released and self.closed_after is None:
            self.closed_after = time.monotonic() - self.opened_at

    def release(self) -> None:
        self.released = True
        if self.transport is not None:
            self.transport.abort()


@dataclass(frozen=True)
class Asked:
    """What a run asks of its misbehaving connections (``Config``'s misbehaving fields)."""

    counts: Mapping[str, int]  # kind -> connections
    host: str  # connect here
    port: int
    host_header: str
    path: str  # the request target they name
    pace: float  # slow-headers: seconds between bytes
    connect_timeout: float


class Misbehaving:
    """The misbehaving connections of one run: :meth:`open` before the warm-up, :meth:`release`
    when the run is over (its report block, by kind)."""

    def __init__(self, asked: Asked, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.asked = dict(asked.counts)
        self.pace = asked.pace
        self.address = (asked.host, asked.port)
        self.connect_timeout = asked.connect_timeout
        self.slow_head = slow_head(asked.path, asked.host_header)
        self.stalled = stalled_request(asked.path, asked.host_header)
        self.held: list[_Held] = []
        self.failed = dict.fromkeys(self.asked, 0)
        self._timer: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        """Connect every one at once (each bounded by the connect timeout), send what each
        kind sends first, and start the slow heads' clock."""
        kinds = [kind for kind, count in self.asked.items() for _ in range(count)]
        opened = await asyncio.gather(*(self._connect(kind) for kind in kinds))
        self.held = [held for held in opened if held is not None]
        if any(held.kind == SLOW_HEADERS for held in self.held):
            self._timer = self.loop.call_later(self.pace, self._trickle)

    async def _connect(self, kind: str) -> _Held | None:
        host, port = self.address
        try:
            _, held = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Held(kind), host, port),
                timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError):
            self.failed[kind] += 1
            return None
        if kind == STALLED_BODY:
            self._write(held, self.stalled)
        elif kind == SLOW_HEADERS:
            self._send_next_byte(held)
        return held

    def _write(self, held: _Held, data: bytes) -> None:
        if held.transport is not None and not held.transport.is_closing():
            held.transport.write(data)

    def _send_next_byte(self, held: _Held) -> None:
        head = self.slow_head
        byte = head[held.sent : held.sent + 1] or b"a"
        self._write(held, byte)
        held.sent += 1

    def _trickle(self) -> None:
        """Every slow head that is still open gets its next byte, then again after pace."""
        for held in self.held:
            if held.kind == SLOW_HEADERS and held.closed_after is None:
                self._send_next_byte(held)
        self._timer = self.loop.call_later(self.pace, self._trickle)

    def release(self) -> dict[str, Any]:
        """Close every connection still open; what happened to them, by kind."""
        if self._timer is not None:
            self._timer.cancel()
        for held in self.held:
            held.release()
        return {kind: self._kind_report(kind, count) for kind, count in self.asked.items()}

    def _kind_report(self, kind: str, asked: int) -> dict[str, Any]:
        mine = [held for held in self.held if held.kind == kind]
        closed = sorted(h.closed_after for h in mine if h.closed_after is not None)
        answered: dict[str, int] = {}
        for held in mine:
            if held.status is not None:
                answered[held.status] = answered.get(held.status, 0) + 1
        return {
            "asked": asked,
            "opened": len(mine),
            "failed": self.failed[kind],
            "closed": len(closed),
            "held": len(mine) - len(closed),
            "answered": dict(sorted(answered.items())),
            "closed_after_s": None
            if not closed
            else {
                "min": round(closed[0], 3),
                "median": round(statistics.median(closed), 3),
                "max": round(closed[-1], 3),
            },
        }


@contextlib.asynccontextmanager
async def held_beside(asked: Asked | None, sink: dict[str, Any]) -> AsyncIterator[None]:
    """The misbehaving connections ``asked``, open for the block; their report in ``sink``
    (nothing when none are asked for)."""
    if asked is None or not asked.counts:
        yield
        return
    group = Misbehaving(asked, asyncio.get_running_loop())
    try:
        await group.open()
        yield
    finally:
        sink.update(group.release())
