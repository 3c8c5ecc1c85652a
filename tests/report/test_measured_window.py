"""Derived rates divide by the window loadgen measured (``elapsed_s``), not by the duration
asked for: planted runs whose measured window overran the requested one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from stackbench import results
from stackbench.report.load import LoadedResult
from stackbench.report.over_time import per_second, timeline
from tests.report import synthetic

REQUESTED = 6.0  # the result's load.duration_s
# A stall: the server froze at second 5, loadgen's window ran to 8.6 s while the last
# requests drained; seconds 6..8 hold real completions.
SERIES = [
    {"t": t, "completed": c, "p99_ns": p}
    for t, c, p in [
        (0, 100, 5_000_000),
        (1, 100, 5_000_000),
        (2, 100, 5_000_000),
        (3, 100, 5_000_000),
        (4, 100, 5_000_000),
        (5, 10, 900_000_000),
        (6, 0, 0),
        (7, 40, 2_500_000_000),
        (8, 30, 3_000_000_000),
    ]
]
ELAPSED = 8.6


def overran(elapsed: float = ELAPSED) -> dict:
    report = synthetic._loadgen(100.0, 5.0, REQUESTED)
    report["summary"]["elapsed_s"] = elapsed
    report["series"] = SERIES
    return report


def test_per_second_bins_span_the_measured_window() -> None:
    bins = per_second(overran())
    # every second up to the measured end: the stall (5..8) is on the chart
    assert [round(t, 2) for t, _, _ in bins] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.3]
    _, rate, p99 = bins[-1]
    assert rate == pytest.approx(30 / 0.6)  # the last bin is 0.6 s of measurement
    assert p99 == 3000.0
    assert [rate for _, rate, _ in bins[5:8]] == [10.0, 0.0, 40.0]


def test_a_last_bin_under_half_a_second_is_dropped() -> None:
    bins = per_second(overran(elapsed=8.3))
    assert [round(t, 2) for t, _, _ in bins][-1] == 7.5  # second 8 holds 0.3 s only


def test_repeats_follow_each_other_by_their_measured_windows(tmp_path: Path) -> None:
    document = synthetic.result("run", "gino_style", "uvicorn", 100.0)
    first, second = document["repeats"]
    first["loadgen"] = overran()
    second["loadgen"]["summary"]["elapsed_s"] = 6.2
    path = tmp_path / "r.json"
    results.write_json(path, document, "result")  # a schema-valid result
    loaded = LoadedResult(results.read_result(path), path)
    xs, _, _, spans = timeline(loaded)
    assert spans == [(0.0, ELAPSED), (ELAPSED, ELAPSED + 6.2)]
    second_repeat = [x for x in xs if not math.isnan(x) and x >= ELAPSED]
    assert second_repeat[0] == pytest.approx(ELAPSED + 0.5)  # not at the requested 6.5
