"""protocol-costs: what TLS and HTTP/2 cost each server per request, and where HTTP/2's
multiplexing changes the answer.

Each pair is loaded in lanes (stackbench/experiments/__init__.py, ``protocol_lanes``): h1,
the baseline; h1-tls; h2 with one stream per connection; h2 with N streams over 1/N of the
connections, so that every lane keeps the same requests in flight. The lanes of a pair are
served one right after the other, in ONE run directory, the order reversing each round,
and each lane's figure is divided by h1's of the same round (a paired ratio, as the duets
do: the drift of a shared machine lands on both). On ``db`` the figure is requests per
server CPU-second (what the protocol costs the server); on a slow-* scenario, whose
requests wait, it is requests per second (what the protocol lets the server overlap).
Each ratio stands beside its prediction and the reason for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from stackbench.documents import ResultRow
from stackbench.experiments import EXPERIMENTS, TOLERANCE, Lane, protocol_prediction
from stackbench.experiments.duets import Measured, median, paired_ratio
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.matrix import Pair
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.run import BenchRun
from stackbench.servers import H1, HTTP2, get_server

NAME = "protocol-costs"


@dataclass
class ProtocolsOutcome:
    run_dir: Path
    lanes: tuple[Lane, ...]
    connections: int  # h1's, and every lane's requests in flight
    cpus: int
    options: BenchOptions
    # (app, server, scenario) → lane name → per round
    measured: dict[tuple[str, str, str], dict[str, Measured]] = field(default_factory=dict)
    skipped: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # lane: why
    failures: list[str] = field(default_factory=list)


def lane_options(options: BenchOptions, lane: Lane) -> BenchOptions:
    """``options`` for one lane: its protocol, HTTP/2's streams over 1/N of the
    connections (the same requests in flight as h1's), and the proxy that ends the
    protocol when the lane has one in front (reached as ``options.upstream`` says)."""
    connections = max(1, options.load.concurrency // lane.streams)
    load = options.load.replace(
        h2=lane.protocol in HTTP2, streams=lane.streams, concurrency=connections
    )
    upstream = options.upstream if lane.front else None
    return replace(
        options, protocol=lane.protocol, load=load, repeats=1, proxy=lane.front, upstream=upstream
    )


def missing_lanes(server_id: str, lanes: tuple[Lane, ...]) -> dict[str, str]:
    """The lanes ``server_id`` cannot be loaded in, each with why (stackbench/servers.py).
    A lane with a proxy in front needs only HTTP/1.1 of the server: the proxy ends the rest."""
    server = get_server(server_id)
    missing = {lane.name: None if lane.front else server.why_not(lane.protocol) for lane in lanes}
    return {name: why for name, why in missing.items() if why}


def run_protocols(
    *,
    pairs: list[Pair],
    lanes: tuple[Lane, ...],
    options: BenchOptions,
    rounds: int,
    progress: Progress | None = None,
    experiment: str = NAME,
) -> ProtocolsOutcome:
    """Every pair in every lane it can be loaded in, ``rounds`` times (see the module), in
    one run directory of ``experiment`` (protocol-costs, or tls-termination's lanes)."""
    with BenchRun(
        experiment, output=options.output, experiment=experiment, progress=progress
    ) as run:
        outcome = ProtocolsOutcome(
            run.run_dir, lanes, options.load.concurrency, options.server_cpu_count, options
        )
        for pair in pairs:
            outcome.skipped[(pair.app, pair.server)] = missing_lanes(pair.server, lanes)
        for round_ in range(rounds):
            for pair in pairs:
                spoken = [
                    lane
                    for lane in lanes
                    if lane.name not in outcome.skipped[pair.app, pair.server]
                ]
                order = spoken if round_ % 2 == 0 else spoken[::-1]
                for lane in order:
                    label = f"{lane.label}-r{round_ + 1}"
                    for row in run.job(pair, lane_options(options, lane), label=label):
                        record(outcome, lane, row, round_)
    return outcome


def record(outcome: ProtocolsOutcome, lane: Lane, row: ResultRow, round_: int) -> None:
    key = (row["app"], row["server"], row["scenario"])
    measured = outcome.measured.setdefault(key, {}).setdefault(lane.name, Measured())
    summary = row["summary"] if row["status"] == "ok" else None  # a degraded round: none
    measured.record(summary, round_)
    if summary is None:
        outcome.failures.append(
            f"{row['app']} @ {row['server']} {row['scenario']} {lane.name}, round "
            f"{round_ + 1}: {row['status']}: {row['reason']}"
        )


HEADERS = [
    "pair",
    "scenario",
    "lane",
    "conns x streams",
    "req/s",
    "p99 ms",
    "req/server CPU-s",
    "x h1 measured (range)",
    "x h1 predicted",
    "why predicted",
]


def waits(scenario: str) -> bool:
    """A slow-* scenario: its requests wait (the upstream, the database's sleep)."""
    return scenario.startswith("slow")


def rows(outcome: ProtocolsOutcome) -> list[list[str]]:
    out = []
    for (app, server, scenario), by_lane in sorted(outcome.measured.items()):
        base = by_lane.get(outcome.lanes[0].name, Measured())
        for lane in outcome.lanes:
            pair = f"{app} @ {server}"
            why_not = outcome.skipped.get((app, server), {}).get(lane.name)
            if why_not:
                out.append([pair, scenario, lane.name, "–", "–", "–", "–", "–", "–", why_not])
                continue
            m = by_lane.get(lane.name, Measured())
            slow = waits(scenario)
            ratio = paired_ratio(
                m.rps if slow else m.per_server_cpu, base.rps if slow else base.per_server_cpu
            )
            predicted, why = protocol_prediction(
                server, lane, slow, outcome.connections, outcome.cpus, outcome.options.knobs
            )
            off = ratio.median is not None and abs(ratio.median / predicted - 1) > TOLERANCE
            connections = max(1, outcome.connections // lane.streams)
            out.append(
                [
                    pair,
                    scenario,
                    lane.name,
                    f"{connections} x {lane.streams}",
                    median(m.rps),
                    median(m.p99_ms, "{:.1f}"),
                    median(m.per_server_cpu),
                    ("" if lane.protocol == H1 and lane.streams == 1 else ratio.text())
                    + (" ⚠" if off else ""),
                    f"{predicted:.2f}",
                    why,
                ]
            )
    return out


def table(outcome: ProtocolsOutcome) -> Table:
    return terminal_table(EXPERIMENTS[NAME].question, HEADERS, rows(outcome), 4)


def markdown(outcome: ProtocolsOutcome, command: str) -> str:
    lines = [
        f"# {EXPERIMENTS[NAME].question}",
        "",
        f"`{command}`",
        "",
        *markdown_table(HEADERS, rows(outcome), labels=4),
        "",
        "x h1: the lane's figure over h1's in the same round, median (range) over the rounds: "
        "requests per server CPU-second, or requests per second on slow-* scenarios. "
        f"⚠: more than {TOLERANCE:.0%} away from the prediction.",
    ]
    if outcome.failures:
        lines += ["", "Not measured cleanly:", *(f"- {f}" for f in outcome.failures)]
    return "\n".join(lines) + "\n"
