"""PNG charts (matplotlib, Agg backend): throughput, latency spectrum, time series, change.

Every chart has a title that says what and under which conditions, axis labels with
units, and a legend when there is more than one line. Colours are stable per pair across
the charts of one report.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: files only

import matplotlib.pyplot as plt
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
)

from loadgen.histogram import Histogram
from stackbench.report.load import Result
from stackbench.report.reference import REFERENCE_PAIR
from stackbench.report.tables import conditions, sort_results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from stackbench.report.across import Ratio
    from stackbench.report.compare import Change

DPI = 110
WIDTH = 9.5  # inches: 1045 px at DPI, readable in a README and on a laptop screen
OK, DEGRADED, FAILED = "#3b75af", "#e08a1e", "#9a9a9a"
SLOWER, FASTER, SAME = "#c0392b", "#2e8b57", "#9a9a9a"

plt.rcParams.update(
    {
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 9,
        "legend.framealpha": 0.9,
    }
)


def palette(pairs: Sequence[str]) -> dict[str, Any]:
    """One stable colour per pair (tab10, then tab20 for bigger reports)."""
    names = sorted(set(pairs))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())


def _titles(ax: Axes, title: str, subtitle: str) -> None:
    """A bold title with a grey line of conditions under it, never overlapping."""
    ax.set_title(title, loc="left", pad=20)
    ax.annotate(
        subtitle,
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(0, 5),
        textcoords="offset points",
        fontsize=8.5,
        color="#555",
        va="bottom",
    )


def _log_ms_axis(axis: Any) -> None:
    """Log-scale milliseconds labelled 1, 2, 5, 10, 20, 50... not 10^1."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


def _span_at_least(ax: Axes, values: list[float], factor: float) -> None:
    """A log axis covering at least ``factor`` (a 2% wobble must not fill the chart)."""
    finite = [v for v in values if v > 0 and not math.isnan(v)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    if high / low < factor:
        middle = math.sqrt(low * high)
        low, high = middle / math.sqrt(factor), middle * math.sqrt(factor)
    ax.set_ylim(low / 1.15, high * 1.15)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary name beside ``path``, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------ throughput


def throughput(items: list[Result], scenario: str, path: Path) -> Path:
    """Sorted horizontal bars of median req/s, whiskers from the slowest to the fastest repeat."""
    ordered = sort_results(items)[::-1]  # barh draws bottom-up: best on top
    fig, ax = plt.subplots(figsize=(WIDTH, 1.3 + 0.42 * len(ordered)))
    labels, values, colours, lows, highs, hatches = [], [], [], [], [], []
    for result in ordered:
        s = result.summary
        labels.append(result.pair)
        rps = s["rps"] if s else 0.0
        values.append(rps)
        lows.append(rps - s["rps_min"] if s else 0.0)
        highs.append(s["rps_max"] - rps if s else 0.0)
        colours.append({"ok": OK, "degraded": DEGRADED}.get(result.status, FAILED))
        hatches.append("//" if result.doc["flags"].get("noisy") else "")
    y = list(range(len(ordered)))
    bars = ax.barh(y, values, color=colours, height=0.65, zorder=2)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
        bar.set_edgecolor("white")
    if any(len(r.repeats) > 1 for r in ordered):
        ax.errorbar(values, y, xerr=[lows, highs], fmt="none", ecolor="#333", capsize=3, zorder=3)
    top = max(values, default=0.0) or 1.0
    for i, (result, value) in enumerate(zip(ordered, values, strict=True)):
        text = f"{value:,.0f}" if result.summary else f"{result.status}"
        if result.status != "ok" and result.summary:
            text += f"  ({result.status})"
        ax.text(value + top * 0.015 + highs[i], i, text, va="center", fontsize=9, zorder=4)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, top * 1.22)
    ax.set_xlabel("requests per second (median over repeats; higher is better)")
    ax.grid(axis="y", visible=False)
    whiskers = any(len(r.repeats) > 1 for r in ordered)
    _titles(
        ax,
        f"Throughput — scenario “{scenario}”",
        conditions(ordered)
        + ("; whiskers: slowest..fastest repeat" if whiskers else "")
        + ("; hatched: noisy (spread > 10%)" if any(hatches) else ""),
    )
    return _save(fig, path)


def reference_ratios(rows: list[Ratio], scenario: str, path: Path) -> Path:
    """Bars of req/s ÷ the reference of the row's own run: the only ranking across runs."""
    ordered = [row for row in rows if row.rps is not None][::-1]  # barh: best on top
    fig, ax = plt.subplots(figsize=(WIDTH, 1.3 + 0.42 * max(len(ordered), 1)))
    values = [row.rps or 0.0 for row in ordered]
    colours = [{"ok": OK, "degraded": DEGRADED}.get(row.result.status, FAILED) for row in ordered]
    y = list(range(len(ordered)))
    ax.barh(y, values, color=colours, height=0.65, zorder=2)
    ax.axvline(1.0, color="#333", linewidth=1, linestyle="--", zorder=3)
    top = max([*values, 1.0])
    for i, value in enumerate(values):
        ax.text(value + top * 0.015, i, f"{value:.2f}", va="center", fontsize=9, zorder=4)
    ax.set_yticks(y, [f"{row.result.pair}  [{row.run.run_id}]" for row in ordered])
    ax.set_xlim(0, top * 1.22)
    ax.set_xlabel(
        f"req/s ÷ {REFERENCE_PAIR} req/s in the same run (dashed: the reference; higher is better)"
    )
    ax.grid(axis="y", visible=False)
    runs = len({row.run.run_id for row in ordered})
    _titles(
        ax,
        f"Throughput relative to the reference — scenario “{scenario}”",
        f"{runs} runs, each divided by its own reference; {conditions([r.result for r in rows])}",
    )
    return _save(fig, path)


# ------------------------------------------------------------------ latency spectrum


def _headline(report: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    latency = report["latency"]
    name = latency["headline"]
    chosen = latency[name] or latency["uncorrected"]
    return (name if latency[name] else "uncorrected"), chosen


def spectrum(latency: dict[str, Any], points: int = 240) -> tuple[list[float], list[float]]:
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
    items: list[Result], scenario: str, path: Path, colours: dict[str, Any]
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
        kind, latency = _headline(repeat["loadgen"])
        kinds.add(kind)
        xs, ys = spectrum(latency)
        xmax = max(xmax, xs[-1])
        every += ys
        label = f"{result.pair}  (p99 {result.summary['p99_ms']:,.1f} ms)"
        ax.plot(xs, ys, label=label, color=colours[result.pair], linewidth=1.8)
        drawn += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    _span_at_least(ax, every, 10.0)
    ticks = [t for t in (1, 2, 10, 100, 1e3, 1e4, 1e5, 1e6) if t <= xmax * 1.01]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(_percentile_label))
    ax.set_xlim(1, xmax * 1.05)
    _log_ms_axis(ax.yaxis)
    ax.set_xlabel("percentile (log scale of 1/(1−p): each step right is ten times rarer)")
    ax.set_ylabel("latency, ms (log scale)")
    which = " / ".join(sorted(kinds)) or "no data"
    _titles(
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
    return _save(fig, path)


# ------------------------------------------------------------------ time series


def per_second(report: dict[str, Any], duration_s: float) -> list[tuple[float, float, float]]:
    """(second, req/s, p99 ms) of one measured run, warm-up excluded by the load generator.

    The last bin of a run holds only the drain after the deadline; a bin covering less
    than half a second of the measured window is dropped, a partial one is scaled.
    """
    out = []
    for entry in report["series"]:
        t = int(entry["t"])
        width = min(1.0, duration_s - t)
        if width < 0.5:
            continue
        out.append((t + width / 2, entry["completed"] / width, entry["p99_ns"] / 1e6))
    return out


def time_series(items: list[Result], scenario: str, path: Path, colours: dict[str, Any]) -> Path:
    """Per-second req/s and p99 of every repeat, repeats back to back on one time axis."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(WIDTH, 6.4), sharex=True, gridspec_kw={"height_ratios": [1, 1]}
    )
    boundaries: list[float] = []
    drawn = 0
    every: list[float] = []
    for result in sort_results(items):
        duration = float(result.doc["load"]["duration_s"])
        offset = 0.0
        xs: list[float] = []
        rps: list[float] = []
        p99: list[float] = []
        for index, repeat in enumerate(result.repeats):
            if index:
                boundaries.append(offset)
            for t, rate, latency in per_second(repeat["loadgen"], duration):
                xs.append(offset + t)
                rps.append(rate)
                p99.append(latency)
            xs.append(math.nan)  # a gap between repeats, not a line across it
            rps.append(math.nan)
            p99.append(math.nan)
            offset += duration
        if not any(not math.isnan(v) for v in rps):
            continue
        every += p99
        colour = colours[result.pair]
        top.plot(xs, rps, marker="o", markersize=3, color=colour, label=result.pair)
        bottom.plot(xs, p99, marker="o", markersize=3, color=colour, label=result.pair)
        drawn += 1
    for boundary in sorted(set(boundaries)):
        for ax in (top, bottom):
            ax.axvline(boundary, color="#888", linestyle=":", linewidth=1)
    repeats = max((len(r.repeats) for r in items), default=0)
    if repeats > 1:
        duration = max(float(r.doc["load"]["duration_s"]) for r in items)
        for k in range(repeats):
            top.text(
                (k + 0.5) * duration,
                1.0,
                f"repeat {k + 1}",
                transform=top.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8.5,
                color="#555",
            )
    top.set_ylabel("req/s")
    top.set_ylim(bottom=0)
    bottom.set_yscale("log")
    _span_at_least(bottom, every, 4.0)
    _log_ms_axis(bottom.yaxis)
    bottom.set_ylabel("p99 latency, ms (log)")
    bottom.set_xlabel("seconds of measurement (warm-up not recorded; repeats back to back)")
    fig.suptitle(
        f"Throughput and p99 over time — scenario “{scenario}”", x=0.01, ha="left", weight="bold"
    )
    only = [r.pair for r in items if r.repeats]
    top.set_title(
        (f"{only[0]}; " if len(set(only)) == 1 else "")
        + "each point is one second; a dip in req/s with a spike in p99 is a stall",
        loc="left",
        fontsize=8.5,
        color="#555",
        weight="normal",
        pad=14 if repeats > 1 else 6,
    )
    if drawn > 1:
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------ comparison


def comparison(changes: list[Change], path: Path) -> Path:
    """Change of req/s per (scenario, pair) against the baseline, with the noise band."""
    rows = [c for c in changes if c.rps_change is not None][::-1]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.4 + 0.38 * max(len(rows), 1)))
    y = list(range(len(rows)))
    for i, change in enumerate(rows):
        bound = 100 * change.rps_bound
        ax.fill_betweenx([i - 0.42, i + 0.42], -bound, bound, color="#ddd", zorder=1, linewidth=0)
        value = 100 * (change.rps_change or 0.0)
        colour = SAME if not change.rps_significant else (SLOWER if value < 0 else FASTER)
        ax.barh(i, value, color=colour, height=0.6, zorder=2)
        ax.text(
            value + (1.0 if value >= 0 else -1.0),
            i,
            f"{value:+.1f}%",
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize=9,
            zorder=3,
        )
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_yticks(y, [f"{c.scenario}: {c.pair}" for c in rows])
    extent = max([abs(100 * (c.rps_change or 0)) for c in rows] + [100 * c.rps_bound for c in rows])
    ax.set_xlim(-extent * 1.3 - 5, extent * 1.3 + 5)
    ax.set_xlabel("change in req/s against the baseline, %")
    ax.grid(axis="y", visible=False)
    _titles(
        ax,
        "Throughput change against the baseline",
        "grey band: measured noise, max(10%, spread of both runs); "
        "red / green: slower / faster beyond it",
    )
    return _save(fig, path)
