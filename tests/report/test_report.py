"""Reports from a real run directory: tables, charts, HTML, damaged files, comparison.

The run directory is measured once per session (``conftest.bench_run``); tests that damage
or rewrite it work on a copy. The comparison tests build their second run by copying the
real run and scaling its numbers (said so in each test): a real rerun and a real
half-the-workers run on a shared 2-core machine are in the report of issue 6, not here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackbench.report import ReportError, make_report
from stackbench.report.compare import RPS_MIN_BOUND, compare
from stackbench.report.load import LoadedResult, load_run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# One pair per scenario: no throughput chart (one bar), its req/s is in the tables.
KINDS = ("latency", "timeseries")


def _results(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(run_dir.glob("*--*.json"))}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _not_blank(path: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(path)
    assert pixels.std() > 0.02, f"{path} looks blank"


def _report_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_report_of_a_real_run(bench_run: Path, tmp_path: Path) -> None:
    outcome = make_report([bench_run], output=tmp_path / "out")
    assert outcome.warnings == []
    markdown = outcome.markdown.read_text()
    documents = _results(bench_run)
    assert {d["scenario"] for d in documents.values()} == {"json", "db"}
    for document in documents.values():
        scenario, summary = document["scenario"], document["summary"]
        section = markdown.split(f"## Scenario `{scenario}`", 1)[1].split("\n## ", 1)[0]
        figures, cost = [
            [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines()
            if line.startswith("| gino_style")
        ]
        assert figures[0] == cost[0] == "gino_style @ uvicorn"
        assert figures[1] == f"{summary['rps']:,.0f}"  # req/s: the median over repeats
        assert float(figures[5]) == pytest.approx(summary["p99_ms"], rel=0.01)  # no × best
        assert "× best" not in section  # one pair: nothing to divide by
        split = summary["cpu_us_per_request"]
        assert cost[1:4] == [f"{split[part]:,.0f}" for part in ("server", "database", "client")]
        assert cost[5] == f"{summary['requests_per_server_cpu_s']:,.0f}"
        for kind in KINDS:
            image = outcome.output / f"{kind}-{scenario}.png"
            assert f"]({image.name})" in markdown
            width, height = _png_size(image)
            assert width >= 800 and height >= 200
            _not_blank(image)
    assert "## How each pair was served" in markdown and "uvicorn" in markdown
    page = outcome.html.read_text()
    assert page.count('src="data:image/png;base64,') == 2 * len(KINDS)
    assert not list(outcome.output.glob("throughput-*.png"))
    assert page.count("<table>") == 7  # summary, runs, two scenarios × 2, how served
    assert markdown.split("\n## ", 2)[1].startswith("Summary")  # the report opens with it
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page fetches nothing"


def test_the_cli_writes_every_file(bench_run: Path, tmp_path: Path) -> None:
    done = _report_cli(str(bench_run), "--output", str(tmp_path / "cli"))
    assert done.returncode == 0, done.stderr
    assert "report.md" in done.stdout and done.stderr == ""
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(
        ["report.md", "report.html"] + [f"{k}-{s}.png" for k in KINDS for s in ("db", "json")]
    )


def test_a_missing_result_is_named_and_the_rest_is_reported(run_copy: Path, tmp_path: Path) -> None:
    (run_copy / "gino_style--uvicorn--db.json").unlink()  # listed in the manifest, gone
    done = _report_cli(str(run_copy), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (warning,) = done.stderr.splitlines()
    assert warning == f"warning: {run_copy / 'gino_style--uvicorn--db.json'}: missing"
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Warnings" in markdown and "gino_style--uvicorn--db.json: missing" in markdown
    assert "## Scenario `json`" in markdown and "## Scenario `db`" not in markdown
    assert (tmp_path / "out" / "timeseries-json.png").exists()
    assert "report.html" in done.stdout


def test_a_corrupt_manifest_is_named_and_every_result_reported(
    run_copy: Path, tmp_path: Path
) -> None:
    (run_copy / "manifest.json").write_text('{"schema_version": 1, "kind": ')  # truncated
    done = _report_cli(str(run_copy), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (warning,) = done.stderr.splitlines()
    assert f"{run_copy / 'manifest.json'}: unreadable" in warning
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "manifest unusable" in markdown  # the runs table says what it does not know
    assert "## Scenario `json`" in markdown and "## Scenario `db`" in markdown


def test_a_result_that_breaks_its_schema_is_named(run_copy: Path, tmp_path: Path) -> None:
    path = run_copy / "gino_style--uvicorn--json.json"
    document = json.loads(path.read_text())
    del document["summary"]
    path.write_text(json.dumps(document))
    outcome = make_report([run_copy], output=tmp_path / "out")
    (warning,) = outcome.warnings
    assert str(path) in warning and "summary" in warning
    assert "## Scenario `db`" in outcome.markdown.read_text()


def test_nothing_readable_is_an_error_naming_the_files(run_copy: Path, tmp_path: Path) -> None:
    for path in run_copy.glob("*--*.json"):
        path.write_text("not json")
    with pytest.raises(ReportError, match=r"gino_style--uvicorn--json\.json: unreadable"):
        make_report([run_copy], output=tmp_path / "out")
    done = _report_cli(str(run_copy))
    assert done.returncode == 2 and "unreadable" in done.stderr
    done = _report_cli(str(tmp_path / "no-such-run"))
    assert done.returncode == 2 and "no-such-run: not a run directory" in done.stderr


# ---------------------------------------------------------------- comparison


def _rewrite(run_dir: Path, rps_factor: float, p99_factor: float, **settings: int) -> None:
    """Scale every result's req/s and p99 (summary and repeats) in place."""
    for path in run_dir.glob("*--*.json"):
        document = json.loads(path.read_text())
        summary = document["summary"]
        for key in ("rps", "rps_min", "rps_max"):
            summary[key] = round(summary[key] * rps_factor, 1)
        for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"):
            summary[key] = round(summary[key] * p99_factor, 3)
        for repeat in document["repeats"]:
            repeat["rps"] *= rps_factor
            repeat["p99_ms"] *= p99_factor
        document["server_settings"].update(settings)
        path.write_text(json.dumps(document))


def _pin_spread(run_dir: Path, spread: float) -> None:
    """Set the repeats' req/s and p99 to median × (1 ± spread/2): a known measured noise."""
    for path in run_dir.glob("*--*.json"):
        document = json.loads(path.read_text())
        summary = document["summary"]
        low, high = 1 - spread / 2, 1 + spread / 2
        for repeat, factor in zip(document["repeats"], (low, high), strict=True):
            repeat["rps"] = summary["rps"] * factor
            repeat["p99_ms"] = summary["p99_ms"] * factor
        summary["rps_min"], summary["rps_max"] = summary["rps"] * low, summary["rps"] * high
        summary["spread"] = spread
        path.write_text(json.dumps(document))


def test_comparison_flags_an_injected_slowdown_and_not_a_rerun(
    bench_run: Path, tmp_path: Path
) -> None:
    """The second runs are copies of the real run with scaled numbers (not measured here):
    the baseline's repeats are pinned to a 4% spread, so the bound is max(10%, 4% + 4%)."""
    base = Path(shutil.copytree(bench_run, tmp_path / "base"))
    _pin_spread(base, 0.04)
    rerun = Path(shutil.copytree(base, tmp_path / "rerun"))
    _rewrite(rerun, rps_factor=0.95, p99_factor=1.15)  # a plain rerun's wobble
    slow = Path(shutil.copytree(base, tmp_path / "slow"))
    _rewrite(slow, rps_factor=0.5, p99_factor=2.0, pool_size=5)  # as if half the capacity

    same = make_report([base, rerun], output=tmp_path / "same")  # two dirs: a comparison
    assert len(same.changes) == 2 and same.flagged == []
    for change in same.changes:
        assert change.rps_bound == pytest.approx(RPS_MIN_BOUND)
        assert change.rps_change == pytest.approx(-0.05, abs=0.002)
        assert change.verdict == "within noise"

    slower = make_report([slow], baseline=[base], output=tmp_path / "slower")
    assert len(slower.flagged) == 2
    for change in slower.flagged:
        assert change.rps_change == pytest.approx(-0.5, abs=0.002)
        assert change.verdict == "slower, p99 worse (beyond noise)"
        assert change.settings == ["pool_size 10→5"]  # what differs in how it was run
    markdown = slower.markdown.read_text()
    assert "## Comparison against the baseline" in markdown
    assert "**2 of 2** rows changed beyond noise" in markdown
    assert "**-50.0%**" in markdown and "**slower, p99 worse (beyond noise)**" in markdown
    _not_blank(slower.output / "compare.png")

    done = _report_cli(str(slow), "--baseline", str(base), "--output", str(tmp_path / "cli"))
    assert done.returncode == 0 and "slower" in done.stdout and "within noise" not in done.stdout


def test_the_measured_spread_widens_the_bound(bench_run: Path, tmp_path: Path) -> None:
    """A change smaller than both runs' measured spread is noise, whatever its size."""
    base = Path(shutil.copytree(bench_run, tmp_path / "base"))
    _pin_spread(base, 0.30)
    other = Path(shutil.copytree(base, tmp_path / "other"))
    _rewrite(other, rps_factor=0.55, p99_factor=1.0)  # -45% against a bound of 60%
    changes = compare(load_run(base).results, load_run(other).results)
    assert [c.rps_bound for c in changes] == pytest.approx([0.60, 0.60])
    assert not any(c.flagged for c in changes)


def test_a_run_compared_with_itself_changes_nothing(bench_run: Path, tmp_path: Path) -> None:
    outcome = make_report([bench_run], baseline=[bench_run], output=tmp_path / "self")
    assert outcome.flagged == [] and {c.rps_change for c in outcome.changes} == {0.0}


def test_merging_runs_that_measured_the_same_pair_needs_a_baseline(
    bench_run: Path, tmp_path: Path
) -> None:
    third = shutil.copytree(bench_run, tmp_path / "third")
    with pytest.raises(ReportError, match="--baseline"):
        make_report([bench_run, third, third], output=tmp_path / "x")


def test_results_load_with_their_median_repeat(bench_run: Path) -> None:
    run = load_run(bench_run)
    assert run.warnings == [] and run.manifest is not None
    for result in run.results:
        assert isinstance(result, LoadedResult)
        middle = result.median_repeat()
        assert middle is not None and result.summary is not None
        assert middle["p99_ms"] == pytest.approx(result.summary["p99_ms"])
