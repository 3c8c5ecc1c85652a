"""The report's opening: each run's verdict, and the headline figures of every result (req/s,
p99 and CPU per request, split by who spent it) in one narrow table, before anything else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from stackbench.report.compare import Change
from stackbench.report.document import Bullets, Heading, Text
from stackbench.report.load import LoadedResult, LoadedRun, scenarios
from stackbench.report.tables import (
    CPU_PARTS,
    PROXIED_CPU_PARTS,
    Table,
    cpu_per_request,
    cpu_total,
    fmt,
    ms,
    sort_results,
)

HEADING = "Summary"
FLAGGED_SHOWN = 5  # changes beyond noise named in the summary; the comparison has them all


def verdicts(
    runs: list[LoadedRun],
    items: list[LoadedResult],
    changes: list[Change] | None,
    warnings: list[str],
) -> list[str]:
    """One line per run (its status and reason), the results by status, the comparison's
    outcome, and what could not be read."""
    lines = []
    for run in runs:
        manifest = run.manifest
        status = manifest["status"] if manifest else "unknown (manifest unusable)"
        reason = f": {manifest['reason']}" if manifest and manifest.get("reason") else ""
        lines.append(f"Run `{run.run_id}`: **{status}**{reason}")
    counts = Counter(result.status for result in items)
    by_status = ", ".join(f"{counts[s]} {s}" for s in ("ok", "degraded", "failed") if counts[s])
    count = len(scenarios(items))
    what = f"{len(items)} result{'s' * (len(items) != 1)} ({count} scenario{'s' * (count != 1)})"
    lines.append(f"{what}: {by_status}")
    if changes is not None:
        flagged = [c for c in changes if c.flagged]
        line = (
            f"Against the baseline: **{len(flagged)} of {len(changes)}** rows changed beyond noise"
        )
        if flagged:
            named = "; ".join(
                f"{c.scenario}, {c.pair}: {c.verdict}" for c in flagged[:FLAGGED_SHOWN]
            )
            line += f" ({named}{'; …' if len(flagged) > FLAGGED_SHOWN else ''})"
        lines.append(line + " ([the comparison](#comparison-against-the-baseline))")
    if warnings:
        lines.append(f"{len(warnings)} file(s) could not be read: [Warnings](#warnings)")
    return lines


def _status(result: LoadedResult) -> str:
    flags = [name.replace("_", " ") for name, on in result.doc["flags"].items() if on is True]
    return result.status + (f" ({', '.join(flags)})" if flags else "")


def headline_table(items: list[LoadedResult], by_run: bool) -> Table:
    """Every result's headline figures, scenario by scenario, fastest first: narrow enough
    that CPU per request is in view on a laptop's screen."""
    proxied = any(r.proxy for r in items)  # a proxy's column when a pair had one in front
    parts = PROXIED_CPU_PARTS if proxied else CPU_PARTS
    headers = ["pair", "scenario", *(["run"] if by_run else []), "req/s", "p99 ms"]
    headers += ["CPU µs/req", "server", *(["proxy"] if proxied else []), "db", "client"]
    first = 2 + by_run  # req/s, then the columns after it up to status: figures, right-aligned
    table = Table(
        [*headers, "status"],
        right=set(range(first, len(headers))),
        caption=(
            "CPU µs/req: CPU time per successful response, server + "
            + ("proxy (for a pair via nginx) + " if proxied else "")
            + "database + client (– where one is unknown); it moves much less than req/s "
            "with whatever else runs on the machine. Every figure and flag: each scenario's "
            "section."
        ),
    )
    for scenario in scenarios(items):
        for result in sort_results([r for r in items if r.scenario == scenario]):
            s: Mapping[str, Any] = result.summary or {}
            table.rows.append(
                [
                    result.pair,
                    f"`{scenario}`",
                    *([result.doc["run_id"]] if by_run else []),
                    fmt(s.get("rps"), ",.0f"),
                    ms(s.get("p99_ms")),
                    fmt(cpu_total(result.summary), ",.0f"),
                    *(fmt(us, ",.0f") for us in cpu_per_request(result.summary, parts)),
                    _status(result),
                ]
            )
    return table


def summary(
    runs: list[LoadedRun],
    items: list[LoadedResult],
    changes: list[Change] | None,
    warnings: list[str],
) -> list[Heading | Text | Bullets | Table]:
    """The blocks that open the report."""
    by_run = len({r.doc["run_id"] for r in items}) > 1
    blocks: list[Heading | Text | Bullets | Table] = [
        Heading(HEADING),
        Bullets(verdicts(runs, items, changes, warnings)),
        headline_table(items, by_run),
    ]
    if by_run:
        blocks.append(
            Text(
                "Rows of different runs were measured on different machines or at different "
                "times: compare them through the ratios to the reference pair below, not "
                "by their raw figures."
            )
        )
    return blocks
