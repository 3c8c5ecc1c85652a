"""What every chart shares: size, colours, fonts, titles, log axes, and the atomic save."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: files only

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from stackbench.results import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


def save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())


def titles(ax: Axes, title: str, subtitle: str) -> None:
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


def log_ms_axis(axis: Any) -> None:
    """Log-scale milliseconds labelled 1, 2, 5, 10, 20, 50... not 10^1."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


def span_at_least(ax: Axes, values: list[float], factor: float) -> None:
    """A log axis covering at least ``factor`` (a 2% wobble must not fill the chart)."""
    finite = [v for v in values if v > 0 and not math.isnan(v)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    if high / low < factor:
        middle = math.sqrt(low * high)
        low, high = middle / math.sqrt(factor), middle * math.sqrt(factor)
    ax.set_ylim(low / 1.15, high * 1.15)
