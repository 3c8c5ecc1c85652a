"""The pure-Python HTTP/1.x response parser (``--pure``, ``--no-httptools``, HEAD).

:class:`PyResponseParser` has httptools' callback interface and follows llhttp's
(httptools') rules where they differ from a lenient reading of RFC 9112 (which
versions, duplicate Content-Length, control bytes in header values, whitespace in chunk
sizes, ...), so that both engines give the same verdict on every response.  It handles
Content-Length, chunked bodies, bodies delimited by EOF, bodies that must be empty
(1xx/204/304, HEAD) and ``Connection: close``.
"""

from __future__ import annotations

import re
from typing import Any

# The largest response head (status line + headers + the blank line) either engine
# accepts: http_parser's HTTP_MAX_HEADER_SIZE, which wrk uses.  llhttp has no limit of
# its own, so Conn enforces this one for both engines (and PyResponseParser applies the
# same rule when used alone).
MAX_HEAD = 80 * 1024


class ParserError(Exception):
    """Malformed HTTP response (pure-Python parser)."""


# llhttp accepts exactly these versions (0.9, 2.0: one response per connection).
_STATUS_RE = re.compile(rb"HTTP/(0\.9|1\.[01]|2\.0) ([0-9]{3})(?: [^\r\n]*)?")
_TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]+")
_TOK = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# Header values: HTAB, visible ASCII, space and obs-text; other control bytes (NUL,
# DEL, a lone CR or LF) are rejected, as llhttp does.
_VALUE = rb"[\t\x20-\x7e\x80-\xff]*"
_HEADERS_RE = re.compile(rb"(?:\r\n" + _TOK + rb":" + _VALUE + rb")*\r\n")
_HEADER_RE = re.compile(rb"\r\n(" + _TOK + rb"):([^\r\n]*)")
_FRAMING_RE = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection):([^\r\n]*)", re.IGNORECASE
)
_LEADING_CRLF_RE = re.compile(rb"[\r\n]*")  # llhttp skips these before a status line
_BARE_LF_RE = re.compile(rb"(?<!\r)\n")
_U64 = (1 << 64) - 1  # llhttp's Content-Length and chunk-size range

_S_HEAD, _S_LENGTH, _S_CHUNK_SIZE, _S_CHUNK_DATA, _S_CHUNK_CRLF, _S_TRAILER, _S_EOF = range(7)


class PyResponseParser:
    """Incremental HTTP/1.x response parser with httptools' callback interface.

    Calls ``on_message_begin()``, ``on_header(name, value)``, ``on_headers_complete()``,
    ``on_body(bytes)`` and ``on_message_complete()`` on ``protocol`` (those it has).
    ``on_message_begin`` comes with the first byte of a response (llhttp does not count
    CR/LF skipped before a status line; this parser does: a difference no verdict sees).
    """

    __slots__ = (
        "_begin_cb",
        "_begun",
        "_body_cb",
        "_buf",
        "_complete_cb",
        "_header_cb",
        "_headers_cb",
        "_keep_alive",
        "_remaining",
        "_state",
        "_status",
        "skip_body",
    )

    def __init__(self, protocol: Any) -> None:
        self._begin_cb = getattr(protocol, "on_message_begin", None)
        self._begun = False  # on_message_begin called for the message being parsed
        self._header_cb = getattr(protocol, "on_header", None)
        self._headers_cb = getattr(protocol, "on_headers_complete", None)
        self._body_cb = getattr(protocol, "on_body", None)
        self._complete_cb = getattr(protocol, "on_message_complete", None)
        self._buf = b""
        self._state = _S_HEAD
        self._status = 0
        self._keep_alive = True
        self._remaining = 0
        self.skip_body = False  # set for responses to HEAD

    def get_status_code(self) -> int:
        return self._status

    def should_keep_alive(self) -> bool:
        return self._keep_alive

    def feed_eof(self) -> bool:
        """Signal EOF; True if it completed a message delimited by EOF."""
        if self._state == _S_EOF:
            self._state = _S_HEAD
            self._begun = False
            self._keep_alive = False
            if self._complete_cb is not None:
                self._complete_cb()
            return True
        return False

    def feed_data(self, data: bytes) -> None:
        # Works on one immutable bytes object with an offset (no bytearray churn).
        if self._buf:
            data = self._buf + data
        n = len(data)
        pos = 0
        try:
            while pos < n:
                st = self._state
                if st == _S_HEAD:
                    if self._begin_cb is not None and not self._begun:
                        self._begun = True
                        self._begin_cb()
                    end = data.find(b"\r\n\r\n", pos)
                    if end < 0:
                        self._check_partial_head(data, pos)
                        break
                    if end + 4 - pos > MAX_HEAD:
                        raise ParserError("response head too large")
                    try:
                        self._parse_head(data[pos:end])
                    except _BadStatusLine:
                        # Off the normal path: CR/LF before a status line are skipped.
                        skip = _LEADING_CRLF_RE.match(data, pos).end()  # type: ignore[union-attr]
                        if skip == pos:
                            raise
                        pos = skip
                        continue
                    pos = end + 4
                elif st == _S_LENGTH:
                    take = min(self._remaining, n - pos)
                    chunk = data[pos : pos + take]
                    pos += take
                    self._remaining -= take
                    if self._body_cb is not None:
                        self._body_cb(chunk)
                    if self._remaining == 0:
                        self._complete()
                elif st == _S_CHUNK_SIZE:
                    end = data.find(b"\r\n", pos)
                    if end < 0:
                        break  # llhttp bounds neither chunk lines nor trailers: neither do we
                    # no whitespace around the size (llhttp rejects "2 " and "2 ;x")
                    line = data[pos:end].split(b";", 1)[0]
                    pos = end + 2
                    if not _HEX_RE.fullmatch(line):
                        raise ParserError("invalid chunk size")
                    size = int(line, 16)
                    if size > _U64:
                        raise ParserError("chunk size overflow")
                    if size == 0:
                        self._state = _S_TRAILER
                    else:
                        self._remaining = size
                        self._state = _S_CHUNK_DATA
                elif st == _S_CHUNK_DATA:
                    take = min(self._remaining, n - pos)
                    chunk = data[pos : pos + take]
                    pos += take
                    self._remaining -= take
                    if self._body_cb is not None:
                        self._body_cb(chunk)
                    if self._remaining == 0:
                        self._state = _S_CHUNK_CRLF
                elif st == _S_CHUNK_CRLF:
                    if n - pos < 2:
                        break
                    if data[pos : pos + 2] != b"\r\n":
                        raise ParserError("missing CRLF after chunk")
                    pos += 2
                    self._state = _S_CHUNK_SIZE
                elif st == _S_TRAILER:
                    end = data.find(b"\r\n", pos)
                    if end < 0:
                        break
                    line = data[pos:end]
                    pos = end + 2
                    if not line:
                        self._complete()
                    elif self._header_cb is not None:  # trailers, reported like httptools
                        name, sep, value = line.partition(b":")
                        if not sep or not _TOKEN_RE.fullmatch(name):
                            raise ParserError("invalid trailer line")
                        self._header_cb(name, value.strip(b" \t"))
                else:  # _S_EOF: everything until EOF is body
                    chunk = data[pos:]
                    pos = n
                    if self._body_cb is not None:
                        self._body_cb(chunk)
        finally:
            self._buf = data[pos:] if pos < n else b""

    def _check_partial_head(self, data: bytes, pos: int) -> None:
        """The head starting at ``pos`` is incomplete: fail early if it can never be
        accepted (too long, not HTTP, bare-LF line ends), as llhttp would."""
        if len(data) - pos >= MAX_HEAD:  # even the shortest ending makes it too long
            raise ParserError("response head too large")
        start = _LEADING_CRLF_RE.match(data, pos).end()  # type: ignore[union-attr]
        if not b"HTTP/".startswith(data[start : start + 5]) and not data.startswith(
            b"HTTP/", start
        ):
            raise ParserError("invalid status line")  # at its first wrong byte, as llhttp
        if _BARE_LF_RE.search(data, start):
            raise ParserError("bare LF line ending")

    def _parse_head(self, head: bytes) -> None:
        sl = head.find(b"\r\n")
        m = _STATUS_RE.fullmatch(head if sl < 0 else head[:sl])
        if m is None:
            raise _BadStatusLine("invalid status line")
        status = int(m.group(2))
        self._status = status
        http11 = m.group(1) == b"1.1"
        length: int | None = None
        chunked = False
        te = False
        close = keep = False  # Connection tokens seen, over all Connection headers
        if sl >= 0:
            block = head[sl:] + b"\r\n"  # "\r\nName: v\r\nName: v\r\n"
            if not _HEADERS_RE.fullmatch(block):
                raise ParserError("invalid header line")
            for name, value in _FRAMING_RE.findall(block):
                lname = name.lower()
                value = value.strip(b" \t")
                if lname == b"content-length":
                    # llhttp: digits only, at most one header, within 64 bits
                    if not value.isdigit() or length is not None:
                        raise ParserError("invalid or duplicate Content-Length")
                    length = int(value)
                    if length > _U64:
                        raise ParserError("Content-Length overflow")
                elif lname == b"transfer-encoding":
                    te = True
                    chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
                else:  # connection
                    toks = [t.strip() for t in value.lower().split(b",")]
                    close = close or b"close" in toks
                    keep = keep or b"keep-alive" in toks
            if te and length is not None:
                raise ParserError("both Content-Length and Transfer-Encoding")
            hcb = self._header_cb
            if hcb is not None:
                for name, value in _HEADER_RE.findall(block):
                    hcb(name, value.strip(b" \t"))
        # llhttp_should_keep_alive: HTTP/1.1 unless "close"; others only on "keep-alive"
        self._keep_alive = not close if http11 else keep
        if self._headers_cb is not None:
            self._headers_cb()
        if self.skip_body or 100 <= status < 200 or status in (204, 304):
            self._complete()
        elif chunked:
            self._state = _S_CHUNK_SIZE
        elif length is not None:
            if length == 0:
                self._complete()
            else:
                self._remaining = length
                self._state = _S_LENGTH
        else:
            self._keep_alive = False
            self._state = _S_EOF

    def _complete(self) -> None:
        self._state = _S_HEAD
        self._begun = False
        if self._complete_cb is not None:
            self._complete_cb()


class _BadStatusLine(ParserError):
    pass


def head_is_eof_delimited(start: bytes | None) -> bool:
    """For httptools (which cannot be told about EOF): is the response that begins with
    ``start`` (at least its whole head) delimited by EOF?  Decided by the pure parser's
    own framing rules, so that both engines end such a response the same way."""
    if not start:
        return False
    p = PyResponseParser(None)
    try:
        p.feed_data(start)
    except ParserError:
        return False
    return p._state == _S_EOF
