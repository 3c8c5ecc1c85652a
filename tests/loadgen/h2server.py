"""A small controllable HTTP/2 server for loadgen's tests, on python-hyper's h2.

Run as a subprocess: ``python h2server.py [--tls PEM] [--max-streams N] [--goaway-after K]``
prints ``PORT <n>`` once listening on 127.0.0.1, prints its counters as one JSON line
for each ``stats`` line read on stdin, and exits when stdin closes. Cleartext it speaks
h2c by prior knowledge; with ``--tls`` (a PEM holding the key and the certificate chain)
it offers ALPN ``h2`` only.

Routes (the path, query ignored):

* ``/ok`` (and anything unknown) — 200, body ``ok``.
* ``/slow`` — 200 ``ok`` after 20 ms (so that streams overlap).
* ``/hang`` — never answers.
* ``/reset`` — RST_STREAM (INTERNAL_ERROR) instead of an answer.
* ``/refuse`` — RST_STREAM (REFUSED_STREAM): not processed.
* ``/cookie`` — 200 with ``Set-Cookie: sid=s3ss10n``; ``/whoami`` answers the request's
  ``cookie`` header as its body.
* ``/open-stream`` — the server opens a stream of its own (HEADERS on stream 2), beyond
  the client's SETTINGS_MAX_CONCURRENT_STREAMS of 0: a protocol error on the client's side.

``--max-streams N`` advertises SETTINGS_MAX_CONCURRENT_STREAMS = N and counts the most
streams any connection had open at once (``max_open``). ``--goaway-after K``: when a
connection's K-th request arrives, GOAWAY (NO_ERROR, last stream = that request's) goes
out BEFORE the answers of the streams up to it (which are then answered, 20 ms later);
later streams are ignored (counted as ``ignored``), and the connection closes once the
streams up to the last are answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import HeadersFrame

STATE = {"requests": 0, "ignored": 0, "connections": 0, "max_open": 0, "goaways": 0}


class H2Server(asyncio.Protocol):
    max_streams: int | None = None
    goaway_after: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        STATE["connections"] += 1
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        if self.max_streams is not None:
            self.conn.local_settings = Settings(
                client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams}
            )
        self.conn.initiate_connection()
        self.flush()
        self.headers: dict[int, dict[bytes, bytes]] = {}
        self.open: set[int] = set()
        self.received = 0
        self.last: int | None = None  # the GOAWAY's last stream id, once sent
        self.pending: set[int] = set()  # streams up to the last, not answered yet

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.flush()
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, RequestReceived):
                self.headers[ev.stream_id] = dict(ev.headers)
                self.open.add(ev.stream_id)
                STATE["max_open"] = max(STATE["max_open"], len(self.open))
            elif isinstance(ev, DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, StreamEnded):
                self.request(ev.stream_id)
            elif isinstance(ev, ConnectionTerminated):
                self.transport.close()
        self.flush()

    def request(self, sid: int) -> None:
        if self.last is not None and sid > self.last:
            STATE["ignored"] += 1  # after our GOAWAY: not processed (RFC 9113 6.8)
            self.open.discard(sid)
            return
        STATE["requests"] += 1
        self.received += 1
        path = self.headers[sid].get(b":path", b"/").split(b"?")[0]
        if self.goaway_after is not None and self.received == self.goaway_after:
            self.last = sid
            self.pending = {s for s in self.open if s <= sid}
            STATE["goaways"] += 1
            self.conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id=sid)
            self.flush()
            # h2 closes its own state machine on sending a GOAWAY: answer the streams up to
            # the last one on a fresh state (the frames are what a graceful server sends)
            self.conn.state_machine.state = ConnectionState.SERVER_OPEN
            for s in sorted(self.pending):
                asyncio.get_running_loop().call_later(0.02, self.answer_pending, s, path)
            return
        if path == b"/slow":
            asyncio.get_running_loop().call_later(0.02, self.answer, sid, 200, b"ok")
        elif path == b"/hang":
            pass
        elif path in (b"/reset", b"/refuse"):
            code = ErrorCodes.INTERNAL_ERROR if path == b"/reset" else ErrorCodes.REFUSED_STREAM
            self.open.discard(sid)
            self.conn.reset_stream(sid, code)
        elif path == b"/cookie":
            self.answer(sid, 200, b"ok", [(b"set-cookie", b"sid=s3ss10n; Path=/")])
        elif path == b"/whoami":
            self.answer(sid, 200, self.headers[sid].get(b"cookie", b"nobody"))
        elif path == b"/open-stream":
            frame = HeadersFrame(2, self.conn.encoder.encode([(b":status", b"200")]))
            frame.flags.add("END_HEADERS")
            self.transport.write(frame.serialize())
        else:
            self.answer(sid, 200, b"ok")

    def answer_pending(self, sid: int, path: bytes) -> None:
        self.answer(sid, 200, b"ok")
        self.pending.discard(sid)
        if not self.pending:
            self.transport.close()

    def answer(
        self, sid: int, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        if self.transport.is_closing():
            return
        self.open.discard(sid)
        headers = [(b":status", str(status).encode()), (b"content-length", b"%d" % len(body))]
        with contextlib.suppress(ProtocolError):  # the client reset or closed it
            self.conn.send_headers(sid, headers + (extra or []))
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open.clear()


async def main(args: argparse.Namespace) -> None:
    H2Server.max_streams = args.max_streams
    H2Server.goaway_after = args.goaway_after
    ctx = None
    if args.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls)
        ctx.set_alpn_protocols(["h2"])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(H2Server, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    while True:  # one JSON line per "stats"; EOF: the parent is done (never outlive it)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(json.dumps(STATE), flush=True)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="an HTTP/2 test server for loadgen's tests")
    parser.add_argument("--tls", metavar="PEM", help="key and certificate chain: TLS, ALPN h2")
    parser.add_argument("--max-streams", type=int, metavar="N")
    parser.add_argument("--goaway-after", type=int, metavar="K")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
