"""The python-versions experiment: lanes checked at the edge, interpreters alternating per
repeat in one run directory, and ratios taken repeat by repeat against the oldest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stackbench import results
from stackbench.experiments import duets, versions
from stackbench.matrix import Pair
from stackbench.options import BENCH_LOAD, BenchOptions

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("specs", "says"),
    [
        ([f"3.11={BIN}"], "at least two"),
        ([f"3.11={BIN}", f"3.11={BIN}"], "must be different"),
        ([f"3.11={BIN}", "3.13"], "LABEL=VENV_BIN_DIR"),
        ([f"3.11={BIN}", "3.13=/nowhere/bin"], "no python in /nowhere/bin"),
    ],
)
def test_bad_lanes_are_refused(specs: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        versions.parse_lanes(specs)


def test_ratios_pair_each_repeat_with_the_oldest_in_the_same_repeat() -> None:
    # Repeat 2 was slow for everyone (a noisy neighbour): pairing cancels it.
    ratio = duets.paired_ratio([110.0, 55.0, 121.0], [100.0, 50.0, 110.0])
    assert ratio.median == pytest.approx(1.1) and ratio.low == ratio.high == pytest.approx(1.1)
    # A repeat one side missed is left out, not paired with another repeat.
    assert duets.paired_ratio([None, 60.0], [100.0, 50.0]).median == pytest.approx(1.2)
    assert duets.paired_ratio([None], [100.0]).text() == "–"


def test_the_table_is_relative_to_the_first_lane(tmp_path: Path) -> None:
    lanes = [versions.Lane("3.11", BIN), versions.Lane("3.13", BIN)]
    outcome = versions.VersionsOutcome(tmp_path, lanes)
    outcome.measured[("gino_style", "uvicorn", "db")] = {
        "3.11": versions.Measured(rps=[1000.0, 900.0], cpu_us=[200.0, 210.0]),
        "3.13": versions.Measured(rps=[1200.0, 990.0], cpu_us=[180.0, 189.0]),
    }
    rows = versions.rows(outcome)
    assert rows[0][2:] == ["3.11", "950", "1.00 (1.00–1.00)", "205", "1.00 (1.00–1.00)"]
    assert rows[1][2:] == ["3.13", "1,095", "1.15 (1.10–1.20)", "184", "0.90 (0.90–0.90)"]


@pytest.mark.slow
def test_lanes_alternate_per_repeat_in_one_run(tmp_path: Path) -> None:
    # Two lanes on this venv's Python: the order of the jobs is what is under test.
    lanes = [versions.Lane("a", BIN), versions.Lane("b", BIN)]
    options = BenchOptions(
        scenarios=("json",),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=4),
        workers=1,
        output=tmp_path,
    )
    outcome = versions.run_versions(
        pairs=[Pair("gino_style", "uvicorn")], lanes=lanes, options=options, repeats=2
    )
    documents = [results.read_result(p) for p in outcome.run_dir.glob("*--*.json")]
    manifest = results.read_manifest(outcome.run_dir / "manifest.json")
    # The manifest lists the jobs in the order they ran: a, b, then b, a.
    assert [job["label"] for job in manifest["options"]["jobs"]] == [
        "pya-r1",
        "pyb-r1",
        "pyb-r2",
        "pya-r2",
    ]
    assert all(d["interpreter"]["executable"].startswith(str(BIN.parent)) for d in documents)
    assert outcome.failures == []
    measured = outcome.measured[("gino_style", "uvicorn", "json")]
    assert len(measured["a"].rps) == len(measured["b"].rps) == 2
