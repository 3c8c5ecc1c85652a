"""HPACK for the HTTP/2 engines, with memos: a block is encoded, and a response's block
decoded and validated, once per state of the dynamic table.

HPACK's output depends only on its input and on the dynamic table. A request built once
(:class:`~loadgen.request.H2Request`) therefore encodes to the same block while the
encoder's table is as it was (:class:`MemoEncoder`), and a server answering the same
request the same way sends the same block, which decodes to the same header list while
the decoder's table is as it was (:class:`MemoDecoder`). Each memo keeps only blocks that
left its table unchanged, and is emptied when a block changes the table (an insertion, an
eviction, a size update): the same bytes may then mean other headers.

The decoded list is validated once, with the block (RFC 9113 8.2 and 8.3, as h2 checks a
response): its verdict is memoized beside it. The codec is python-hyper's ``hpack`` (a
dependency of ``h2``: loadgen's h2 extra), imported when the first encoder or decoder is
made, so that an HTTP/1.1 run never imports it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MemoDecoder", "MemoEncoder", "Response", "validate"]

Headers = tuple[tuple[bytes, bytes], ...]
_MEMO_SIZE = 64  # distinct blocks kept per table state (a run sends and gets a few)

# RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2
_CONNECTION_FIELDS = frozenset(
    (b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade")
)
_NAME_OK = frozenset(range(0x21, 0x7F)) - frozenset(range(0x41, 0x5B)) - {0x3A}
_VALUE_BAD = frozenset((0, 0x0A, 0x0D))


def _hpack() -> Any:
    import hpack  # an optional dependency (loadgen's h2 extra): only a --h2 run imports it

    return hpack


def _table_state(table: Any) -> tuple[int, int, int, bool]:
    """What changes whenever hpack's dynamic table does: an insertion leaves a new tuple
    first in the deque (made while the entry it may evict still lives, so never at its
    address), an eviction shortens it, a resize changes maxsize or sets ``resized``."""
    d = table.dynamic_entries
    return (len(d), id(d[0]) if d else 0, table.maxsize, table.resized)


class MemoEncoder:
    """hpack's encoder, reusing the block of a header list it encoded before while its
    dynamic table is as it was. (h2 hands it a fresh list each time: keyed by content.)"""

    def __init__(self) -> None:
        self.encoder = _hpack().Encoder()
        self.blocks: dict[Headers, bytes] = {}
        self.state: Any = None

    @property
    def header_table_size(self) -> int:
        return int(self.encoder.header_table_size)

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:  # the peer's SETTINGS_HEADER_TABLE_SIZE
        self.encoder.header_table_size = value

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self.encoder.header_table
        state = _table_state(table)
        if state != self.state:
            self.blocks.clear()
            self.state = state
        key = tuple(headers)
        block = self.blocks.get(key)
        if block is None:
            block = self.encoder.encode(key, huffman)
            if _table_state(table) != state:
                self.blocks.clear()
                self.state = _table_state(table)
            elif len(self.blocks) < _MEMO_SIZE:
                self.blocks[key] = block
        return block


class Response:
    """A decoded header block and the verdicts on it, computed once per distinct block:
    ``headers`` (a tuple: shared by every response that sent this block, never changed),
    ``ok`` (valid as a response's header block), ``trailers_ok`` (valid as trailers),
    ``informational`` (a 1xx response), ``length`` (its content-length, -1 if none; -2 if
    malformed or conflicting, which h2 refuses too)."""

    __slots__ = ("headers", "informational", "length", "ok", "trailers_ok")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self.ok, self.trailers_ok = validate(headers)
        self.informational = self.ok and headers[0][1][:1] == b"1"
        self.length = -1
        for k, v in headers:
            if k == b"content-length":
                n = int(v) if v.isdigit() else -2
                self.length = n if self.length in (-1, n) else -2


def validate(headers: Headers) -> tuple[bool, bool]:
    """(valid as a response's header block, valid as trailers), as h2 validates inbound
    headers: names lowercase without separators or controls, values without NUL, CR, LF
    or surrounding whitespace, no connection-specific field, TE only ``trailers``; a
    response's pseudo-headers come first and are exactly one ``:status``; trailers have
    none."""
    pseudo: list[bytes] = []
    regular = False
    for k, v in headers:
        if not k or any(c not in _NAME_OK for c in k[k[0] == 0x3A :]):
            return False, False
        if v and (v[0] in (0x20, 0x09) or v[-1] in (0x20, 0x09) or _VALUE_BAD & set(v)):
            return False, False
        if k in _CONNECTION_FIELDS or (k == b"te" and v.lower() != b"trailers"):
            return False, False
        if k[0] == 0x3A:
            if regular:
                return False, False
            pseudo.append(k)
        else:
            regular = True
    return pseudo == [b":status"], not pseudo


class MemoDecoder:
    """hpack's decoder, returning the :class:`Response` of a block it decoded before
    while its dynamic table is as it was. Raises hpack's errors (HPACKError) on a
    malformed block (a COMPRESSION_ERROR)."""

    def __init__(self) -> None:
        self.decoder = _hpack().Decoder()
        self.blocks: dict[bytes, Response] = {}
        self.state: Any = None

    def decode(self, block: bytes) -> Response:
        table = self.decoder.header_table
        state = _table_state(table)
        if state == self.state:
            memo = self.blocks.get(block)
            if memo is not None:
                return memo
        else:
            self.blocks.clear()
            self.state = state
        response = Response(tuple(self.decoder.decode(block, raw=True)))
        if _table_state(table) != state:  # the block changed the table: not kept
            self.blocks.clear()
            self.state = _table_state(table)
        elif len(self.blocks) < _MEMO_SIZE:
            self.blocks[block] = response
        return response
