"""Reports of several runs (CI jobs on different machines): raw numbers are ranked only
within a run; across runs only ratios to the reference measured in the same run are.

The runs are synthetic (tests/report/synthetic.py): the numbers are chosen so that a
ranking by raw req/s and a ranking by ratio disagree, which real runs cannot promise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackbench.matrix import REFERENCE_APP, REFERENCE_PAIR, REFERENCE_SERVER
from stackbench.report import ReportError, make_report
from tests.report.synthetic import result, write_run

REF = (REFERENCE_APP, REFERENCE_SERVER)


def section(markdown: str, heading: str) -> str:
    """The text under one heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    body = markdown.split(heading + "\n", 1)[1]
    for line in body.splitlines():
        if line.startswith("#") and len(line.split(" ", 1)[0]) <= len(level):
            return body.split("\n" + line + "\n", 1)[0]
    return body


def table_rows(text: str, first_header: str = "| pair |") -> list[list[str]]:
    """Cells of the first Markdown table in ``text`` whose header starts as given."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def scenario_tables(markdown: str) -> list[list[list[str]]]:
    """Every table ranked by raw req/s (pair, then req/s; × best where it has two pairs)."""
    tables = []
    for chunk in markdown.split("\n| pair | req/s |")[1:]:
        tables.append(table_rows("| pair | req/s |" + chunk))
    return tables


def test_runs_on_different_machines_are_ranked_by_ratio_not_raw_numbers(tmp_path: Path) -> None:
    """A fast machine's 6,000 req/s is 0.60 of its reference; a slow machine's 1,600 is
    0.80 of its own: raw numbers would put django_sync first, the ratios put tortoise."""
    fast = write_run(
        tmp_path,
        "run-fast",
        [result("x", *REF, 10_000, p99_ms=4.0), result("x", "django_sync", "granian", 6_000)],
        cpu=("Fast CPU", 16),
    )
    slow = write_run(
        tmp_path,
        "run-slow",
        [result("x", *REF, 2_000, p99_ms=20.0), result("x", "tortoise", "uvicorn", 1_600)],
        cpu=("Slow CPU", 2),
    )
    # Two directories sharing only the reference pair are merged, not compared.
    outcome = make_report([fast, slow], output=tmp_path / "out")
    assert outcome.changes == [] and outcome.warnings == []
    markdown = outcome.markdown.read_text()
    assert "## Comparison against the baseline" not in markdown
    assert "2 distinct machine(s)" in markdown
    assert "**Within one run** the pairs ran side by side on one machine" in markdown
    assert f"ratio to {REFERENCE_PAIR}" in markdown

    across = section(markdown, "## Across runs: scenario `db`")
    ranked = table_rows(across)
    assert [row[:4] for row in ranked] == [
        [f"{REFERENCE_PAIR} (the reference)", "each run", "1.00", "1.00"],
        ["tortoise @ uvicorn", "run-slow", "0.80", "0.50"],  # p99 10 ms / the slow ref's 20
        ["django_sync @ granian", "run-fast", "0.60", "2.50"],
    ]
    assert "6,000" not in across and "1,600" not in across  # no raw req/s across runs
    references = table_rows(across, "| run |")
    assert [(r[0], r[2], r[5]) for r in references] == [
        ("run-fast", "10,000", "ranked as ratios"),
        ("run-slow", "2,000", "ranked as ratios"),
    ]
    assert "16× Fast CPU" in references[0][1] and "2× Slow CPU" in references[1][1]

    # Raw numbers stay within their run: no table ranked by req/s holds both runs' pairs.
    raw = scenario_tables(markdown)
    assert len(raw) == 2
    for table in raw:
        pairs = {row[0] for row in table}
        assert not {"django_sync @ granian", "tortoise @ uvicorn"} <= pairs
    fast_section = section(markdown, "## Run `run-fast`: within one machine")
    assert [row[:3] for row in table_rows(fast_section)] == [
        [REFERENCE_PAIR, "10,000", "1.00"],
        ["django_sync @ granian", "6,000", "0.60"],
    ]
    assert "tortoise" not in fast_section
    assert (outcome.output / "ratio-db.png").is_file()
    page = outcome.html.read_text()
    assert "× reference req/s" in page and "run-slow" in page


def test_runs_without_a_usable_reference_are_shown_per_run_not_ranked(tmp_path: Path) -> None:
    """A run that did not measure the reference, and one whose reference failed, have
    nothing to divide by: their rows (even a huge raw req/s) stay out of the ranking."""
    measured = write_run(
        tmp_path,
        "run-a",
        [result("x", *REF, 2_000), result("x", "fastapi_sqla", "uvicorn", 1_000)],
    )
    missing = write_run(tmp_path, "run-c", [result("x", "tortoise", "granian", 50_000)])
    failed = write_run(
        tmp_path,
        "run-d",
        [result("x", *REF, None, status="failed"), result("x", "django_async", "daphne", 900)],
    )
    outcome = make_report([measured, missing, failed], output=tmp_path / "out")
    markdown = outcome.markdown.read_text()
    across = section(markdown, "## Across runs: scenario `db`")
    ranked = [row[0] for row in table_rows(across)]
    assert ranked == [f"{REFERENCE_PAIR} (the reference)", "fastapi_sqla @ uvicorn"]
    why = {row[0]: row[5] for row in table_rows(across, "| run |")}
    assert why == {
        "run-a": "ranked as ratios",
        "run-c": "not ranked: the reference was not measured in this run",
        "run-d": "not ranked: the reference is failed",
    }
    # Their rows are still reported, in their own run's section.
    missing_section = section(markdown, "## Run `run-c`: within one machine")
    assert [row[:2] for row in table_rows(missing_section)] == [["tortoise @ granian", "50,000"]]
    assert "django_async @ daphne" in section(markdown, "## Run `run-d`: within one machine")


def test_no_usable_reference_anywhere_ranks_nothing_across_runs(tmp_path: Path) -> None:
    one = write_run(tmp_path, "run-1", [result("x", "tortoise", "granian", 5_000)])
    two = write_run(tmp_path, "run-2", [result("x", "fastapi_sqla", "uvicorn", 1_000)])
    markdown = make_report([one, two], output=tmp_path / "out").markdown.read_text()
    across = section(markdown, "## Across runs: scenario `db`")
    assert "nothing is ranked across runs" in across
    assert "| pair |" not in across  # no ranking table at all
    assert len(scenario_tables(markdown)) == 2  # one raw table per run


def test_one_run_is_reported_as_before(tmp_path: Path) -> None:
    run = write_run(
        tmp_path,
        "run-only",
        [
            result("x", "django_sync", "granian", 3_000),
            result("x", *REF, 6_000),
            result("x", "tortoise", "uvicorn", 1_500),
        ],
    )
    markdown = make_report([run], output=tmp_path / "out").markdown.read_text()
    assert "Across runs" not in markdown and "Comparing these runs" not in markdown
    rows = table_rows(section(markdown, "## Scenario `db`"))
    assert [row[:3] for row in rows] == [
        [REFERENCE_PAIR, "6,000", "1.00"],
        ["django_sync @ granian", "3,000", "0.50"],
        ["tortoise @ uvicorn", "1,500", "0.25"],
    ]
    assert (tmp_path / "out" / "throughput-db.png").is_file()


def test_the_same_run_given_twice_is_still_refused(tmp_path: Path) -> None:
    """The reference may repeat across runs, not within one run given twice."""
    run = write_run(tmp_path, "run-1", [result("x", *REF, 2_000)])
    again = Path(shutil.copytree(run, tmp_path / "copy"))
    with pytest.raises(ReportError, match="--baseline"):
        make_report([run, again, again], output=tmp_path / "out")
    other = write_run(tmp_path, "run-2", [result("x", *REF, 2_100)])
    # Two runs of only the reference measured the same pairs: that is a comparison.
    outcome = make_report([run, other], output=tmp_path / "cmp")
    assert [c.pair for c in outcome.changes] == [REFERENCE_PAIR]
