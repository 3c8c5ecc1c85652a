"""The PNG chart of a scenario over time: req/s and p99 one point per second (loadgen's
series), the server's and the database's CPU, the server's memory and the database
connections one point per sampler reading (the result's ``server.samples``), every repeat
back to back on one time axis (matplotlib, Agg backend)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt

from stackbench.documents import Sample
from stackbench.report.chart_style import WIDTH, log_ms_axis, save, span_at_least
from stackbench.report.load import LoadedResult
from stackbench.report.tables import sort_results

if TYPE_CHECKING:
    from matplotlib.axes import Axes

NOT_RECORDED = (
    "not recorded: results from before the sampler's readings were kept,\n"
    "or measured on another host (bench --target)"
)


def per_second(report: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(second, req/s, p99 ms) of one measured run, warm-up excluded by the load generator.

    The bins span the window loadgen measured (``elapsed_s``), drain and any overrun of
    the asked-for duration included; the last, partial bin is scaled to its width, or
    dropped when it covers less than half a second.
    """
    elapsed = float(report["summary"]["elapsed_s"])
    out = []
    for entry in report["series"]:
        t = int(entry["t"])
        width = min(1.0, elapsed - t)
        if width < 0.5:
            continue
        out.append((t + width / 2, entry["completed"] / width, entry["p99_ns"] / 1e6))
    return out


def timeline(
    result: LoadedResult,
) -> tuple[list[float], list[float], list[float], list[tuple[float, float]]]:
    """One result's repeats back to back on one time axis, each as long as loadgen
    measured it: the points (x, req/s, p99 ms; NaN between repeats) and each repeat's
    (start, end)."""
    offset = 0.0
    xs: list[float] = []
    rps: list[float] = []
    p99: list[float] = []
    spans: list[tuple[float, float]] = []
    for repeat in result.repeats:
        for t, rate, latency in per_second(repeat["loadgen"]):
            xs.append(offset + t)
            rps.append(rate)
            p99.append(latency)
        xs.append(math.nan)  # a gap between repeats, not a line across it
        rps.append(math.nan)
        p99.append(math.nan)
        elapsed = float(repeat["loadgen"]["summary"]["elapsed_s"])
        spans.append((offset, offset + elapsed))
        offset += elapsed
    return xs, rps, p99, spans


def busy(
    samples: Sequence[Sample], key: Literal["cpu_s", "database_cpu_s"], start: float
) -> tuple[list[float], list[float]]:
    """CPU cores busy between successive readings of a cumulative CPU figure (the server's
    or the database's), at each interval's middle, from ``start`` on the time axis; NaN
    where a reading has none."""
    xs, cores = [], []
    for a, b in itertools.pairwise(samples):
        if b["t_s"] <= a["t_s"]:
            continue
        before, after = a[key], b[key]
        xs.append(start + (a["t_s"] + b["t_s"]) / 2)
        if before is None or after is None:
            cores.append(math.nan)
        else:
            cores.append((after - before) / (b["t_s"] - a["t_s"]))
    return xs, cores


def readings(result: LoadedResult, spans: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Every repeat's sampler readings on the time axis: CPU cores busy (server, database),
    RSS MB and connections; NaN between repeats. Empty when none were recorded."""
    series: dict[str, list[float]] = {
        k: [] for k in ("x_cpu", "server", "database", "x", "rss", "conns")
    }
    for repeat, (start, _) in zip(result.repeats, spans, strict=False):
        samples = repeat["server"].get("samples") or []
        if not samples:
            continue
        xs, server = busy(samples, "cpu_s", start)
        series["x_cpu"] += [*xs, math.nan]
        series["server"] += [*server, math.nan]
        series["database"] += [*busy(samples, "database_cpu_s", start)[1], math.nan]
        series["x"] += [start + s["t_s"] for s in samples] + [math.nan]
        series["rss"] += [math.nan if s["rss_mb"] is None else s["rss_mb"] for s in samples]
        series["rss"].append(math.nan)
        series["conns"] += [
            math.nan if s["db_connections"] is None else s["db_connections"] for s in samples
        ]
        series["conns"].append(math.nan)
    return series if series["x"] else {}


def _label(ax: Axes, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=9.5, weight="bold")


def over_time(
    items: list[LoadedResult], scenario: str, path: Path, colours: dict[str, Any]
) -> Path:
    """Four panels over the measured windows, repeats back to back: req/s, p99, CPU cores
    busy (server solid, database dashed), server RSS and database connections."""
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 6.4), sharex=True)
    (rps_ax, p99_ax), (cpu_ax, memory_ax) = axes
    conns_ax = memory_ax.twinx()
    boundaries: set[float] = set()
    every_p99: list[float] = []
    sampled = 0
    for result in sort_results(items):
        xs, rps, p99, spans = timeline(result)
        boundaries.update(start for start, _ in spans[1:])
        if not any(not math.isnan(v) for v in rps):
            continue
        colour = colours[result.pair]
        every_p99 += p99
        rps_ax.plot(xs, rps, marker="o", markersize=2.5, color=colour, label=result.pair)
        p99_ax.plot(xs, p99, marker="o", markersize=2.5, color=colour)
        series = readings(result, spans)
        if not series:
            continue
        sampled += 1
        cpu_ax.plot(series["x_cpu"], series["server"], color=colour)
        cpu_ax.plot(series["x_cpu"], series["database"], color=colour, linestyle="--")
        memory_ax.plot(series["x"], series["rss"], color=colour)
        conns_ax.plot(series["x"], series["conns"], color=colour, linestyle=":")
    for ax in (rps_ax, p99_ax, cpu_ax, memory_ax):
        for boundary in sorted(boundaries):
            ax.axvline(boundary, color="#888", linestyle=":", linewidth=1)
    _label(rps_ax, "req/s (each second)")
    rps_ax.set_ylim(bottom=0)
    _label(p99_ax, "p99 latency, ms (log; each second)")
    p99_ax.set_yscale("log")
    span_at_least(p99_ax, every_p99, 4.0)
    log_ms_axis(p99_ax.yaxis)
    _label(cpu_ax, "CPU, cores busy: server —, database - -")
    _label(memory_ax, "server RSS MB — ; DB connections ··· (right)")
    if sampled:
        cpu_ax.set_ylim(bottom=0)
        memory_ax.set_ylim(bottom=0)
        conns_ax.set_ylim(bottom=0)
    else:
        for ax in (cpu_ax, memory_ax):
            ax.text(0.5, 0.5, NOT_RECORDED, transform=ax.transAxes, ha="center", fontsize=8)
    conns_ax.grid(False)
    for ax in (cpu_ax, memory_ax):
        ax.set_xlabel("seconds of measurement (repeats back to back)")
    fig.suptitle(
        f"Over time — scenario “{scenario}”: throughput, latency, CPU, memory, connections",
        x=0.01,
        ha="left",
        weight="bold",
    )
    pairs = {r.pair for r in items if r.repeats}
    if len(pairs) > 1:
        fig.legend(loc="lower center", ncol=min(len(pairs), 4), fontsize=8.5, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return save(fig, path)
