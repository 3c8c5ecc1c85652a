"""The lean HTTP/2 client engine (the default for ``--h2``): a client connection's frames
and state, sans-IO, exactly the part of HTTP/2 that :class:`~loadgen.h2protocol.H2Conn`
uses.

Why a second engine: python-hyper's ``h2`` (the reference engine, ``--pure``:
:mod:`loadgen.h2ref`) builds an object per frame and per event, runs a state machine per
stream and validates and decodes every response's header block; that is most of a
``--h2`` run's CPU, many times what the HTTP/1.1 fast path spends per request. This
engine parses frames in place (one ``struct`` unpack per frame), keeps per stream only
its windows and what it has received, yields events as tuples ``(kind, stream id,
value)`` and decodes and validates a header block once per state of the HPACK table
(:mod:`loadgen.h2hpack`). Both engines have the interface below and give H2Conn the same
events; the tests run both and compare them, frame for frame.

The interface: ``start()``; ``receive(data)`` → events (raises :class:`ProtocolError`
on a connection error, the GOAWAY queued); ``data_to_send()``; ``send_headers``,
``send_data``, ``reset_stream``, ``window(sid)``, ``max_outbound_frame_size`` and the
``goaway`` flag (a GOAWAY came in the last ``receive``). The events, by kind:
``DATA_RECEIVED`` (the body bytes), ``STREAM_ENDED`` (None), ``RESPONSE_RECEIVED`` and
``TRAILERS_RECEIVED`` (the header tuple), ``STREAM_RESET`` (the error code),
``WINDOW_UPDATED`` (None), ``SETTINGS_CHANGED`` (stream 0; the settings the frame
carried, code → value), ``CONNECTION_TERMINATED`` (the GOAWAY's last stream id in place
of the stream id; the error code). Our receive windows are replenished by the engine,
as h2load does, once more than half of one is consumed.

Errors as h2 treats them, connection errors all: frames larger than our
MAX_FRAME_SIZE, on the wrong stream (0 or not), on a stream we never opened (a server
opening one: we advertise MAX_CONCURRENT_STREAMS 0), PUSH_PROMISE (we send ENABLE_PUSH
0), a malformed HPACK block (COMPRESSION_ERROR), invalid response headers (no ``:status``
first, connection-specific fields, uppercase names), a body longer or shorter than its
content-length, windows overdrawn. Frames on a stream already closed (we reset it, or it
ended) are tolerated and dropped; their DATA still counts against the connection window.
"""

from __future__ import annotations

import struct
from typing import Any

from .h2hpack import MemoDecoder, MemoEncoder

__all__ = ["Connection", "ProtocolError", "error_name"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# the events: (kind, stream id, value)
DATA_RECEIVED, STREAM_ENDED, RESPONSE_RECEIVED, TRAILERS_RECEIVED = 0, 1, 2, 3
STREAM_RESET, WINDOW_UPDATED, SETTINGS_CHANGED, CONNECTION_TERMINATED = 4, 5, 6, 7

# frame types and flags (RFC 9113 6)
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE = 0, 1, 2, 3, 4, 5
_PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 6, 7, 8, 9
_END_STREAM = _ACK = 0x1
_END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x4, 0x8, 0x20

# error codes (RFC 9113 7)
ERROR_NAMES = (
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
    "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
    "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
)  # fmt: skip
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x1, 0x3, 0x6
CANCEL, COMPRESSION_ERROR = 0x8, 0x9

# settings (RFC 9113 6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 0x4, 0x5

_MAX_WINDOW = _ID_MASK = (1 << 31) - 1  # a window's bound; a stream id's 31 bits
_DEFAULT_WINDOW = 65535
_DEFAULT_FRAME = 16384  # our SETTINGS_MAX_FRAME_SIZE (we never raise it)
_HEAD = struct.Struct(">BHBBL")  # length (24 bits: 8 + 16), type, flags, stream id
_U32 = struct.Struct(">L")
_GOAWAY_BODY = struct.Struct(">LL")
_SETTING = struct.Struct(">HL")


def error_name(code: int) -> str:
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else f"0x{code:x}"


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


class ProtocolError(Exception):
    """The server broke HTTP/2: a connection error, our GOAWAY queued with ``code``."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _Stream:
    """One stream we opened, until its END_STREAM or RST_STREAM (or our reset)."""

    __slots__ = ("got", "head", "length", "recv", "responded", "send")

    def __init__(self, send: int, recv: int, head: bool) -> None:
        self.send = send  # our send window
        self.recv = recv  # its receive window left
        self.head = head  # a HEAD request: its response has no body (content-length aside)
        self.responded = False  # its final response's headers came
        self.length = -1  # the response's content-length, -1 if none
        self.got = 0  # the body's length so far


class Connection:
    """One HTTP/2 client connection's state. ``window``: our receive windows (stream and
    connection)."""

    def __init__(self, window: int) -> None:
        self.ours = window  # our receive windows' size
        self.half = window // 2
        self.out: list[bytes] = []
        self.buf = b""  # an incomplete frame, from the last read
        self.encoder = MemoEncoder()
        self.decoder = MemoDecoder()
        self.streams: dict[int, _Stream] = {}
        self.last_id = 0  # the highest stream id we opened
        self.goaway = False
        self.recv = window  # the connection's receive window left
        self.send = _DEFAULT_WINDOW  # the connection's send window
        self.initial = _DEFAULT_WINDOW  # the server's SETTINGS_INITIAL_WINDOW_SIZE
        self.max_outbound_frame_size = _DEFAULT_FRAME
        self.held: tuple[int, int, list[bytes]] | None = None  # HEADERS awaiting CONTINUATION

    # -- sending ------------------------------------------------------------------------
    def start(self) -> None:
        """The preface, our SETTINGS (no push, no stream of the server's, our window) and
        the connection window opened to ours."""
        values = ((ENABLE_PUSH, 0), (MAX_CONCURRENT_STREAMS, 0), (INITIAL_WINDOW_SIZE, self.ours))
        settings = b"".join(_SETTING.pack(k, v) for k, v in values)
        self.out += (PREFACE, frame(_SETTINGS, 0, 0, settings))
        if self.ours > _DEFAULT_WINDOW:
            self.out.append(frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self.ours - _DEFAULT_WINDOW)))

    def data_to_send(self) -> bytes:
        out = self.out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data

    def send_headers(self, sid: int, headers: Any, end_stream: bool) -> None:
        """Open stream ``sid`` with a request's header list (pseudo-headers first)."""
        block = self.encoder.encode(headers)
        flags = _END_STREAM if end_stream else 0
        size = self.max_outbound_frame_size
        if len(block) <= size:
            self.out.append(frame(_HEADERS, flags | _END_HEADERS, sid, block))
        else:
            self.out.append(frame(_HEADERS, flags, sid, block[:size]))
            for i in range(size, len(block), size):
                last = i + size >= len(block)
                self.out.append(
                    frame(_CONTINUATION, _END_HEADERS if last else 0, sid, block[i : i + size])
                )
        self.streams[sid] = _Stream(self.initial, self.ours, headers[0][1] == b"HEAD")
        self.last_id = sid

    def send_data(self, sid: int, data: Any, end_stream: bool) -> None:
        """Body bytes within ``window(sid)`` and ``max_outbound_frame_size``."""
        n = len(data)
        st = self.streams[sid]
        if n > min(st.send, self.send, self.max_outbound_frame_size):
            raise ValueError(f"{n} bytes exceed the window or the frame size")
        st.send -= n
        self.send -= n
        self.out.append(frame(_DATA, _END_STREAM if end_stream else 0, sid, bytes(data)))

    def window(self, sid: int) -> int:
        """How many body bytes stream ``sid`` may send now."""
        st = self.streams.get(sid)
        return 0 if st is None else min(st.send, self.send)

    def reset_stream(self, sid: int, code: int) -> None:
        """RST_STREAM for an open stream (nothing for one closed already)."""
        if self.streams.pop(sid, None) is not None:
            self.out.append(frame(_RST_STREAM, 0, sid, _U32.pack(code)))

    # -- receiving (the hot path) -----------------------------------------------------
    def receive(self, data: bytes) -> list[tuple[int, int, Any]]:
        """The events of the frames completed by ``data``."""
        buf = self.buf + data if self.buf else data
        events: list[tuple[int, int, Any]] = []
        pos, n = 0, len(buf)
        unpack = _HEAD.unpack_from
        while n - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = hi << 16 | lo
            if length > _DEFAULT_FRAME:
                raise self._error(f"a frame of {length} bytes", FRAME_SIZE_ERROR)
            end = pos + 9 + length
            if end > n:
                break
            payload = buf[pos + 9 : end]
            pos = end
            sid &= _ID_MASK  # the reserved bit cleared
            if self.held is not None and ftype != _CONTINUATION:
                raise self._error("a frame between HEADERS and its CONTINUATION")
            if ftype == _DATA:
                self._data(flags, sid, payload, events)
            elif ftype == _HEADERS:
                self._headers_frame(flags, sid, payload, events)
            else:
                self._other(ftype, flags, sid, payload, events)
        self.buf = buf[pos:] if pos < n else b""
        return events

    def _data(self, flags: int, sid: int, payload: bytes, events: list[Any]) -> None:
        if not sid:
            raise self._error("DATA on stream 0")
        flow = len(payload)  # padding counts against the windows too
        if flags & _PADDED:
            payload = self._unpad(payload)
        self.recv -= flow
        if self.recv < 0:
            raise self._error("DATA beyond the connection's window", FLOW_CONTROL_ERROR)
        if self.recv < self.half:  # more than half consumed: open it again, as h2load
            self.out.append(frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self.ours - self.recv)))
            self.recv = self.ours
        st = self.streams.get(sid)
        if st is None:
            self._closed(sid, "DATA")  # one we closed: counted above, dropped
            return
        if not st.responded:
            raise self._error(f"DATA before the response's headers on stream {sid}")
        st.recv -= flow
        if st.recv < 0:
            raise self._error(f"DATA beyond stream {sid}'s window", FLOW_CONTROL_ERROR)
        st.got += len(payload)
        if 0 <= st.length < st.got:
            raise self._error(f"a body longer than its content-length on stream {sid}")
        if payload:
            events.append((DATA_RECEIVED, sid, payload))
        if flags & _END_STREAM:
            self._ended(sid, st, events)
        elif st.recv < self.half:
            self.out.append(frame(_WINDOW_UPDATE, 0, sid, _U32.pack(self.ours - st.recv)))
            st.recv = self.ours

    def _headers_frame(self, flags: int, sid: int, payload: bytes, events: list[Any]) -> None:
        if not sid:
            raise self._error("HEADERS on stream 0")
        if flags & _PADDED:
            payload = self._unpad(payload)
        if flags & _PRIORITY_FLAG:
            if len(payload) < 5:
                raise self._error("HEADERS too short for its priority", FRAME_SIZE_ERROR)
            payload = payload[5:]
        if flags & _END_HEADERS:
            self._headers(flags, sid, payload, events)
        else:
            self.held = (sid, flags, [payload])

    def _headers(self, flags: int, sid: int, block: bytes, events: list[Any]) -> None:
        """A whole header block: a response's, a 1xx's (dropped) or trailers."""
        st = self.streams.get(sid)
        if st is None and (sid > self.last_id or not sid & 1):
            raise self._error(f"the server opened stream {sid}")  # beyond our limit of 0
        try:
            r = self.decoder.decode(block)  # also for a closed stream: the table follows it
        except Exception as exc:  # hpack's errors: HPACKError and its kin
            raise self._error(f"a malformed header block ({exc})", COMPRESSION_ERROR) from None
        if st is None:
            return
        end = flags & _END_STREAM
        if not st.responded:
            if not r.ok or r.length == -2:
                raise self._error(f"invalid response headers on stream {sid}: {r.headers!r}")
            if r.informational:
                if end:
                    raise self._error(f"a 1xx response ending stream {sid}")
                return
            st.responded = True
            st.length = 0 if st.head else r.length
            events.append((RESPONSE_RECEIVED, sid, r.headers))
        elif not end or not r.trailers_ok:
            raise self._error(f"invalid trailers on stream {sid}: {r.headers!r}")
        else:
            events.append((TRAILERS_RECEIVED, sid, r.headers))
        if end:
            self._ended(sid, st, events)

    def _ended(self, sid: int, st: _Stream, events: list[Any]) -> None:
        del self.streams[sid]
        if 0 <= st.length != st.got:
            raise self._error(f"a body of {st.got} bytes, its content-length {st.length}")
        events.append((STREAM_ENDED, sid, None))

    # -- the other frames (off the hot path) ----------------------------------------------
    def _other(self, ftype: int, flags: int, sid: int, payload: bytes, events: list[Any]) -> None:
        if ftype in (_SETTINGS, _PING, _GOAWAY):
            if sid:
                raise self._error(f"frame type {ftype} on stream {sid}")
        elif ftype <= _CONTINUATION and not sid and ftype != _WINDOW_UPDATE:
            raise self._error(f"frame type {ftype} on stream 0")
        if ftype == _SETTINGS:
            self._settings(flags, payload, events)
        elif ftype == _WINDOW_UPDATE:
            self._window_update(sid, payload, events)
        elif ftype == _CONTINUATION:
            held = self.held
            if held is None or held[0] != sid:
                raise self._error(f"CONTINUATION on stream {sid} not after its HEADERS")
            held[2].append(payload)
            if flags & _END_HEADERS:
                self.held = None
                self._headers(held[1], sid, b"".join(held[2]), events)
        elif ftype == _RST_STREAM:
            if len(payload) != 4:
                raise self._error("RST_STREAM not of 4 bytes", FRAME_SIZE_ERROR)
            if self.streams.pop(sid, None) is not None:
                events.append((STREAM_RESET, sid, _U32.unpack(payload)[0]))
            else:
                self._closed(sid, "RST_STREAM")
        elif ftype == _PING:
            if len(payload) != 8:
                raise self._error("PING not of 8 bytes", FRAME_SIZE_ERROR)
            if not flags & _ACK:
                self.out.append(frame(_PING, _ACK, 0, payload))
        elif ftype == _GOAWAY:
            if len(payload) < 8:
                raise self._error("GOAWAY shorter than 8 bytes", FRAME_SIZE_ERROR)
            last, code = _GOAWAY_BODY.unpack_from(payload)
            self.goaway = True
            events.append((CONNECTION_TERMINATED, last & _ID_MASK, code))
        elif ftype == _PUSH_PROMISE:
            raise self._error("PUSH_PROMISE (we disabled push)")
        elif ftype == _PRIORITY and len(payload) != 5:
            raise self._error("PRIORITY not of 5 bytes", FRAME_SIZE_ERROR)
        # PRIORITY otherwise, and frame types we do not know: ignored (RFC 9113 5.5)

    def _settings(self, flags: int, payload: bytes, events: list[Any]) -> None:
        if flags & _ACK:
            if payload:
                raise self._error("a SETTINGS ACK with a payload", FRAME_SIZE_ERROR)
            return
        if len(payload) % 6:
            raise self._error("SETTINGS not a multiple of 6 bytes", FRAME_SIZE_ERROR)
        changed = {}
        for code, value in _SETTING.iter_unpack(payload):
            if code == HEADER_TABLE_SIZE:
                self.encoder.header_table_size = value
            elif code == ENABLE_PUSH and value > 1:
                raise self._error(f"SETTINGS_ENABLE_PUSH {value}")
            elif code == INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise self._error(f"SETTINGS_INITIAL_WINDOW_SIZE {value}", FLOW_CONTROL_ERROR)
                delta, self.initial = value - self.initial, value
                for st in self.streams.values():  # RFC 9113 6.9.2: open streams' windows
                    st.send += delta
                    if st.send > _MAX_WINDOW:
                        raise self._error("a stream's window over 2^31-1", FLOW_CONTROL_ERROR)
            elif code == MAX_FRAME_SIZE:
                if not _DEFAULT_FRAME <= value < 1 << 24:
                    raise self._error(f"SETTINGS_MAX_FRAME_SIZE {value}")
                self.max_outbound_frame_size = value
            changed[code] = value
        self.out.append(frame(_SETTINGS, _ACK, 0))
        events.append((SETTINGS_CHANGED, 0, changed))

    def _window_update(self, sid: int, payload: bytes, events: list[Any]) -> None:
        if len(payload) != 4:
            raise self._error("WINDOW_UPDATE not of 4 bytes", FRAME_SIZE_ERROR)
        inc = _U32.unpack(payload)[0] & _ID_MASK  # 31 bits, as a stream id
        if not inc:
            raise self._error(f"a WINDOW_UPDATE of 0 on stream {sid}")
        if not sid:
            self.send += inc
            if self.send > _MAX_WINDOW:
                raise self._error("the connection's window over 2^31-1", FLOW_CONTROL_ERROR)
        else:
            st = self.streams.get(sid)
            if st is None:
                self._closed(sid, "WINDOW_UPDATE")
                return
            st.send += inc
            if st.send > _MAX_WINDOW:
                raise self._error(f"stream {sid}'s window over 2^31-1", FLOW_CONTROL_ERROR)
        events.append((WINDOW_UPDATED, sid, None))

    def _closed(self, sid: int, what: str) -> None:
        """A frame on a stream that is not open: dropped if we opened it once."""
        if sid > self.last_id or not sid & 1:
            raise self._error(f"{what} on stream {sid}, which we never opened")

    def _unpad(self, payload: bytes) -> bytes:
        if not payload or payload[0] >= len(payload):
            raise self._error("padding as long as the frame")
        return payload[1 : len(payload) - payload[0]]

    def _error(self, message: str, code: int = PROTOCOL_ERROR) -> ProtocolError:
        """A connection error: our GOAWAY queued (the server opened no stream: last 0)."""
        self.out.append(frame(_GOAWAY, 0, 0, _GOAWAY_BODY.pack(0, code)))
        return ProtocolError(message, code)
