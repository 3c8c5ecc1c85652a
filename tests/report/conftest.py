"""One real run directory for the report tests, measured once per session.

``bench.single_pair`` runs gino_style under uvicorn end to end (embedded PostgreSQL,
smoke check, load) with tiny durations: two scenarios, two repeats each, so the report
has tables, spreads, histograms and per-second series from a real measurement.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackbench import bench
from stackbench.options import BENCH_LOAD


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("report-runs")
    output.chmod(0o755)
    options = bench.BenchOptions(
        scenarios=("json", "db"),
        load=BENCH_LOAD.replace(duration=1.5, warmup=0.5, concurrency=8),
        repeats=2,
        workers=1,
        output=output,
    )
    report = bench.single_pair("gino_style", "uvicorn", options)
    assert report.status == "ok", report.rows
    return report.run_dir


@pytest.fixture
def run_copy(bench_run: Path, tmp_path: Path) -> Path:
    """A private copy of the real run directory, for tests that damage or rewrite it."""
    return Path(shutil.copytree(bench_run, tmp_path / bench_run.name))
