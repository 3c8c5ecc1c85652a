"""The PNG chart of latency by percentile: the HdrHistogram-style spectrum (matplotlib,
Agg backend). Latency over time is in ``over_time``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from loadgen.histogram import Histogram
from stackbench.judge import headline, headline_name
from stackbench.report.chart_style import WIDTH, log_ms_axis, save, span_at_least, titles
from stackbench.report.load import LoadedResult
from stackbench.report.tables import conditions, sort_results

# ------------------------------------------------------------------ latency spectrum


def spectrum(latency: Mapping[str, Any], points: int = 240) -> tuple[list[float], list[float]]:
    """(x = 1/(1-p), latency ms) along the percentile axis, from the histogram's buckets.

    Percentiles follow the load generator's HdrHistogram rule, so the curve passes
    through the table's p50/p90/p99/p99.9. Without a histogram the stored percentiles
    are used. The last point is the maximum, placed at 1/(1-p) = count.
    """
    histogram = latency.get("histogram")
    if histogram and histogram["count"] > 0:
        hist = Histogram.from_dict(histogram)
        top = max(float(hist.count), 2.0)
        xs = sorted({10 ** (math.log10(top) * i / (points - 1)) for i in range(points)})
        ps = [100.0 * (1.0 - 1.0 / x) for x in xs]
        values = hist.percentiles(ps)
        return xs, [values[p] / 1e6 for p in ps]
    pairs = sorted((float(p), v) for p, v in latency["percentiles_ns"].items() if float(p) < 100)
    count = max(int(latency.get("count", 0)), 2)
    xs = [1.0 / (1.0 - p / 100.0) for p, _ in pairs if 1.0 / (1.0 - p / 100.0) <= count]
    ys = [v / 1e6 for p, v in pairs if 1.0 / (1.0 - p / 100.0) <= count]
    return [*xs, float(count)], [*ys, latency["max_ns"] / 1e6]


def _percentile_label(x: float, _pos: int = 0) -> str:
    p = 100.0 * (1.0 - 1.0 / x)
    if p <= 0:
        return "0%"
    return f"{p:.10g}%"


def latency_spectrum(
    items: list[LoadedResult], scenario: str, path: Path, colours: dict[str, Any]
) -> Path:
    """HdrHistogram-style percentile spectrum: x = percentile on a 1/(1-p) log axis."""
    fig, ax = plt.subplots(figsize=(WIDTH, 5.2))
    kinds = set()
    xmax = 10.0
    drawn = 0
    every: list[float] = []
    for result in sort_results(items):
        repeat = result.median_repeat()
        if repeat is None or not result.summary:
            continue
        kind, latency = headline_name(repeat["loadgen"]), headline(repeat["loadgen"])
        kinds.add(kind)
        xs, ys = spectrum(latency)
        xmax = max(xmax, xs[-1])
        every += ys
        label = f"{result.pair}  (p99 {result.summary['p99_ms']:,.1f} ms)"
        ax.plot(xs, ys, label=label, color=colours[result.pair], linewidth=1.8)
        drawn += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    span_at_least(ax, every, 10.0)
    ticks = [t for t in (1, 2, 10, 100, 1e3, 1e4, 1e5, 1e6) if t <= xmax * 1.01]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(_percentile_label))
    ax.set_xlim(1, xmax * 1.05)
    log_ms_axis(ax.yaxis)
    ax.set_xlabel("percentile (log scale of 1/(1−p): each step right is ten times rarer)")
    ax.set_ylabel("latency, ms (log scale)")
    which = " / ".join(sorted(kinds)) or "no data"
    titles(
        ax,
        f"Latency by percentile — scenario “{scenario}”",
        f"{conditions(items)}; {which} latency of the median-throughput repeat; lower is better",
    )
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.text(0.5, 0.5, "no successful measurement", transform=ax.transAxes, ha="center")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="y", alpha=0.12)
    return save(fig, path)
