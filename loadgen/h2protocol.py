"""The HTTP/2 client connection (``--h2``): an asyncio protocol driving a sans-IO engine.

An :class:`H2Conn` is one connection (TLS with ALPN ``h2`` for ``https://``, prior
knowledge, h2c, for ``http://``) carrying the streams of up to ``--streams`` request slots
(:class:`loadgen.h2slot.H2Slot`, which gives the drivers the owner API of an HTTP/1.1
:class:`~loadgen.protocol.Conn`). It is ready once the server's SETTINGS came; it
reconnects, as a Conn does, when a request finds it closed.

The engine holds the connection's HTTP/2 state (frames, windows, HPACK): loadgen's own
lean engine (:mod:`loadgen.h2wire`) by default, python-hyper's ``h2``
(:mod:`loadgen.h2ref`, the reference engine) under ``--pure`` or ``LOADGEN_PURE=1``, as
the HTTP/1.1 path takes httptools or the pure parser. Both give the same events (tuples
``(kind, stream id, value)``), so this module has one code path for either.

The hot path: one ``receive`` per read, its events dispatched by kind (data, end of
stream and response headers first), every request sent while reading batched into one
write at the end of the read. Requests are built once
(:class:`~loadgen.request.H2Request`) and their headers not re-validated per request;
the server's are (its malformed headers are its protocol error).

Counted and reported, never a hang: a server that does not speak HTTP/2 (ALPN chose
another protocol, or its first bytes are not an HTTP/2 SETTINGS frame: ``h2_refused``),
GOAWAY (the streams above its last id fail as ``goaway``, those at or below it finish,
new requests wait for a new connection), RST_STREAM (``refused_stream`` or
``stream_reset``), an HTTP/2 protocol error (``protocol_error``: the connection is
closed), and a server limit (SETTINGS_MAX_CONCURRENT_STREAMS) below ``--streams``: the
requests beyond it wait on their connection for a stream, and the connection is counted
as ``limited``, the limit reported.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from . import connstats, h2ref, h2wire
from .connstats import ConnStats
from .dial import Dialer, NotHTTP2, failure_kind
from .errorkinds import (
    BAD_RESPONSE,
    GOAWAY,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    RESET,
    STREAM_RESET,
)
from .h2wire import (
    CANCEL,
    CONNECTION_TERMINATED,
    DATA_RECEIVED,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    RESPONSE_RECEIVED,
    SETTINGS_CHANGED,
    STREAM_ENDED,
    TRAILERS_RECEIVED,
    WINDOW_UPDATED,
    ProtocolError,
    error_name,
)
from .h2wire import STREAM_RESET as RST_RECEIVED

__all__ = ["H2Conn", "engine_for"]

_pc = time.perf_counter_ns
WINDOW = (1 << 30) - 1  # our receive windows (stream and connection), as h2load's default
MAX_STREAM_ID = (1 << 31) - 1


def engine_for(lean: bool) -> Callable[[int], Any]:
    """The HTTP/2 engine's connection class: the lean one (h2wire), or python-hyper's h2
    (h2ref, the reference: ``--pure``). Run.__init__ decides which, from the Config."""
    return h2wire.Connection if lean else h2ref.Connection


class H2Conn(asyncio.Protocol):
    """One HTTP/2 connection; reconnects (as a Conn does) when a request finds it closed."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        dialer: Dialer,
        streams: int,
        engine: Callable[[int], Any] = h2wire.Connection,
    ) -> None:
        self.loop = loop
        self.engine = engine  # makes each connection's HTTP/2 state (engine_for)
        self.dialer = dialer
        self.stats: ConnStats = dialer.stats
        self.asked = streams  # --streams
        self.limit = streams  # min(--streams, the server's SETTINGS_MAX_CONCURRENT_STREAMS)
        # the slots (loadgen.h2slot.H2Slot) placed on this connection; their requests in
        # flight, by stream id; and those not yet on a stream
        self.slots: list[Any] = []
        self.streams: dict[int, Any] = {}
        self.waiting: deque[Any] = deque()
        self.transport: asyncio.Transport | None = None
        self.h2: Any = None  # this connection's engine state (h2wire's interface)
        self.ready = self.connecting = self.going_away = self.closed = self.in_read = False
        self.first = b""  # the server's first bytes, until they show a SETTINGS frame
        self.next_id = 1
        self.n_connects = 0
        self._ready: asyncio.Future[None] | None = None

    # -- the slots' side ---------------------------------------------------------------
    def submit(self, slot: Any, t: int) -> None:
        ready = self.ready and not self.going_away and not self.waiting
        if ready and len(self.streams) < self.limit:
            self._open_stream(slot, t)
            return
        self.waiting.append(slot)
        if self.transport is None and not self.connecting and not self.closed:
            self.connecting = True
            self.loop.create_task(self._connect_then_send())

    def cancel(self, slot: Any) -> None:
        sid = slot.stream_id
        if not sid:
            if slot in self.waiting:
                self.waiting.remove(slot)
            return
        slot.stream_id = 0
        if self.streams.pop(sid, None) is not None:
            self._reset(sid, CANCEL)
            self._flush()
        self._next()

    # -- connecting ----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection and wait for the server's SETTINGS, within the connect
        timeout (raises OSError; NotHTTP2 for a server that does not speak HTTP/2)."""
        self.connecting = True
        self._ready = self.loop.create_future()
        try:
            t0 = _pc()
            await self.dialer.open(self.loop, self)
            left = self.dialer.timeout - (_pc() - t0) / 1e9
            await asyncio.wait_for(asyncio.shield(self._ready), max(left, 0.001))
        except BaseException:
            # nobody waits for it any more (a failed handshake may have set it already)
            if not self._ready.done():
                self._ready.cancel()
            elif not self._ready.cancelled():
                self._ready.exception()
            self._drop()
            raise
        finally:
            self.connecting = False

    async def _connect_then_send(self) -> None:
        """A connection for the waiting requests (the server's SETTINGS send them). A
        server can break the new connection before connect() returns (its SETTINGS, our
        requests, its answer and the close all within the few loop turns connect() takes
        to resume): that connection_lost saw a connect under way and left the requests
        waiting to it, so connect again."""
        while True:
            try:
                await self.connect()
            except OSError as exc:  # timed out, refused, TLS, not HTTP/2: each waiting one
                kind = failure_kind(exc)
                failed = list(self.waiting)
                self.waiting.clear()
                for slot in failed:
                    self._fail(slot, kind)
                return
            if self.transport is not None or not self.waiting or self.closed:
                return

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.n_connects += 1
        self.ready = self.going_away = False
        self.first = b""
        self.next_id = 1
        self.limit = self.asked
        h = self.h2 = self.engine(WINDOW)
        h.start()
        self.transport.write(h.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                NotHTTP2("the server closed the connection before its HTTP/2 SETTINGS")
            )
        self.ready = False
        lost = list(self.streams.values())
        self.streams.clear()
        for slot in lost:
            self._fail(slot, RESET)
        if self.waiting and not self.connecting and not self.closed:
            self.connecting = True
            self.loop.create_task(self._connect_then_send())

    def close(self) -> None:
        """End of run: close without reporting anything."""
        self.closed = True
        self.waiting.clear()
        self._drop()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- receiving (the hot path) ----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self.ready:
            first = self._server_preface(data)
            if first is None:
                return
            data = first
        h = self.h2
        self.in_read = True
        try:
            events = h.receive(data)  # the engine replenishes our receive windows
        except ProtocolError:
            self.in_read = False
            self._broken()
            return
        if h.goaway:  # before the other events: no new stream on this connection
            h.goaway = False
            self._goaway(events)
        now = _pc()
        streams = self.streams
        for kind, sid, value in events:
            if kind == DATA_RECEIVED:
                slot = streams.get(sid)
                if slot is not None:
                    slot.nbody += len(value)
                    if slot.keep_body:
                        slot.body_parts.append(value)
            elif kind == STREAM_ENDED:
                slot = streams.pop(sid, None)
                if slot is not None:
                    slot.now = now
                    slot.busy = False
                    slot.stream_id = 0
                    slot.owner.on_response(slot)  # may submit this slot's next request
                    if self.waiting or self.going_away:
                        self._next()
            elif kind == RESPONSE_RECEIVED:
                slot = streams.get(sid)
                if slot is not None:
                    slot.t_first = slot.now = now
                    if not self._status(slot, value):
                        self._stream_failed(sid, BAD_RESPONSE)
            else:
                self._event(kind, sid, value)
        self.in_read = False
        self._flush()

    def _status(self, slot: Any, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        # the engine's validation puts :status first (else a connection error); its three
        # digits are checked here, alike for both engines (h2 does not): a stream error
        k, v = headers[0]
        if k != b":status" or not v.isdigit() or len(v) != 3:
            return False
        slot.status = int(v)
        if slot.full:
            slot.headers = [(k, v) for k, v in headers[1:]]
        return True

    def _flush(self) -> None:
        if not self.in_read and self.transport is not None:
            data = self.h2.data_to_send()
            if data:
                self.transport.write(data)

    # -- sending -----------------------------------------------------------------------------
    def _open_stream(self, slot: Any, t: int) -> None:
        sid = self.next_id
        if sid > MAX_STREAM_ID:  # this connection's stream ids are spent: a new connection
            self.going_away = True
            self.waiting.appendleft(slot)
            self._next()
            return
        self.next_id = sid + 2
        req = slot.pending
        assert req is not None
        slot.t_write = t
        slot.stream_id = sid
        self.streams[sid] = slot
        body = req.body
        self.h2.send_headers(sid, req.headers, not body)
        if body:
            self._send_body(slot, memoryview(body))
        slot.t_written = _pc()
        if not self.in_read:
            self.transport.write(self.h2.data_to_send())  # type: ignore[union-attr]

    def _send_body(self, slot: Any, body: memoryview) -> None:
        """As much of the body as flow control allows; the rest when the window opens."""
        h = self.h2
        sid = slot.stream_id
        while body:
            n = min(len(body), h.window(sid), h.max_outbound_frame_size)
            if n <= 0:
                break
            h.send_data(sid, body[:n], n == len(body))
            body = body[n:]
        slot.unsent = body if body else None

    def _next(self) -> None:
        """Streams for waiting requests as the server's limit allows; a connection going
        away closes once its last stream is done (the waiting then reconnect)."""
        if self.going_away:
            if not self.streams and self.transport is not None:
                self.transport.close()
            return
        w = self.waiting
        while w and self.ready and len(self.streams) < self.limit:
            self._open_stream(w.popleft(), _pc())

    # -- the rest of the server's frames (off the hot path) ------------------------------------
    def _server_preface(self, data: bytes) -> bytes | None:
        """Before the server's SETTINGS: its first bytes must begin that frame (RFC 9113
        3.4). The bytes so far once they do; None while too few have come, or when they
        are not HTTP/2 at all (or come after connect() gave up)."""
        if self._ready is None or self._ready.done():
            return None
        data = self.first = self.first + data
        if len(data) < 9:
            return None
        if data[3] == 0x4 and data[5:9] == b"\0\0\0\0":
            return data
        self.stats.count(connstats.H2, "not_h2")
        line = data.split(b"\r\n", 1)[0][:60].decode("latin-1")
        said = f"it answered {line!r}" if data.startswith(b"HTTP/") else "it sent no SETTINGS"
        self._ready.set_exception(NotHTTP2(said + ("" if self.dialer.context else " (no h2c)")))
        self._drop()
        return None

    def _event(self, kind: int, sid: int, value: Any) -> None:
        if kind == SETTINGS_CHANGED:
            self._settings(value)
        elif kind == RST_RECEIVED:
            code = error_name(value)
            self.stats.count(connstats.RST_STREAM, code)
            failed = REFUSED_STREAM if code == "REFUSED_STREAM" else STREAM_RESET
            self._stream_failed(sid, failed, reset=False)
        elif kind == TRAILERS_RECEIVED:
            slot = self.streams.get(sid)
            if slot is not None and slot.full:
                slot.headers.extend(value)
        elif kind == WINDOW_UPDATED:
            self._resume_bodies()

    def _resume_bodies(self) -> None:
        """The bodies flow control held back, as far as the windows now allow."""
        for slot in list(self.streams.values()):
            if slot.unsent is not None:
                self._send_body(slot, slot.unsent)

    def _settings(self, changed: dict[int, int]) -> None:
        limit = changed.get(MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.stats.count(connstats.MAX_STREAMS, str(limit))
            if limit < self.asked and self.limit == self.asked:
                self.stats.count(connstats.H2, "limited")
            self.limit = max(1, min(self.asked, limit))
        if INITIAL_WINDOW_SIZE in changed:  # it moved the open streams' windows
            self._resume_bodies()
        if not self.ready:  # the server's first SETTINGS: the connection is ready
            self.ready = True
            self.first = b""
            if self.dialer.context is None:
                self.stats.count(connstats.PROTOCOL, "h2c")
            now = _pc()
            for slot in self.waiting:
                slot.connect_ns = now - slot.t_start
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        self._next()

    def _goaway(self, events: list[tuple[int, int, Any]]) -> None:
        """A GOAWAY: no new stream here; the streams above its last id were not processed
        (those at or below it finish; the waiting requests go on a new connection)."""
        for kind, last, code in events:
            if kind == CONNECTION_TERMINATED:
                self.stats.count(connstats.GOAWAY, error_name(code))
                self.going_away = True
                for sid in [s for s in self.streams if s > last]:
                    self._stream_failed(sid, GOAWAY, reset=False)

    def _stream_failed(self, sid: int, kind: str, reset: bool = True) -> None:
        slot = self.streams.pop(sid, None)
        if reset:
            self._reset(sid, h2wire.PROTOCOL_ERROR)
        if slot is not None:
            self._fail(slot, kind)
        self._next()

    def _broken(self) -> None:
        """The server broke HTTP/2: the engine has queued our GOAWAY; send it, close, fail what
        was in flight (the waiting requests reconnect)."""
        self.stats.count(connstats.H2, "protocol_error")
        self.going_away = True
        lost = list(self.streams.values())
        self.streams.clear()
        if self.transport is not None:
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
        for slot in lost:
            self._fail(slot, PROTOCOL_ERROR)

    def _reset(self, sid: int, code: int) -> None:
        if self.transport is not None:
            self.h2.reset_stream(sid, code)  # nothing if the stream was closed already

    def _fail(self, slot: Any, kind: str) -> None:
        slot.stream_id = 0
        if slot.busy:
            slot.busy = False
            slot.owner.on_error(slot, kind)
