"""tls-termination: the lanes planned for a pair (a lane the server cannot speak said
missing with servers.py's reason), the predictions and their reasons, each ratio and
decision from planted figures (paired by round, on the whole stack's CPU), bad input in
one line before anything starts, and one short real run (slow) through nginx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared_fixtures.processes import OWNER, OWNER_VAR, processes_owned_by
from stackbench import cli
from stackbench.experiments import TLS_TERMINATION_PAIRS
from stackbench.experiments import cli as experiment_cli
from stackbench.experiments import tls_termination as tls
from stackbench.experiments.duets import Ratio, total_cpu_us
from stackbench.experiments.protocols import ProtocolsOutcome, lane_options, missing_lanes, record
from stackbench.options import BENCH_LOAD, BenchOptions
from stackbench.servers import H1, H1_TLS, H2, Knobs, Speaks, get_server

ROOT = Path(__file__).resolve().parents[2]
LANES = tls.lanes()
BY_NAME = {lane.name: lane for lane in LANES}


def test_the_lanes_of_a_pair_and_what_ends_each() -> None:
    assert [(lane.name, lane.protocol, lane.front) for lane in LANES] == [
        ("h1", H1, None),
        ("h1-tls at server", H1_TLS, None),
        ("h1-tls at nginx", H1_TLS, "nginx"),
        ("h2 at server", H2, None),
        ("h2 at nginx", H2, "nginx"),
    ]
    assert [lane.label for lane in LANES] == [
        "h1", "h1-tls-server", "h1-tls-nginx", "h2-server", "h2-nginx",
    ]  # fmt: skip
    options = BenchOptions(load=BENCH_LOAD, upstream="unix")
    behind = lane_options(options, BY_NAME["h2 at nginx"])
    assert (behind.proxy, behind.upstream, behind.protocol, behind.load.h2) == (
        "nginx", "unix", H2, True,
    )  # fmt: skip
    direct = lane_options(options, BY_NAME["h1-tls at server"])
    assert (direct.proxy, direct.upstream, direct.protocol) == (None, None, H1_TLS)
    assert tls.other_end(BY_NAME["h2 at nginx"]) == "h2 at server"
    assert tls.other_end(BY_NAME["h1-tls at server"]) == "h1-tls at nginx"
    assert tls.other_end(BY_NAME["h1"]) is None


def test_a_server_without_http2_has_its_h2_lane_missing_with_the_reason() -> None:
    # uvicorn: no HTTP/2. nginx can still end h2 in front of it (it speaks HTTP/1.1 to it).
    assert missing_lanes("uvicorn", LANES) == {"h2 at server": "uvicorn has no HTTP/2"}
    assert missing_lanes("hypercorn", LANES) == {}
    assert "h2 at server" in missing_lanes("gunicorn-sync", LANES)


def test_every_default_pair_ends_tls_itself_and_has_a_prediction() -> None:
    assert len({pair.app for pair in TLS_TERMINATION_PAIRS}) == 2
    for pair in TLS_TERMINATION_PAIRS:
        assert get_server(pair.server).why_not(H1_TLS) is None, pair
        for protocol in (H1_TLS, H2):
            p = tls.predict(pair.server, protocol, 2, Knobs())
            assert 0 < p.at_proxy < 1 and 0 < p.at_server <= 1 and pair.server in p.why


def test_the_predictions_follow_where_tls_is_done() -> None:
    # granian's rustls costs about what nginx's OpenSSL does, so nginx's hop loses; a
    # Python TLS layer (hypercorn's asyncio SSL protocol) costs about what the hop does;
    # python-hyper's h2 in Python costs more than nginx's hop and h2 in C together.
    assert tls.predict("granian", H1_TLS, 2, Knobs()).proxy_over_server < 0.9
    assert 0.95 < tls.predict("hypercorn", H1_TLS, 2, Knobs()).proxy_over_server < 1.1
    hypercorn_h2 = tls.predict("hypercorn", H2, 2, Knobs())
    assert hypercorn_h2.proxy_over_server > 1.5
    assert "python-hyper" in hypercorn_h2.why and "nginx's HTTP/2 module" in hypercorn_h2.why


def _row(server: str, cpu_us: dict[str, float | None] | None, p99: float = 10.0) -> Any:
    ok = cpu_us is not None
    summary = {"rps": 500.0, "p99_ms": p99, "requests_per_server_cpu_s": 1000.0,
               "cpu_us_per_request": cpu_us}  # fmt: skip
    return {
        "app": "gino_style", "server": server, "scenario": "db",
        "status": "ok" if ok else "degraded", "reason": None if ok else "planted",
        "summary": summary if ok else None,
    }  # fmt: skip


def _outcome(tmp_path: Path, server: str) -> ProtocolsOutcome:
    outcome = ProtocolsOutcome(tmp_path, LANES, 32, 2, BenchOptions(load=BENCH_LOAD))
    outcome.skipped[("gino_style", server)] = missing_lanes(server, LANES)
    return outcome


def _direct(total: float) -> dict[str, float | None]:
    return {"server": total - 300, "database": 200.0, "client": 100.0}


def _proxied(total: float) -> dict[str, float | None]:
    return {"server": total - 500, "proxy": 200.0, "database": 200.0, "client": 100.0}


def test_the_total_counts_the_proxy_and_refuses_a_part_unread() -> None:
    assert total_cpu_us(_proxied(1000.0)) == 1000.0  # type: ignore[arg-type]
    assert total_cpu_us(_direct(1000.0)) == 1000.0  # type: ignore[arg-type]
    unread = {**_proxied(1000.0), "proxy": None}
    assert total_cpu_us(unread) is None  # type: ignore[arg-type]


def test_each_ratio_is_paired_with_the_other_end_of_its_round(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "hypercorn")
    # Round 2's machine is slower for every lane: the paired ratios do not move.
    for round_, scale in enumerate((1.0, 2.0)):
        record(outcome, BY_NAME["h1"], _row("hypercorn", _direct(1000 * scale)), round_)
        tls_server = _row("hypercorn", _direct(1250 * scale), p99=20.0)
        record(outcome, BY_NAME["h1-tls at server"], tls_server, round_)
        tls_nginx = _row("hypercorn", _proxied(1250 * scale), p99=10.0)
        record(outcome, BY_NAME["h1-tls at nginx"], tls_nginx, round_)
        record(outcome, BY_NAME["h2 at server"], _row("hypercorn", _direct(2000 * scale)), round_)
        record(outcome, BY_NAME["h2 at nginx"], _row("hypercorn", _proxied(1000 * scale)), round_)
    table = {row[2]: row for row in tls.rows(outcome)}
    assert table["h1"][11] == "the baseline" and table["h1"][5] == "750"  # 1e6/1000, 1e6/2000
    # h1-tls: the same total CPU at both ends: 1.00 each way, "either".
    assert table["h1-tls at nginx"][6] == "0.80 (0.80–0.80)"  # x h1
    assert table["h1-tls at nginx"][7] == "1.00 (1.00–1.00)"
    assert table["h1-tls at nginx"][9] == "0.50 (0.50–0.50)"  # p99 x the server's
    assert table["h1-tls at nginx"][10] == table["h1-tls at server"][10] == tls.EITHER
    # h2: nginx does twice the requests per CPU-second the server does: end it at nginx.
    assert table["h2 at nginx"][7].startswith("2.00 (2.00–2.00)")
    assert table["h2 at server"][7].startswith("0.50 (0.50–0.50)")
    assert table["h2 at nginx"][10] == table["h2 at server"][10] == tls.NGINX_END
    predicted = tls.predict("hypercorn", H2, 2, Knobs()).proxy_over_server
    assert table["h2 at nginx"][8] == f"{predicted:.2f}"
    assert table["h2 at server"][8] == f"{1 / predicted:.2f}"


def test_a_measurement_far_from_its_prediction_is_marked(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "granian")
    # Predicted for granian's h1-tls: nginx ~0.87 of the server. Planted: nginx 1.5 x.
    record(outcome, BY_NAME["h1"], _row("granian", _direct(1000)), 0)
    record(outcome, BY_NAME["h1-tls at server"], _row("granian", _direct(1500)), 0)
    record(outcome, BY_NAME["h1-tls at nginx"], _row("granian", _proxied(1000)), 0)
    record(outcome, BY_NAME["h2 at server"], _row("granian", _direct(1000)), 0)
    record(outcome, BY_NAME["h2 at nginx"], _row("granian", _proxied(1150)), 0)
    table = {row[2]: row for row in tls.rows(outcome)}
    assert table["h1-tls at nginx"][7] == "1.50 (1.50–1.50) ⚠"
    assert table["h1-tls at nginx"][10] == tls.NGINX_END
    # h2: nginx 0.87 of the server, as predicted (0.88): no mark; the server wins.
    assert table["h2 at nginx"][7] == "0.87 (0.87–0.87)", table["h2 at nginx"]
    assert table["h2 at nginx"][10] == tls.SERVER_END


@pytest.mark.parametrize(
    ("median", "verdict"),
    [(1.06, tls.NGINX_END), (1.04, tls.EITHER), (0.96, tls.EITHER), (0.94, tls.SERVER_END),
     (None, None)],
)  # fmt: skip
def test_the_decision_from_the_median_ratio(median: float | None, verdict: str | None) -> None:
    assert tls.decision(Ratio(median, median, median)) == verdict


def test_a_lane_not_spoken_is_said_missing_and_nginx_is_the_only_end(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, "uvicorn")
    record(outcome, BY_NAME["h1"], _row("uvicorn", _direct(1000)), 0)
    record(outcome, BY_NAME["h2 at nginx"], _row("uvicorn", _proxied(1250)), 0)
    record(outcome, BY_NAME["h1-tls at server"], _row("uvicorn", None), 0)  # not clean
    record(outcome, BY_NAME["h1-tls at nginx"], _row("uvicorn", _proxied(1250)), 0)
    table = {row[2]: row for row in tls.rows(outcome)}
    assert table["h2 at server"][3] == "–" and table["h2 at server"][11] == "uvicorn has no HTTP/2"
    assert table["h2 at nginx"][10] == tls.NGINX_END
    assert table["h2 at nginx"][11] == "only nginx: uvicorn has no HTTP/2"
    # The server's TLS lane was not measured cleanly: no ratio, no decision, a failure said.
    assert table["h1-tls at nginx"][7] == "–" and table["h1-tls at nginx"][10] == "–"
    (failure,) = outcome.failures
    assert failure == "gino_style @ uvicorn db h1-tls at server, round 1: degraded: planted"
    assert "Not measured cleanly" in tls.markdown(outcome, "python -m stackbench experiment x")


# ---------------------------------------------------------------- bad input


def _experiment(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "experiment", "tls-termination", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--pairs", "gino_style@nosuch"], "unknown server 'nosuch'"),
        (["--pairs", "nosuch@uvicorn"], "nosuch"),
        (["--pairs", "gino_style@uvicorn", "--upstream", "smoke"], "--upstream"),
    ],
)
def test_bad_input_is_one_line_before_anything(argv: list[str], says: str, tmp_path: Path) -> None:
    done = _experiment(*argv, "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_nginx_missing_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no nginx on it
    done = _experiment("--output", str(tmp_path / "out"), env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: tls-termination: nginx is not installed here, or not on PATH "
        "(Debian: apt-get install nginx-light, which puts it in /usr/sbin)"
    )
    assert not (tmp_path / "out").exists()


def test_a_server_that_speaks_no_tls_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every server here ends TLS: plant one that cannot, as servers.py would declare it.
    plain = replace(
        get_server("uvicorn"),
        speaks=Speaks(None, None, None, why_not={H1_TLS: "planted: no TLS", H2: "no", "h2c": "no"}),
    )
    monkeypatch.setattr(experiment_cli, "get_server", lambda server_id: plain)
    out = tmp_path / "out"
    code = cli.main(
        ["experiment", "tls-termination", "--pairs", "gino_style@uvicorn", "--output", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot end TLS itself (planted: no TLS)" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


# ---------------------------------------------------------------- one short real run


def _results(run_dir: Path) -> dict[str, Any]:
    """Each lane's result on disk, by the label in its file name."""
    found = {}
    for path in run_dir.glob("gino_style--uvicorn--db--*.json"):
        found[path.stem.rsplit("--", 1)[1]] = json.loads(path.read_text())
    return found


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_a_short_run_names_the_lanes_and_counts_the_proxy(tmp_path: Path) -> None:
    owner = f"{OWNER}-tls-termination"  # what this run starts, and nothing else, carries it
    done = _experiment(
        "--pairs", "gino_style@uvicorn", "--duration", "1s", "--warmup", "1s",
        "--repeats", "1", "--ready-timeout", "90s", "--output", str(tmp_path),
        env={**os.environ, OWNER_VAR: owner}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = tmp_path.iterdir()
    text = (run_dir / "experiment.md").read_text()
    for lane in LANES:
        assert f"| gino_style @ uvicorn | db | {lane.name} |" in text, lane.name
    assert "uvicorn has no HTTP/2" in text
    results = _results(run_dir)
    assert sorted(results) == [
        "h1-r1", "h1-tls-nginx-r1", "h1-tls-server-r1", "h2-nginx-r1",
    ]  # fmt: skip
    for label, document in results.items():
        split = document["summary"]["cpu_us_per_request"]
        if "nginx" in label:
            assert split["proxy"] is not None and split["proxy"] > 0, (label, split)
        else:
            assert "proxy" not in split, (label, split)
    assert not processes_owned_by(owner), "a process of the run is still running"
