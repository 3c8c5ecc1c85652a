"""A comparison is of the same pair, in the same scenario, in two runs. Runs that share
none are refused in one line that gives the command measuring them side by side; and the
environment's differences (dozens of packages after an upgrade) do not fill the page.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stackbench.report import ReportError, make_report
from tests.report.synthetic import result, write_run

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, pairs: list[tuple[str, str]], **kw) -> Path:
    scenario = kw.pop("scenario", "db")
    documents = [result(name, app, server, 1000.0, scenario=scenario) for app, server in pairs]
    return write_run(tmp_path, name, documents, **kw)


def test_a_baseline_that_shares_no_pair_is_refused_with_the_command_that_measures_both(
    tmp_path: Path,
) -> None:
    base = _run(tmp_path, "base", [("django_sync", "gunicorn-gthread")])
    new = _run(tmp_path, "new", [("gino_style", "uvicorn"), ("tortoise", "granian")])
    with pytest.raises(ReportError) as refused:
        make_report([new], baseline=[base], output=tmp_path / "report")
    message = str(refused.value)
    assert "no pair in both" in message and "\n" not in message
    assert message.endswith(
        "nox -s bench_pairs -- --pairs "
        "django_sync@gunicorn-gthread,gino_style@uvicorn,tortoise@granian"
    )
    assert not (tmp_path / "report").exists()  # refused before anything was written

    cli = subprocess.run(
        [sys.executable, "-m", "stackbench", "report", str(new), "--baseline", str(base)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines() == [f"error: {message}"]


def test_the_same_pairs_in_other_scenarios_are_refused_naming_the_scenarios(
    tmp_path: Path,
) -> None:
    base = _run(tmp_path, "base", [("gino_style", "uvicorn")], scenario="json")
    new = _run(tmp_path, "new", [("gino_style", "uvicorn")], scenario="db")
    with pytest.raises(ReportError, match="baseline measured scenarios json, the run db"):
        make_report([new], baseline=[base], output=tmp_path / "report")


def test_one_shared_pair_is_compared(tmp_path: Path) -> None:
    base = _run(tmp_path, "base", [("gino_style", "uvicorn"), ("django_sync", "granian")])
    new = _run(tmp_path, "new", [("gino_style", "uvicorn"), ("tortoise", "granian")])
    outcome = make_report([new], baseline=[base], output=tmp_path / "report")
    verdicts = {c.pair: c.verdict for c in outcome.changes}
    assert verdicts["gino_style @ uvicorn"] == "within noise"


def test_many_package_changes_are_one_line_and_listed_at_the_end(tmp_path: Path) -> None:
    before = {f"package-{i:02d}": "1.0" for i in range(31)}
    after = {name: "1.1" for name in before}
    pairs = [("gino_style", "uvicorn")]
    base = _run(tmp_path, "base", pairs, packages=before)
    new = _run(tmp_path, "new", pairs, packages=after)
    markdown = make_report([new], baseline=[base], output=tmp_path / "r").markdown.read_text()
    comparison = markdown.split("## Comparison against the baseline", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in comparison.splitlines() if line.startswith("- ")]
    assert bullets == [
        "- 31 packages differ (package-00, package-01, package-02, package-03, package-04, …): "
        "every one is listed at the end, under "
        "[Packages that differ from the baseline](#packages-that-differ-from-the-baseline)"
    ]
    at_the_end = markdown.split("## Packages that differ from the baseline", 1)[1]
    assert all(f"- {name} 1.0 → 1.1" in at_the_end for name in before)

    few = _run(tmp_path, "few", pairs, packages={**before, "package-07": "2.0"})
    markdown = make_report([few], baseline=[base], output=tmp_path / "f").markdown.read_text()
    assert "- package-07 1.0 → 2.0" in markdown
    assert "## Packages that differ" not in markdown
