"""The python-versions experiment: the same pairs on every installed Python, side by side.

Each interpreter has its own virtualenv (the nox session builds them: the same app and
server requirements, resolved for that Python, e.g. Django 5.2 on 3.11 and 6.x on 3.12+).
All of them run in ONE run directory, alternating per repeat: repeat 1 measures every pair
on 3.11, 3.12, 3.13; repeat 2 on 3.13, 3.12, 3.11; and so on, so slow drift of a shared
machine lands on every interpreter alike. Each repeat's throughput and CPU per request is
divided by the oldest interpreter's in the same repeat (a duet), and the table gives the
median of those ratios with their range.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from stackbench.documents import ResultRow
from stackbench.experiments import EXPERIMENTS
from stackbench.experiments.duets import paired_ratio
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.matrix import Pair
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.run import BenchRun


@dataclass(frozen=True)
class Lane:
    """One interpreter: its label (``3.13``) and its virtualenv's bin directory."""

    label: str
    bin_dir: Path


@dataclass
class Measured:
    """One (pair, scenario, interpreter): req/s and server CPU µs per request per repeat."""

    rps: list[float | None] = field(default_factory=list)
    cpu_us: list[float | None] = field(default_factory=list)


@dataclass
class VersionsOutcome:
    run_dir: Path
    lanes: list[Lane]
    measured: dict[tuple[str, str, str], dict[str, Measured]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def parse_lanes(specs: list[str]) -> list[Lane]:
    """'3.11=/venvs/py311/bin' → Lane; the first named is the baseline (the oldest)."""
    lanes = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--interpreter {spec!r}: expected LABEL=VENV_BIN_DIR")
        if not (Path(path) / "python").exists():
            raise ValueError(f"--interpreter {spec!r}: no python in {path}")
        lanes.append(Lane(label, Path(path)))
    if len(lanes) < 2:
        raise ValueError("python-versions needs at least two --interpreter lanes to compare")
    if len({lane.label for lane in lanes}) != len(lanes):
        raise ValueError("each --interpreter label must be different")
    return lanes


def run_versions(
    *,
    pairs: list[Pair],
    lanes: list[Lane],
    options: BenchOptions,
    repeats: int,
    progress: Progress | None = None,
) -> VersionsOutcome:
    """Every pair on every lane, ``repeats`` times, the lane order reversed each repeat."""
    name = "python-versions"
    with BenchRun(name, output=options.output, experiment=name, progress=progress) as run:
        outcome = VersionsOutcome(run.run_dir, lanes)
        for repeat in range(repeats):
            order = lanes if repeat % 2 == 0 else list(reversed(lanes))
            for lane in order:
                lane_options = _with(options, lane)
                for pair in pairs:
                    rows = run.job(pair, lane_options, label=f"py{lane.label}-r{repeat + 1}")
                    for row in rows:
                        _record(outcome, lane, row, repeat)
    return outcome


def _with(options: BenchOptions, lane: Lane) -> BenchOptions:
    return replace(options, bin_dir=lane.bin_dir, repeats=1)


def _record(outcome: VersionsOutcome, lane: Lane, row: ResultRow, repeat: int) -> None:
    key = (row["app"], row["server"], row["scenario"])
    measured = outcome.measured.setdefault(key, {}).setdefault(lane.label, Measured())
    summary = row["summary"]
    ok = row["status"] == "ok" and summary is not None
    while len(measured.rps) < repeat:  # a lane that missed a repeat keeps the slots aligned
        measured.rps.append(None)
        measured.cpu_us.append(None)
    measured.rps.append(summary["rps"] if ok and summary else None)
    split = summary.get("cpu_us_per_request") if ok and summary else None
    measured.cpu_us.append(split["server"] if split else None)
    if not ok:
        outcome.failures.append(
            f"{row['app']} @ {row['server']} {row['scenario']} on {lane.label}, "
            f"repeat {repeat + 1}: {row['status']}: {row['reason']}"
        )


def rows(outcome: VersionsOutcome) -> list[list[str]]:
    """pair, scenario, Python, req/s (median), ratio to the oldest, CPU µs/req, ratio."""
    oldest = outcome.lanes[0].label
    out = []
    for (app, server, scenario), by_lane in sorted(outcome.measured.items()):
        base = by_lane.get(oldest, Measured())
        for lane in outcome.lanes:
            m = by_lane.get(lane.label, Measured())
            rps = [v for v in m.rps if v]
            cpu = [v for v in m.cpu_us if v]
            out.append(
                [
                    f"{app} @ {server}",
                    scenario,
                    lane.label,
                    f"{statistics.median(rps):,.0f}" if rps else "–",
                    paired_ratio(m.rps, base.rps).text(),
                    f"{statistics.median(cpu):,.0f}" if cpu else "–",
                    paired_ratio(m.cpu_us, base.cpu_us).text(),
                ]
            )
    return out


HEADERS = [
    "pair",
    "scenario",
    "Python",
    "req/s",
    "× oldest (range)",
    "server CPU µs/req",
    "× oldest (range)",
]


def table(outcome: VersionsOutcome) -> Table:
    return terminal_table(EXPERIMENTS["python-versions"].question, HEADERS, rows(outcome), 2)


def markdown(outcome: VersionsOutcome, command: str) -> str:
    lines = [
        f"# {EXPERIMENTS['python-versions'].question}",
        "",
        f"`{command}`",
        "",
        *markdown_table(HEADERS, rows(outcome), labels=2),
    ]
    if outcome.failures:
        lines += ["", "Not measured cleanly:", *(f"- {f}" for f in outcome.failures)]
    return "\n".join(lines) + "\n"
