"""The memo (``loadgen.memo``): an exact repeat of a verified response skips the parser
and must count exactly what parsing it would count.

- :func:`verify` accepts exactly one complete keep-alive final response ending at the
  read's last byte, with either engine, and nothing else;
- a slot fed reads in-process (its transport only swallows the requests) counts every
  response once, whatever the split of the reads, memo or not;
- against the real test server, every response the engine table knows gives the same
  outcome with the memo on and off (``LOADGEN_NO_MEMO=1``), with either engine, and
  the memo is really used there.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from test_loadgen_engines import CASES  # the engine table (same directory)

import loadgen
from loadgen import Config, fastpath
from loadgen.httpparse import MAX_HEAD, PyResponseParser
from loadgen.memo import verify
from loadgen.protocol import HAVE_HTTPTOOLS

ENGINES: list[Any] = [PyResponseParser]
if HAVE_HTTPTOOLS:
    import httptools

    ENGINES.append(httptools.HttpResponseParser)

OK = b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
def test_verify_accepts_one_whole_keepalive_response(engine: Any) -> None:
    assert verify(engine, OK) == (200, 5)
    assert verify(engine, OK.replace(b"200 OK", b"404 Not Found")) == (404, 5)
    assert verify(engine, CHUNKED) == (200, 3)
    assert verify(engine, b"HTTP/1.1 204 No Content\r\n\r\n") == (204, 0)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
@pytest.mark.parametrize(
    "data",
    [
        OK + OK,  # two responses in one read
        OK + b"H",  # the start of the next one after it
        OK + b"\r\n",  # bytes after it that llhttp skips: not at the last byte
        OK[:-1],  # not complete
        OK[:20],
        OK.replace(b"Content-Length: 5", b"Connection: close\r\nContent-Length: 5"),
        OK.replace(b"HTTP/1.1", b"HTTP/1.0"),  # 1.0 without keep-alive: closes
        b"HTTP/1.1 100 Continue\r\n\r\n",  # interim only
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK,  # two messages
        b"HTTP/1.1 200 OK\r\n\r\nbody",  # EOF-delimited: never complete in a read
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\nContent-Length: 0\r\n\r\n",
        b"",
    ],
)
def test_verify_rejects_everything_else(engine: Any, data: bytes) -> None:
    assert verify(engine, data) is None


class _Sink:
    """The transport: swallows what the slot writes."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, *a: Any) -> None:
        return None


def _slot(httptools: bool, memo: bool) -> tuple[fastpath.FastRun, fastpath._FastConn]:
    loop = asyncio.new_event_loop()
    cfg = Config(url="http://127.0.0.1:9/", duration=1000, use_httptools=httptools)
    run = fastpath.FastRun(cfg, loop)
    run.memo = memo
    conn = run._new_slot()
    conn.connection_made(_Sink())  # type: ignore[arg-type]
    run.t0 = time.perf_counter_ns()
    run._setup_limits()
    run.gate_ns = run.end_ns
    conn.send_closed()  # the first request is in flight
    loop.close()
    return run, conn


def _counts(run: fastpath.FastRun) -> tuple[int, dict[int, int], int, int, dict[str, int]]:
    run.stats.fold(0)
    (s,) = run.stats.sinks.values()
    return s.n_responses, s.statuses, s.nbytes, s.failed, s.errors


@pytest.mark.parametrize("httptools", [True, False] if HAVE_HTTPTOOLS else [False])
@pytest.mark.parametrize("memo", [True, False])
def test_every_split_of_a_response_is_counted_once(httptools: bool, memo: bool) -> None:
    # whole responses (the memo is verified on the 2nd, used from the 3rd), then the
    # same response split in two reads at every byte, each followed by whole ones
    run, conn = _slot(httptools, memo)
    n = 0
    for _ in range(3):
        conn.data_received(OK)
        n += 1
    for cut in range(1, len(OK)):
        conn.data_received(OK[:cut])
        conn.data_received(OK[cut:])
        conn.data_received(OK)
        conn.data_received(OK)
        n += 3
    assert conn.busy  # the next request is in flight: nothing was dropped
    assert (conn.memo is not None) == memo
    assert _counts(run) == (n, {200: n}, 5 * n, 0, {})


@pytest.mark.parametrize("httptools", [True, False] if HAVE_HTTPTOOLS else [False])
def test_a_repeat_after_a_partial_message_is_not_taken_for_the_memo(httptools: bool) -> None:
    # the parser holds the start of a response (bytes after the previous one in the
    # same read): the next read equal to the memo is parsed as its continuation, and
    # that is a bad response, memo or not
    run, conn = _slot(httptools, True)
    for _ in range(3):
        conn.data_received(OK)
    assert conn.memo == OK
    conn.data_received(OK + OK[:10])  # a response, then 10 bytes of the next
    conn.data_received(OK)  # equal to the memo, but it continues "HTTP/1.1 2"
    assert _counts(run)[:2] == (4, {200: 4})
    assert _counts(run)[4] == {"bad_response": 1}


@pytest.mark.parametrize("httptools", [True, False] if HAVE_HTTPTOOLS else [False])
def test_a_memo_status_is_counted_and_failed_like_a_parsed_one(httptools: bool) -> None:
    run, conn = _slot(httptools, True)
    bad = OK.replace(b"200 OK", b"503 Busy")
    for _ in range(5):
        conn.data_received(bad)
    assert conn.memo == bad
    assert _counts(run) == (5, {503: 5}, 25, 5, {})


# Against the real server: memo on and off agree on every response of the engine table
# (those that time out are left out: no response, nothing to remember).
MEMO_CASES = [c for c, want in CASES.items() if "read_timeout" not in want.get("errors", {})]


def _outcome(url: str, method: str, httptools: bool) -> dict[str, Any]:
    cfg = Config(
        url=url,
        method=method,
        requests=12,
        concurrency=2,
        timeout=0.5,
        use_uvloop=httptools,
        use_httptools=httptools,
    )
    r = loadgen.run_sync(cfg)
    return {
        "status_codes": r.status_codes,
        "errors": r.errors,
        "failed": r.failed,
        "bytes": r.bytes,
        "connections": r.stats.connections,
        "requests": r.requests,
    }


@pytest.mark.parametrize("httptools", [True, False] if HAVE_HTTPTOOLS else [False])
def test_memo_on_and_off_agree_on_every_response(
    server, httptools: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []
    real = fastpath.verify

    def counting(factory: Any, data: bytes) -> Any:
        v = real(factory, data)
        if v is not None:
            used.append(data)
        return v

    monkeypatch.setattr(fastpath, "verify", counting)
    differ = []
    for case in MEMO_CASES:
        method, _, path = case.rpartition(" ")
        monkeypatch.delenv("LOADGEN_NO_MEMO", raising=False)
        on = _outcome(server.url(path), method or "GET", httptools)
        monkeypatch.setenv("LOADGEN_NO_MEMO", "1")
        off = _outcome(server.url(path), method or "GET", httptools)
        if on != off:
            differ.append((case, on, off))
    assert differ == []
    assert used  # the memo was verified (so used) on the repeating responses


def test_no_memo_flag_turns_the_memo_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadgen.cli import build_parser, config_from_args

    def memo_on(argv: list[str]) -> bool:
        cfg = config_from_args(build_parser().parse_args([*argv, "-n", "1", "http://127.0.0.1:9/"]))
        loop = asyncio.new_event_loop()
        try:
            return fastpath.FastRun(cfg, loop).memo
        finally:
            loop.close()

    monkeypatch.setenv("LOADGEN_NO_MEMO", "0")  # on; restored after the test
    assert memo_on([])
    assert not memo_on(["--no-memo"])  # (it sets LOADGEN_NO_MEMO for the workers too)
