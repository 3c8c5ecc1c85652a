"""HPACK for the HTTP/2 engines, with memos: a block is encoded, and a response's block
decoded and validated, once per state of the dynamic table.

HPACK's output depends only on its input and on the dynamic table. A request built once
(:class:`~loadgen.request.H2Request`) therefore encodes to the same block while the
encoder's table is as it was (:class:`MemoEncoder`), and a server answering the same
request the same way sends the same block, which decodes to the same header list while
the decoder's table is as it was (:class:`MemoDecoder`). Whether a block changed the table
(an insertion, a size update) is read from the block itself (:func:`scan`), never guessed
from the table: each memo keeps only blocks that left its table unchanged, and is emptied
when one changes it (the same bytes may then mean other headers).

A server that indexes its answer's fields anew each time (nginx: ``server``, ``date``,
``content-type``, ``content-length``, each a literal with incremental indexing) changes
the table with every block, so no block would be seen twice in one state. Such a block
refers to nothing in the dynamic table: it decodes to the same list whatever the table
holds, and inserts the same fields. The decoder keeps those apart, with the fields they
insert, and owes the table those insertions: they are applied only when a block that
needs the table comes (never, from nginx), the ones that table would have evicted
already dropped, so what is owed stays within one table's size.

The decoded list is validated once, with the block (RFC 9113 8.2 and 8.3, as h2 checks a
response): its verdict is memoized beside it. The codec is python-hyper's ``hpack`` (a
dependency of ``h2``: loadgen's h2 extra), imported when the first encoder or decoder is
made, so that an HTTP/1.1 run never imports it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

__all__ = ["MemoDecoder", "MemoEncoder", "Response", "Scan", "scan", "validate"]

Headers = tuple[tuple[bytes, bytes], ...]
_MEMO_SIZE = 64  # distinct blocks kept (a run sends and gets a few)

# RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2
_CONNECTION_FIELDS = frozenset(
    (b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade")
)
_NAME_OK = frozenset(range(0x21, 0x7F)) - frozenset(range(0x41, 0x5B)) - {0x3A}
_VALUE_BAD = frozenset((0, 0x0A, 0x0D))


def _hpack() -> Any:
    import hpack  # an optional dependency (loadgen's h2 extra): only a --h2 run imports it

    return hpack


class MemoEncoder:
    """hpack's encoder, reusing the block of a header list it encoded before while its
    dynamic table is as it was. (h2 hands it a fresh list each time: keyed by content.)"""

    def __init__(self) -> None:
        self.encoder = _hpack().Encoder()
        self.blocks: dict[Headers, bytes] = {}  # valid while the table is unchanged

    @property
    def header_table_size(self) -> int:
        return int(self.encoder.header_table_size)

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:  # the peer's SETTINGS_HEADER_TABLE_SIZE
        self.encoder.header_table_size = value
        self.blocks.clear()  # the next block starts with a size update

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        key = tuple(headers)
        block = self.blocks.get(key)
        if block is None:
            block = self.encoder.encode(key, huffman)
            read = scan(block)
            if read is None or read.changes:  # the same list may now encode otherwise
                self.blocks.clear()
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
    insertions owed to the table), any other while the table is as it was. Raises
    hpack's errors (HPACKError) on a malformed block (a COMPRESSION_ERROR)."""

    def __init__(self) -> None:
        self.decoder = _hpack().Decoder()
        self.table = self.decoder.header_table
        self.blocks: dict[bytes, Response] = {}  # valid while the table is unchanged
        self.standalone: dict[bytes, tuple[Response, Entries]] = {}  # valid always
        self.owed: deque[Entry] = deque()  # insertions not yet applied to the table
        self.owed_size = 0

    def decode(self, block: bytes) -> Response:
        known = self.standalone.get(block)
        if known is not None:
            response, inserted = known
            if inserted:
                self._owe(inserted)
            return response
        memo = self.blocks.get(block)
        if memo is not None:
            return memo
        self.settle()
        response = Response(tuple(self.decoder.decode(block, raw=True)))
        read = scan(block)
        if read is None or len(read.inserted) != len(response.headers):
            self.blocks.clear()  # hpack read it otherwise: nothing is assumed
            return response
        if read.changes:
            self.blocks.clear()
        if not read.dynamic:
            if len(self.standalone) < _MEMO_SIZE:
                pairs = zip(response.headers, read.inserted, strict=True)
                entries = tuple((h[0], h[1], 32 + len(h[0]) + len(h[1])) for h, i in pairs if i)
                self.standalone[block] = (response, entries)
        elif not read.changes and len(self.blocks) < _MEMO_SIZE:
            self.blocks[block] = response
        return response

    def _owe(self, inserted: Entries) -> None:
        """Insertions for the table, kept until a block needs it. An entry that the newer
        ones owed would evict anyway (they overfill the table without it) is dropped:
        then so would every entry the table holds be, and add() in order evicts them. (An
        entry over the table's size empties the table when applied, as decoding did.)"""
        self.blocks.clear()
        owed, limit = self.owed, self.table.maxsize
        for entry in inserted:
            owed.append(entry)
            self.owed_size += entry[2]
            while len(owed) > 1 and self.owed_size - owed[0][2] > limit:
                self.owed_size -= owed.popleft()[2]

    def settle(self) -> None:
        """Apply the insertions owed, in order, as decoding their blocks would have."""
        add = self.table.add
        for name, value, _ in self.owed:
            add(name, value)
        self.owed.clear()
        self.owed_size = 0


Entry = tuple[bytes, bytes, int]  # a field inserted into the dynamic table, and its size
Entries = tuple[Entry, ...]
_STATIC = 61  # entries in HPACK's static table (RFC 7541, appendix A)


class Scan(NamedTuple):
    """What a header block does with the dynamic table, read without decoding it."""

    inserted: tuple[bool, ...]  # per field: a literal with incremental indexing
    dynamic: bool  # an index into the dynamic table, or a table size update
    resized: bool  # a table size update

    @property
    def changes(self) -> bool:
        return self.resized or any(self.inserted)


def scan(block: bytes) -> Scan | None:
    """Each field's representation (RFC 7541 6): indexed, a literal with or without
    incremental indexing, never indexed, or a dynamic table size update, with the index
    it names. None for a block cut short (hpack then says what is wrong with it)."""
    inserted: list[bool] = []
    dynamic = resized = False
    pos, n = 0, len(block)
    try:
        while pos < n:
            first = block[pos]
            if first & 0x80:  # an indexed field
                index, pos = _integer(block, pos, 7)
                dynamic |= index > _STATIC
                inserted.append(False)
                continue
            if first & 0x40:  # a literal with incremental indexing
                prefix, insert = 6, True
            elif first & 0x20:  # a dynamic table size update
                _, pos = _integer(block, pos, 5)
                dynamic = resized = True
                continue
            else:  # a literal without indexing, or never indexed
                prefix, insert = 4, False
            index, pos = _integer(block, pos, prefix)
            dynamic |= index > _STATIC
            if not index:  # the name is a literal too
                pos = _string_end(block, pos)
            pos = _string_end(block, pos)
            if pos > n:
                return None
            inserted.append(insert)
    except IndexError:
        return None
    return Scan(tuple(inserted), dynamic, resized)


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
