"""From measurements to capacity.json and what a person reads of it: a repeat read from
loadgen's report (the rate over the window loadgen measured), a broken job, the document
(validated against the schema generated from documents.py), each app's table, the report's
section and chart. Synthetic run directories: chosen numbers, schema-valid files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stackbench import capacity, results
from stackbench.capacity_cli import CAPACITY
from stackbench.capacity_search import (
    Probe,
    Search,
    SearchSpec,
    failed_probe,
    judge_probe,
    run_search,
)
from stackbench.documents import ResultRow
from stackbench.matrix import Pair
from stackbench.report import capacity as capacity_report
from stackbench.report import make_report
from stackbench.slo import slo_from
from tests.report import synthetic

SLO = slo_from(["p99<100ms", "p99.9<250ms"])


def loadgen_report(
    responses: int = 600,
    elapsed_s: float = 8.0,
    failed: int = 0,
    errors: int = 0,
    p99_ms: float = 20.0,
    body_fails: int = 0,
    client_ok: bool = True,
    lag_ms: float = 2.0,
) -> dict[str, Any]:
    """The part of loadgen's JSON report a capacity reading uses."""
    percentiles = {"50": 5.0, "90": 10.0, "99": p99_ms, "99.9": p99_ms * 2, "100": p99_ms * 3}
    return {
        "version": 1,
        "summary": {
            "requests": responses + errors,
            "responses": responses,
            "ok": responses - failed,
            "failed": failed,
            "errors": errors,
            "elapsed_s": elapsed_s,
            "rps": responses / elapsed_s,
        },
        "latency": {
            "headline": "corrected",
            "uncorrected": {"percentiles_ns": {k: v * 5e5 for k, v in percentiles.items()}},
            "corrected": {"percentiles_ns": {k: v * 1e6 for k, v in percentiles.items()}},
        },
        "errors": {},
        "checks": [
            {"name": "db: status is 200", "passes": responses - failed, "fails": failed},
            {"name": "body shape", "passes": 40 - body_fails, "fails": body_fails},
        ],
        "self_checks": {"client_cpu": {"ok": client_ok, "cpu_per_wall_s": 0.3}},
        "open_model": {"scheduler_lag_ns": {"p50": int(lag_ms * 1e5), "p99": int(lag_ms * 1e6)}},
    }


def test_a_repeat_is_read_over_the_window_loadgen_measured() -> None:
    """A 4 s probe whose window loadgen measured as 8 s (the server stalled, the last
    answers drained late): 600 responses are 75 per second, not the 150 that dividing by
    the asked-for 4 s would claim."""
    read = capacity.reading(loadgen_report(responses=600, elapsed_s=8.0))  # type: ignore[arg-type]
    assert read.achieved == 75.0
    assert read.latency_ms["99"] == 20.0  # corrected, the open model's headline
    planted = loadgen_report(failed=6, errors=4, body_fails=3, client_ok=False, lag_ms=70.0)
    read = capacity.reading(planted)  # type: ignore[arg-type]
    assert read.error_rate == pytest.approx(10 / 604)  # failed statuses + transport errors
    assert read.wrong == 3  # body checks only: the status check is the error rate's
    assert read.client_busy and read.client_lag_ms == pytest.approx(70.0)
    assert read.client_lag_median_ms == pytest.approx(7.0)


def _write(run_dir: Path, name: str, document: dict[str, Any]) -> None:
    results.write_json(run_dir / name, {**document, "run_id": run_dir.name}, "result")


def test_a_broken_job_is_no_answer_about_the_rate(tmp_path: Path) -> None:
    flags: Any = {"noisy": False, "client_saturated": False, "checks_failed": False}
    gone = synthetic.result("run", "gino_style", "uvicorn", None, status="failed")
    _write(tmp_path, "gone.json", gone)
    row = ResultRow(
        file="gone.json", app="gino_style", server="uvicorn", label="r100", scenario="db",
        status="failed", reason="server exited with code 1 during the run", summary=None,
        flags=flags,
    )  # fmt: skip
    probe = capacity.probe_from_row(100.0, row, tmp_path, SLO)
    assert (probe.outcome, probe.reason) == ("failed", "server exited with code 1 during the run")
    # every repeat measured and the server alive: a failed verdict is an answer (errors)
    answered = synthetic.result("run", "gino_style", "uvicorn", 100.0, status="failed")
    for repeat in answered["repeats"]:
        repeat["loadgen"] = loadgen_report(responses=0, errors=300)
    _write(tmp_path, "none.json", answered)
    probe = capacity.probe_from_row(100.0, {**row, "file": "none.json"}, tmp_path, SLO)
    assert probe.outcome == "errors" and probe.outcomes == ("errors", "errors")


def capacity_run(base: Path, capacities: dict[str, float | None]) -> Path:
    """A capacity run directory of gino_style's servers, each holding the SLO up to its
    capacity (None: not even the lowest rate), three repeats a probe."""
    run_dir = base / "20250101T000000Z-gino_style-capacity-abcd"
    run_dir.mkdir(parents=True)
    spec = SearchSpec(start_rate=100.0, precision=0.05)
    options = replace(CAPACITY, load=CAPACITY.load.replace(duration=5.0))
    plan = capacity.CapacityPlan(SLO, spec, options)
    searches = {}
    for server, known in capacities.items():

        def measure(rate: float, server: str = server, known: float | None = known) -> Probe:
            name = f"gino_style--{server}--db--{capacity.probe_label(rate)}.json"
            document = synthetic.result(run_dir.name, "gino_style", server, rate)
            _write(run_dir, name, document)
            holds = known is not None and rate <= known
            readings = [
                capacity.reading(loadgen_report(  # type: ignore[arg-type]
                    responses=int(rate * 5), elapsed_s=5.0, p99_ms=(20 if holds else 300) + i,
                ))
                for i in range(3)
            ]  # fmt: skip
            return judge_probe(rate, readings, SLO, name)

        searches[Pair("gino_style", server)] = run_search(measure, spec)
    document = capacity.capacity_document(run_dir, searches, plan, "2025-01-01T00:00:00+00:00")
    results.write_json(run_dir / results.CAPACITY_FILE, document, "capacity")
    return run_dir


def test_the_document_ranks_an_apps_pairs_by_their_brackets(tmp_path: Path) -> None:
    run_dir = capacity_run(tmp_path, {"uvicorn": 1000.0, "granian": 1020.0, "daphne": 300.0})
    document = results.read_capacity(run_dir / "capacity.json")
    by_server = {p["server"]: p for p in document["pairs"]}
    assert {s: (p["verdict"], p["rank"]) for s, p in by_server.items()} == {
        "uvicorn": ("tied", "1="),  # [993.2, 1037]: overlaps granian's
        "granian": ("tied", "1="),
        "daphne": ("worse", "3"),
    }
    uvicorn = by_server["uvicorn"]
    low, high = uvicorn["bracket"]
    assert low is not None and high is not None and low <= 1000.0 < high <= low * 1.05
    assert uvicorn["sustainable_rate"] == low and uvicorn["status"] == "resolved"
    at = uvicorn["at_sustainable"]
    assert at is not None and at["rate"] == low and at["p99_ms"] == 21.0  # median of 20, 21, 22
    assert (at["server_cpu_us_per_request"], at["database_cpu_us_per_request"]) == (250.0, 90.0)
    assert at["rss_mb_per_worker"] == 40.0  # 80 MB over 2 workers
    passing = next(p for p in uvicorn["probes"] if p["rate"] == low)
    assert passing["latency_range_ms"]["99"] == [20.0, 22.0]  # the spread over the repeats
    assert passing["latency_ms"]["99.9"] == 42.0 and len(passing["repeats"]) == 3
    assert document["slo"]["rules"] == ["p99<100ms", "p99.9<250ms", "errors<1%"]
    assert document["search"]["unseen_overload"] == pytest.approx(0.1 / 7, abs=1e-4)


def test_a_pair_that_fails_at_the_lowest_rate_is_unranked_and_said(tmp_path: Path) -> None:
    run_dir = capacity_run(tmp_path, {"uvicorn": 1000.0, "hypercorn": None})
    document = results.read_capacity(run_dir / "capacity.json")
    hypercorn = next(p for p in document["pairs"] if p["server"] == "hypercorn")
    assert (hypercorn["status"], hypercorn["bracket"], hypercorn["verdict"]) == (
        "below_lowest",
        [None, 100.0],
        "unranked",
    )
    assert hypercorn["rank"] is None
    assert hypercorn["at_sustainable"] is None
    assert (hypercorn["reason"] or "").startswith("fails at the lowest rate 100 req/s: p99")
    (table,) = capacity_report.tables(document)
    assert table.rows[0][:3] == ["uvicorn", "993.2", "[993.2, 1,037]"]
    assert table.rows[0][-1] == "best"
    assert table.rows[1][:3] == ["hypercorn", "fails at 100", "[–, 100]"]
    assert any("fails at the lowest rate" in line for line in capacity_report.notes(document))


def test_the_report_draws_each_bracket_and_tables_the_capacity(tmp_path: Path) -> None:
    run_dir = capacity_run(tmp_path / "runs", {"uvicorn": 1000.0, "granian": 400.0})
    outcome = make_report([run_dir], output=tmp_path / "report")
    text = outcome.markdown.read_text()
    assert f"## Capacity at the SLO: run `{run_dir.name}`" in text
    assert "| server | sustainable req/s | bracket [pass, fail] |" in text
    row = (
        "| uvicorn | 993.2 | [993.2, 1,037] | 21.0 (20.0–22.0) | 42.0 | 250 + 90 | 40 | 9 "
        "| 1 | best |"
    )
    assert row in text
    assert "Scenario `db`" not in text  # the probes are the search's, not a bench's table
    chart = next(path for path in outcome.images if path.name.startswith("capacity-"))
    assert chart.stat().st_size > 10_000
    assert "data:image/png;base64," in outcome.html.read_text()
    markdown = capacity_report.markdown(results.read_capacity(run_dir / "capacity.json"))
    assert (
        row in markdown and "- gino_style @ granian: 100 ✓, 200 ✓, 400 ✓, 800 latency" in markdown
    )


def test_a_search_whose_only_probe_broke_is_written_tabled_and_charted(tmp_path: Path) -> None:
    """A probe that broke before it measured anything (an agent of capacity --agents that
    failed, say): no p99 to draw, and the run's answer, table and chart are still made."""
    run_dir = tmp_path / "20250101T000000Z-gino_style-uvicorn-target-capacity-abcd"
    run_dir.mkdir()
    spec = SearchSpec(start_rate=20.0)
    options = replace(CAPACITY, load=CAPACITY.load.replace(duration=2.0, agent=(0, 2)))
    reason = "agent 1/2 exited with code 1: nothing on stderr"
    search = Search(spec)
    search.record(failed_probe(20.0, reason))
    plan = capacity.CapacityPlan(SLO, spec, options)
    searches = {Pair("gino_style", "uvicorn"): search}
    document = capacity.capacity_document(run_dir, searches, plan, "2025-01-01T00:00:00+00:00")
    results.write_json(run_dir / results.CAPACITY_FILE, document, "capacity")
    (pair,) = results.read_capacity(run_dir / "capacity.json")["pairs"]
    assert (pair["status"], pair["reason"]) == (
        "failed",
        f"the measurement broke at 20 req/s: {reason}",
    )
    assert [(p["rate"], p["outcome"], p.get("agents")) for p in pair["probes"]] == [
        (20.0, "failed", 1)  # no AgentHosts in this plan: one agent asked
    ]
    (table,) = capacity_report.tables(document)
    assert table.rows[0][0] == "uvicorn"
    assert capacity_report.chart(document, tmp_path / "capacity.png").stat().st_size > 0


def test_the_pairs_take_turns_the_order_reversed_every_round(tmp_path: Path) -> None:
    """One probe per unfinished search per round, the order reversed each round (so a
    machine slowing down for a while slows every pair alike); a finished search drops
    out. Each probe read back from the result document its job wrote."""
    spec = SearchSpec(start_rate=100.0, precision=0.05)
    plan = capacity.CapacityPlan(SLO, spec, CAPACITY)
    capacities = {"uvicorn": 1000.0, "granian": 150.0, "daphne": 50.0}
    asked: list[tuple[str, float]] = []
    told: list[tuple[str, float]] = []

    def prober(server: str):
        def probe(rate: float) -> ResultRow:
            asked.append((server, rate))
            name = f"gino_style--{server}--db--{capacity.probe_label(rate)}.json"
            document = synthetic.result(tmp_path.name, "gino_style", server, rate)
            p99 = 20.0 if rate <= capacities[server] else 300.0
            for repeat in document["repeats"]:
                repeat["loadgen"] = loadgen_report(int(rate * 5), elapsed_s=5.0, p99_ms=p99)
            _write(tmp_path, name, document)
            flags: Any = {"noisy": False, "client_saturated": False, "checks_failed": False}
            return ResultRow(
                file=name, app="gino_style", server=server, label=capacity.probe_label(rate),
                scenario="db", status="ok", reason=None, summary=None, flags=flags,
            )  # fmt: skip

        return probe

    probers = {Pair("gino_style", server): prober(server) for server in capacities}
    searches = capacity.search_in_turns(
        probers, plan, tmp_path, on_probe=lambda pair, probe: told.append((pair.server, probe.rate))
    )
    assert told == asked  # each probe judged as it came
    servers = [server for server, _ in asked]
    # daphne fails at once (50 < 100): its search ends after round 1
    assert servers[:3] == ["uvicorn", "granian", "daphne"]
    assert servers[3:5] == ["granian", "uvicorn"]  # round 2, reversed, without daphne
    assert servers[5:7] == ["uvicorn", "granian"]  # round 3, reversed again
    assert searches[Pair("gino_style", "daphne")].status == "below_lowest"
    low, high = searches[Pair("gino_style", "granian")].bracket
    assert low is not None and high is not None and low <= 150.0 < high <= low * 1.05
    assert searches[Pair("gino_style", "uvicorn")].status == "resolved"


@pytest.mark.parametrize("width", [200, 110, 80, 40])
def test_the_terminal_table_fits_without_cutting_a_figure(tmp_path: Path, width: int) -> None:
    """Wide, every column; narrower, the columns least needed to decide left out (and
    said); narrowest, a line per pair: never a figure cut."""
    from stackbench.terminal_tables import _probe

    run_dir = capacity_run(tmp_path, {"uvicorn": 1000.0, "granian": 1020.0, "daphne": 300.0})
    (table,) = capacity_report.tables(results.read_capacity(run_dir / "capacity.json"))
    probe = _probe(width)
    with probe.capture() as captured:
        probe.print(capacity_report.terminal_table(table, width), crop=False)
    text = captured.get()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width, text
    for figure in ("993.2", "[993.2, 1,037]", "1=", "295.3", "worse"):
        assert figure in text, (figure, text)
    if width == 200:
        assert "left out for width" not in text and "RSS MB/worker" in text
        assert "bracket [pass, fail]" in text  # a header, not rich markup
    if width == 40:
        assert "uvicorn: rank 1=, tied\n  sustainable req/s: 993.2\n" in text, text
