"""Closed and open models against real loopback servers (every run bounded)."""

from __future__ import annotations

import time

import pytest

import loadgen
from loadgen import Config


def test_closed_n_sends_exactly_n(server, engine) -> None:
    before = server.served()
    r = loadgen.run_sync(Config(url=server.url("/fast"), requests=1000, concurrency=10, **engine))
    assert server.served() - before == 1000
    assert r.requests == r.responses == 1000
    assert r.status_codes == {200: 1000}
    assert r.errors == {}
    assert r.uncorrected.count == 1000
    assert r.bytes == 2000
    assert r.stats.connections == 10
    assert sum(s["completed"] for s in r.to_dict()["series"]) == 1000


def test_closed_n_smaller_than_c(server) -> None:
    r = loadgen.run_sync(Config(url=server.url("/fast"), requests=3, concurrency=50))
    assert r.requests == 3 and r.status_codes == {200: 3}


@pytest.mark.serial  # a measured time: other tests beside it stretch it
def test_closed_duration_stops_on_time(server, engine) -> None:
    t = time.monotonic()
    r = loadgen.run_sync(
        Config(url=server.url("/fixed?ms=5"), duration=1.0, concurrency=4, **engine)
    )
    wall = time.monotonic() - t
    assert 1.0 <= wall < 1.8
    assert 0.95 <= r.elapsed < 1.3
    assert r.requests > 100 and r.errors == {}


def test_warmup_is_not_recorded(server) -> None:
    before = server.served()
    r = loadgen.run_sync(
        Config(url=server.url("/fixed?ms=5"), requests=50, concurrency=2, warmup=0.3)
    )
    sent = server.served() - before
    assert r.requests == 50
    assert sent > 50 + 20  # the warm-up ran (about 0.3 s / 5 ms * 2 connections)


def test_hard_deadline_counts_in_flight_as_aborted(server) -> None:
    t = time.monotonic()
    r = loadgen.run_sync(
        Config(url=server.url("/hang"), duration=0.3, concurrency=3, timeout=30, grace=0.2)
    )
    assert time.monotonic() - t < 2
    assert r.errors == {"aborted": 3}
    assert r.stats.aborted == 3 and r.requests == 3


def test_deadline_aborts_are_charged_to_the_request_in_flight(server, engine, tmp_path) -> None:
    # Closed model, two endpoints: each connection answers "fast" requests until it sends
    # a "hang" one, which the deadline aborts.  The abort belongs to "hang", the request
    # in flight, not to the first request the connection happened to send.
    f = tmp_path / "two.py"
    f.write_text(
        "from loadgen import Endpoint\n"
        "ENDPOINTS = [Endpoint('fast', '/fast', weight=9), Endpoint('hang', '/hang', weight=1)]\n"
    )
    r = loadgen.run_sync(
        Config(
            url=server.base,
            scenario=str(f),
            duration=0.3,
            grace=0.2,
            concurrency=8,
            timeout=30,
            seed=7,
            **engine,
        )
    )
    by_name = r.stats.sinks
    assert r.stats.aborted == 8  # every connection ends stuck on a "hang" request
    assert by_name["hang"].errors == {"aborted": 8}
    assert by_name["fast"].errors == {}
    assert by_name["fast"].n_responses > 8  # most connections sent "fast" ones first


@pytest.mark.serial  # a measured time: other tests beside it stretch it
@pytest.mark.slow
def test_open_model_rate_and_service_time(server, engine) -> None:
    """Well below capacity: achieved rate within 2 % of target, p50 close to 10 ms."""
    r = loadgen.run_sync(
        Config(url=server.url("/fixed?ms=10"), rate=200, duration=3, concurrency=20, **engine)
    )
    assert r.errors == {}
    assert r.stats.scheduled == 600 and r.stats.sent == 600 and r.requests == 600
    ach = r.achieved_rate
    assert ach is not None and abs(ach - 200) / 200 < 0.02, ach
    assert abs(r.rps - 200) / 200 < 0.05, r.rps
    p50u = r.percentile(50, corrected=False)
    p50c = r.percentile(50, corrected=True)
    assert 0.0095 <= p50u <= 0.0135, p50u
    assert 0.0095 <= p50c <= 0.0145, p50c
    d = r.to_dict()
    assert d["self_checks"]["rate"]["ok"] is True
    assert d["open_model"]["dropped"] == 0


@pytest.mark.serial  # a measured time: other tests beside it stretch it
@pytest.mark.slow
def test_coordinated_omission_is_corrected(fresh_server, engine) -> None:
    """The server stalls ~1 s once: corrected p99 shows it, uncorrected does not."""
    fresh_server.get("/__stall?after=1.5&for=1.0")
    r = loadgen.run_sync(
        Config(url=fresh_server.url("/fixed?ms=10"), rate=200, duration=4, concurrency=4, **engine)
    )
    assert int(fresh_server.get("/__stats").split(b'"stalled": ')[1][:1]) == 1
    assert r.errors == {} and r.requests == 800
    c99 = r.percentile(99, corrected=True)
    u99 = r.percentile(99, corrected=False)
    assert c99 > 0.5, c99  # ~200 requests were due during the stall
    assert u99 < 0.1, u99  # only the ~4 in flight saw it on the wire
    assert r.uncorrected.max > 0.9e9  # ...and they are there, at the max
    assert r.stats.max_queue > 100


def test_open_model_n_requests(server) -> None:
    r = loadgen.run_sync(Config(url=server.url("/fast"), rate=500, requests=100, concurrency=5))
    assert r.requests == 100 and r.stats.scheduled == 100
    assert r.corrected.count == 100 and r.uncorrected.count == 100


@pytest.mark.slow
def test_processes_give_the_same_totals(server) -> None:
    one = loadgen.run_sync(Config(url=server.url("/fast"), requests=1000, concurrency=10))
    two = loadgen.run_sync(
        Config(url=server.url("/fast"), requests=1000, concurrency=10, processes=2)
    )
    assert one.requests == two.requests == 1000
    assert one.status_codes == two.status_codes == {200: 1000}
    assert one.bytes == two.bytes
    assert two.uncorrected.count == 1000 and two.stats.processes == 2
    assert two.stats.connections == 10
    assert sum(s["completed"] for s in two.to_dict()["series"]) == 1000


@pytest.mark.serial  # a measured time: other tests beside it stretch it
@pytest.mark.slow
def test_processes_open_model_share_one_schedule(server) -> None:
    r = loadgen.run_sync(
        Config(url=server.url("/fast"), rate=400, requests=401, concurrency=6, processes=2)
    )
    assert r.requests == 401 and r.stats.scheduled == 401
    ach = r.achieved_rate
    assert ach is not None and abs(ach - 400) / 400 < 0.05
