"""report --against APP: each app measured beside APP under the same server, priced
against it, from synthetic results with chosen values (the end-to-end run is in
tests/your_app/test_benched_end_to_end.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackbench.report import ReportError, make_report
from tests.report.synthetic import result, write_run
from tests.report.test_across_runs import section, table_rows


def test_each_app_beside_the_baseline_under_the_same_server_is_priced(tmp_path: Path) -> None:
    split = {"database": 90.0, "client": 40.0}
    run = write_run(
        tmp_path,
        "run-against",
        [
            result(
                "x",
                "fastapi_sqla",
                "uvicorn",
                2_000,
                p99_ms=10.0,
                cpu_us={"server": 250.0, **split},
            ),
            result(
                "x",
                "fastapi_timed",
                "uvicorn",
                1_500,
                p99_ms=15.0,
                cpu_us={"server": 400.0, **split},
            ),
            # no fastapi_sqla under granian: nothing to price this row against
            result("x", "fastapi_timed", "granian", 1_800, cpu_us={"server": 300.0, **split}),
        ],
    )
    markdown = make_report([run], output=tmp_path / "out", against="fastapi_sqla").markdown
    text = section(markdown.read_text(), "## Scenario `db`")
    priced = text[text.index("Against `fastapi_sqla`") :]
    (row,) = table_rows(priced)
    assert row == ["fastapi_timed @ uvicorn", "0.75", "0.75", "400", "250", "+150", "1.50", ""]
    without = make_report([run], output=tmp_path / "plain").markdown.read_text()
    assert "Against" not in without


def test_an_app_the_run_did_not_measure_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run-x", [result("x", "gino_style", "uvicorn", 1_000)])
    with pytest.raises(ReportError, match="--against nope: no result of it here"):
        make_report([run], output=tmp_path / "out", against="nope")


def _own(run_id: str, app: Path, server: str, rps: float) -> dict:
    """A result of an app from outside reference_apps/, with the source its run recorded."""
    document = result(run_id, app.name, server, rps)
    document["app_source"] = {
        "path": str(app),
        "declaration": str(app / "stackbench.toml"),
        "declared": {"interfaces": {"asgi": "main:app"}},
        "git": {"commit": None, "dirty": None},
    }
    return document


def test_an_app_of_its_own_is_compared_across_runs_and_named_by_its_path(tmp_path: Path) -> None:
    """report --baseline: the same app of its own, in two runs, is compared like any pair;
    runs that share none are refused with the command that measures them side by side, the
    app of its own named by its directory (its id alone names no app there)."""
    notes = tmp_path / "apps" / "notes"
    base = write_run(tmp_path, "base", [_own("base", notes, "uvicorn", 1_000)])
    new = write_run(tmp_path, "new", [_own("new", notes, "uvicorn", 500)])
    outcome = make_report([new], baseline=[base], output=tmp_path / "compared")
    (change,) = outcome.changes
    assert change.pair == "notes @ uvicorn" and change.flagged  # half the req/s
    other = write_run(tmp_path, "other", [result("other", "gino_style", "granian", 1_000)])
    with pytest.raises(ReportError) as refused:
        make_report([new], baseline=[other], output=tmp_path / "refused")
    assert str(refused.value).endswith(
        f"nox -s bench_pairs -- --pairs gino_style@granian,{notes}@uvicorn"
    )
