"""The HTTP/2 client connection (``--h2``), driven by python-hyper's sans-IO ``h2``.

An :class:`H2Conn` is one connection (TLS with ALPN ``h2`` for ``https://``, prior
knowledge, h2c, for ``http://``) carrying the streams of up to ``--streams`` request slots
(:class:`loadgen.h2slot.H2Slot`, which gives the drivers the owner API of an HTTP/1.1
:class:`~loadgen.protocol.Conn`). It is ready once the server's SETTINGS came; it
reconnects, as a Conn does, when a request finds it closed.

The hot path: one ``receive_data`` per read, its events dispatched by class (data, end
of stream and response headers first), every request sent while reading batched into
one write at the end of the read. Requests are built once
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
import contextlib
import time
from collections import deque
from typing import Any, cast

from . import connstats
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

__all__ = ["H2Conn", "load_h2"]

_pc = time.perf_counter_ns
WINDOW = (1 << 30) - 1  # our receive windows (stream and connection), as h2load's default
MAX_STREAM_ID = (1 << 31) - 1

# h2's names, imported by the first HTTP/2 connection (load_h2): an HTTP/1.1 run never
# pays for importing h2, an optional dependency (loadgen's h2 extra).
H2ProtocolError: Any = None
ConnectionTerminated: Any = None
DataReceived: Any = None
RemoteSettingsChanged: Any = None
ResponseReceived: Any = None
StreamEnded: Any = None
StreamReset: Any = None
TrailersReceived: Any = None
WindowUpdated: Any = None
ErrorCodes: Any = None
SettingCodes: Any = None
Settings: Any = None
_Client: Any = None
_CONFIG: Any = None
_OURS: Any = None
_Encoder: Any = None


def load_h2() -> None:
    """Import h2 (once) into this module's names."""
    global H2ProtocolError, ConnectionTerminated, DataReceived, RemoteSettingsChanged
    global ResponseReceived, StreamEnded, StreamReset, TrailersReceived, WindowUpdated
    global ErrorCodes, SettingCodes, Settings, _Client, _CONFIG, _OURS, _Encoder
    if _Client is not None:
        return
    from h2 import events
    from h2.config import H2Configuration
    from h2.connection import ConnectionState, H2Connection
    from h2.errors import ErrorCodes
    from h2.exceptions import ProtocolError as H2ProtocolError
    from h2.settings import SettingCodes, Settings
    from hpack import Encoder

    ConnectionTerminated, DataReceived = events.ConnectionTerminated, events.DataReceived
    RemoteSettingsChanged = events.RemoteSettingsChanged
    ResponseReceived, StreamEnded = events.ResponseReceived, events.StreamEnded
    StreamReset, TrailersReceived = events.StreamReset, events.TrailersReceived
    WindowUpdated = events.WindowUpdated

    class Client(H2Connection):
        """h2's client connection, but a GOAWAY received leaves it open: h2 closes its state
        machine on one (python-hyper/h2#1181), which would refuse the frames of the streams
        the server still finishes (RFC 9113 6.8), even later ones in the same read."""

        goaway = False  # a GOAWAY came in the last receive_data

        def _receive_goaway_frame(self, frame: Any) -> Any:
            done = super()._receive_goaway_frame(frame)
            self.state_machine.state = ConnectionState.CLIENT_OPEN
            self.goaway = True
            return done

    class MemoEncoder(Encoder):
        """hpack's encoder, reusing the block of a header list it encoded before while its
        dynamic table is as it was: HPACK's output depends on nothing else, and a block
        that left the table unchanged (every field found in it) leaves it unchanged again.
        A request built once (H2Request) is then encoded once per connection, as HTTP/1.1
        sends its prebuilt bytes. (h2 hands it a fresh list each time: keyed by content.)"""

        def __init__(self) -> None:
            super().__init__()
            self.blocks: dict[tuple[Any, ...], bytes] = {}
            self.state: Any = None

        def table(self) -> Any:
            t = self.header_table  # an add always leaves a new tuple first in the deque
            d = t.dynamic_entries
            return (len(d), id(d[0]) if d else 0, t.maxsize, t.resized)

        def encode(self, headers: Any, huffman: bool = True) -> bytes:
            state = self.table()
            if state != self.state:
                self.blocks.clear()
                self.state = state
            key = tuple(headers)
            block = self.blocks.get(key)
            if block is None:
                block = super().encode(key, huffman)
                if self.table() != state:
                    self.blocks.clear()
                    self.state = self.table()
                elif len(self.blocks) < 64:
                    self.blocks[key] = block
            return block

    _Client = Client
    _Encoder = MemoEncoder
    # no push, no stream opened by the server (a client never accepts one); big windows
    _OURS = {
        SettingCodes.ENABLE_PUSH: 0,
        SettingCodes.MAX_CONCURRENT_STREAMS: 0,
        SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
    }
    _CONFIG = H2Configuration(
        client_side=True,
        header_encoding=None,  # bytes in, bytes out: nothing decoded per request
        validate_outbound_headers=False,  # built and checked once (build_h2_request)
        normalize_outbound_headers=False,
        normalize_inbound_headers=False,  # joins a request's cookie crumbs: not a response's
    )  # the server's headers are still validated (validate_inbound_headers)


class H2Conn(asyncio.Protocol):
    """One HTTP/2 connection; reconnects (as a Conn does) when a request finds it closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dialer: Dialer, streams: int) -> None:
        load_h2()
        self.loop = loop
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
        self.h2: Any = None
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
            self._reset(sid, ErrorCodes.CANCEL)
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
        h = self.h2 = _Client(config=_CONFIG)
        h.encoder = _Encoder()
        h.local_settings = Settings(client=True, initial_values=_OURS)
        h.initiate_connection()
        h.increment_flow_control_window(WINDOW - 65535)  # the connection's window
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
            events = h.receive_data(data)
        except H2ProtocolError:
            self.in_read = False
            self._broken()
            return
        if h.goaway:  # before the other events: no new stream on this connection
            h.goaway = False
            self._goaway(events)
        now = _pc()
        streams = self.streams
        for ev in events:
            cls = ev.__class__
            if cls is DataReceived:
                slot = streams.get(ev.stream_id)
                if slot is not None:
                    slot.nbody += len(ev.data)
                    if slot.keep_body:
                        slot.body_parts.append(ev.data)
                # (also a stream we reset: its data counted against the window)
                h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif cls is StreamEnded:
                slot = streams.pop(ev.stream_id, None)
                if slot is not None:
                    slot.now = now
                    slot.busy = False
                    slot.stream_id = 0
                    slot.owner.on_response(slot)  # may submit this slot's next request
                    if self.waiting or self.going_away:
                        self._next()
            elif cls is ResponseReceived:
                slot = streams.get(ev.stream_id)
                if slot is not None:
                    slot.t_first = slot.now = now
                    if not self._status(slot, ev.headers):
                        self._stream_failed(ev.stream_id, BAD_RESPONSE)
            else:
                self._event(ev)
        self.in_read = False
        self._flush()

    def _status(self, slot: Any, headers: list[tuple[bytes, bytes]]) -> bool:
        k, v = headers[0]  # inbound validation puts :status first
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
        self.h2.send_headers(sid, req.headers, end_stream=not body)
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
            n = min(len(body), h.local_flow_control_window(sid), h.max_outbound_frame_size)
            if n <= 0:
                break
            h.send_data(sid, body[:n], end_stream=n == len(body))
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

    def _event(self, ev: Any) -> None:
        cls = ev.__class__
        if cls is RemoteSettingsChanged:
            self._settings(ev.changed_settings)
        elif cls is StreamReset:
            code = _name(ev.error_code)
            self.stats.count(connstats.RST_STREAM, code)
            kind = REFUSED_STREAM if code == "REFUSED_STREAM" else STREAM_RESET
            self._stream_failed(ev.stream_id, kind, reset=False)
        elif cls is TrailersReceived:
            slot = self.streams.get(ev.stream_id)
            if slot is not None and slot.full:
                slot.headers.extend(ev.headers)
        elif cls is WindowUpdated:
            for slot in list(self.streams.values()):
                if slot.unsent is not None:
                    self._send_body(slot, slot.unsent)

    def _settings(self, changed: dict[int, Any]) -> None:
        limit = changed.get(SettingCodes.MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.stats.count(connstats.MAX_STREAMS, str(limit.new_value))
            if limit.new_value < self.asked and self.limit == self.asked:
                self.stats.count(connstats.H2, "limited")
            self.limit = max(1, min(self.asked, limit.new_value))
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

    def _goaway(self, events: list[Any]) -> None:
        """A GOAWAY: no new stream here; the streams above its last id were not processed
        (those at or below it finish; the waiting requests go on a new connection)."""
        for ev in events:
            if ev.__class__ is ConnectionTerminated:
                self.stats.count(connstats.GOAWAY, _name(ev.error_code))
                self.going_away = True
                for sid in [s for s in self.streams if s > ev.last_stream_id]:
                    self._stream_failed(sid, GOAWAY, reset=False)

    def _stream_failed(self, sid: int, kind: str, reset: bool = True) -> None:
        slot = self.streams.pop(sid, None)
        if reset:
            self._reset(sid, ErrorCodes.PROTOCOL_ERROR)
        if slot is not None:
            self._fail(slot, kind)
        self._next()

    def _broken(self) -> None:
        """The server broke HTTP/2: h2 has queued our GOAWAY; send it, close, fail what
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

    def _reset(self, sid: int, code: Any) -> None:
        if self.transport is not None:
            with contextlib.suppress(H2ProtocolError):  # the stream was closed already
                self.h2.reset_stream(sid, code)

    def _fail(self, slot: Any, kind: str) -> None:
        slot.stream_id = 0
        if slot.busy:
            slot.busy = False
            slot.owner.on_error(slot, kind)


def _name(code: Any) -> str:
    return getattr(code, "name", None) or f"0x{int(code):x}"
