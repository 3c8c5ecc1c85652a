"""The request slots on HTTP/2 connections and the pool that places them (``--h2``).

An :class:`H2Slot` is what a driver holds: it has the owner API of an HTTP/1.1
:class:`~loadgen.protocol.Conn` (``request()``, then exactly one of
``owner.on_response(slot)`` / ``owner.on_error(slot, kind)``; the same timestamps and
attributes), so the fast path, the flows and the recording run either engine. Its
requests go on streams of its :class:`~loadgen.h2protocol.H2Conn`; the
:class:`H2Pool` puts each new slot on the last connection with room (``--streams``
slots), else on a new connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .dial import Dialer
from .h2protocol import H2Conn, engine_for
from .request import H2Request

__all__ = ["H2Pool", "H2Slot", "greet"]

_pc = time.perf_counter_ns


class H2Slot:
    """One request slot on an :class:`H2Conn` (one stream at a time). ``full``: keep the
    response's headers and body (flow scenarios)."""

    __slots__ = (
        "body_parts", "busy", "conn", "connect_ns", "full", "headers", "keep_body",
        "n_connects", "nbody", "now", "owner", "pending", "status", "stream_id", "t_first",
        "t_sched", "t_start", "t_write", "t_written", "tag", "unsent",
    )  # fmt: skip

    def __init__(self, owner: Any, conn: H2Conn, full: bool = False) -> None:
        self.owner = owner
        self.conn = conn
        self.full = full
        self.keep_body = full
        self.busy = False
        self.body_parts: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.n_connects = 0  # connections are counted on H2Conn
        self.status = self.nbody = self.stream_id = 0
        self.t_start = self.t_write = self.t_written = self.t_first = self.now = 0
        self.t_sched = self.connect_ns = 0
        self.pending: H2Request | None = None  # the request in flight or waiting
        self.unsent: memoryview | None = None  # the part of its body flow control held back
        self.tag: Any = None

    def request(self, req: H2Request, head: bool = False) -> None:
        """Send one request; exactly one of owner.on_response / on_error follows. (``head``:
        an HTTP/1.1 matter; HTTP/2 frames a HEAD response like any other.)"""
        t = _pc()
        self.busy = True
        self.t_start = self.t_write = self.t_written = t
        self.t_first = self.nbody = self.status = self.connect_ns = 0
        if self.body_parts:
            self.body_parts = []
        if self.full:
            self.headers = []
        self.pending = req
        self.conn.submit(self, t)

    def abort(self, kind: str) -> None:
        """Fail the request in flight with ``kind`` (its stream is reset: CANCEL)."""
        if self.busy:
            self.busy = False
            self.conn.cancel(self)
            self.owner.on_error(self, kind)

    def close(self) -> None:
        """Drop the request in flight without reporting it (end of run)."""
        if self.busy:
            self.busy = False
            self.conn.cancel(self)

    async def connect(self) -> None:
        await self.conn.connect()

    @property
    def _connecting(self) -> bool:
        """Read by the run's timeout sweep, as Conn's: a request waiting for its connection's
        set-up is bounded by the connect timeout, not the request's. One waiting on no
        connection at all (none open, none being opened: a bug) is not exempt."""
        c = self.conn
        return not c.ready and (c.connecting or c.transport is not None)

    @property
    def body(self) -> bytes:
        return b"".join(self.body_parts)


class H2Pool:
    """The HTTP/2 connections of one run: each new slot goes on the last connection while
    it has fewer than ``streams`` slots, else on a new connection. ``lean``: the lean
    engine (h2wire), else the reference (h2)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, dialer: Dialer, streams: int, lean: bool = True
    ) -> None:
        self.loop = loop
        self.dialer = dialer
        self.streams = streams
        self.engine = engine_for(lean)
        self.conns: list[H2Conn] = []

    def new_slot(self, owner: Any, full: bool = False) -> H2Slot:
        if not self.conns or len(self.conns[-1].slots) >= self.streams:
            self.conns.append(H2Conn(self.loop, self.dialer, self.streams, self.engine))
        conn = self.conns[-1]
        slot = H2Slot(owner, conn, full)
        conn.slots.append(slot)
        return slot


async def greet(loop: asyncio.AbstractEventLoop, dialer: Dialer, lean: bool = True) -> None:
    """One HTTP/2 connection up to the server's SETTINGS, then closed (the target probe)."""
    conn = H2Conn(loop, dialer, 1, engine_for(lean))
    try:
        await conn.connect()
    finally:
        conn.close()
