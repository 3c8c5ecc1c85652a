"""--h2 against real HTTP/2 servers on loopback: h2server.py (python-hyper's h2, h2c and
TLS with ALPN), each fault it can plant counted and reported, never a hang; exact counts
against the server's own; the models, scenarios, checks, thresholds, processes and agents
as on HTTP/1.1."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

import loadgen
from loadgen import Config
from loadgen.merge import merge_reports

SCHEMA = json.loads((Path(loadgen.__file__).parent / "report.schema.json").read_text())
# Each test takes a second or two; a planted fault that hung loadgen fails here, bounded.
pytestmark = pytest.mark.timeout(60)


def run(url: str, engine: dict[str, bool], **kw) -> loadgen.Result:  # type: ignore[no-untyped-def]
    """A --h2 run on ``engine`` (the conftest's fixture: [fast] the lean HTTP/2 engine,
    [pure] python-hyper's h2; every test here must give the same verdicts on both)."""
    r = loadgen.run_sync(Config(url=url, h2=True, **{**engine, **kw}))
    jsonschema.validate(r.to_dict(), SCHEMA)
    return r


def served(server, before: dict[str, int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    now = server.stats()
    return {k: now[k] - before[k] for k in ("requests", "ignored", "connections")}


def test_h2c_counts_exactly(h2c_server, engine) -> None:
    before = h2c_server.stats()
    r = run(h2c_server.url("/ok"), engine, requests=500, concurrency=3, streams=4)
    assert r.requests == r.responses == 500 and r.errors == {}
    assert r.status_codes == {200: 500} and r.bytes == 1000
    # 3 connections and the probe's (check_target: up to the server's SETTINGS)
    assert served(h2c_server, before) == {"requests": 500, "ignored": 0, "connections": 4}
    d = r.to_dict()
    assert d["summary"]["connections"] == 3
    assert d["protocol"]["requested"] == "h2" and d["protocol"]["negotiated"] == {"h2c": 3}
    assert d["protocol"]["tls"] is None and d["connection_setup"]["tls_handshake"] is None
    h2 = d["protocol"]["h2"]
    assert h2["streams_per_connection"] == 4 and h2["server_max_concurrent_streams"] == {"100": 3}
    assert h2["limited_connections"] == h2["protocol_errors"] == h2["not_h2"] == 0
    assert d["tool"]["parser"] == ("h2wire" if engine["use_h2wire"] else "h2")
    assert "x 4 streams (HTTP/2)" in r.text()


def test_h2_over_tls_negotiates_h2_by_alpn(h2_tls_server, tls_files, engine) -> None:
    before = h2_tls_server.stats()
    r = run(
        h2_tls_server.url("/ok"),
        engine,
        requests=200,
        concurrency=2,
        streams=8,
        cacert=tls_files.ca,
    )
    assert r.responses == 200 and served(h2_tls_server, before)["requests"] == 200
    d = r.to_dict()
    assert d["protocol"]["negotiated"] == {"h2": 2} and d["protocol"]["tls"]["alpn"] == {"h2": 2}
    assert d["connection_setup"]["handshakes"] == 2
    assert "HTTP/2:" in r.text() and "ALPN answer:\th2 x2" in r.text()


def test_streams_overlap_on_one_connection(start_h2_server, engine) -> None:
    s = start_h2_server()
    r = run(s.url("/slow"), engine, requests=64, concurrency=1, streams=8)
    assert r.responses == 64 and s.stats()["max_open"] == 8  # 8 at once on 1 connection
    assert r.stats.connections == 1


def test_open_model_on_h2(h2c_server, engine) -> None:
    r = run(h2c_server.url("/ok"), engine, rate=400.0, requests=200, concurrency=2, streams=4)
    assert r.requests == 200 and r.stats.scheduled == r.stats.sent == 200
    assert r.corrected.count == r.uncorrected.count == 200 and r.errors == {}


def test_endpoint_checks_and_thresholds_on_h2(h2c_server, tmp_path, engine) -> None:
    f = tmp_path / "ok.py"
    f.write_text(
        "from loadgen import Endpoint\n"
        "ENDPOINTS = [Endpoint('ok', '/ok', validate=lambda s, b: b == b'ok', sample_every=1),\n"
        "             Endpoint('reset', '/reset', weight=0.0001)]\n"
    )
    r = run(
        h2c_server.base, engine, scenario=str(f), requests=100, concurrency=2, streams=2,
        thresholds=("errors<1%", "checks>99%"),
    )  # fmt: skip
    checks = {c["name"]: (c["passes"], c["fails"]) for c in r.checks}
    assert checks["ok: body shape"] == (100, 0) and checks["ok: status is 200"] == (100, 0)
    assert r.passed and r.exit_code == 0
    bad = run(h2c_server.url("/reset"), engine, requests=10, thresholds=("errors<1%",))
    assert bad.errors == {"stream_reset": 10} and bad.exit_code == 99


def test_a_flow_keeps_its_cookies_over_h2(h2c_server, tmp_path, engine) -> None:
    f = tmp_path / "flow.py"
    f.write_text(
        "from loadgen import flow\n"
        "@flow()\n"
        "async def visit(user):\n"
        "    await user.get('/cookie', name='cookie')\n"
        "    r = await user.get('/whoami', name='whoami')\n"
        "    user.check('the cookie came back', r.text == 'sid=s3ss10n')\n"
    )
    r = run(h2c_server.base, engine, scenario=str(f), requests=30, concurrency=2, streams=3)
    assert r.stats.iterations == 30 and r.requests == 60 and r.errors == {}
    assert r.checks == [{"name": "the cookie came back", "passes": 30, "fails": 0}]
    assert r.stats.connections == 2  # 6 users, 3 streams each on 2 connections


@pytest.mark.slow
def test_processes_and_agents_merge_on_h2(h2c_server, tmp_path, engine) -> None:
    before = h2c_server.stats()
    two = run(h2c_server.url("/ok"), engine, requests=400, concurrency=4, streams=2, processes=2)
    assert two.responses == 400 and two.stats.processes == 2
    assert two.to_dict()["protocol"]["negotiated"] == {"h2c": 4}
    start = time.time() + 1.5

    def agent(i: int) -> tuple[str, dict]:
        cfg = Config(
            url=h2c_server.url("/ok"), h2=True, streams=2, requests=100, concurrency=2,
            agent=(i, 2), start_at=start, **engine,
        )  # fmt: skip
        return f"a{i}.json", json.loads(loadgen.run_sync(cfg).to_json())

    with ThreadPoolExecutor(2) as ex:  # the agents run at the same time
        reports = list(ex.map(agent, range(2)))
    result, merged = merge_reports(reports)
    jsonschema.validate(merged, SCHEMA)
    other = (reports[0][0], dict(reports[0][1], config=dict(reports[0][1]["config"], streams=3)))
    with pytest.raises(loadgen.ConfigError, match="not agents of the same run"):
        merge_reports([other, reports[1]])  # agents of one run ask the same streams
    assert merged["summary"]["requests"] == 100 and result.responses == 100
    assert merged["protocol"]["negotiated"] == {"h2c": 2}
    assert merged["protocol"]["h2"]["server_max_concurrent_streams"] == {"100": 2}
    assert served(h2c_server, before)["requests"] == 500


def test_the_engine_is_the_lean_one_unless_pure(cli, h2c_server) -> None:
    """--pure and LOADGEN_PURE=1 mean the reference engines, h2 for HTTP/2, as they mean
    the pure parser for HTTP/1.1; a flag given says which, whatever the environment."""
    url = h2c_server.url("/ok")
    for args, env, parser in [
        ((), {}, "h2wire"),
        (("--pure",), {}, "h2"),
        ((), {"LOADGEN_PURE": "1"}, "h2"),
        (("--h2wire",), {"LOADGEN_PURE": "1"}, "h2wire"),
        (("--no-h2wire",), {}, "h2"),
    ]:
        p = cli("--h2", *args, "-n", "20", "--json", "-", "-q", url, env=env)
        d = json.loads(p.stdout)
        assert d["tool"]["parser"] == parser and d["summary"]["requests"] == 20, (args, env)


# -- planted faults: each counted and reported, never a hang --------------------------------
def test_no_h2c_is_one_line_before_the_run(cli, server, engine) -> None:
    pure = () if engine["use_h2wire"] else ("--pure",)
    p = cli("--h2", *pure, "-n", "5", server.url("/fast"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "does not speak HTTP/2: it answered 'HTTP/1.1 " in p.stderr and "(no h2c)" in p.stderr


def test_no_h2c_is_counted_from_the_first_connection(server, engine) -> None:
    t = time.monotonic()
    r = run(server.url("/fast"), engine, requests=8, concurrency=2, check_target=False)
    assert time.monotonic() - t < 10
    assert r.requests == 8 and r.responses == 0 and r.errors == {"h2_refused": 8}
    assert r.to_dict()["protocol"]["h2"]["not_h2"] >= 2


def test_alpn_refusing_h2_is_one_line_or_counted(cli, tls_server, tls_files, engine) -> None:
    p = cli("--h2", "--cacert", tls_files.ca, "-n", "5", tls_server.url("/fast"))
    assert p.returncode == 2 and "by ALPN the server chose 'http/1.1', not 'h2'" in p.stderr
    r = run(tls_server.url("/fast"), engine, requests=6, cacert=tls_files.ca, check_target=False)
    assert r.errors == {"h2_refused": 6}
    d = r.to_dict()["protocol"]
    assert d["tls"]["alpn"]["http/1.1"] >= 1 and d["negotiated"] == {}


def test_goaway_is_counted_and_the_rest_go_on_a_new_connection(start_h2_server, engine) -> None:
    """The server sends GOAWAY at each connection's 10th request, before answering the
    streams up to it; the streams above its last id are not processed."""
    s = start_h2_server("--goaway-after", "10")
    r = run(s.url("/ok"), engine, requests=100, concurrency=1, streams=4)
    got = s.stats()
    assert r.requests == 100 and set(r.errors) <= {"goaway"}
    assert r.responses == got["requests"]  # every answer the server sent was read
    assert r.errors.get("goaway", 0) == got["ignored"]  # every stream it ignored, counted
    goaways = r.to_dict()["protocol"]["h2"]["goaway"]
    # each connection: 10 answered, at most 3 more ignored (4 streams)
    assert goaways == {"NO_ERROR": got["goaways"]} and got["goaways"] >= 100 // 13
    # a new connection after each GOAWAY (the last may have sent none)
    assert r.stats.connections in (got["goaways"], got["goaways"] + 1)


@pytest.mark.parametrize(
    ("path", "kind", "code"),
    [("/reset", "stream_reset", "INTERNAL_ERROR"), ("/refuse", "refused_stream", "REFUSED_STREAM")],
)
def test_rst_stream_is_counted_and_the_connection_kept(
    h2c_server, path, kind, code, engine
) -> None:
    r = run(h2c_server.url(path), engine, requests=40, concurrency=2, streams=4)
    assert r.requests == 40 and r.errors == {kind: 40}
    assert r.to_dict()["protocol"]["h2"]["rst_stream"] == {code: 40}
    assert r.stats.connections == 2


def test_a_server_limit_below_streams_is_respected_and_reported(start_h2_server, engine) -> None:
    s = start_h2_server("--max-streams", "2")
    r = run(s.url("/slow"), engine, requests=40, concurrency=1, streams=8)
    assert s.stats()["max_open"] == 2  # never more streams than the server allowed
    assert r.responses == 40 and r.errors == {}
    h2 = r.to_dict()["protocol"]["h2"]
    assert h2["server_max_concurrent_streams"] == {"2": 1} and h2["limited_connections"] == 1
    assert "allowed fewer streams than asked" in r.text()


@pytest.mark.timeout(30)
def test_a_server_exceeding_our_stream_limit_is_a_protocol_error(h2c_server, engine) -> None:
    """The server opens a stream of its own (HEADERS on stream 2): beyond the
    SETTINGS_MAX_CONCURRENT_STREAMS of 0 that loadgen advertises, a connection error; the
    requests on the connection are counted, it is closed and the next ones reconnect.

    Each connection breaks at once, often before the connect() that opened it has
    returned: the requests waiting then were once left on no connection, a hang (now
    _connect_then_send connects again). A hundred reconnects make that race likely in
    one run; the hard deadline turns a regression into a failure (requests aborted),
    never a hang, and the test's own timeout bounds the rest."""
    t = time.monotonic()
    r = run(
        h2c_server.url("/open-stream"), engine, requests=200, concurrency=2, streams=2, deadline=8
    )
    assert r.requests == 200 and r.errors == {"protocol_error": 200}, r.errors  # no "aborted"
    assert time.monotonic() - t < 8
    assert r.to_dict()["protocol"]["h2"]["protocol_errors"] >= 100
    assert "the server broke HTTP/2" in r.text()


def test_a_hung_stream_times_out_alone(h2c_server, engine) -> None:
    r = run(h2c_server.url("/hang"), engine, requests=6, concurrency=1, streams=3, timeout=0.3)
    assert r.errors == {"read_timeout": 6} and r.stats.connections == 1


def test_the_deadline_aborts_streams_in_flight(h2c_server, engine) -> None:
    t = time.monotonic()
    r = run(h2c_server.url("/hang"), engine, duration=0.3, grace=0.2, concurrency=2, streams=3)
    assert time.monotonic() - t < 3
    assert r.errors == {"aborted": 6} and r.stats.aborted == 6


def test_the_header_block_memo_sends_what_hpack_would(monkeypatch) -> None:
    """The memo reuses a block only while the encoder's table is unchanged: every block is
    byte for byte hpack's own, through new fields, evictions and a table resize."""
    import hpack

    from loadgen.h2hpack import MemoEncoder

    memo, plain = MemoEncoder(), hpack.Encoder()
    encoded = []
    real = hpack.Encoder.encode

    def counting(self, headers, huffman=True):  # type: ignore[no-untyped-def]
        encoded.append(self is memo.encoder)
        return real(self, headers, huffman)

    monkeypatch.setattr(hpack.Encoder, "encode", counting)
    a = [(b":method", b"GET"), (b":path", b"/a"), (b"x-n", b"1")]
    b = [(b":method", b"GET"), (b":path", b"/b"), (b"x-n", b"2")]
    big = [[(b"x-big", b"v%d" % i * 200)] for i in range(12)]  # evicts a and b
    sequence = [a, a, a, b, a, b, b, *big, a, a, b]
    for i, headers in enumerate(sequence):
        if i == len(sequence) - 3:  # the peer shrinks the table: a size update is due
            memo.header_table_size = plain.header_table_size = 256
        assert memo.encode(list(headers)) == plain.encode(list(headers)), i
    assert encoded.count(True) < encoded.count(False) == len(sequence)  # it did reuse


def test_csv_rows_on_h2(h2c_server, tmp_path, engine) -> None:
    out = tmp_path / "rows.csv"
    r = run(h2c_server.url("/ok"), engine, requests=40, concurrency=2, streams=4, csv_path=str(out))
    rows = out.read_text().splitlines()
    assert r.responses == 40 and len(rows) == 41  # the header and one row per request
    assert all(row.split(",")[2] == "200" for row in rows[1:])
