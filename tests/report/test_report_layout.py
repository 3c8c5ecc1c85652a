"""What the report shows first and what it leaves out: the summary (verdicts, headline
figures with CPU per request) and a table of contents at the top; no chart of one bar and
no '× best' column for a single pair; the sampler's readings charted over time.

The runs are synthetic (tests/report/synthetic.py), with chosen figures; the browser test
(test_browser.py) checks a real run's page at 1,280 px.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from stackbench.matrix import REFERENCE_APP, REFERENCE_SERVER
from stackbench.report import make_report
from stackbench.report.load import load_run
from stackbench.report.over_time import over_time, readings, timeline
from tests.report.synthetic import result, write_run
from tests.report.test_across_runs import section, table_rows

REF = (REFERENCE_APP, REFERENCE_SERVER)


def _images(outcome: Any) -> list[str]:
    return sorted(path.name for path in outcome.images)


def test_the_report_opens_with_verdicts_headline_figures_and_contents(tmp_path: Path) -> None:
    degraded = result("x", "django_sync", "granian", 900, status="degraded")
    run = write_run(tmp_path, "run", [result("x", "gino_style", "uvicorn", 5_000), degraded])
    outcome = make_report([run], output=tmp_path / "out")
    markdown = outcome.markdown.read_text()
    assert markdown.split("\n## ", 2)[1].startswith("Summary\n")
    summary = section(markdown, "## Summary")
    assert "- Run `run`: **ok**" in summary
    assert "- 2 results (1 scenario): 1 ok, 1 degraded" in summary
    rows = {row[0]: row for row in table_rows(summary)}
    # pair, scenario, req/s, p99 ms, CPU µs/req (250 + 90 + 40), server, db, client, status
    assert rows["gino_style @ uvicorn"][2:] == ["5,000", "10.0", "380", "250", "90", "40", "ok"]
    assert rows["django_sync @ granian"][-1] == "degraded"
    headings = re.findall(r"^## (.+)$", markdown, re.M)
    contents = markdown.split("**Contents**", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"^- \[(.+)\]\(#([a-z0-9-]+)\)$", contents, re.M)
    assert [text for text, _ in links] == headings[1:]  # every section after the summary
    page = outcome.html.read_text()
    for _, target in links:
        assert f'id="{target}"' in page and f'href="#{target}"' in page


def test_one_pair_has_no_one_bar_chart_and_no_best_column(tmp_path: Path) -> None:
    one = write_run(tmp_path, "one", [result("x", "gino_style", "uvicorn", 5_000)])
    outcome = make_report([one], output=tmp_path / "one-report")
    assert _images(outcome) == ["latency-db.png", "timeseries-db.png"]
    assert "| × best |" not in outcome.markdown.read_text()  # the how-to-read may name it

    two = write_run(
        tmp_path,
        "two",
        [result("x", "gino_style", "uvicorn", 5_000), result("x", "tortoise", "uvicorn", 2_500)],
    )
    outcome = make_report([two], output=tmp_path / "two-report")
    assert "throughput-db.png" in _images(outcome)
    rows = table_rows(section(outcome.markdown.read_text(), "## Scenario `db`"))
    assert [row[:3] for row in rows] == [
        ["gino_style @ uvicorn", "5,000", "1.00"],
        ["tortoise @ uvicorn", "2,500", "0.50"],
    ]


def test_ratios_and_changes_of_one_row_are_not_charted(tmp_path: Path) -> None:
    with_reference = write_run(
        tmp_path, "with-ref", [result("x", *REF, 4_000), result("x", "tortoise", "uvicorn", 2_000)]
    )
    without = write_run(tmp_path, "without", [result("x", "django_sync", "granian", 1_000)])
    outcome = make_report([with_reference, without], output=tmp_path / "across")
    assert not any(name.startswith("ratio-") for name in _images(outcome))  # one ranked row
    assert "| tortoise @ uvicorn | with-ref | 0.50 |" in outcome.markdown.read_text()

    base = write_run(tmp_path, "base", [result("base", "gino_style", "uvicorn", 5_000)])
    new = write_run(tmp_path, "new", [result("new", "gino_style", "uvicorn", 2_000)])
    outcome = make_report([new], baseline=[base], output=tmp_path / "one-change")
    assert "compare.png" not in _images(outcome) and outcome.flagged
    base2 = write_run(
        tmp_path,
        "base2",
        [result("b", "gino_style", "uvicorn", 5_000), result("b", "tortoise", "uvicorn", 2_000)],
    )
    new2 = write_run(
        tmp_path,
        "new2",
        [result("n", "gino_style", "uvicorn", 2_000), result("n", "tortoise", "uvicorn", 2_000)],
    )
    outcome = make_report([new2], baseline=[base2], output=tmp_path / "two-changes")
    assert "compare.png" in _images(outcome)
    summary = section(outcome.markdown.read_text(), "## Summary")
    assert "Against the baseline: **1 of 2** rows changed beyond noise (db, gino_style" in summary


def _sampled(rps: float) -> dict[str, Any]:
    """A result whose repeats carry the sampler's readings: one core busy for the first
    second, none after; 100 then 120 MB; 4 then 8 connections."""
    document = result("x", "gino_style", "uvicorn", rps)
    for repeat in document["repeats"]:
        repeat["loadgen"]["summary"]["elapsed_s"] = 3.0
        repeat["server"]["samples"] = [
            {"t_s": t, "cpu_s": min(t, 1.0), "database_cpu_s": None, "rss_mb": 100.0 + 10 * t,
             "db_connections": 4 if t < 1 else 8}
            for t in (0.0, 0.5, 1.0, 1.5, 2.0)
        ]  # fmt: skip
    return document


def test_the_sampler_readings_are_charted_over_time(tmp_path: Path) -> None:
    run = write_run(tmp_path, "sampled", [_sampled(1_000.0)])
    (loaded,) = load_run(run).results
    _, _, _, spans = timeline(loaded)
    assert spans == [(0.0, 3.0), (3.0, 6.0)]
    series = readings(loaded, spans)
    # The second repeat's readings start where its window does, 3 s in.
    assert series["x_cpu"][:4] == [0.25, 0.75, 1.25, 1.75] and math.isnan(series["x_cpu"][4])
    assert series["x_cpu"][5:9] == [3.25, 3.75, 4.25, 4.75]
    assert series["server"][:4] == pytest.approx([1.0, 1.0, 0.0, 0.0])
    assert all(math.isnan(v) for v in series["database"])  # not read: drawn as nothing
    assert series["rss"][:5] == [100.0, 105.0, 110.0, 115.0, 120.0]
    assert series["conns"][:5] == [4, 4, 8, 8, 8]
    unsampled = load_run(write_run(tmp_path, "older", [result("x", "a", "b", 1.0)])).results[0]
    assert readings(unsampled, timeline(unsampled)[3]) == {}
    chart = over_time([loaded], "db", tmp_path / "over.png", {loaded.pair: "#3b75af"})
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
