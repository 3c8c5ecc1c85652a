"""Run directories → report.md, report.html and PNG charts in one output directory.

``make_report(runs)`` reports one run, or several merged (one table per scenario, every
pair of every run); with ``baseline`` it also compares the runs against the baseline's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stackbench import results
from stackbench.report import charts
from stackbench.report.compare import (
    P99_MIN_BOUND,
    RPS_MIN_BOUND,
    Change,
    changes_table,
    compare,
    provenance_diff,
)
from stackbench.report.document import Bullets, Document, Heading, Image, Text
from stackbench.report.load import ReportError, Run, load_run, merge, scenarios
from stackbench.report.tables import pairs_table, runs_table, scenario_table

DEFAULT_OUTPUT = results.ROOT / "results" / "reports"


@dataclass
class Outcome:
    output: Path
    markdown: Path
    html: Path
    images: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.flagged]


def load_all(paths: list[Path]) -> list[Run]:
    return [load_run(Path(p)) for p in paths]


def split_baseline(run_dirs: list[Path], baseline: list[Path]) -> tuple[list[Path], list[Path]]:
    """Two run directories that measured the same pairs are a comparison: the first is the
    baseline. Otherwise the directories are merged into one report."""
    if baseline or len(run_dirs) != 2:
        return run_dirs, baseline
    first, second = load_all(run_dirs)
    if {r.key for r in first.results} & {r.key for r in second.results}:
        return [run_dirs[1]], [run_dirs[0]]
    return run_dirs, baseline


def default_output(runs: list[Run], base: list[Run]) -> Path:
    if len(runs) == 1 and not base:
        return DEFAULT_OUTPUT / runs[0].run_id
    if len(runs) == 1 and len(base) == 1:
        return DEFAULT_OUTPUT / f"{runs[0].run_id}--vs--{base[0].run_id}"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return DEFAULT_OUTPUT / (f"{stamp}-{len(runs)}-runs" + ("-compared" if base else ""))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def make_report(
    run_dirs: list[Path], baseline: list[Path] | None = None, output: Path | None = None
) -> Outcome:
    """Write the report; unreadable files become warnings that name them."""
    if not run_dirs:
        raise ReportError("no run directory given")
    run_dirs, base_dirs = split_baseline(list(run_dirs), list(baseline or []))
    runs, base_runs = load_all(run_dirs), load_all(base_dirs)
    warnings = [w for run in [*base_runs, *runs] for w in run.warnings]
    items = merge(runs)
    base_items = merge(base_runs)
    if not items:
        raise ReportError(
            "no readable result in "
            + ", ".join(str(p) for p in run_dirs)
            + ": "
            + "; ".join(warnings)
        )
    output = Path(output) if output else default_output(runs, base_runs)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {output}: {exc.strerror}") from None
    colours = charts.palette([r.pair for r in [*items, *base_items]])

    names = [r.run_id for r in runs]
    title = "stackbench report: " + (names[0] if len(names) == 1 else f"{len(names)} runs")
    if base_runs:
        title += " against " + ", ".join(r.run_id for r in base_runs)
    doc = Document(title)
    outcome = Outcome(output, output / "report.md", output / "report.html", warnings=warnings)
    if warnings:
        doc.add(
            Heading("Warnings"),
            Text("These files could not be used; everything else is reported below."),
            Bullets([f"`{w}`" for w in warnings]),
        )
    doc.add(Heading("Runs"), runs_table(runs))
    if base_runs:
        doc.add(Text("Baseline:"), runs_table(base_runs))
        outcome.changes = compare(base_items, items)
        _comparison(doc, outcome, base_runs, runs, output)
    for scenario in scenarios(items):
        chosen = [r for r in items if r.scenario == scenario]
        slug = _slug(scenario)
        doc.add(Heading(f"Scenario `{scenario}`"), scenario_table(chosen))
        for name, draw in (
            ("throughput", lambda p, c=chosen, s=scenario: charts.throughput(c, s, p)),
            ("latency", lambda p, c=chosen, s=scenario: charts.latency_spectrum(c, s, p, colours)),
            ("timeseries", lambda p, c=chosen, s=scenario: charts.time_series(c, s, p, colours)),
        ):
            path = draw(output / f"{name}-{slug}.png")
            outcome.images.append(path)
            doc.add(Image(path, f"{name.replace('timeseries', 'time series')}, {scenario}"))
    doc.add(Heading("How each pair was served"), pairs_table(items))
    doc.add(Heading("How to read this report"), *_how_to_read())
    charts.write_atomic(outcome.markdown, doc.markdown().encode())
    charts.write_atomic(outcome.html, doc.html().encode())
    return outcome


def _comparison(
    doc: Document, outcome: Outcome, base_runs: list[Run], runs: list[Run], output: Path
) -> None:
    flagged = outcome.flagged
    doc.add(Heading("Comparison against the baseline"))
    doc.add(
        Text(
            f"A change is marked when it exceeds the noise both runs measured: "
            f"req/s bound = max({RPS_MIN_BOUND:.0%}, spread of baseline + spread of new), "
            f"p99 bound = max({P99_MIN_BOUND:.0%}, the same for p99), spread = (max − min) / "
            f"median over a run's repeats. **{len(flagged)} of {len(outcome.changes)}** "
            "rows changed beyond noise."
        )
    )
    differences = provenance_diff(base_runs, runs)
    if differences:
        doc.add(Text("What changed in the environment:"), Bullets(differences[:40]))
    doc.add(changes_table(outcome.changes))
    if any(c.rps_change is not None for c in outcome.changes):
        path = charts.comparison(outcome.changes, output / "compare.png")
        outcome.images.append(path)
        doc.add(Image(path, "req/s change against the baseline"))


def _how_to_read() -> list[Text | Bullets]:
    return [
        Bullets(
            [
                "**req/s** is the median over the repeats; **× best** divides it by the best "
                "pair of the same scenario in this report: on a small shared machine compare "
                "these ratios within one run, not absolute numbers across machines or days.",
                "**spread** = (max − min) / median of req/s over the repeats; above 10% the "
                "row is flagged **noisy** and small differences mean nothing.",
                "**p50 … p99.9** are the latency percentiles (ms) of the median-throughput "
                "repeat; in the closed model they are per-request times, in the open model "
                "they are corrected for coordinated omission.",
                "**req per CPU-s** is successful responses per CPU-second of the server's "
                "process tree: efficiency, which survives noisy neighbours better than req/s.",
                "**client-saturated**: the load generator used about a whole CPU, so the "
                "server may be faster than measured. **checks failed**: some responses were "
                "wrong. **FAILED / DEGRADED**: the reason is the harness's own words.",
                "Latency charts: x is the percentile on a log scale of 1/(1−p), so 90%, 99%, "
                "99.9% are evenly spaced; a curve that turns up sharply at the right has a "
                "long tail. Time series: one point per second, repeats back to back.",
            ]
        )
    ]
