"""The HTTP/1.1 client connection: an ``asyncio.Protocol`` with a tiny hot path.

One :class:`Conn` object is one client *slot*: it is reused across the TCP
connections it opens (keep-alive; reconnect after ``Connection: close``, a reset or a
timeout), so drivers keep plain references to their slots.  A driver (the
"owner") calls :meth:`Conn.request` with preformatted request bytes and gets exactly
one callback per request: ``owner.on_response(conn)`` or ``owner.on_error(conn,
kind)``.  Timestamps are ``time.perf_counter_ns`` integers kept on the object; the
owner reads them and appends them to flat lists.

Responses are parsed by ``httptools`` when available (and not disabled), else by
:class:`~loadgen.httpparse.PyResponseParser` (its own module), a small incremental
parser with the same callback interface.  Redirects are never followed (a 3xx is just
a response).

The two engines must give the same verdict on every response: the limits that llhttp
does not have are enforced by :class:`Conn` for both engines: a response head (status
line, headers and the blank line) longer than :data:`MAX_HEAD` bytes is a
``bad_response``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .dial import Dialer, failure_kind
from .errorkinds import ABORTED, BAD_RESPONSE, READ_TIMEOUT, RESET
from .httpparse import MAX_HEAD, ParserError, PyResponseParser, head_is_eof_delimited

__all__ = ["ABORTED", "HAVE_HTTPTOOLS", "READ_TIMEOUT", "Conn", "FullConn"]

_pc = time.perf_counter_ns


try:  # pragma: no cover - depends on the environment
    import httptools as _httptools
    from httptools import HttpParserCallbackError as _HtCallbackError
    from httptools import HttpParserError as _HtParseError
    from httptools import HttpParserUpgrade as _HtUpgrade

    # HttpParserUpgrade (raised after a 101) is not an HttpParserError subclass.
    _HtError: tuple[type[Exception], ...] = (_HtParseError, _HtUpgrade)
    HAVE_HTTPTOOLS = True
except ImportError:  # pragma: no cover
    _httptools = None  # type: ignore[assignment]
    HAVE_HTTPTOOLS = False

    class _HtCallbackError(Exception):  # type: ignore[no-redef]
        pass

    _HtError = ()

_PARSE_ERRORS: tuple[type[Exception], ...] = (*_HtError, ParserError)


# --------------------------------------------------------------------------------------
# The connection slot
# --------------------------------------------------------------------------------------
class Conn(asyncio.Protocol):
    """One client slot.  Fast mode: status and body length only (no header callbacks).

    Attributes the owner reads after ``on_response``: ``status``, ``nbody``,
    ``t_start`` (request started: before connect if it had to connect), ``t_write``
    (before the write), ``t_written`` (after), ``t_first`` (first response byte),
    ``now`` (response complete), ``connect_ns`` (connect time of this request, 0 if
    it reused a connection), ``body`` (bytes, only if ``keep_body`` was set),
    ``headers`` (list of (name, value) bytes, :class:`FullConn` only).
    The owner may set ``tag`` and ``t_sched`` freely.
    """

    __slots__ = (
        "_connecting",
        "_factory",
        "_head",
        "_pending",
        "body_parts",
        "busy",
        "closing",
        "connect_ns",
        "dialer",
        "first_chunk",
        "keep_body",
        "keepalive",
        "loop",
        "n_connects",
        "nbody",
        "now",
        "owner",
        "parser",
        "status",
        "t_first",
        "t_sched",
        "t_start",
        "t_write",
        "t_written",
        "tag",
        "transport",
    )

    def __init__(
        self,
        owner: Any,
        loop: asyncio.AbstractEventLoop,
        dialer: Dialer,
        use_httptools: bool = True,
    ) -> None:
        self.owner = owner
        self.loop = loop
        self.dialer = dialer  # how to reach the target (TCP, then TLS for https)
        self._factory: Callable[[Any], Any] = (
            _httptools.HttpResponseParser
            if (use_httptools and HAVE_HTTPTOOLS)
            else PyResponseParser
        )
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.busy = False
        self.closing = False
        self._connecting = False
        self._pending: bytes | None = None
        self._head = False
        self.keep_body = False
        self.keepalive = True  # False: close after every response (--disable-keepalive)
        self.body_parts: list[bytes] = []
        self.status = 0
        self.nbody = 0
        self.t_start = self.t_write = self.t_written = self.t_first = self.now = 0
        self.t_sched = 0
        self.connect_ns = 0
        self.first_chunk: bytes | None = None
        self.n_connects = 0
        self.tag: Any = None

    # -- owner API ---------------------------------------------------------------------
    def request(self, data: bytes, head: bool = False) -> None:
        """Send one request (connecting first if needed).  Exactly one of
        ``owner.on_response(self)`` / ``owner.on_error(self, kind)`` follows."""
        t = _pc()
        self.busy = True
        self.t_start = t
        self.t_first = 0
        self.nbody = 0
        self.status = 0
        self.connect_ns = 0
        self.first_chunk = None
        if self.body_parts:
            self.body_parts = []
        if head != self._head:
            self._set_head(head)
        tr = self.transport
        if tr is not None and not self.closing:
            self.t_write = t
            tr.write(data)
            self.t_written = _pc()
        else:
            self._pending = data
            if not self.closing and not self._connecting:
                self._start_connect()

    def abort(self, kind: str) -> None:
        """Fail the in-flight request with ``kind`` (e.g. read_timeout) and drop the
        connection."""
        if not self.busy:
            return
        self.busy = False
        self._pending = None
        self._drop()
        self.owner.on_error(self, kind)

    def close(self) -> None:
        """Close without reporting anything (end of run)."""
        self.busy = False
        self._pending = None
        self._drop()

    @property
    def body(self) -> bytes:
        return b"".join(self.body_parts)

    async def connect(self) -> None:
        """Open the connection ahead of time (raises OSError: see Dialer.open)."""
        self._connecting = True
        try:
            await self.dialer.open(self.loop, self)
        finally:
            self._connecting = False

    # -- internals ---------------------------------------------------------------------
    def _set_head(self, head: bool) -> None:
        # httptools cannot skip the body of a HEAD response: use the pure parser then.
        self._head = head
        if self.transport is not None:
            self.parser = self._make_parser()

    def _make_parser(self) -> Any:
        if self._head:
            p = PyResponseParser(self)
            p.skip_body = True
            return p
        return self._factory(self)

    def _drop(self) -> None:
        tr = self.transport
        if tr is not None and not self.closing:
            self.closing = True
            tr.abort()

    def _start_connect(self) -> None:
        self._connecting = True
        self.loop.create_task(self._connect_then_send())

    async def _connect_then_send(self) -> None:
        try:
            await self.connect()
        except OSError as exc:  # refused, timed out, TLS: by kind
            self._connect_failed(failure_kind(exc))
            return
        data = self._pending
        if data is None or not self.busy:  # aborted or closed while connecting
            if not self.busy:
                self._drop()
            return
        self._pending = None
        t = _pc()
        self.connect_ns = t - self.t_start
        self.t_write = t
        self.transport.write(data)  # type: ignore[union-attr]
        self.t_written = _pc()

    def _connect_failed(self, kind: str) -> None:
        self._pending = None
        if self.busy:
            self.busy = False
            self.owner.on_error(self, kind)

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.closing = False
        self.n_connects += 1
        self.parser = self._make_parser()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = False
        if self.busy and self._pending is None:
            # The response was not complete when the connection went away.
            p = self.parser
            if self.t_first:
                if isinstance(p, PyResponseParser):
                    if p.feed_eof():
                        return
                elif p.get_status_code() and head_is_eof_delimited(self.first_chunk):
                    self.now = _pc()
                    self.on_message_complete()
                    return
            self.busy = False
            self.owner.on_error(self, RESET)
        elif self._pending is not None and not self._connecting and self.busy:
            self._start_connect()  # a request was waiting for this close

    def eof_received(self) -> bool | None:
        return None  # close our side too -> connection_lost

    def data_received(self, data: bytes) -> None:
        now = _pc()
        self.now = now
        if not self.busy:
            # Unsolicited bytes between requests: the connection is unusable.
            self._drop()
            return
        if not self.t_first:
            self.t_first = now
            self.first_chunk = data
            # One comparison per response: a read this long may hold a head over the
            # limit; the head is looked for only then.
            if len(data) > MAX_HEAD and self._head_too_long(data):
                return
        elif self._later_read(data):
            return
        try:
            self.parser.feed_data(data)
        except _HtCallbackError as e:  # a bug in our own callback: surface it
            raise (e.__context__ or e) from None
        except _PARSE_ERRORS:
            self._bad_response()

    # -- response checks off the hot path ------------------------------------------------
    def _later_read(self, data: bytes) -> bool:
        """A later read of the same response: until ``first_chunk`` holds the whole
        head, append to it (so the head limit and EOF framing see all of the head).
        True if the request failed."""
        start = self.first_chunk or b""
        if start.find(b"\r\n\r\n", 0, MAX_HEAD) >= 0:
            return False  # the head was complete (and checked) before this read
        start = self.first_chunk = start + data
        return self._head_too_long(start)

    def _head_too_long(self, start: bytes) -> bool:
        """Fail the request if the head at the start of ``start`` exceeds MAX_HEAD
        (found, longer; or not found within MAX_HEAD bytes).  Same rule as the pure
        parser's, applied here for both engines (llhttp has no limit)."""
        end = start.find(b"\r\n\r\n", 0, MAX_HEAD)
        if end < 0 and len(start) < MAX_HEAD:
            return False  # incomplete and still within the limit
        if 0 <= end <= MAX_HEAD - 4:
            return False
        self._bad_response()
        return True

    def _bad_response(self) -> None:
        # Bytes that fail to parse after the connection was dropped (or closed after a
        # "Connection: close" response) cannot be the answer to a request waiting to be
        # sent on the next connection: only the request on this connection fails.
        if self.busy and not self.closing:
            self.busy = False
            self._drop()
            self.owner.on_error(self, BAD_RESPONSE)
        else:
            self._drop()

    def _interim(self, status: int) -> bool:
        """A message with status < 200 completed; True if it was not the response.

        1xx responses (100 Continue, 103 Early Hints) are interim: the final response
        follows on the same connection.  101 switches protocols, which loadgen never
        asks for: the connection is no longer HTTP, so the request is a bad_response.
        Statuses below 100 are final responses (llhttp accepts any three digits)."""
        if status < 100:
            return False
        if status == 101:
            self._bad_response()
        return True

    # -- parser callbacks (hot path) ---------------------------------------------------------
    # (no on_headers_complete: the status is read from the parser at message complete)
    def on_body(self, body: bytes) -> None:
        self.nbody += len(body)
        if self.keep_body:
            self.body_parts.append(body)

    def on_message_complete(self) -> None:
        if not self.busy:
            return
        st = self.parser.get_status_code()
        if st < 200 and self._interim(st):
            return
        self.busy = False
        self.status = st
        if (
            not self.keepalive or not self.parser.should_keep_alive()
        ) and self.transport is not None:
            self.closing = True
            self.transport.close()
        self.owner.on_response(self)


class FullConn(Conn):
    """A slot that also collects response headers (scenarios: cookies, Location)."""

    __slots__ = ("headers",)

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_body = True

    def request(self, data: bytes, head: bool = False) -> None:
        self.headers = []
        super().request(data, head)

    def _interim(self, status: int) -> bool:
        interim = super()._interim(status)
        if interim:
            self.headers = []  # the final response's headers only
        return interim

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp keeps trailing whitespace of a value, the pure parser strips it
        self.headers.append((name, value.rstrip(b" \t")))
