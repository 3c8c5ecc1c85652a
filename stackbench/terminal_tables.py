"""The tables a person reads in a terminal or a CI log: a run's summary, the changes against
a baseline, the matrix of pairs. Each is built in a few layouts, widest first, and
``fit`` prints the first one that fits the console's width without cutting a cell: columns
are stacked (two figures in one cell, one above the other) or left out, never a digit cut.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from stackbench import matrix
from stackbench.apps import APPS
from stackbench.documents import CpuPerRequest, ResultRow, Summary
from stackbench.judge import cpu_read_note, summary_cpu_read
from stackbench.servers import PROTOCOLS, SERVERS

ELLIPSIS = "…"  # what rich puts where it cuts a cell


def _probe(width: int) -> Console:
    return Console(
        file=io.StringIO(), width=width, color_system=None, highlight=False, legacy_windows=False
    )


def _lines(cell: RenderableType) -> list[str]:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return text.splitlines() or [""]


def size_columns(table: Table, width: int) -> bool:
    """Each column of ``table`` its width within ``width`` columns: a figure (a ``no_wrap``
    column) its whole width, a name or prose at least its ``min_width`` (else its longest
    word), the room left shared among those in order. False when even that is too wide.
    (Rich's own sizing squeezes every column alike when a table is too wide: figures cut.)"""
    longest: list[int] = []
    for column in table.columns:
        lines = [line for cell in [column.header, *column.cells] for line in _lines(cell)]
        longest.append(max(cell_len(line) for line in lines))
        if column.no_wrap:
            column.width = longest[-1]
        else:
            words = [cell_len(word) for line in lines for word in line.split()]
            column.width = min(column.min_width or max(words, default=1), longest[-1])
    probe = _probe(width)
    unbounded = probe.options.update(max_width=10**6)  # a measure is clamped to its width
    spare = width - Measurement.get(probe, unbounded, table).maximum
    if spare < 0:
        return False
    for column, most in zip(table.columns, longest, strict=True):
        if not column.no_wrap and column.width is not None:
            grow = min(spare, most - column.width)
            column.width += grow
            spare -= grow
    return True


def fits(renderable: RenderableType, width: int) -> bool:
    """True when ``renderable`` prints within ``width`` columns with no cell cut ("…")."""
    if isinstance(renderable, Table) and not size_columns(renderable, width):
        return False
    probe = _probe(width)
    with probe.capture() as captured:
        probe.print(renderable, crop=False)
    lines = captured.get().splitlines()
    return not any(ELLIPSIS in line or cell_len(line) > width for line in lines)


def fit(layouts: Sequence[Callable[[], RenderableType]], width: int) -> RenderableType:
    """The first layout that fits ``width``; the last one (the narrowest) otherwise."""
    built = None
    for layout in layouts:
        built = layout()
        if fits(built, width):
            return built
    assert built is not None, "no layout given"
    return built


# -- a run's summary ----------------------------------------------------------------------


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


def _cpu_parts(proxied: bool) -> str:
    return "srv+prx+db+cli" if proxied else "srv+db+cli"


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


FLAG_NAMES = ("noisy", "client_saturated", "checks_failed", "worker_restarted", "profiled")


def _verdict(row: ResultRow) -> str:
    """'degraded (noisy, worker_restarted)': the status and its flags, words kept whole."""
    flags = [name for name in FLAG_NAMES if row["flags"].get(name)]
    return row["status"] + (f" ({', '.join(flags)})" if flags else "")


def _status(row: ResultRow) -> Text:
    status = _verdict(row)
    if row["status"] != "ok" and row["reason"]:
        status += f"\n{row['reason']}"  # the reason under the verdict, wrapped as prose
    style = {"ok": "green", "degraded": "yellow", "failed": "red"}[row["status"]]
    return Text(status, style=style, overflow="fold")


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[ResultRow, Summary | dict[str, Any]], str | Text]
    numeric: bool = True


SUMMARY_COLUMNS = {
    "pair": Column("pair", lambda row, s: _pair(row), numeric=False),
    "scenario": Column(
        "scenario",
        lambda row, s: row["scenario"] + (f" [{row['label']}]" if row.get("label") else ""),
        numeric=False,
    ),
    "rps": Column("req/s", lambda row, s: _fmt(s.get("rps"))),
    "p50": Column("p50 ms", lambda row, s: _fmt(s.get("p50_ms"), ".2f")),
    "p99": Column("p99 ms", lambda row, s: _fmt(s.get("p99_ms"), ".2f")),
    "errors": Column("errors", lambda row, s: f"{100 * s['error_rate']:.2f}%" if s else "–"),
    "per_cpu": Column("req/CPU-s", lambda row, s: _fmt(s.get("requests_per_server_cpu_s"), ".0f")),
    "cpu": Column(
        f"CPU µs/req\n{_cpu_parts(False)}", lambda row, s: _cpu_split(s.get("cpu_us_per_request"))
    ),
    "rss": Column("RSS MB", lambda row, s: _fmt(s.get("peak_rss_mb"))),
    "conns": Column("DB conns", lambda row, s: _fmt(s.get("peak_db_connections"), "d")),
    "misbehaving": Column(
        "misbehaving\n(held, closed by the server)",
        lambda row, s: _misbehaving(s),
        numeric=False,
    ),
    "status": Column("status", lambda row, s: _status(row), numeric=False),
}
PROXIED_CPU = Column(
    f"CPU µs/req\n{_cpu_parts(True)}",
    lambda row, s: _cpu_split(s.get("cpu_us_per_request"), proxied=True),
)
# Widest first: every column; two figures stacked in one cell; then columns left out
# (what a person can do without first: the median, memory, connections, errors).
SUMMARY_LAYOUTS: list[list[tuple[str, ...]]] = [
    [(name,) for name in SUMMARY_COLUMNS],
    [("pair", "scenario"), ("rps", "errors"), ("p50", "p99"), ("per_cpu", "cpu"),
     ("rss", "conns"), ("misbehaving",), ("status",)],
    [("pair", "scenario"), ("rps", "errors"), ("p99",), ("per_cpu", "cpu"), ("status",)],
    [("pair", "scenario"), ("rps", "p99"), ("cpu",), ("status",)],
]  # fmt: skip


def _summary_columns(rows: list[ResultRow]) -> dict[str, Column]:
    """The summary's columns for these rows: the proxy's CPU when a row had one in front,
    the misbehaving clients when a row held some."""
    columns = dict(SUMMARY_COLUMNS)
    if any(row.get("proxy") for row in rows):
        columns["cpu"] = PROXIED_CPU
    if not any(row["summary"] and row["summary"].get("misbehaving") for row in rows):
        del columns["misbehaving"]
    return columns


def _summary_layout(rows: list[ResultRow], title: str, stacks: list[tuple[str, ...]]) -> Table:
    reads = [
        (f"{_pair(row)} {row['scenario']}", summary_cpu_read(row["summary"]))
        for row in rows
        if row["summary"]
    ]
    columns = _summary_columns(rows)
    stacks = [kept for stack in stacks if (kept := tuple(n for n in stack if n in columns))]
    shown = {name for stack in stacks for name in stack}
    left_out = [columns[name].header.replace("\n", " ") for name in columns if name not in shown]
    notes = [cpu_read_note(reads)]
    if left_out:
        notes.append(
            f"Left out to fit the terminal: {', '.join(left_out)} (a wider terminal, or "
            "the report, has them)."
        )
    table = Table(
        title=title,
        title_justify="left",
        caption=" ".join(note for note in notes if note),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,  # two columns more for figures
        pad_edge=False,
    )
    grid: list[list[Text]] = []
    for row in rows:
        summary: Summary | dict[str, Any] = row["summary"] or {}
        cells = []
        for stack in stacks:
            parts = [columns[name].cell(row, summary) for name in stack]
            texts = [part if isinstance(part, Text) else Text(part) for part in parts]
            cells.append(texts[0] if len(texts) == 1 else Text("\n").join(texts))
        grid.append(cells)
    for stack in stacks:
        stacked = [columns[name] for name in stack]
        header = "\n".join(column.header for column in stacked)
        if all(column.numeric for column in stacked):
            table.add_column(header, justify="right", no_wrap=True)  # never wrapped nor cut
        elif "status" in stack:  # prose: a long word (a path) may fold
            words = [cell_len(word) for row in rows for word in _verdict(row).split()]
            table.add_column(header, min_width=max([PROSE_WORD, *words]), overflow="fold")
        else:  # names: their longest word stays whole
            table.add_column(header)
    for cells in grid:
        table.add_row(*cells)
    return table


PROSE_WORD = 12  # a status's reason wraps at words, a longer one folds (never a flag's)


def _summary_cards(rows: list[ResultRow], title: str) -> Text:
    """The narrowest layout: two lines per row, wrapped at words like prose."""
    lines = [Text(title, style="bold")]
    for row in rows:
        s: Summary | dict[str, Any] = row["summary"] or {}
        head = (
            f"{SUMMARY_COLUMNS['pair'].cell(row, s)} · {SUMMARY_COLUMNS['scenario'].cell(row, s)}"
        )
        lines.append(Text.assemble(head, " · ", _status(row)))
        proxied = bool(row.get("proxy"))
        figures = [
            f"{_fmt(s.get('rps'))} req/s",
            f"p99 {_fmt(s.get('p99_ms'), '.2f')} ms",
            f"CPU µs/req {_cpu_split(s.get('cpu_us_per_request'), proxied)} "
            f"({_cpu_parts(proxied)})",
            *([f"misbehaving {held}"] if (held := _misbehaving(s)) else []),
        ]
        lines.append(Text("  " + " · ".join(figures)))
    return Text("\n").join(lines)


def summary_table(rows: list[ResultRow], title: str, width: int) -> RenderableType:
    """A run's rows: one per (pair, scenario), in the first layout that fits ``width``."""
    layouts = [partial(_summary_layout, rows, title, stacks) for stacks in SUMMARY_LAYOUTS]
    return fit([*layouts, partial(_summary_cards, rows, title)], width)


# -- changes against a baseline ----------------------------------------------------------


def _changes_layout(changes: list[Any], stacked: bool) -> Table:
    table = Table(
        title="change against the baseline",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    left = ("scenario", "pair")
    headers = (
        [("scenario", "pair"), ("req/s", "change", "bound"), ("p99 ms", "change", "bound")]
        if stacked
        else [(h,) for h in ("scenario", "pair", "req/s", "change", "bound")]
        + [(h,) for h in ("p99 ms", "change", "bound")]
    )
    for header in headers:
        table.add_column(
            "\n".join(header),
            justify="left" if header[0] in left else "right",
            no_wrap=header[0] not in left,
        )
    table.add_column("verdict")
    for c in changes:
        a, b = (r.summary if r else None for r in (c.base, c.new))
        cells = [
            c.scenario,
            c.pair,
            f"{a['rps']:,.0f} → {b['rps']:,.0f}" if a and b else "–",
            _fmt(None if c.rps_change is None else 100 * c.rps_change, "+.1f") + "%",
            f"±{100 * c.rps_bound:.0f}%",
            f"{a['p99_ms']:,.1f} → {b['p99_ms']:,.1f}" if a and b else "–",
            _fmt(None if c.p99_change is None else 100 * c.p99_change, "+.1f") + "%",
            f"±{100 * c.p99_bound:.0f}%",
        ]
        if stacked:
            cells = ["\n".join(cells[0:2]), "\n".join(cells[2:5]), "\n".join(cells[5:8])]
        verdict = Text(c.verdict, style="red" if c.flagged else "")
        table.add_row(*cells, verdict)
    return table


def changes_table(changes: list[Any], width: int) -> RenderableType:
    """Each change against the baseline with its noise bound and verdict."""
    return fit([partial(_changes_layout, changes, stacked) for stacked in (False, True)], width)


# -- the matrix ---------------------------------------------------------------------------

VALID, MISSING = "✓", "·"


def _interfaces(interfaces: tuple[str, ...]) -> str:
    return "/".join(interfaces).upper()


def _matrix_layout(split_names: bool) -> Table:
    """Servers down (grouped by the interface they serve), apps across: ✓ where a
    bench(app, server) session exists."""
    table = Table(
        title="bench pairs: nox -s \"bench(app='APP', server='SERVER')\"",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("server", no_wrap=True)
    for app in APPS.values():
        name = app.id.replace("_", "_\n", 1) if split_names else app.id
        serves = "\n".join(app.interfaces).upper() if split_names else _interfaces(app.interfaces)
        table.add_column(f"{name}\n{serves}", justify="center")
    valid = set(matrix.pairs())
    by_interface: dict[tuple[str, ...], list[str]] = {}
    for server in SERVERS.values():
        by_interface.setdefault(server.interfaces, []).append(server.id)
    for served, servers in by_interface.items():
        table.add_row(Text(f"{_interfaces(served)} servers", style="dim italic"))
        for server_id in servers:
            table.add_row(
                server_id,
                *(
                    VALID if matrix.Pair(app.id, server_id) in valid else MISSING
                    for app in APPS.values()
                ),
            )
    return table


def _matrix_lists() -> Text:
    """The narrowest layout: each app and the servers it runs under, wrapped."""
    valid = matrix.pairs()
    lines = [
        f"{app.id}: " + " ".join(p.server for p in valid if p.app == app.id)
        for app in APPS.values()
    ]
    return Text("bench pairs (app: servers)\n" + "\n".join(lines), overflow="fold")


def matrix_grid(width: int) -> RenderableType:
    """Every valid pair in a grid, and why the missing ones are missing, in a few lines."""
    grid = fit(
        [partial(_matrix_layout, False), partial(_matrix_layout, True), _matrix_lists], width
    )
    # Said by the grid's headers: a server and an app with no interface in common.
    reasons = [
        f"{app} @ {server}: {why}"
        for app, server, why in matrix.missing()
        if SERVERS[server].interface_for(APPS[app]) is not None
    ]
    legend = (
        f"{VALID} a pair ({len(matrix.pairs())} in all); {MISSING} missing: the server does not "
        "serve the app's interface (WSGI/ASGI)"
    )
    return Group(grid, Text(legend, overflow="fold"), *(Text(r, overflow="fold") for r in reasons))


def protocol_lines() -> RenderableType:
    """What each server speaks for ``bench --protocol`` (a server's, whichever app it
    serves) and why each missing protocol is missing, servers with the same answer
    together: a few lines under the grid, folded at any width, never cut (each caveat
    too: ``matrix --json``, docs/servers.md)."""
    everyone = [p for p in PROTOCOLS if all(s.why_not(p) is None for s in SERVERS.values())]
    groups: dict[tuple[str, ...], dict[str, list[str]]] = {}
    for server in SERVERS.values():
        spoken = tuple(p for p in server.protocols() if p not in everyone)
        # why the first protocol missing is (the others', in the JSON and docs/servers.md)
        why = next((r for p in PROTOCOLS if (r := server.why_not(p)) is not None), "")
        groups.setdefault(spoken, {}).setdefault(why, []).append(server.id)
    lines = [f"protocols (bench --protocol): {', '.join(everyone)}: every server"]
    for spoken, by_reason in sorted(groups.items(), key=lambda group: -len(group[0])):
        missing = [p for p in PROTOCOLS if p not in everyone and p not in spoken]
        label = ", ".join(spoken) if spoken else ""
        if missing:
            label = f"{label} (no {', '.join(missing)})" if spoken else f"no {', '.join(missing)}"
        parts = [
            f"{', '.join(servers)}" + (f": {why}" if why else "")
            for why, servers in by_reason.items()
        ]
        lines.append(f"{label}: " + "; ".join(parts))
    return Group(*(Text(line, overflow="fold") for line in lines))
