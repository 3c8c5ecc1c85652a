"""A capacity run's answer (capacity.json) for a person: one table per app, capacity.md,
and the chart of p99 against the offered rate with each pair's bracket marked."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rich.console import RenderableType
from rich.table import Table as RichTable
from rich.text import Text

from stackbench.documents import CapacityDocument, PairCapacity
from stackbench.report.chart_style import WIDTH, log_ms_axis, palette, save, titles
from stackbench.report.tables import Table, fmt, ms
from stackbench.terminal_tables import fit

HEADERS = [
    "server",
    "sustainable req/s",
    "bracket [pass, fail]",
    "p99 ms (repeats)",
    "p99.9 ms",
    "CPU µs/req server + db",
    "RSS MB/worker",
    "probes",
    "rank",
    "verdict",
]
_STATUS_MARK = {"above_max": "≥ ", "client_limited": "≥ "}


def slo_text(document: CapacityDocument) -> str:
    slo, search = document["slo"], document["search"]
    options = "".join(f", {k}={v}" for k, v in search["scenario_options"].items())
    return (
        f"SLO {', '.join(slo['rules'])}, achieved ≥ {slo['min_achieved']:.0%} of the offered "
        f"rate; scenario `{search['scenario']}`{options}; each probe {search['repeats']} × "
        f"({search['warmup_s']:g} s warm-up + {search['probe_duration_s']:g} s), "
        f"{search['connections']} connections, precision {search['precision']:.0%} (a rate "
        f"up to {search['unseen_overload']:.1%} above capacity may pass one probe)"
    )


def _rate(entry: PairCapacity) -> str:
    if entry["sustainable_rate"] is None:
        first = entry["probes"][0]["rate"] if entry["probes"] else None
        return "failed" if entry["status"] == "failed" else f"fails at {fmt(first, ',.4g')}"
    return _STATUS_MARK.get(entry["status"], "") + fmt(entry["sustainable_rate"], ",.4g")


def _bracket(entry: PairCapacity) -> str:
    low, high = entry["bracket"]
    if low is None and high is None:
        return "–"
    mark = " (client)" if entry["status"] == "client_limited" else ""
    return f"[{fmt(low, ',.4g')}, {fmt(high, ',.4g')}]{mark}"


def _p99(entry: PairCapacity) -> str:
    at = entry["at_sustainable"]
    if at is None:
        return "–"
    probe = next(p for p in entry["probes"] if p["rate"] == at["rate"])
    spread = probe["latency_range_ms"].get("99")
    shown = ms(at["p99_ms"])
    if spread and len(probe["repeats"]) > 1:
        shown += f" ({ms(spread[0])}–{ms(spread[1])})"
    return shown


def _row(entry: PairCapacity) -> list[str]:
    at = entry["at_sustainable"]
    server_cpu = at["server_cpu_us_per_request"] if at else None
    db_cpu = at["database_cpu_us_per_request"] if at else None
    cpu = "–" if server_cpu is None else f"{server_cpu:,.0f} + {fmt(db_cpu, ',.0f')}"
    return [
        entry["server"],
        _rate(entry),
        _bracket(entry),
        _p99(entry),
        ms(at["p999_ms"]) if at else "–",
        cpu,
        fmt(at["rss_mb_per_worker"] if at else None, ",.0f"),
        str(len(entry["probes"])),
        entry["rank"] or "–",
        entry["verdict"],
    ]


def tables(document: CapacityDocument) -> list[Table]:
    """One table per app, its pairs by sustainable rate, best first."""
    found = []
    for app in dict.fromkeys(p["app"] for p in document["pairs"]):
        mine = [p for p in document["pairs"] if p["app"] == app]
        mine.sort(key=lambda p: -(p["sustainable_rate"] or 0.0))
        found.append(
            Table(
                HEADERS,
                [_row(entry) for entry in mine],
                right={1, 3, 4, 5, 6, 7, 8},
                caption=f"**{app}**: {slo_text(document)}",
            )
        )
    return found


# Left out, in this order, when the table is too wide for the terminal (never a figure cut).
_SPARED = ("probes", "p99.9 ms", "RSS MB/worker", "CPU µs/req server + db")


def _terminal_layout(table: Table, left_out: tuple[str, ...]) -> RichTable:
    title = table.caption.replace("**", "")
    if left_out:
        title += f" (left out for width: {', '.join(left_out)}; capacity.md has them)"
    shown = RichTable(title=title, title_justify="left")
    kept = [i for i, header in enumerate(table.headers) if header not in left_out]
    for index in kept:
        shown.add_column(
            Text(table.headers[index]),
            justify="right" if index in table.right else "left",
            no_wrap=index != 0,
        )
    for row in table.rows:  # Text: a bracket's "[pass, fail]" is no markup
        shown.add_row(*(Text(row[index]) for index in kept))
    return shown


def _terminal_lines(table: Table) -> Text:
    """The narrowest layout: each pair its rank and verdict, then a line per figure."""
    lines = [Text(table.caption.replace("**", ""), style="bold")]
    for row in table.rows:
        cells = dict(zip(table.headers, row, strict=True))
        lines.append(Text(f"{row[0]}: rank {cells['rank']}, {cells['verdict']}", style="bold"))
        lines += [Text(f"  {header}: {cells[header]}") for header in table.headers[1:-2]]
    return Text("\n").join(lines)


def terminal_table(table: Table, width: int) -> RenderableType:
    """An app's table in the first layout that fits ``width`` columns: every column, then
    without the columns least needed to decide, then a line per pair."""
    layouts = [
        partial(_terminal_layout, table, _SPARED[:count]) for count in range(len(_SPARED) + 1)
    ]
    return fit([*layouts, partial(_terminal_lines, table)], width)


def notes(document: CapacityDocument) -> list[str]:
    """What each pair's status needs said, one line each."""
    return [f"{p['app']} @ {p['server']}: {p['reason']}" for p in document["pairs"] if p["reason"]]


HOW_TO_READ = (
    "**sustainable req/s** is the highest offered rate (open model) whose probe held the "
    "SLO in most of its repeats; **bracket** is [that rate, the lowest rate that failed]: "
    "the capacity lies between. Pairs whose brackets overlap share a **rank** (`3=`): the "
    "search cannot tell them apart; **best** is the highest bracket overlapping no other, "
    "**tied** the pairs sharing the first rank, **worse** the rest. **≥** marks a "
    "lower bound: every rate passed up to --max-rate, or the client, not the server, "
    "failed first (client). p99 is the median over the repeats at the sustainable rate, "
    "their range in brackets; CPU per request and RSS per worker are the same probe's."
)


def markdown(document: CapacityDocument) -> str:
    lines = [f"# Capacity: run {document['run_id']}", ""]
    for table in tables(document):
        lines += [table.caption, "", table.markdown(), ""]
    said = notes(document)
    if said:
        lines += [*(f"- {line}" for line in said), ""]
    lines += [HOW_TO_READ, "", "## Probes", ""]
    for entry in document["pairs"]:
        probes = ", ".join(
            f"{p['rate']:g} {'✓' if p['outcome'] == 'pass' else p['outcome']}"
            for p in entry["probes"]
        )
        lines.append(f"- {entry['app']} @ {entry['server']}: {probes}")
    return "\n".join(lines) + "\n"


def chart(document: CapacityDocument, path: Path) -> Path:
    """p99 against the offered rate, one panel per app, one line per pair; a filled
    marker passed, a hollow one failed; each pair's bracket shaded on the rate axis; the
    p99 limit dashed."""
    import matplotlib.pyplot as plt

    apps = list(dict.fromkeys(p["app"] for p in document["pairs"]))
    colours = palette([f"{p['app']} @ {p['server']}" for p in document["pairs"]])
    fig, axes = plt.subplots(
        len(apps), 1, figsize=(WIDTH, 4.6 * len(apps)), squeeze=False, sharex=False
    )
    limits = {lim["percentile"]: lim["limit_ms"] for lim in document["slo"]["latency"]}
    for ax, app in zip(axes[:, 0], apps, strict=True):
        drawn = False  # a p99 measured: else the log axes need limits of their own
        for entry in (p for p in document["pairs"] if p["app"] == app):
            colour = colours[f"{app} @ {entry['server']}"]
            probes = sorted(
                (p for p in entry["probes"] if "99" in p["latency_ms"]), key=lambda p: p["rate"]
            )
            rates = [p["rate"] for p in probes]
            p99 = [max(p["latency_ms"]["99"], 0.01) for p in probes]
            ax.plot(rates, p99, color=colour, linewidth=1.2, label=entry["server"])
            drawn = drawn or bool(probes)
            for probe, y in zip(probes, p99, strict=True):
                spread = probe["latency_range_ms"].get("99")
                if spread and spread[0] != spread[1]:
                    ax.vlines(probe["rate"], max(spread[0], 0.01), spread[1], color=colour, lw=1)
                ax.plot(
                    probe["rate"], y, "o", color=colour, markersize=5,
                    markerfacecolor=colour if probe["outcome"] == "pass" else "white",
                )  # fmt: skip
            low, high = entry["bracket"]
            if low is not None and high is not None:
                ax.axvspan(low, high, color=colour, alpha=0.18, linewidth=0)
        if "99" in limits:
            ax.axhline(limits["99"], color="#c0392b", linestyle="--", linewidth=1)
            ax.annotate(
                f"p99 limit {limits['99']:g} ms", xy=(0.01, limits["99"]),
                xycoords=("axes fraction", "data"), fontsize=8, color="#c0392b", va="bottom",
            )  # fmt: skip
        if not drawn:  # every probe broke before it measured (an agent failed, say)
            tried = [p["rate"] for e in document["pairs"] if e["app"] == app for p in e["probes"]]
            rate = min(tried, default=document["search"]["start_rate"])
            ax.set_xlim(rate / 2, rate * 2)
            ax.set_ylim(1, 10 * max(limits.values(), default=100.0))
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_ms_axis(ax.xaxis)  # plain numbers (1, 2, 5, 10, ...), for req/s as for ms
        log_ms_axis(ax.yaxis)
        ax.set_xlabel("offered rate (req/s, open model)")
        ax.set_ylabel("p99 latency (ms, corrected)")
        search = document["search"]
        conditions = (
            f"{', '.join(document['slo']['rules'])}; scenario {search['scenario']}; each probe "
            f"{search['repeats']} × {search['probe_duration_s']:g} s; filled: held, hollow: "
            "failed; shaded: the bracket"
        )
        titles(ax, f"{app}: p99 against offered rate", conditions)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save(fig, path)
