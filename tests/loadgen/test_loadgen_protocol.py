"""HTTP/1.1 client: framing, Connection: close, timeouts, resets, garbage — each counted
under the right kind, with both parsers, never a crash."""

from __future__ import annotations

import pytest

import loadgen
from loadgen import Config
from loadgen.protocol import HAVE_HTTPTOOLS, ParserError, PyResponseParser


def run(url: str, engine: dict[str, bool], **kw) -> loadgen.Result:
    kw.setdefault("requests", 20)
    kw.setdefault("concurrency", 2)
    kw.setdefault("timeout", 2)
    return loadgen.run_sync(Config(url=url, **kw, **engine))


@pytest.mark.parametrize(
    ("path", "status", "nbytes"),
    [("/chunked", 200, 19), ("/close", 200, 3), ("/eof", 200, 9), ("/status/404", 404, 0)],
)
def test_framing_and_connection_close(server, engine, path, status, nbytes) -> None:
    r = run(server.url(path), engine)
    assert r.errors == {}
    assert r.status_codes == {status: 20}
    assert r.bytes == 20 * nbytes
    if path in ("/close", "/eof"):
        assert r.stats.connections >= 20  # one connection per request
    if status == 404:
        assert r.failed == 20 and r.ok == 0  # a bad status is a failure, not an error


def test_keepalive_reuses_connections(server, engine) -> None:
    r = run(server.url("/fast"), engine, requests=200, concurrency=4)
    assert r.stats.connections == 4 and r.status_codes == {200: 200}
    r = run(server.url("/fast"), engine, requests=30, concurrency=3, keepalive=False)
    assert r.status_codes == {200: 30} and r.stats.connections >= 30


@pytest.mark.parametrize(("path", "kind"), [("/reset", "reset"), ("/garbage", "bad_response")])
def test_resets_and_garbage(server, engine, path, kind) -> None:
    r = run(server.url(path), engine)
    assert r.errors == {kind: 20}
    assert r.responses == 0 and r.requests == 20


def test_read_timeout(server, engine) -> None:
    r = run(server.url("/hang"), engine, requests=4, concurrency=2, timeout=0.3)
    assert r.errors == {"read_timeout": 4}
    assert r.elapsed < 1.5


def test_connect_refused(closed_port, engine) -> None:
    r = run(f"http://127.0.0.1:{closed_port}/", engine, requests=5, check_target=False)
    assert r.errors == {"connect_refused": 5}


def test_mixed_good_and_bad_in_one_run(server, engine) -> None:
    # redirects are not followed: a 302 is just a (successful) response
    r = run(server.url("/status/302"), engine, requests=10)
    assert r.status_codes == {302: 10} and r.failed == 0


def test_head_request_has_no_body(server, engine) -> None:
    r = run(server.url("/fast"), engine, method="HEAD", requests=10)
    assert r.status_codes == {200: 10} and r.errors == {} and r.bytes == 0


# -- the pure-Python parser, fed byte by byte, agrees with httptools --------------------
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n"
    b"A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
]


class Rec:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.events.append(("h", name.lower(), value))

    def on_headers_complete(self) -> None:
        self.events.append(("hc", self.parser.get_status_code()))

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        self.events.append(("done", self.parser.should_keep_alive(), self.body))
        self.body = b""


@pytest.mark.parametrize("raw", RESPONSES)
def test_pure_parser_matches_httptools(raw: bytes) -> None:
    reuse = b"close" not in raw and b"HTTP/1.0" not in raw
    stream = raw + raw if reuse else raw  # two messages on one connection
    pure = Rec()
    pure.parser = PyResponseParser(pure)
    for i in range(len(stream)):
        pure.parser.feed_data(stream[i : i + 1])
    assert [e[0] for e in pure.events].count("done") == (2 if reuse else 1)
    if HAVE_HTTPTOOLS:
        import httptools

        ht = Rec()
        ht.parser = httptools.HttpResponseParser(ht)
        ht.parser.feed_data(stream)
        assert pure.events == ht.events


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_pure_parser_rejects_malformed(raw: bytes) -> None:
    rec = Rec()
    rec.parser = PyResponseParser(rec)
    with pytest.raises(ParserError):
        rec.parser.feed_data(raw)


def test_pure_parser_eof_delimited_body() -> None:
    rec = Rec()
    rec.parser = PyResponseParser(rec)
    rec.parser.feed_data(b"HTTP/1.1 200 OK\r\n\r\npart one ")
    rec.parser.feed_data(b"part two")
    assert rec.parser.feed_eof() is True
    assert rec.events[-1] == ("done", False, b"part one part two")
