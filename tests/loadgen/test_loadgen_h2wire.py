"""The HTTP/2 engines fed server bytes, no sockets: the lean engine (loadgen.h2wire) frame
by frame, python-hyper's h2 (loadgen.h2ref) beside it wherever both must agree, and a
differential run: the same server bytes through both give the same events.

Server frames are built with hyperframe and an hpack encoder (the server's), or by h2
itself acting as the server (as tests/loadgen/h2server.py does)."""

from __future__ import annotations

import random
from typing import Any

import hpack
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, StreamEnded
from h2.settings import SettingCodes, Settings
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from loadgen import h2ref, h2wire
from loadgen.h2hpack import MemoDecoder, MemoEncoder, Scan, scan
from loadgen.h2protocol import WINDOW
from loadgen.h2wire import (
    CONNECTION_TERMINATED,
    DATA_RECEIVED,
    RESPONSE_RECEIVED,
    SETTINGS_CHANGED,
    STREAM_ENDED,
    STREAM_RESET,
    TRAILERS_RECEIVED,
    ProtocolError,
)
from loadgen.request import build_h2_request

ENGINES = {"h2wire": h2wire.Connection, "h2": h2ref.Connection}
GET = build_h2_request("GET", "/", "example.test", (), b"", "http").headers
POST = build_h2_request("POST", "/up", "example.test", (), b"x" * 100_000, "http").headers
OK = [(b":status", b"200"), (b"content-length", b"2")]


@pytest.fixture(params=list(ENGINES))
def make(request: pytest.FixtureRequest) -> Any:
    return ENGINES[request.param]


def frames(data: bytes) -> list[Frame]:
    """The frames in ``data`` (our bytes), the preface skipped."""
    if data.startswith(h2wire.PREFACE):
        data = data[len(h2wire.PREFACE) :]
    out = []
    while data:
        f, length = Frame.parse_frame_header(memoryview(data[:9]))
        f.parse_body(memoryview(data[9 : 9 + length]))
        out.append(f)
        data = data[9 + length :]
    return out


class Server:
    """The server's side, by hand: its frames serialized, its HPACK encoder."""

    def __init__(self) -> None:
        self.encoder = hpack.Encoder()

    def block(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        return bytes(self.encoder.encode(headers))

    def headers(self, sid: int, headers: Any, *flags: str, **kw: Any) -> bytes:
        return serialize(HeadersFrame(sid, self.block(headers), **kw), *flags)


def serialize(f: Frame, *flags: str) -> bytes:
    for flag in flags:
        f.flags.add(flag)
    return bytes(f.serialize())


def connect(make: Any, window: int = WINDOW, **settings: int) -> Any:
    """A client engine past the server's first SETTINGS (and its ACK of ours)."""
    c = make(window)
    c.start()
    c.data_to_send()
    ev = c.receive(serialize(SettingsFrame(0, settings)) + serialize(SettingsFrame(0), "ACK"))
    assert ev == [(SETTINGS_CHANGED, 0, {getattr(SettingCodes, k): v for k, v in settings.items()})]
    assert [f.__class__ for f in frames(c.data_to_send())] == [SettingsFrame]  # our ACK
    return c


def norm(events: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Events comparable across engines (hpack's header tuples as plain tuples)."""
    out = []
    for kind, sid, value in events:
        if kind in (RESPONSE_RECEIVED, TRAILERS_RECEIVED):
            value = [tuple(h) for h in value]
        out.append((kind, sid, value))
    return out


# -- frames ----------------------------------------------------------------------------------
def test_preface_and_our_settings(make) -> None:
    c = make(WINDOW)
    c.start()
    data = c.data_to_send()
    assert data.startswith(h2wire.PREFACE)
    settings, window = frames(data)
    assert settings.settings[SettingCodes.ENABLE_PUSH] == 0
    assert settings.settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 0
    assert settings.settings[SettingCodes.INITIAL_WINDOW_SIZE] == WINDOW
    assert window.stream_id == 0 and window.window_increment == WINDOW - 65535


def test_padding_is_stripped_and_counted(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    data = s.headers(1, OK, "END_HEADERS", "PADDED", "PRIORITY", pad_length=7, depends_on=0)
    data += serialize(DataFrame(1, b"ok", pad_length=200), "PADDED", "END_STREAM")
    assert norm(c.receive(data)) == [
        (RESPONSE_RECEIVED, 1, OK),
        (DATA_RECEIVED, 1, b"ok"),
        (STREAM_ENDED, 1, None),
    ]


def test_padding_longer_than_the_frame_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    c.receive(s.headers(1, OK, "END_HEADERS"))
    bad = bytearray(serialize(DataFrame(1, b"ok", pad_length=1), "PADDED"))
    bad[9] = 4  # padding of 4 in a payload of 4 (its length byte, "ok", one byte of padding)
    with pytest.raises(ProtocolError):
        c.receive(bytes(bad))
    assert frames(c.data_to_send())[-1].__class__ is GoAwayFrame


def test_continuation_completes_a_header_block(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    headers = [*OK, *[(b"x-%d" % i, b"v" * 50) for i in range(10)]]
    block = s.block(headers)
    parts = [block[:100], block[100:300], block[300:]]
    data = serialize(HeadersFrame(1, parts[0]))
    data += serialize(ContinuationFrame(1, parts[1]))
    data += serialize(ContinuationFrame(1, parts[2]), "END_HEADERS")
    assert norm(c.receive(data[:50])) == []  # a frame split over reads waits for the rest
    assert norm(c.receive(data[50:])) == [(RESPONSE_RECEIVED, 1, headers)]


def test_a_frame_between_headers_and_continuation_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    data = serialize(HeadersFrame(1, s.block(OK)[:1])) + serialize(PingFrame(0, b"12345678"))
    with pytest.raises(ProtocolError):
        c.receive(data)


def test_trailers_follow_the_body(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    data = s.headers(1, [(b":status", b"200")], "END_HEADERS")
    data += serialize(DataFrame(1, b"body"))
    data += s.headers(1, [(b"x-checksum", b"abc")], "END_HEADERS", "END_STREAM")
    assert norm(c.receive(data)) == [
        (RESPONSE_RECEIVED, 1, [(b":status", b"200")]),
        (DATA_RECEIVED, 1, b"body"),
        (TRAILERS_RECEIVED, 1, [(b"x-checksum", b"abc")]),
        (STREAM_ENDED, 1, None),
    ]


def test_trailers_with_a_pseudo_header_are_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    data = s.headers(1, [(b":status", b"200")], "END_HEADERS")
    data += s.headers(1, [(b":status", b"200")], "END_HEADERS", "END_STREAM")
    with pytest.raises(ProtocolError):
        c.receive(data)


def test_ping_is_acked_with_its_payload(make) -> None:
    c = connect(make)
    assert c.receive(serialize(PingFrame(0, b"pingpong"))) == []
    (ack,) = frames(c.data_to_send())
    assert isinstance(ack, PingFrame) and "ACK" in ack.flags and ack.opaque_data == b"pingpong"
    assert c.receive(serialize(PingFrame(0, b"pongping"), "ACK")) == []  # an ACK: no answer
    assert c.data_to_send() == b""


def test_settings_are_acked_and_move_the_open_streams_windows(make) -> None:
    c = connect(make)
    c.send_headers(1, POST, False)
    c.data_to_send()
    assert c.window(1) == 65535 and c.max_outbound_frame_size == 16384
    c.send_data(1, b"x" * 16384, False)
    assert c.window(1) == 65535 - 16384
    assert [f.__class__ for f in frames(c.data_to_send())] == [DataFrame]
    changed = {SettingCodes.INITIAL_WINDOW_SIZE: 100_000, SettingCodes.MAX_FRAME_SIZE: 32768}
    assert c.receive(serialize(SettingsFrame(0, changed))) == [(SETTINGS_CHANGED, 0, changed)]
    (ack,) = frames(c.data_to_send())
    assert isinstance(ack, SettingsFrame) and "ACK" in ack.flags
    # the stream's window moved by the difference; the connection's did not (RFC 9113 6.9.2)
    assert c.window(1) == 65535 - 16384 and c.max_outbound_frame_size == 32768
    c.receive(serialize(WindowUpdateFrame(0, window_increment=100_000)))
    assert c.window(1) == 100_000 - 16384


def test_the_servers_header_table_size_reaches_our_encoder(make) -> None:
    """SETTINGS_HEADER_TABLE_SIZE 0: our next block starts with the size update, and
    every block still decodes to the request on the server's side (the encoder's memo
    did not hand out a block made for the old table)."""
    c, decoder = connect(make), hpack.Decoder()

    def sent() -> list[bytes]:
        return [bytes(f.data) for f in frames(c.data_to_send()) if isinstance(f, HeadersFrame)]

    c.send_headers(1, GET, True)
    c.send_headers(3, GET, True)
    blocks = sent()
    c.receive(serialize(SettingsFrame(0, {SettingCodes.HEADER_TABLE_SIZE: 0})))
    c.send_headers(5, GET, True)
    c.send_headers(7, GET, True)
    blocks += sent()
    assert blocks[2][0] == 0x20 and blocks[3][0] != 0x20  # "table size 0", once
    for block in blocks:
        assert [tuple(h) for h in decoder.decode(block, raw=True)] == GET
    assert decoder.header_table_size == 0


def test_the_receive_windows_are_replenished_past_half(make) -> None:
    """A body of several windows' worth: a WINDOW_UPDATE (stream and connection) each
    time more than half a window is consumed, and every byte counted."""
    window = 100_000
    c, s = connect(make, window), Server()
    c.send_headers(1, GET, True)
    c.receive(s.headers(1, [(b":status", b"200")], "END_HEADERS"))
    c.data_to_send()
    got, updates = 0, {0: 0, 1: 0}
    for _ in range(30):  # 30 frames of 16 KiB: 491,520 bytes, almost five windows
        for kind, _sid, value in c.receive(serialize(DataFrame(1, b"b" * 16384))):
            got += len(value) if kind == DATA_RECEIVED else 0
        for f in frames(c.data_to_send()):
            assert isinstance(f, WindowUpdateFrame)
            updates[f.stream_id] += f.window_increment
        # the windows never ran dry: what was granted covers what was sent
        assert window + updates[0] >= got and window + updates[1] >= got
    assert got == 30 * 16384
    assert got - window / 2 <= updates[0] <= got and got - window / 2 <= updates[1] <= got


def test_a_frame_over_our_max_frame_size_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    c.receive(s.headers(1, [(b":status", b"200")], "END_HEADERS"))
    with pytest.raises(ProtocolError) as err:
        c.receive(serialize(DataFrame(1, b"x" * 16385)))
    assert err.value.code == 0x6  # FRAME_SIZE_ERROR
    goaway = frames(c.data_to_send())[-1]
    assert isinstance(goaway, GoAwayFrame) and goaway.error_code == 0x6


def test_push_promise_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    push = PushPromiseFrame(1, promised_stream_id=2, data=s.block(GET))
    with pytest.raises(ProtocolError) as err:
        c.receive(serialize(push, "END_HEADERS"))
    assert err.value.code == 0x1  # PROTOCOL_ERROR
    goaway = frames(c.data_to_send())[-1]
    assert isinstance(goaway, GoAwayFrame) and goaway.error_code == 0x1


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"text/plain")],  # no :status
        [(b"content-type", b"text/plain"), (b":status", b"200")],  # not first
        [(b":status", b"200"), (b":status", b"200")],
        [(b":status", b"200"), (b":path", b"/")],
        [(b":status", b"200"), (b"Content-Type", b"text/plain")],
        [(b":status", b"200"), (b"connection", b"close")],
        [(b":status", b"200"), (b"x", b" padded ")],
    ],
)
def test_an_invalid_response_head_is_a_connection_error(make, headers) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    with pytest.raises(ProtocolError):
        c.receive(s.headers(1, headers, "END_HEADERS", "END_STREAM"))


def test_a_body_not_its_content_length_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    c.send_headers(1, GET, True)
    data = s.headers(1, [(b":status", b"200"), (b"content-length", b"5")], "END_HEADERS")
    with pytest.raises(ProtocolError):
        c.receive(data + serialize(DataFrame(1, b"abc"), "END_STREAM"))


def test_a_malformed_header_block_is_a_compression_error(make) -> None:
    c = connect(make)
    c.send_headers(1, GET, True)
    with pytest.raises(ProtocolError) as err:
        c.receive(serialize(HeadersFrame(1, b"\xff\xff\xff\xff"), "END_HEADERS"))
    # RFC 9113 4.3: COMPRESSION_ERROR; h2 says PROTOCOL_ERROR (the same verdict here)
    assert err.value.code == (0x9 if make is h2wire.Connection else 0x1)


def test_the_server_opening_a_stream_is_a_connection_error(make) -> None:
    c, s = connect(make), Server()
    with pytest.raises(ProtocolError):
        c.receive(s.headers(2, [(b":status", b"200")], "END_HEADERS"))


def test_data_on_a_stream_never_opened_is_a_connection_error(make) -> None:
    c = connect(make)
    c.send_headers(1, GET, True)
    with pytest.raises(ProtocolError):
        c.receive(serialize(DataFrame(3, b"x")))


def test_frames_of_a_stream_we_reset_are_dropped_and_counted(make) -> None:
    """After our RST_STREAM the server's frames in flight for it are tolerated; their
    DATA still counts against the connection's window (replenished past half)."""
    window = 100_000
    c, s = connect(make, window), Server()
    c.send_headers(1, GET, True)
    c.send_headers(3, GET, True)
    c.receive(s.headers(1, [(b":status", b"200")], "END_HEADERS"))
    c.data_to_send()
    c.reset_stream(1, h2wire.CANCEL)
    rst = frames(c.data_to_send())
    assert [(f.__class__, f.stream_id, f.error_code) for f in rst] == [(RstStreamFrame, 1, 0x8)]
    late = b"".join(serialize(DataFrame(1, b"x" * 16384)) for _ in range(4))
    late += s.headers(1, [(b"x-trailer", b"1")], "END_HEADERS", "END_STREAM")
    late += serialize(RstStreamFrame(1, error_code=0))
    assert c.receive(late) == []
    update = [f for f in frames(c.data_to_send()) if isinstance(f, WindowUpdateFrame)]
    assert [(f.stream_id, f.window_increment) for f in update] == [(0, 65536)]
    c.reset_stream(1, h2wire.CANCEL)  # closed already: nothing
    assert c.data_to_send() == b""
    data = s.headers(3, OK, "END_HEADERS") + serialize(DataFrame(3, b"ok"), "END_STREAM")
    assert [e[:2] for e in c.receive(data)] == [(RESPONSE_RECEIVED, 3), (DATA_RECEIVED, 3),
                                                (STREAM_ENDED, 3)]  # fmt: skip


def test_rst_stream_and_goaway_are_events(make) -> None:
    c, s = connect(make), Server()
    for sid in (1, 3, 5):
        c.send_headers(sid, GET, True)
    data = serialize(RstStreamFrame(1, error_code=7))
    data += serialize(GoAwayFrame(0, last_stream_id=3, error_code=0))
    data += s.headers(3, [(b":status", b"204")], "END_HEADERS", "END_STREAM")
    assert norm(c.receive(data)) == [
        (STREAM_RESET, 1, 7),
        (CONNECTION_TERMINATED, 3, 0),
        (RESPONSE_RECEIVED, 3, [(b":status", b"204")]),
        (STREAM_ENDED, 3, None),
    ]
    assert c.goaway  # the streams at or below the last id went on


# -- the HPACK memo ------------------------------------------------------------------------
def test_the_decoder_memo_follows_the_servers_table() -> None:
    """The same block bytes mean other headers once the server's table changed: an
    insertion shifts the dynamic indices, an eviction drops the entry one named. The memo
    must return what a plain decoder returns, block after block, and still reuse."""
    server = hpack.Encoder()
    a = [(b":status", b"200"), (b"x-a", b"1")]
    b = [(b":status", b"200"), (b"x-b", b"2")]
    first = server.encode(a)  # x-a inserted
    again = server.encode(a)  # x-a by its index (62): leaves the table unchanged
    inserted = server.encode(b)  # x-b inserted: index 62 is now x-b
    memo, plain = MemoDecoder(), hpack.Decoder()
    seq = [first, again, again, again, inserted, again]
    for i, block in enumerate(seq):
        want = [tuple(h) for h in plain.decode(block, raw=True)]
        assert [tuple(h) for h in memo.decode(block).headers] == want, i
    assert [tuple(h) for h in memo.decode(again).headers] == b  # same bytes, other meaning
    hits = memo.decode(again) is memo.decode(again)
    assert hits  # an unchanged table: the same Response, decoded once


def test_the_decoder_memo_matches_hpack_through_evictions_and_resizes() -> None:
    rng = random.Random(5)
    server = hpack.Encoder()
    memo, plain = MemoDecoder(), hpack.Decoder()
    lists = [[(b":status", b"200"), (b"x-%d" % i, b"v" * rng.randrange(1, 300))] for i in range(8)]
    for i in range(400):
        if i == 200:
            server.header_table_size = 512  # a size update in the next block
        block = server.encode(lists[rng.randrange(len(lists)) if rng.random() < 0.3 else 0])
        want = [tuple(h) for h in plain.decode(block, raw=True)]
        assert [tuple(h) for h in memo.decode(block).headers] == want, i


def _indexing_anew(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A block as nginx sends each answer: every field not in the static table a literal
    with incremental indexing (a fresh encoder's first block), so that each one changes
    the table although it refers to nothing in it."""
    return hpack.Encoder().encode(headers)


def test_a_block_indexed_anew_each_time_is_decoded_once_and_its_insertions_owed() -> None:
    """The same bytes again and again, each inserting its fields: decoded once (the same
    Response back), while the table follows as if each were decoded, which a block naming
    a dynamic entry (62: the newest, 63, 64) then shows. Without the insertions owed and
    applied, those would decode to older fields than a plain decoder's."""
    ok = _indexing_anew([(b":status", b"200"), (b"server", b"nginx"), (b"date", b"Mon")])
    other = _indexing_anew([(b":status", b"404"), (b"x-other", b"1"), (b"date", b"Tue")])
    assert scan(ok) == Scan((False, True, True), dynamic=False, resized=False)
    memo, plain = MemoDecoder(), hpack.Decoder()
    seq = [ok, ok, other, ok, bytes([0x88, 0x80 | 62]), other, other]
    seq += [bytes([0x88, 0x80 | 63, 0x80 | 64]), ok, bytes([0x88, 0x80 | 62, 0x80 | 63])]
    for i, block in enumerate(seq):
        want = [tuple(h) for h in plain.decode(block, raw=True)]
        assert [tuple(h) for h in memo.decode(block).headers] == want, i
    assert memo.decode(ok) is memo.decode(ok)  # decoded once, the table changed between
    plain.decode(ok, raw=True)
    plain.decode(ok, raw=True)
    memo.settle()
    assert list(memo.table.dynamic_entries) == list(plain.header_table.dynamic_entries)


@pytest.mark.parametrize("size", [40, 100, 4096])
def test_what_is_owed_to_the_table_stays_within_its_size(size: int) -> None:
    """A thousand answers indexed anew: what is owed is at most a table's worth (one entry
    more), and applied it leaves the table a plain decoder has, whatever evicted what
    (at 40 bytes, each entry evicts the one before; an entry over the size empties it)."""
    update = hpack.Encoder()
    update.header_table_size = size
    resize = update.encode([(b":status", b"200")])  # a size update, then :status
    memo, plain = MemoDecoder(), hpack.Decoder()
    blocks = [
        _indexing_anew([(b":status", b"200"), (b"server", b"nginx"), (b"date", b"Mon")]),
        _indexing_anew([(b":status", b"200"), (b"x-big", b"v" * 60)]),  # 97 bytes
        _indexing_anew([(b":status", b"200"), (b"date", b"Tue")]),
    ]
    for block in [resize, *[blocks[i % 3] for i in range(1000)], bytes([0x88, 0x80 | 62])]:
        want = [tuple(h) for h in plain.decode(block, raw=True)]
        assert [tuple(h) for h in memo.decode(block).headers] == want
        assert memo.owed_size <= size + 97 and len(memo.owed) <= size // 32 + 1
    memo.settle()
    assert list(memo.table.dynamic_entries) == list(plain.header_table.dynamic_entries)


@pytest.mark.parametrize(
    ("block", "read"),
    [
        (bytes([0x88]), Scan((False,), False, False)),  # :status 200, static
        (bytes([0x80 | 61]), Scan((False,), False, False)),  # the last static entry
        (bytes([0x80 | 62]), Scan((False,), True, False)),  # the first dynamic one
        (bytes([0x3F, 0xE1, 0x1F, 0x88]), Scan((False,), True, True)),  # size 4096, then 200
        (bytes([0x40 | 54, 0x01]) + b"x", Scan((True,), False, False)),  # server: x, indexed
        (bytes([0x7F, 0x00, 0x01]) + b"x", Scan((True,), True, False)),  # name index 63
        (bytes([0x0F, 0x2F, 0x01]) + b"x", Scan((False,), True, False)),  # name index 62
        (bytes([0x10, 0x01]) + b"a" + bytes([0x01]) + b"b", Scan((False,), False, False)),
        (
            bytes([0x40, 0x01]) + b"a" + bytes([0x7F, 0x01]) + b"v" * 128,
            Scan((True,), False, False),
        ),
        (bytes([0x40, 0x01]) + b"a" + bytes([0x05]) + b"vv", None),  # cut short
        (bytes([0x40 | 54, 0x7F]), None),  # a length's continuation missing
    ],
)
def test_what_a_block_does_with_the_dynamic_table(block: bytes, read: Scan | None) -> None:
    assert scan(block) == read


def test_the_encoder_memo_reads_whether_its_block_changed_the_table() -> None:
    """A request list encoded once more after its fields were inserted is shorter (it
    names them by index): the memo must not keep the first block, which inserted them,
    and must keep the second, which changed nothing."""
    memo = MemoEncoder()
    req = [(b":method", b"GET"), (b":path", b"/x"), (b"x-token", b"abc")]
    first = memo.encode(req)
    assert scan(first).changes and memo.blocks == {}
    second = memo.encode(req)
    assert second != first and not scan(second).changes
    assert memo.encode(req) is second
    memo.header_table_size = 0  # the peer's SETTINGS: the next block updates the size
    third = memo.encode(req)
    assert scan(third).resized and third != second


# -- both engines, the same server bytes ---------------------------------------------------
def _record(n: int) -> tuple[list[tuple[str, Any, Any]], list[bytes]]:
    """A conversation with h2 as the server: our steps (requests, and the streams we reset
    before reading the answers already on their way) and the server's bytes after each.
    Bodies of several sizes, padded or not, trailers, RST_STREAM, a header block too big
    for one frame (CONTINUATION; it also empties the HPACK table), PING, SETTINGS, and
    a GOAWAY at the end."""
    client = h2wire.Connection(WINDOW)
    client.start()
    server = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    server.local_settings = Settings(
        client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: 50}
    )
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    steps: list[tuple[str, Any, Any]] = [("start", [], [])]
    replies = [server.data_to_send()]
    client.receive(replies[-1])
    sid = 1
    for batch in range(n):
        ids = []
        for _ in range(5):
            client.send_headers(sid, GET, True)
            ids.append(sid)
            sid += 2
        for ev in server.receive_data(client.data_to_send()):
            if isinstance(ev, DataReceived):
                server.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if isinstance(ev, StreamEnded):  # a request's end: answer it
                _answer(server, ev.stream_id)
        if batch == n // 2:
            server.ping(b"pingpong")
            server.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        if batch == n - 1:
            server.close_connection(0, last_stream_id=ids[-1])
        reset = [ids[1]] if batch % 4 == 1 else []  # its answer is on its way already
        for s in reset:
            client.reset_stream(s, h2wire.CANCEL)
        steps.append(("requests", ids, reset))
        replies.append(server.data_to_send())
        client.receive(replies[-1])
        server.receive_data(client.data_to_send())
    return steps, replies


def _answer(server: H2Connection, s: int) -> None:
    size = (s * 997) % 40_000 if s % 3 else 0
    head = [(b":status", b"200"), (b"content-length", b"%d" % size), (b"x-n", b"%d" % s)]
    if s % 11 == 0:
        head.append((b"x-big", b"v" * 20_000))
    server.send_headers(s, head, end_stream=False)
    body, chunk, pad = bytes(size), 16384, {}
    if s % 4 == 1:
        chunk, pad = 16000, {"pad_length": 100}
    while body:
        server.send_data(s, body[:chunk], **pad)
        body = body[chunk:]
    if s % 7 == 0:
        server.reset_stream(s, 2)
    elif s % 5 == 0:
        server.send_headers(s, [(b"x-trailer", b"t")], end_stream=True)
    else:
        server.end_stream(s)


def _replay(make: Any, steps: list[tuple[str, Any, Any]], replies: list[bytes]) -> list[Any]:
    c = make(WINDOW)
    events = []
    for (step, ids, reset), data in zip(steps, replies, strict=True):
        if step == "start":
            c.start()
        for sid in ids:
            c.send_headers(sid, GET, True)
        for sid in reset:
            c.reset_stream(sid, h2wire.CANCEL)
        c.data_to_send()
        for i in range(0, len(data), 5000):  # in reads that split frames
            events += norm(c.receive(data[i : i + 5000]))
    return events


def test_both_engines_give_the_same_events_for_the_same_bytes() -> None:
    steps, replies = _record(12)
    lean, ref = (
        _replay(h2wire.Connection, steps, replies),
        _replay(h2ref.Connection, steps, replies),
    )

    def summary(events: list[Any]) -> list[Any]:  # DATA as lengths per run of frames
        out: list[Any] = []
        for kind, sid, value in events:
            if kind == DATA_RECEIVED and out and out[-1][:2] == (DATA_RECEIVED, sid):
                out[-1] = (kind, sid, out[-1][2] + len(value))
            else:
                out.append((kind, sid, len(value) if kind == DATA_RECEIVED else value))
        return out

    assert summary(lean) == summary(ref)
    kinds = {kind for kind, _, _ in lean}
    assert kinds >= {RESPONSE_RECEIVED, DATA_RECEIVED, TRAILERS_RECEIVED, STREAM_ENDED}
    assert STREAM_RESET in kinds and SETTINGS_CHANGED in kinds
    assert CONNECTION_TERMINATED in kinds
    big = [v for kind, _, v in lean if kind == RESPONSE_RECEIVED and len(v) == 4]
    assert big and all(v[3] == (b"x-big", b"v" * 20_000) for v in big)
    ended = sum(1 for kind, _, _ in lean if kind == STREAM_ENDED)
    reset = sum(1 for kind, _, _ in lean if kind == STREAM_RESET)
    assert ended + reset + 3 == 60  # 3 streams reset by us: nothing of them reported
