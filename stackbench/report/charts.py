"""PNG charts of throughput and change (matplotlib, Agg backend).

Every chart has a title that says what and under which conditions, axis labels with
units, and a legend when there is more than one line. Colours are stable per pair across
the charts of one report. Latency charts: ``latency_charts``; shared style: ``chart_style``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from stackbench.matrix import REFERENCE_PAIR
from stackbench.report.chart_style import (
    DEGRADED,
    FAILED,
    FASTER,
    OK,
    SAME,
    SLOWER,
    WIDTH,
    save,
    titles,
)
from stackbench.report.load import LoadedResult
from stackbench.report.tables import conditions, sort_results

if TYPE_CHECKING:
    from stackbench.report.across import Ratio
    from stackbench.report.compare import Change


# ------------------------------------------------------------------ throughput


def throughput(items: list[LoadedResult], scenario: str, path: Path) -> Path:
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
    titles(
        ax,
        f"Throughput — scenario “{scenario}”",
        conditions(ordered)
        + ("; whiskers: slowest..fastest repeat" if whiskers else "")
        + ("; hatched: noisy (spread > 10%)" if any(hatches) else ""),
    )
    return save(fig, path)


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
    titles(
        ax,
        f"Throughput relative to the reference — scenario “{scenario}”",
        f"{runs} runs, each divided by its own reference; {conditions([r.result for r in rows])}",
    )
    return save(fig, path)


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
    titles(
        ax,
        "Throughput change against the baseline",
        "grey band: measured noise, max(10%, spread of both runs); "
        "red / green: slower / faster beyond it",
    )
    return save(fig, path)
