"""protocol-costs: each lane paired with h1 of its round, the figure that fits the
scenario (CPU per request on db, throughput where requests wait), its prediction and the
mark when the measurement is far from it; the lanes' load; bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackbench.experiments import PROTOCOL_PAIRS, Lane, protocol_lanes, protocol_prediction
from stackbench.experiments import protocols as costs
from stackbench.options import BENCH_LOAD, BenchOptions
from stackbench.servers import H1, H1_TLS, H2, Knobs, get_server

ROOT = Path(__file__).resolve().parents[2]
LANES = protocol_lanes(8)


def _row(server: str, scenario: str, rps: float | None, per_cpu: float | None) -> Any:
    ok = rps is not None
    summary = {"rps": rps, "p99_ms": 10.0, "requests_per_server_cpu_s": per_cpu}
    return {
        "app": "gino_style",
        "server": server,
        "scenario": scenario,
        "status": "ok" if ok else "degraded",
        "reason": None if ok else "asked h2 (h2): 8 of 8 connections spoke 8 http/1.1",
        "summary": summary if ok else None,
    }


def _outcome(tmp_path: Path, server: str) -> costs.ProtocolsOutcome:
    options = BenchOptions(load=BENCH_LOAD)
    outcome = costs.ProtocolsOutcome(tmp_path, LANES, 32, 2, options)
    outcome.skipped[("gino_style", server)] = {
        lane.name: why for lane in LANES if (why := get_server(server).why_not(lane.protocol))
    }
    return outcome


def test_each_lane_is_paired_with_h1_of_its_round(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "hypercorn")
    # db: the figure is requests per server CPU-second. Round 2's machine is slower for all.
    for round_, scale in enumerate((1.0, 0.5)):
        costs.record(outcome, LANES[0], _row("hypercorn", "db", 900, 1000 * scale), round_)
        costs.record(outcome, LANES[1], _row("hypercorn", "db", 800, 800 * scale), round_)
        costs.record(outcome, LANES[2], _row("hypercorn", "db", 500, 500 * scale), round_)
        costs.record(outcome, LANES[3], _row("hypercorn", "db", None, None), round_)
    table = {(row[1], row[2]): row for row in costs.rows(outcome)}
    assert table[("db", "h1-tls")][7] == "0.80 (0.80–0.80)"  # paired: the drift cancels
    assert table[("db", "h1-tls")][8] == "0.80" and "asyncio's SSL" in table[("db", "h1-tls")][9]
    # predicted 0.8 x 0.6 = 0.48, measured 0.50: within the tolerance, no mark
    assert table[("db", "h2")][7] == "0.50 (0.50–0.50)"
    assert table[("db", "h2 x8")][3] == "4 x 8" and table[("db", "h2 x8")][7] == "–"
    assert len(outcome.failures) == 2 and "connections spoke" in outcome.failures[0]


def test_a_measurement_far_from_its_prediction_is_marked(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "gunicorn-gthread")
    # slow-http: the figure is requests per second. Planted: the multiplexed lane as fast
    # as h1 on gunicorn, whose streams run one after another (predicted 4/20 = 0.2).
    costs.record(outcome, LANES[0], _row("gunicorn-gthread", "slow-http", 80, 5), 0)
    costs.record(outcome, LANES[3], _row("gunicorn-gthread", "slow-http", 80, 5), 0)
    table = {row[2]: row for row in costs.rows(outcome)}
    assert table["h2 x8"][8] == "0.20", table["h2 x8"]
    assert table["h2 x8"][7] == "1.00 (1.00–1.00) ⚠"
    assert "one after another" in table["h2 x8"][9]
    costs.record(outcome, LANES[3], _row("gunicorn-gthread", "slow-http", 16, 5), 1)
    costs.record(outcome, LANES[0], _row("gunicorn-gthread", "slow-http", 80, 5), 1)
    outcome.measured = {
        key: {name: m for name, m in lanes.items()} for key, lanes in outcome.measured.items()
    }
    fine = _outcome(tmp_path, "gunicorn-gthread")
    costs.record(fine, LANES[0], _row("gunicorn-gthread", "slow-http", 80, 5), 0)
    costs.record(fine, LANES[3], _row("gunicorn-gthread", "slow-http", 17, 5), 0)
    row = {row[2]: row for row in costs.rows(fine)}["h2 x8"]
    assert row[7] == "0.21 (0.21–0.21)", row  # within 15 % of 0.20: no mark


def test_a_lane_the_server_does_not_speak_says_why(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "uvicorn")
    costs.record(outcome, LANES[0], _row("uvicorn", "db", 900, 1000), 0)
    costs.record(outcome, LANES[1], _row("uvicorn", "db", 800, 800), 0)
    table = {row[2]: row for row in costs.rows(outcome)}
    assert table["h2"][9] == "uvicorn has no HTTP/2" and table["h2"][4] == "–"
    assert table["h2 x8"][9] == "uvicorn has no HTTP/2"


def test_every_lane_keeps_the_same_requests_in_flight() -> None:
    options = BenchOptions(load=BENCH_LOAD.replace(concurrency=32))
    for lane in LANES:
        chosen = costs.lane_options(options, lane)
        assert chosen.protocol == lane.protocol and chosen.load.h2 == (lane.protocol == H2)
        assert chosen.load.concurrency * chosen.load.streams == 32
        chosen.load.validate(target=False)  # loadgen takes it as it is


def test_every_default_pair_has_a_prediction_for_every_lane_it_speaks() -> None:
    for pair in PROTOCOL_PAIRS:
        server = get_server(pair.server)
        assert server.why_not(H1_TLS) is None
        for lane in LANES:
            if server.why_not(lane.protocol) is None:
                for waits in (False, True):
                    ratio, why = protocol_prediction(pair.server, lane, waits, 32, 2, Knobs())
                    assert 0 < ratio <= 1 and why, (pair, lane, waits)
    assert protocol_prediction("granian", Lane("h1", H1), False, 32, 2, Knobs()) == (
        1.0,
        "the baseline",
    )


def _stackbench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--pairs", "gino_style@nosuch"], "unknown server 'nosuch'"),
        (["--streams", "64"], "--streams 64 needs at least as many --connections (32)"),
        (["--streams", "0"], "--streams: "),
    ],
)
def test_bad_input_is_one_line_before_anything(tmp_path: Path, argv: list[str], said: str) -> None:
    out = tmp_path / "out"
    done = _stackbench("experiment", "protocol-costs", "--output", str(out), *argv)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not out.exists()
