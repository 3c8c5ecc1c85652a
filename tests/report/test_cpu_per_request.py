"""CPU per request split into server, database and client, and the worker_restarted flag,
in the report's tables (Markdown and HTML), from synthetic results with chosen values."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from stackbench.documents import ResultDocument
from stackbench.report import make_report
from stackbench.report.load import LoadedResult
from tests.report.synthetic import result, write_run
from tests.report.test_across_runs import section, table_rows

HEADERS = ["CPU µs/req server", "CPU µs/req db", "CPU µs/req client"]
EXTERNAL = "CPU µs/req db –: the database was external (DATABASE_URL)"
LEGACY = "CPU µs/req – in all three columns: the result was recorded before"
CLOCK = "CPU time read from each process's CPU-time clock (cpu-clock) to 1 ns"


def _report(tmp_path: Path, documents: list[dict]) -> tuple[str, str]:
    run = write_run(tmp_path, "run-cpu", documents)
    outcome = make_report([run], output=tmp_path / "out")
    return outcome.markdown.read_text(), outcome.html.read_text()


def _cells(markdown: str) -> dict[str, dict[str, str]]:
    """Each pair's cells in the scenario's tables (throughput and latency; cost), by header."""
    text = section(markdown, "## Scenario `db`")
    cells: dict[str, dict[str, str]] = {}
    for chunk in text.split("\n| pair |")[1:]:
        table = "| pair |" + chunk
        headers = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
        for row in table_rows(table):
            cells.setdefault(row[0], {}).update(zip(headers, row, strict=True))
    return cells


def _note(markdown: str) -> str:
    """The paragraph above the cost table: what its CPU figures need said."""
    before = section(markdown, "## Scenario `db`").split("| pair | CPU µs/req server", 1)[0]
    return before.strip().split("\n\n")[-1]


def test_cpu_per_request_is_split_and_unknowns_are_explained(tmp_path: Path) -> None:
    markdown, page = _report(
        tmp_path,
        [
            result(
                "x",
                "gino_style",
                "uvicorn",
                5_000,
                cpu_us={"server": 120.4, "database": 40.6, "client": 30.2},
            ),
            result(
                "x",
                "tortoise",
                "uvicorn",
                2_000,
                database_source=None,
                cpu_us={"server": 310.0, "database": None, "client": 55.0},
            ),
            result("x", "fastapi_sqla", "uvicorn", 1_000, legacy=True),
        ],
    )
    cells = _cells(markdown)
    split = {pair: [row[h] for h in HEADERS] for pair, row in cells.items()}
    assert split == {
        "gino_style @ uvicorn": ["120", "41", "30"],
        "tortoise @ uvicorn": ["310", "–", "55"],
        "fastapi_sqla @ uvicorn": ["–", "–", "–"],
    }
    note = _note(markdown)
    assert EXTERNAL in note and LEGACY in note
    for text in (*HEADERS, "the database was external (DATABASE_URL)", "recorded before"):
        assert text in page


def test_no_note_when_every_cpu_split_is_known(tmp_path: Path) -> None:
    markdown, _ = _report(tmp_path, [result("x", "gino_style", "uvicorn", 5_000)])
    assert [_cells(markdown)["gino_style @ uvicorn"][h] for h in HEADERS] == ["250", "90", "40"]
    assert EXTERNAL not in markdown and LEGACY not in markdown
    # Only how the CPU was read, which the report always says.
    note = _note(markdown)
    assert CLOCK + "." in note and "only for" not in note and "no finer" not in note


def test_the_report_says_how_cpu_was_read_and_which_figures_are_coarse(tmp_path: Path) -> None:
    markdown, page = _report(
        tmp_path,
        [
            result("x", "gino_style", "uvicorn", 5_000),
            result("x", "tortoise", "uvicorn", 2_000, cpu_resolution_s=0.01),  # a reap
            result("x", "django_sync", "gunicorn-gthread", 1_500, cpu_resolution_s=None),
        ],
    )
    note = _note(markdown)
    assert CLOCK + "; to 10 ms only for tortoise @ uvicorn (a process reaped a child" in note
    assert "over a short window is no finer than that" in note
    assert "django_sync @ gunicorn-gthread: recorded before stackbench said how" in note
    assert "gino_style @ uvicorn" not in note  # read to the nanosecond: nothing to say
    assert "to 10 ms only for tortoise @ uvicorn" in page


def test_a_worker_restart_is_flagged_beside_the_other_flags(tmp_path: Path) -> None:
    restarted = result("x", "django_async", "granian", 800, worker_exits=2)
    restarted["flags"]["noisy"] = True
    restarted["summary"]["spread"] = 0.2
    markdown, page = _report(
        tmp_path, [restarted, result("x", "gino_style", "uvicorn", 5_000, worker_exits=0)]
    )
    flags = {pair: row["flags"] for pair, row in _cells(markdown).items()}
    assert flags == {
        "gino_style @ uvicorn": "",
        "django_async @ granian": "noisy (spread 20% > 10%); worker restarted (2 exits)",
    }
    assert "worker restarted (2 exits)" in page
    assert "**worker restarted**" in section(markdown, "## How to read this report")


def test_a_proxy_in_front_gets_its_own_cpu_column_and_is_named_in_the_pair(
    tmp_path: Path,
) -> None:
    proxied = result(
        "x",
        "gino_style",
        "uvicorn",
        4_000,
        cpu_us={"server": 200.0, "proxy": 60.4, "database": 90.0, "client": 40.0},
    )
    proxied["proxy"] = {
        "name": "nginx",
        "version": "1.22.1",
        "client_protocol": "h1",
        "upstream": "unix",
        "upstream_address": "unix:/tmp/stackbench-nginx-x/app.sock",
        "workers": 2,
        "command": ["nginx", "-c", "nginx.conf"],
        "config": "proxy/gino_style--uvicorn/nginx.conf",
    }
    # Another pair reached directly: a run's result files are named by pair and scenario.
    direct = result("x", "tortoise", "uvicorn", 5_000)
    markdown, page = _report(tmp_path, [proxied, direct])
    cells = _cells(markdown)
    headers = ["CPU µs/req server", "CPU µs/req proxy", "CPU µs/req db", "CPU µs/req client"]
    split = {pair: [row[h] for h in headers] for pair, row in cells.items()}
    assert split == {
        "gino_style @ uvicorn via nginx (unix)": ["200", "60", "90", "40"],
        "tortoise @ uvicorn": ["250", "–", "90", "40"],
    }
    assert "CPU µs/req proxy" in page and "via nginx (unix)" in page
    # The summary's headline: the proxy's part has a column and counts in the total.
    headline = section(markdown, "## Summary")
    header = next(line for line in headline.splitlines() if line.startswith("| pair |"))
    assert "| server | proxy | db | client |" in header
    rows = {row[0]: row for row in table_rows(headline)}
    assert rows["gino_style @ uvicorn via nginx (unix)"][4:9] == ["390", "200", "60", "90", "40"]
    assert rows["tortoise @ uvicorn"][4:9] == ["380", "250", "–", "90", "40"]


def test_no_proxy_column_without_a_proxy(tmp_path: Path) -> None:
    markdown, _ = _report(tmp_path, [result("x", "gino_style", "uvicorn", 5_000)])
    assert "CPU µs/req proxy" not in markdown


def test_a_pair_through_a_proxy_is_another_measurement_than_the_pair_direct() -> None:
    """Across runs (comparisons, baselines) a result is matched by its key: the pair
    reached through nginx must not be matched with the pair reached directly."""
    direct = result("x", "gino_style", "uvicorn", 5_000)
    proxied = {**direct, "proxy": {"name": "nginx", "upstream": "tcp"}}
    one, other = (
        LoadedResult(cast(ResultDocument, doc), Path("x.json")) for doc in (direct, proxied)
    )
    assert one.key != other.key
    assert other.pair == "gino_style @ uvicorn via nginx (tcp)"
    assert one.pair == "gino_style @ uvicorn"
