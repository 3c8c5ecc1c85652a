"""HPACK for the HTTP/2 engines, with memos: a block is encoded, and a response's block
decoded and validated, once per state of the dynamic table.

HPACK's output depends only on its input and on the dynamic table. A request built once
(:class:`~loadgen.request.H2Request`) therefore encodes to the same block while the
encoder's table is as it was (:class:`MemoEncoder`), and a server answering the same
request the same way sends the same block, which decodes to the same header list while
the decoder's table is as it was (:class:`MemoDecoder`). Each memo keeps only blocks that
left its table unchanged, and is emptied when a block changes the table (an insertion, an
eviction, a size update): the same bytes may then mean other headers.

A server that indexes its answer's fields anew each time (nginx: ``server``, ``date``,
``content-type``, ``content-length``, each a literal with incremental indexing) changes
the table with every block, so no block would be seen twice in one state. Such a block
refers to nothing in the dynamic table: it decodes to the same list whatever the table
holds, and inserts the same fields. The decoder keeps those apart, with the fields they
insert, and replays the insertions on the table when the block comes again.

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
    """hpack's decoder, returning the :class:`Response` of a block it decoded before: a
    block that refers to nothing in the dynamic table whatever the table holds (its
    insertions replayed), any other while the table is as it was. Raises hpack's errors
    (HPACKError) on a malformed block (a COMPRESSION_ERROR)."""

    def __init__(self) -> None:
        self.decoder = _hpack().Decoder()
        self.blocks: dict[bytes, Response] = {}  # valid in self.state only
        self.state: Any = None
        self.standalone: dict[bytes, tuple[Response, Headers]] = {}  # always valid

    def decode(self, block: bytes) -> Response:
        table = self.decoder.header_table
        known = self.standalone.get(block)
        if known is not None:
            response, inserted = known
            if inserted:  # what decoding it again would do to the table
                for name, value in inserted:
                    table.add(name, value)
                self.blocks.clear()
                self.state = _table_state(table)
            return response
        state = _table_state(table)
        if state == self.state:
            memo = self.blocks.get(block)
            if memo is not None:
                return memo
        else:
            self.blocks.clear()
            self.state = state
        response = Response(tuple(self.decoder.decode(block, raw=True)))
        fields = standalone_fields(block)
        headers = response.headers
        if fields is not None and len(fields) == len(headers) and len(self.standalone) < _MEMO_SIZE:
            pairs = zip(headers, fields, strict=True)
            inserted = tuple((h[0], h[1]) for h, insert in pairs if insert)
            self.standalone[block] = (response, inserted)
        if _table_state(table) != state:  # the block changed the table: not kept
            self.blocks.clear()
            self.state = _table_state(table)
        elif len(self.blocks) < _MEMO_SIZE:
            self.blocks[block] = response
        return response


_STATIC = 61  # entries in HPACK's static table (RFC 7541, appendix A)


def standalone_fields(block: bytes) -> list[bool] | None:
    """For a header block that refers to nothing in the dynamic table (every index, of a
    field or of a name, in the static table) and updates no table size: whether each of
    its fields is inserted into the table (a literal with incremental indexing). None for
    any other block, or one cut short (hpack then says what is wrong with it)."""
    fields: list[bool] = []
    pos, n = 0, len(block)
    try:
        while pos < n:
            first = block[pos]
            if first & 0x80:  # an indexed field
                index, pos = _integer(block, pos, 7)
                if not 0 < index <= _STATIC:
                    return None
                fields.append(False)
                continue
            if first & 0x40:  # a literal with incremental indexing
                prefix, insert = 6, True
            elif first & 0x20:  # a dynamic table size update
                return None
            else:  # a literal without indexing, or never indexed
                prefix, insert = 4, False
            index, pos = _integer(block, pos, prefix)
            if index > _STATIC:
                return None
            if not index:  # the name is a literal too
                pos = _string_end(block, pos)
            pos = _string_end(block, pos)
            if pos > n:
                return None
            fields.append(insert)
    except IndexError:
        return None
    return fields


def _integer(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """An HPACK integer with a ``prefix``-bit prefix at ``pos``: (value, next position)."""
    mask = (1 << prefix) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _string_end(block: bytes, pos: int) -> int:
    """Where the HPACK string at ``pos`` (Huffman-coded or not) ends."""
    length, pos = _integer(block, pos, 7)
    return pos + length
