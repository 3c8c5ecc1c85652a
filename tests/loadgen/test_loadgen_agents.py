"""--agent I/N, --start-at and ``loadgen merge`` (loopback test servers, bounded runs)."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

import loadgen
from loadgen import Config, Histogram
from loadgen.agent import parse_agent, parse_start_at
from loadgen.api import part_for
from loadgen.merge import merge_reports
from loadgen.run import BaseRun

SCHEMA = json.loads((Path(loadgen.__file__).parent / "report.schema.json").read_text())


# -- the split: unit tests on the schedule itself -------------------------------------------
def _plan(cfg: Config, p: int) -> tuple[list[int], int, int]:
    """(intended send offsets in ns, connections, closed-model requests) of process p."""
    loop = asyncio.new_event_loop()
    try:
        r = BaseRun(cfg, loop, part_for(cfg, p))
        r.t0 = 0
        r._setup_limits()
        dues = [r._due(k) for k in range(r.k_total)] if cfg.open_model else []
        return dues, r.c, r.remaining
    finally:
        loop.close()


@pytest.mark.parametrize(("agents", "procs"), [(2, 1), (3, 2), (4, 3)])
def test_agents_union_is_the_single_run_schedule(agents: int, procs: int) -> None:
    base = Config(url="http://127.0.0.1:1/", requests=1000, rate=700.0, concurrency=24, warmup=0.1)
    single, _c, _n = _plan(base, 0)
    assert len(single) == 1070  # 0.1 s of warm-up at 700/s, then -n 1000
    union: list[int] = []
    for i in range(agents):
        cfg = base.replace(agent=(i, agents), processes=procs)
        for p in range(procs):
            union += _plan(cfg, p)[0]
    assert sorted(union) == single  # every send once, at the single run's instant


@pytest.mark.parametrize(("agents", "procs"), [(2, 1), (3, 2), (5, 1)])
def test_agents_split_connections_and_requests_exactly(agents: int, procs: int) -> None:
    base = Config(url="http://127.0.0.1:1/", requests=1001, concurrency=17)
    conns = reqs = 0
    for i in range(agents):
        cfg = base.replace(agent=(i, agents), processes=procs)
        for p in range(procs):
            _d, c, n = _plan(cfg, p)
            conns += c
            reqs += n
    assert (conns, reqs) == (17, 1001)


def test_parse_agent_and_start_at() -> None:
    assert parse_agent("1/2") == (1, 2)
    for bad in ("2/2", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(loadgen.ConfigError):
            parse_agent(bad)
    assert parse_start_at("+5s", now=100.0) == 105.0
    assert parse_start_at("1767225600.5") == 1767225600.5
    assert parse_start_at("2026-01-01T00:00:00Z") == 1767225600.0
    with pytest.raises(loadgen.ConfigError):
        parse_start_at("tomorrow")


# -- real runs -------------------------------------------------------------------------------
def _agents(server, path: str, n_agents: int = 2, **kw) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    start = time.time() + 0.5  # both agents line up on this instant

    def one(i: int) -> tuple[str, dict]:
        cfg = Config(url=server.url(path), agent=(i, n_agents), start_at=start, **kw)
        return f"agent{i}.json", json.loads(loadgen.run_sync(cfg).to_json())

    with ThreadPoolExecutor(n_agents) as ex:  # the agents run at the same time
        out = list(ex.map(one, range(n_agents)))
    for _p, d in out:
        jsonschema.validate(d, SCHEMA)
    return out


def _raw_merge(reports: list[tuple[str, dict]], which: str) -> Histogram:
    h = Histogram()
    for _p, d in reports:
        h.merge(Histogram.from_dict(d["latency"][which]["histogram"]))
    return h


def _check_merged(reports: list[tuple[str, dict]], expected: int, model: str) -> dict:
    _r, m = merge_reports(reports)
    jsonschema.validate(m, SCHEMA)
    assert m["model"] == model
    assert m["summary"]["requests"] == expected
    assert sum(d["summary"]["requests"] for _p, d in reports) == expected
    assert sum(s["completed"] for s in m["series"]) == m["summary"]["responses"]
    for which in ("uncorrected", "corrected") if model == "open" else ("uncorrected",):
        want = _raw_merge(reports, which)
        got = Histogram.from_dict(m["latency"][which]["histogram"])
        assert dict(got.nonzero()) == dict(want.nonzero())  # bucket by bucket
        assert got == want
        ps = want.percentiles([float(p) for p in m["latency"][which]["percentiles_ns"]])
        assert m["latency"][which]["percentiles_ns"] == {f"{p:g}": v for p, v in ps.items()}
    assert [a["index"] for a in m["agents"]] == [0, 1]
    assert m["agent_windows"]["overlap_s"] > 0
    assert m["agent_windows"]["max_clock_offset_s"] < 0.1  # both started at --start-at
    return m


def test_two_agents_open_model_merge_exactly(server) -> None:
    before = server.served()
    reports = _agents(server, "/fast", requests=150, rate=500.0, concurrency=8)
    assert server.served() - before == 150
    assert [d["summary"]["requests"] for _p, d in reports] == [75, 75]
    m = _check_merged(reports, 150, "open")
    assert m["open_model"]["scheduled"] == m["open_model"]["sent"] == 150
    for _p, d in reports:  # the agent slept until --start-at
        ag = d["agent"]
        assert ag["window_start_unix_ns"] >= round(ag["start_at"] * 1e9) - 5_000_000
        assert ag["host"] and ag["window_end_unix_ns"] > ag["window_start_unix_ns"]


def test_two_agents_closed_model_merge_exactly(server) -> None:
    before = server.served()
    reports = _agents(server, "/fast", requests=101, concurrency=5)
    assert server.served() - before == 101
    assert [d["summary"]["connections"] for _p, d in reports] == [3, 2]
    m = _check_merged(reports, 101, "closed")
    assert m["summary"]["connections"] == 5
    assert m["status_codes"] == {"200": 101}


def test_merge_of_one_agent_is_its_own_report(server) -> None:
    """Merging is lossless: agent 0/1's report merged alone gives its own text and JSON."""
    cfg = Config(
        url=server.url("/fixed?ms=2"), requests=60, rate=200.0, concurrency=4, agent=(0, 1)
    )
    r = loadgen.run_sync(cfg)
    d = json.loads(r.to_json())
    merged, m = merge_reports([("a.json", d)])
    assert merged.text() == r.text()
    for k in ("agent", "agents", "agent_windows", "config"):
        d.pop(k, None)
        m.pop(k, None)
    assert m == d


def test_merge_cli_and_bad_input(cli, server, tmp_path) -> None:
    paths = []
    for p, d in _agents(server, "/fast", requests=40, concurrency=2):
        paths.append(tmp_path / p)
        paths[-1].write_text(json.dumps(d))
    a0, a1 = (str(p) for p in paths)
    out = tmp_path / "m.json"
    r = cli("merge", a0, a1, "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "Agents:" in r.stdout and "[1/2]" in r.stdout
    assert json.loads(out.read_text())["summary"]["requests"] == 40
    single = tmp_path / "single.json"
    assert (
        cli("-n", "5", "-c", "1", "-q", "--json", str(single), server.url("/fast")).returncode == 0
    )
    other = json.loads(Path(a1).read_text())
    other["config"]["rate"], other["model"] = 100.0, "open"
    (tmp_path / "other.json").write_text(json.dumps(other))
    for args, why in (
        ((a0, str(tmp_path / "missing.json")), "cannot read"),
        ((a0, str(single)), "not an agent's report"),
        ((a0, a0), "agent 0/2 twice"),
        ((a0,), "agents missing: 1/2"),
        ((a0, str(tmp_path / "other.json")), "not agents of the same run"),
        ((a0, str(out)), "not an agent's report"),  # a merged report
        ((str(tmp_path),), "cannot read"),
    ):
        r = cli("merge", *args)
        assert r.returncode == 2, (args, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and why in r.stderr, r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--agent", "2/2"),
        ("--agent", "x"),
        ("--agent", "0/0"),
        ("--agent", "0/3", "-c", "2"),
        ("--start-at", "+11m"),
        ("--start-at", "yesterday"),
        ("--start-at", "1000"),  # 1970: in the past
    ],
)
def test_bad_agent_options_exit_2(cli, server, args) -> None:
    r = cli("-n", "10", *args, server.url("/fast"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.serial  # a start time, which busy neighbours delay
def test_start_at_holds_for_every_worker_process(server) -> None:
    """--start-at with --processes 2: every worker of each agent waits for the instant,
    and the merge counts exactly what the server served."""
    before = server.served()
    reports = _agents(server, "/fast", requests=120, rate=400.0, concurrency=8, processes=2)
    assert server.served() - before == 120
    m = _check_merged(reports, 120, "open")
    assert m["config"]["processes"] == 4  # two agents of two worker processes each
    for _p, d in reports:
        ag = d["agent"]
        assert d["summary"]["requests"] == 60
        assert ag["window_start_unix_ns"] >= round(ag["start_at"] * 1e9) - 5_000_000


def test_a_run_that_waits_for_its_start_starts_no_earlier() -> None:
    """uvloop's timers fire up to 1 ms early (a third of the time here): a request sent
    before the start would be a warm-up request, served but never counted. A run that
    waits (--start-at, or each worker of --processes) starts sending at its start."""
    uvloop = pytest.importorskip("uvloop", reason="the early timers are uvloop's")

    class Observed(BaseRun):
        def start(self) -> None:
            self.started_ns = time.perf_counter_ns()
            self._finish()

        def _maybe_finish(self) -> None:
            pass

    loop = uvloop.new_event_loop()
    try:
        late = []
        for i in range(40):
            run = Observed(Config(url="http://127.0.0.1:9/", requests=1), loop)
            t0 = time.perf_counter_ns() + 2_000_000 + i * 37_000
            loop.run_until_complete(run.run(t0))
            late.append(run.started_ns - run.m_start)
        assert min(late) >= 0, sorted(late)[:3]
    finally:
        loop.close()
