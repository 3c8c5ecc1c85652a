"""The report's tables, as plain data rendered to Markdown here and to HTML in ``html``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from stackbench.judge import cpu_read_note, summary_cpu_read
from stackbench.matrix import REFERENCE_PAIR
from stackbench.report.across import Ratio, RunReference
from stackbench.report.load import LoadedResult, LoadedRun


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)  # right-aligned (numeric) columns
    caption: str = ""

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        align = ["---:" if i in self.right else ":---" for i in range(len(self.headers))]
        lines = [
            "| " + " | ".join(cell(h) for h in self.headers) + " |",
            "| " + " | ".join(align) + " |",
        ]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


def fmt(value: Any, spec: str = ",.1f", suffix: str = "") -> str:
    return "–" if value is None else format(value, spec) + suffix


def ms(value: float | None) -> str:
    """Latency with 3 significant-ish digits: 0.412, 4.12, 41.2, 412, 4,120."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def flags(result: LoadedResult) -> list[str]:
    """What a reader must know before trusting the row; empty when nothing."""
    out = []
    doc = result.doc
    if result.status != "ok":
        reason = (doc.get("reason") or "no reason recorded").strip().splitlines()[0]
        if len(reason) > 140:
            reason = reason[:137] + "..."
        out.append(f"{result.status.upper()}: {reason}")
    summary = result.summary
    bound = float(doc["flags"].get("noise_bound", 0.10))
    if doc["flags"].get("noisy") and summary:
        out.append(f"noisy (spread {summary['spread']:.0%} > {bound:.0%})")
    if doc["flags"].get("client_saturated"):
        cpu = f" (client CPU {summary['client_cpu_per_wall_s']:.2f}/s)" if summary else ""
        out.append("client-saturated" + cpu)
    if doc["flags"].get("checks_failed"):
        out.append("checks failed")
    if doc["flags"].get("worker_restarted"):
        exits = summary.get("worker_exits") if summary else None
        out.append("worker restarted" + (f" ({exits} exits)" if exits else ""))
    if doc["flags"].get("profiled"):
        out.append("profiled: not for comparison")
    return out


CPU_PARTS = ("server", "database", "client")
PROXIED_CPU_PARTS = ("server", "proxy", "database", "client")  # a table with a proxy in front


def cpu_per_request(
    summary: Mapping[str, Any] | None, parts: tuple[str, ...] = CPU_PARTS
) -> list[float | None]:
    """CPU µs per successful response: server, (proxy,) database, client; None where
    unknown (older results have no split at all; a pair without a proxy has no proxy's)."""
    split = (summary or {}).get("cpu_us_per_request") or {}
    return [split.get(part) for part in parts]


def cpu_note(items: list[LoadedResult]) -> str:
    """Why CPU-per-request cells read "–", when some do; empty when none needs saying."""
    summaries = [r.summary for r in items if r.summary]
    notes = []
    if any("cpu_us_per_request" not in s for s in summaries):
        notes.append(
            "CPU µs/req – in all three columns: the result was recorded before stackbench "
            "measured CPU per request"
        )
    if any("cpu_us_per_request" in s and s.get("database_cpu_source") is None for s in summaries):
        notes.append(
            "CPU µs/req db –: the database was external (DATABASE_URL), so its CPU is "
            "unknown; only an embedded PostgreSQL's processes are read"
        )
    note = "; ".join(notes) + "." if notes else ""
    reads = [(r.pair, summary_cpu_read(r.summary)) for r in items if r.summary]
    return " ".join(part for part in (note, cpu_read_note(reads)) if part)


def errors_cell(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "–"
    text = f"{100 * summary['error_rate']:.2f}%"
    kinds = sorted(summary["errors"].items(), key=lambda kv: -kv[1])
    if kinds:
        text += " (" + ", ".join(f"{k} {v}" for k, v in kinds[:3]) + ")"
    return text


def conditions(items: list[LoadedResult]) -> str:
    """'32 connections, closed model, 1 s warm-up + 3 s measured × 3 repeats' (results'
    own ``load`` sections), or 'mixed load settings' when they differ."""
    keys = ("connections", "model", "rate", "warmup_s", "duration_s", "repeats")
    loads = {tuple(cast(Mapping[str, Any], r.doc["load"])[k] for k in keys) for r in items}
    if len(loads) != 1:
        return "mixed load settings"
    connections, model, rate, warmup, duration, repeats = loads.pop()
    text = f"{connections} connections, " + (
        f"open model at {rate:g} req/s" if model == "open" else "closed model"
    )
    text += f", {warmup:g} s warm-up + {duration:g} s measured"
    return text + (f" × {repeats} repeats" if repeats > 1 else "")


def sort_results(items: list[LoadedResult]) -> list[LoadedResult]:
    """Best throughput first; failed results (no numbers) last."""
    return sorted(items, key=lambda r: (r.rps is None, -(r.rps or 0.0), r.pair))


def scenario_table(items: list[LoadedResult]) -> Table:
    """One row per pair measured in one scenario: throughput and latency, best first
    (``× best`` only where there is more than one pair to divide by)."""
    ordered = sort_results(items)
    ranked = sum(1 for r in ordered if r.rps) > 1
    headers = ["pair", "req/s", *(["× best"] if ranked else [])]
    headers += ["spread", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors", "flags"]
    table = Table(headers, right=set(range(1, len(headers) - 1)))  # all but pair and flags
    best = max((r.rps for r in ordered if r.rps), default=None)
    for result in ordered:
        s: Mapping[str, Any] = result.summary or {}
        rps = s.get("rps")
        repeats = len(result.repeats)
        table.rows.append(
            [
                result.pair,
                fmt(rps, ",.0f"),
                *([fmt(rps / best if rps is not None and best else None, ".2f")] if ranked else []),
                fmt(100 * s["spread"] if repeats > 1 and s else None, ".1f", "%"),
                ms(s.get("p50_ms")),
                ms(s.get("p90_ms")),
                ms(s.get("p99_ms")),
                ms(s.get("p999_ms")),
                errors_cell(result.summary),
                "; ".join(flags(result)) or "",
            ]
        )
    return table


COST_HEADERS = [
    "pair",
    "CPU µs/req server",
    "CPU µs/req db",
    "CPU µs/req client",
    "CPU µs/req total",
    "req per CPU-s",
    "server CPU s",
    "peak RSS MB",
    "peak DB conns",
]


def cpu_total(summary: Mapping[str, Any] | None) -> float | None:
    """Server + (proxy +) database + client CPU µs per response: None unless each is
    known (the proxy's counts only for a pair that had one in front)."""
    proxied = "proxy" in ((summary or {}).get("cpu_us_per_request") or {})
    parts = cpu_per_request(summary, PROXIED_CPU_PARTS if proxied else CPU_PARTS)
    return None if None in parts else sum(part for part in parts if part is not None)


def cost_table(items: list[LoadedResult]) -> Table:
    """What each pair's responses cost, in the same order: CPU per request by who spent
    it (a proxy's column when any pair had one in front), efficiency, memory and database
    connections."""
    parts = PROXIED_CPU_PARTS if any(r.proxy for r in items) else CPU_PARTS
    headers = list(COST_HEADERS)
    if parts is PROXIED_CPU_PARTS:
        headers.insert(headers.index("CPU µs/req server") + 1, "CPU µs/req proxy")
    table = Table(headers, right=set(range(1, len(headers))), caption=cpu_note(items))
    for result in sort_results(items):
        s: Mapping[str, Any] = result.summary or {}
        table.rows.append(
            [
                result.pair,
                *(fmt(us, ",.0f") for us in cpu_per_request(result.summary, parts)),
                fmt(cpu_total(result.summary), ",.0f"),
                fmt(s.get("requests_per_server_cpu_s"), ",.0f"),
                fmt(s.get("server_cpu_s"), ".2f"),
                fmt(s.get("peak_rss_mb"), ",.0f"),
                fmt(s.get("peak_db_connections"), "d"),
            ]
        )
    return table


def against_table(items: list[LoadedResult], against: str) -> Table | None:
    """Each app measured beside ``against`` under the same server, in one run and scenario,
    priced against it: what the difference between the two apps (one more middleware in a
    copy, another ORM) costs per request. None when no row has such a neighbour."""
    table = Table(
        [
            "pair",
            f"× {against} req/s",
            f"× {against} req per CPU-s",
            "server CPU µs/req",
            f"{against}'s",
            "difference",
            f"× {against} p99",
            "flags",
        ],
        right={1, 2, 3, 4, 5, 6},
        caption=(
            f"Each app against {against} under the same server, measured side by side: × "
            f"req/s and × req per CPU-s below 1.00 and a positive difference in server CPU "
            "per request are what the app costs more per request (its price); the "
            "difference is in the same units as the table above."
        ),
    )
    base = {r.server: r for r in items if r.app == against}
    for result in sort_results(items):
        other = base.get(result.server)
        if result.app == against or other is None:
            continue
        own_s: Mapping[str, Any] = result.summary or {}
        base_s: Mapping[str, Any] = other.summary or {}
        own_us, base_us = cpu_per_request(result.summary)[0], cpu_per_request(other.summary)[0]
        table.rows.append(
            [
                result.pair,
                fmt(_ratio(own_s.get("rps"), base_s.get("rps")), ".2f"),
                fmt(
                    _ratio(
                        own_s.get("requests_per_server_cpu_s"),
                        base_s.get("requests_per_server_cpu_s"),
                    ),
                    ".2f",
                ),
                fmt(own_us, ",.0f"),
                fmt(base_us, ",.0f"),
                fmt(None if own_us is None or base_us is None else own_us - base_us, "+,.0f"),
                fmt(_ratio(own_s.get("p99_ms"), base_s.get("p99_ms")), ".2f"),
                "; ".join(flags(result) + [f"{against} {flag}" for flag in flags(other)]),
            ]
        )
    return table if table.rows else None


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else float(value) / float(base)


def pairs_table(items: list[LoadedResult]) -> Table:
    """How each pair was served: the settings and the exact command line (per run when the
    report has several: defaults follow each machine's CPU count)."""
    by_run = len({r.doc["run_id"] for r in items}) > 1
    headers = ["pair", "interface", "workers", "threads", "pool", "server command"]
    table = Table((["run"] if by_run else []) + headers)
    table.right = {i + by_run for i in (2, 3, 4)}
    seen = set()
    for result in sorted(items, key=lambda r: (r.pair, r.doc["run_id"])):
        key = (result.doc["run_id"], result.pair)
        if key in seen:
            continue
        seen.add(key)
        settings = result.doc["server_settings"]
        command = " ".join(result.doc["server_command"]) or "(not started)"
        table.rows.append(
            ([result.doc["run_id"]] if by_run else [])
            + [
                result.pair,
                result.doc["interface"] or "–",
                str(settings["workers"]),
                str(settings["threads"]),
                str(settings["pool_size"]),
                command,
            ]
        )
    return table


def ratio_table(rows: list[Ratio]) -> Table:
    """Rows of several runs ranked by req/s ÷ the reference of their own run."""
    table = Table(
        ["pair", "run", "× reference req/s", "× reference p99", "flags"],
        right={2, 3},
        caption=(
            f"Ratios to {REFERENCE_PAIR} measured in the same run and scenario: higher × "
            "req/s is faster, lower × p99 is better. Raw numbers are in each run's section."
        ),
    )
    reference_row = [f"{REFERENCE_PAIR} (the reference)", "each run", "1.00", "1.00", ""]
    for row in rows:
        if reference_row and (row.rps is None or row.rps < 1.0):
            table.rows.append(reference_row)
            reference_row = []
        notes = flags(row.result) + [f"reference {flag}" for flag in flags(row.reference)]
        table.rows.append(
            [
                row.result.pair,
                row.run.run_id,
                fmt(row.rps, ".2f"),
                fmt(row.p99, ".2f"),
                "; ".join(notes),
            ]
        )
    if reference_row:
        table.rows.append(reference_row)
    return table


def references_table(references: list[RunReference]) -> Table:
    """What each run's reference measured: how fast each run's machine was, in its units."""
    table = Table(
        ["run", "machine", "reference req/s", "reference p99 ms", "spread", "its rows"],
        right={2, 3, 4},
    )
    for ref in references:
        s = ref.reference.summary if ref.reference else None
        repeats = len(ref.reference.repeats) if ref.reference else 0
        table.rows.append(
            [
                ref.run.run_id,
                machine(ref.run.manifest),
                fmt(s["rps"] if s else None, ",.0f"),
                ms(s["p99_ms"] if s else None),
                fmt(100 * s["spread"] if s and repeats > 1 else None, ".1f", "%"),
                "ranked as ratios" if ref.reference else f"not ranked: {ref.why_not}",
            ]
        )
    return table


def machine(manifest: Mapping[str, Any] | None) -> str:
    """'2× AMD EPYC 7B13, 7.8 GB', and the pinning when there was one; a run of
    ``bench --target`` names the serving host's machine and the load host's."""
    if manifest is None:
        return "unknown (manifest unusable)"
    pinning = manifest["pinning"]
    where = _cpus_and_memory(manifest["machine"])
    if target := manifest.get("target"):
        where = f"server on {target['host']}: {_cpus_and_memory(target['machine'])}; load: {where}"
    if pinning["server_cpus"] or pinning["client_cpus"]:
        where += f"; server CPUs {pinning['server_cpus']}, client CPUs {pinning['client_cpus']}"
    return where


def _cpus_and_memory(m: Mapping[str, Any]) -> str:
    return f"{m['cpu_count']}× {m['cpu_model']}, {m['memory_gb']} GB"


def runs_table(runs: list[LoadedRun]) -> Table:
    """Provenance of every run directory in the report."""
    table = Table(
        ["run", "status", "started", "commit", "Python", "machine", "database", "load"],
    )
    for run in runs:
        m = run.manifest
        if m is None:
            table.rows.append([run.run_id, "manifest unusable", "–", "–", "–", "–", "–", "–"])
            continue
        git = m["git"]
        commit = (git["commit"] or "unknown")[:10] + (" (dirty)" if git["dirty"] else "")
        db = m["database"]
        settings = db.get("settings") or {}
        version = settings.get("server_version") or settings.get("version") or ""
        db_text = ("embedded PostgreSQL" if db["embedded"] else "PostgreSQL") + (
            f" {version}" if version else ""
        )
        if "fsync" in settings:
            db_text += f", fsync {settings['fsync']}"
        load = conditions(run.results) if run.results else "–"
        status = m["status"] + (f": {m['reason']}" if m.get("reason") else "")
        table.rows.append(
            [
                run.run_id,
                status,
                m["started_at"],
                commit,
                f"{m['python']['implementation']} {m['python']['version']}",
                machine(m),
                db_text,
                load,
            ]
        )
    return table
