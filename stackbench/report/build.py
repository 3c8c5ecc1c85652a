"""Run directories → report.md, report.html and PNG charts in one output directory.

``make_report(runs)`` reports one run (one table per scenario, ranked by req/s), or
several: each run's own tables, and per scenario a ranking across runs of the ratios to
the reference pair measured in each run (``across``), never of raw numbers from different
runs. With ``baseline`` it also compares the runs against the baseline's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackbench import results
from stackbench.matrix import REFERENCE_PAIR
from stackbench.report import across, capacity, charts, latency_charts, over_time
from stackbench.report.chart_style import palette
from stackbench.report.compare import (
    P99_MIN_BOUND,
    RPS_MIN_BOUND,
    Change,
    changes_table,
    compare,
    nothing_shared,
    package_diff,
    provenance_diff,
)
from stackbench.report.document import Bullets, Contents, Heading, Image, Page, Text, anchor
from stackbench.report.load import (
    LoadedResult,
    LoadedRun,
    ReportError,
    label_interpreters,
    load_run,
    merge,
    pairs_measured,
    scenarios,
)
from stackbench.report.summary import summary
from stackbench.report.tables import (
    against_table,
    conditions,
    cost_table,
    machine,
    pairs_table,
    ratio_table,
    references_table,
    runs_table,
    scenario_table,
)
from stackbench.results import write_atomic

DEFAULT_OUTPUT = results.ROOT / "results" / "reports"
PACKAGES_SHOWN = 5  # more package changes than this are listed at the end of the report
PACKAGES_HEADING = "Packages that differ from the baseline"


@dataclass
class ReportOutcome:
    output: Path
    markdown: Path
    html: Path
    images: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.flagged]


def load_all(paths: list[Path]) -> list[LoadedRun]:
    return [load_run(Path(p)) for p in paths]


def split_baseline(run_dirs: list[Path], baseline: list[Path]) -> tuple[list[Path], list[Path]]:
    """Two run directories that measured the same pairs are a comparison: the first is the
    baseline. Otherwise the directories are merged into one report. The reference pair,
    which every CI job measures beside its own, does not make two jobs a comparison."""
    if baseline or len(run_dirs) != 2:
        return run_dirs, baseline
    first, second = load_all(run_dirs)
    if first.capacity is not None or second.capacity is not None:
        return run_dirs, baseline  # capacity runs are reported side by side, not compared
    shared = pairs_measured(first) & pairs_measured(second)
    same = {r.key for r in first.results} == {r.key for r in second.results}
    if shared or (same and first.results):
        return [run_dirs[1]], [run_dirs[0]]
    return run_dirs, baseline


def default_output(runs: list[LoadedRun], base: list[LoadedRun]) -> Path:
    if len(runs) == 1 and not base:
        return DEFAULT_OUTPUT / runs[0].run_id
    if len(runs) == 1 and len(base) == 1:
        return DEFAULT_OUTPUT / f"{runs[0].run_id}--vs--{base[0].run_id}"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return DEFAULT_OUTPUT / (f"{stamp}-{len(runs)}-runs" + ("-compared" if base else ""))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def make_report(
    run_dirs: list[Path],
    baseline: list[Path] | None = None,
    output: Path | None = None,
    *,
    across_interpreters: bool = False,
    against: str | None = None,
) -> ReportOutcome:
    """Write the report; unreadable files become warnings that name them. ``against``: an
    app every other app measured beside it under the same server is priced against."""
    if not run_dirs:
        raise ReportError("no run directory given")
    run_dirs, base_dirs = split_baseline(list(run_dirs), list(baseline or []))
    runs, base_runs = load_all(run_dirs), load_all(base_dirs)
    warnings = [w for run in [*base_runs, *runs] for w in run.warnings]
    label_interpreters([*runs, *base_runs])
    # A capacity run's results are its search's probes: its section reports them.
    searched = [run for run in runs if run.capacity is not None]
    runs_measured = [run for run in runs if run.capacity is None]
    items, base_items = merge(runs_measured), merge(base_runs)
    if not items and not searched:
        raise ReportError(
            "no readable result in "
            + ", ".join(str(p) for p in run_dirs)
            + ": "
            + "; ".join(warnings)
        )
    if base_items and (why := nothing_shared(base_items, items)):
        raise ReportError(why)
    output = Path(output) if output else default_output(runs, base_runs)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {output}: {exc.strerror}") from None
    if against is not None and against not in {r.app for r in items}:
        apps = ", ".join(sorted({r.app for r in items}))
        raise ReportError(f"--against {against}: no result of it here (apps measured: {apps})")
    colours = palette([r.pair for r in [*items, *base_items]])

    names = [r.run_id for r in runs]
    title = "stackbench report: " + (names[0] if len(names) == 1 else f"{len(names)} runs")
    if base_runs:
        title += " against " + ", ".join(r.run_id for r in base_runs)
    page = Page(title)
    outcome = ReportOutcome(output, output / "report.md", output / "report.html", warnings=warnings)
    if base_runs:
        outcome.changes = compare(base_items, items, across_interpreters=across_interpreters)
    page.add(*summary(runs, items, outcome.changes if base_runs else None, warnings), Contents())
    if warnings:
        page.add(
            Heading("Warnings"),
            Text("These files could not be used; everything else is reported below."),
            Bullets([f"`{w}`" for w in warnings]),
        )
    page.add(Heading("Runs"), runs_table(runs))
    if base_runs:
        page.add(Text("Baseline:"), runs_table(base_runs))
        _comparison(page, outcome, base_runs, runs, output)
    for run in searched:
        _capacity(page, outcome, run)
    measured = [run for run in runs_measured if run.results]
    if len(measured) == 1:  # one run: one machine, raw numbers compare
        for scenario in scenarios(items):
            chosen = [r for r in items if r.scenario == scenario]
            heading = Heading(f"Scenario `{scenario}`")
            _scenario(page, outcome, chosen, heading, _slug(scenario), colours, against)
    elif measured:
        _across_runs(page, outcome, measured, colours, against)
    if items:
        page.add(Heading("How each pair was served"), pairs_table(items))
    if base_runs and len(packages := package_diff(base_runs, runs)) > PACKAGES_SHOWN:
        page.add(Heading(PACKAGES_HEADING), Bullets(packages))
    if items:
        page.add(Heading("How to read this report"), *_how_to_read())
    write_atomic(outcome.markdown, page.markdown().encode())
    write_atomic(outcome.html, page.html().encode())
    return outcome


def _capacity(page: Page, outcome: ReportOutcome, run: LoadedRun) -> None:
    """A capacity run: each app's table, the chart with the brackets, every probe."""
    document = run.capacity
    assert document is not None
    page.add(Heading(f"Capacity at the SLO: run `{run.run_id}`"))
    for table in capacity.tables(document):
        page.add(table)
    said = capacity.notes(document)
    if said:
        page.add(Bullets(said))
    page.add(Text(capacity.HOW_TO_READ))
    path = capacity.chart(document, outcome.output / f"capacity-{_slug(run.run_id)}.png")
    outcome.images.append(path)
    page.add(Image(path, "p99 against the offered rate; shaded: each pair's bracket"))


def _scenario(
    page: Page,
    outcome: ReportOutcome,
    chosen: list[LoadedResult],
    heading: Heading,
    slug: str,
    colours: dict[str, Any],
    against: str | None = None,
) -> None:
    """One scenario's rows of one run: the tables ranked by raw req/s, each app priced
    against ``against`` when given, and its charts (a throughput chart only for more than
    one bar: one pair's req/s is in the table)."""
    scenario = chosen[0].scenario
    page.add(heading, Text(conditions(chosen)), scenario_table(chosen), cost_table(chosen))
    priced = against_table(chosen, against) if against is not None else None
    if priced is not None:
        page.add(Text(f"Against `{against}` on the same server:"), priced)
    drawn: list[tuple[str, str, Callable[[Path], Path]]] = []
    if sum(1 for r in chosen if r.summary) > 1:
        drawn.append(("throughput", "throughput", lambda p: charts.throughput(chosen, scenario, p)))
    drawn += [
        (
            "latency",
            "latency by percentile",
            lambda p: latency_charts.latency_spectrum(chosen, scenario, p, colours),
        ),
        (
            "timeseries",
            "over time: req/s, p99, CPU, memory, connections",
            lambda p: over_time.over_time(chosen, scenario, p, colours),
        ),
    ]
    for name, alt, draw in drawn:
        path = draw(outcome.output / f"{name}-{slug}.png")
        outcome.images.append(path)
        page.add(Image(path, f"{alt}, {scenario}"))


def _across_runs(
    page: Page,
    outcome: ReportOutcome,
    runs: list[LoadedRun],
    colours: dict[str, Any],
    against: str | None = None,
) -> None:
    """Several runs: ratios to each run's own reference across runs, raw numbers per run."""
    machines = {
        (m["machine"]["cpu_model"], m["machine"]["cpu_count"])
        for m in (run.manifest for run in runs)
        if m is not None
    }
    page.add(
        Heading("Comparing these runs"),
        Text(
            f"These {len(runs)} runs were measured separately ({len(machines)} distinct "
            "machine(s) by CPU model and count, and at different times): their raw numbers "
            "are not comparable with each other. **Within one run** the pairs ran side by "
            "side on one machine, so each run's section below ranks its rows by raw req/s. "
            f"**Across runs** rows are ranked only by their ratio to {REFERENCE_PAIR} "
            "measured in the same run and scenario; a run without a usable reference is not "
            "ranked across runs. A ratio cancels the machine's speed only as far as every "
            "stack slows down alike on it: read differences of a few percent as ties "
            "(docs/ci.md)."
        ),
    )
    every = [r for run in runs for r in run.results]
    for scenario in scenarios(every):
        slug = _slug(scenario)
        rows, references = across.ratios(runs, scenario)
        page.add(Heading(f"Across runs: scenario `{scenario}`"))
        if rows:
            page.add(ratio_table(rows))
        if sum(1 for row in rows if row.rps is not None) > 1:  # one bar says nothing more
            path = charts.reference_ratios(rows, scenario, outcome.output / f"ratio-{slug}.png")
            outcome.images.append(path)
            page.add(Image(path, f"req/s relative to the reference, {scenario}"))
        else:
            page.add(
                Text(
                    "No run has a usable reference in this scenario, so nothing is ranked "
                    "across runs: each run's rows are in its own section below."
                )
            )
        page.add(Text("The reference in each run:"), references_table(references))
    for run in runs:
        page.add(
            Heading(f"Run `{run.run_id}`: within one machine"),
            Text(
                f"Measured side by side on {machine(run.manifest)}: these rows compare with "
                "each other, not with another run's."
            ),
        )
        for scenario in scenarios(run.results):
            chosen = [r for r in run.results if r.scenario == scenario]
            heading = Heading(f"`{run.run_id}`, scenario `{scenario}`", level=3)
            slug = f"{_slug(scenario)}--{_slug(run.run_id)}"
            _scenario(page, outcome, chosen, heading, slug, colours, against)


def _comparison(
    page: Page,
    outcome: ReportOutcome,
    base_runs: list[LoadedRun],
    runs: list[LoadedRun],
    output: Path,
) -> None:
    flagged = outcome.flagged
    page.add(Heading("Comparison against the baseline"))
    page.add(
        Text(
            f"A change is marked when it exceeds the noise both runs measured: "
            f"req/s bound = max({RPS_MIN_BOUND:.0%}, spread of baseline + spread of new), "
            f"p99 bound = max({P99_MIN_BOUND:.0%}, the same for p99), spread = (max − min) / "
            f"median over a run's repeats. **{len(flagged)} of {len(outcome.changes)}** "
            "rows changed beyond noise."
        )
    )
    differences = provenance_diff(base_runs, runs)
    packages = package_diff(base_runs, runs)
    if len(packages) > PACKAGES_SHOWN:
        named = ", ".join(line.split()[0] for line in packages[:PACKAGES_SHOWN])
        differences.append(
            f"{len(packages)} packages differ ({named}, …): every one is listed at the end, "
            f"under [{PACKAGES_HEADING}](#{anchor(PACKAGES_HEADING)})"
        )
    else:
        differences += packages
    if differences:
        page.add(Text("What changed in the environment:"), Bullets(differences))
    page.add(changes_table(outcome.changes))
    if sum(1 for c in outcome.changes if c.rps_change is not None) > 1:  # not one bar
        path = charts.comparison(outcome.changes, output / "compare.png")
        outcome.images.append(path)
        page.add(Image(path, "req/s change against the baseline"))


def _how_to_read() -> list[Text | Bullets]:
    return [
        Bullets(
            [
                "**req/s** is the median over the repeats; **× best** (where a scenario has "
                "more than one pair) divides it by the best pair of the same scenario in the "
                "same run: on a small shared machine compare these ratios within one run, not "
                "absolute numbers across machines or days.",
                "**spread** = (max − min) / median of req/s over the repeats; above 10% the "
                "row is flagged **noisy** and small differences mean nothing.",
                "**p50 … p99.9** are the latency percentiles (ms) of the median-throughput "
                "repeat; in the closed model they are per-request times, in the open model "
                "they are corrected for coordinated omission.",
                "**req per CPU-s** is successful responses per CPU-second of the server's "
                "process tree: efficiency, which survives noisy neighbours better than req/s.",
                "**CPU µs/req server | db | client** is CPU time per successful response, "
                "split by who spent it: the server's process tree, the embedded PostgreSQL's "
                "processes, the load generator (and **proxy**, nginx's master and workers, "
                "for a pair measured `via nginx`: bench --proxy). Their sum is the request's "
                "whole cost on this machine; – is unknown (an external database, no proxy in "
                "front, or a result recorded before the split).",
                "CPU time is read from each process's CPU-time clock, to the nanosecond; a "
                "child reaped inside the window arrives in whole clock ticks (10 ms here), as "
                "does everything on a host without that clock. The note under each table says "
                "which figures are that coarse: over a short window their CPU per request is "
                'not resolved (docs/bench.md, "How CPU time is read").',
                "**client-saturated**: the load generator used about a whole CPU, so the "
                "server may be faster than measured. **checks failed**: some responses were "
                "wrong. **worker restarted**: a server process exited during a measured "
                "window, so part of it ran on fewer workers. **FAILED / DEGRADED**: the "
                "reason is the harness's own words.",
                f"**× reference** (several runs only): req/s or p99 divided by {REFERENCE_PAIR} "
                "measured in the same run and scenario, the only numbers ranked across runs.",
                "Latency charts: x is the percentile on a log scale of 1/(1−p), so 90%, 99%, "
                "99.9% are evenly spaced; a curve that turns up sharply at the right has a "
                "long tail. Over time: req/s and p99 one point per second, CPU (cores busy: "
                "server solid, database dashed), the server's memory and the database "
                "connections one point per sampler reading (0.25 s), repeats back to back.",
            ]
        )
    ]
