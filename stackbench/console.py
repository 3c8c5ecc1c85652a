"""What the harness shows a person: the live progress of a run, its summary table, the
matrix, and a report's changes against its baseline (rich, in a terminal or a CI log)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from stackbench import matrix
from stackbench.documents import CpuPerRequest, ResultRow, Summary
from stackbench.judge import cpu_read_note, summary_cpu_read
from stackbench.measure import Progress

# Logs and CI are not terminals; a summary is still read there, at full width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


class LiveProgress(Progress):
    """A bar per measured run, moving with time (runs are bounded by duration)."""

    def __init__(self) -> None:
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def start(self, label: str, seconds: float) -> Callable[[float], None]:
        self._progress.start()
        self._task = self._progress.add_task(label, total=seconds)
        return lambda elapsed: self._progress.update(self._task, completed=min(elapsed, seconds))

    def done(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def _cpu_split(per_request: CpuPerRequest | None, proxied: bool = False) -> str:
    """'120+35+40': server, database and client CPU µs per response ('?' where unknown);
    '120+30+35+40' with the proxy's after the server's when a table has a proxy in front
    ('–' for a row without one)."""
    if not per_request:
        return "–"
    parts: tuple[float | str | None, ...] = (per_request["server"],)
    if proxied:
        parts += (per_request.get("proxy", "–"),)
    parts += (per_request["database"], per_request["client"])
    return "+".join(
        part if isinstance(part, str) else "?" if part is None else f"{part:.0f}" for part in parts
    )


def _pair(row: ResultRow) -> str:
    """'app @ server', and the proxy in front when there was one: '… via nginx (unix)'."""
    front = row.get("proxy")
    return f"{row['app']} @ {row['server']}" + (f" via {front}" if front else "")


def _misbehaving(summary: Summary | dict[str, Any]) -> str:
    """'idle 25: 22 held, 3 closed': the misbehaving connections beside the load."""
    held = summary.get("misbehaving") or {}
    return "; ".join(
        f"{kind} {k['asked']}: {k['held']} held, {k['closed']} closed" for kind, k in held.items()
    )


def summary_table(rows: list[ResultRow], title: str) -> Table:
    reads = [
        (f"{row['app']} @ {row['server']} {row['scenario']}", summary_cpu_read(row["summary"]))
        for row in rows
        if row["summary"]
    ]
    table = Table(
        title=title, title_justify="left", caption=cpu_read_note(reads), caption_justify="left"
    )
    proxied = any(row.get("proxy") for row in rows)
    misbehaving = any(row["summary"] and row["summary"].get("misbehaving") for row in rows)
    for column in (
        "pair",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "req/CPU-s",
        "CPU µs/req srv+prx+db+cli" if proxied else "CPU µs/req srv+db+cli",
        "RSS MB",
        "DB conns",
        *(["misbehaving (held, closed by the server)"] if misbehaving else []),
        "status",
    ):
        table.add_column(
            column,
            justify="left"
            if column in ("pair", "scenario", "status") or column.startswith("misbehaving")
            else "right",
        )
    for row in rows:
        summary: Summary | dict[str, Any] = row["summary"] or {}
        flags = [
            name
            for name in (
                "noisy",
                "client_saturated",
                "checks_failed",
                "worker_restarted",
                "profiled",
            )
            if row["flags"].get(name)
        ]
        status = row["status"] + (f" ({', '.join(flags)})" if flags else "")
        if row["status"] != "ok" and row["reason"]:
            status += f": {row['reason'][:60]}"
        style = {"ok": "green", "degraded": "yellow", "failed": "red"}[row["status"]]
        table.add_row(
            _pair(row),
            row["scenario"],
            _fmt(summary.get("rps")),
            _fmt(summary.get("p50_ms"), ".2f"),
            _fmt(summary.get("p99_ms"), ".2f"),
            f"{100 * summary['error_rate']:.2f}%" if summary else "–",
            _fmt(summary.get("requests_per_server_cpu_s"), ".0f"),
            _cpu_split(summary.get("cpu_us_per_request"), proxied),
            _fmt(summary.get("peak_rss_mb")),
            _fmt(summary.get("peak_db_connections"), "d"),
            *([_misbehaving(summary)] if misbehaving else []),
            f"[{style}]{status}[/{style}]",
        )
    return table


def print_matrix(as_json: bool) -> None:
    if as_json:
        print(matrix.as_json())
        return
    table = Table(title="bench pairs", title_justify="left")
    table.add_column("session")
    for pair in matrix.pairs():
        table.add_row(pair.session)
    console.print(table)
    missing = Table(title="missing pairs", title_justify="left")
    for column in ("app", "server", "why"):
        missing.add_column(column)
    for row in matrix.missing():
        missing.add_row(*row)
    console.print(missing)


def changes_table(changes: list[Any]) -> Table:
    """Each change against the baseline with its noise bound and verdict."""
    table = Table(title="change against the baseline", title_justify="left")
    for column in ("scenario", "pair", "req/s", "change", "bound", "p99 ms", "change", "bound"):
        table.add_column(column, justify="left" if column in ("scenario", "pair") else "right")
    table.add_column("verdict")
    for c in changes:
        a, b = (r.summary if r else None for r in (c.base, c.new))
        table.add_row(
            c.scenario,
            c.pair,
            f"{a['rps']:,.0f} → {b['rps']:,.0f}" if a and b else "–",
            _fmt(None if c.rps_change is None else 100 * c.rps_change, "+.1f") + "%",
            f"±{100 * c.rps_bound:.0f}%",
            f"{a['p99_ms']:,.1f} → {b['p99_ms']:,.1f}" if a and b else "–",
            _fmt(None if c.p99_change is None else 100 * c.p99_change, "+.1f") + "%",
            f"±{100 * c.p99_bound:.0f}%",
            f"[red]{c.verdict}[/red]" if c.flagged else c.verdict,
        )
    return table
