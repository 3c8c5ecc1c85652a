"""tls-termination: where TLS and HTTP/2 should end, at the app server or at nginx in
front (``experiment tls-termination``; README, "Experiments").

Each pair is loaded in five lanes (:func:`lanes`): h1 straight to the server (the
baseline), h1-tls and h2 ended by the server itself, and h1-tls and h2 ended by nginx,
which speaks HTTP/1.1 to the server over a kept-alive upstream. The lanes run through
protocol-costs' machinery (stackbench/experiments/protocols.py: one run directory, served
one right after the other, the order reversing each round); a lane the server cannot
speak is said missing with the reason stackbench/servers.py gives. The figure is requests
per TOTAL CPU-second, server + proxy + database + client (duets.total_cpu_us): ending TLS
at nginx moves work out of the server into another process, so the server's CPU alone
would flatter the nginx lanes. Each lane's figure is divided by the same protocol's ended
at the other place in the same round (a paired ratio), and stands beside its prediction
and the reason for it; p99 is compared the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from stackbench.experiments import EXPERIMENTS, TOLERANCE, Lane, protocol_prediction
from stackbench.experiments.duets import Measured, Ratio, median, paired_ratio
from stackbench.experiments.protocols import ProtocolsOutcome
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.proxy import NGINX
from stackbench.servers import H1, H1_TLS, H2, Knobs

NAME = "tls-termination"
AT_SERVER, AT_PROXY = "server", NGINX  # where a lane's protocol ends
ENDED = (H1_TLS, H2)
# Within this of 1, the two ends cost the same: either will do.
EVEN = 0.05
NGINX_END, SERVER_END, EITHER = "nginx", "server", "either"

# What ending a protocol at nginx costs, as a ratio to h1 straight to the server, over the
# whole stack: nginx's hop (its own parse of each request and response, and a second
# loopback connection, all in C: about 15 % more CPU per request), times what the protocol
# costs nginx itself.
PROXY_HOP = 0.85
_AT_NGINX = {
    H1_TLS: (0.97, "OpenSSL in nginx's C event loop"),
    H2: (0.93, "nginx's HTTP/2 module, in C, over OpenSSL"),
}


def lane_name(protocol: str, end: str | None) -> str:
    return protocol if end is None else f"{protocol} at {end}"


def lanes() -> tuple[Lane, ...]:
    """h1 direct (the baseline), then each protocol ended at the server and at nginx."""
    found = [Lane(H1, H1)]
    for protocol in ENDED:
        found.append(Lane(lane_name(protocol, AT_SERVER), protocol))
        found.append(Lane(lane_name(protocol, AT_PROXY), protocol, front=AT_PROXY))
    return tuple(found)


def other_end(lane: Lane) -> str | None:
    """The lane ending the same protocol at the other place; None for the baseline."""
    if lane.protocol == H1:
        return None
    if lane.front is None:
        return lane_name(lane.protocol, AT_PROXY)
    return lane_name(lane.protocol, AT_SERVER)


@dataclass(frozen=True)
class Prediction:
    at_proxy: float  # predicted figure of the protocol ended at nginx, over h1 direct's
    at_server: float  # ... ended at the server
    why: str

    @property
    def proxy_over_server(self) -> float:
        return self.at_proxy / self.at_server


def predict(server_id: str, protocol: str, cpus: int, knobs: Knobs) -> Prediction:
    """What ending ``protocol`` at nginx and at ``server_id`` cost, each as a ratio to h1
    straight to the server, and why: the server's side is protocol-costs' prediction for
    that server (its CPU per request, read here for the whole stack: an upper bound of the
    change, since the database's and the client's share does not move), nginx's is its
    hop times its own TLS or HTTP/2, in C."""
    own, own_why = protocol_prediction(server_id, Lane(protocol, protocol), False, 1, cpus, knobs)
    cost, how = _AT_NGINX[protocol]
    at_proxy = PROXY_HOP * cost
    why = (
        f"nginx: a hop (~{1 - PROXY_HOP:.0%} more CPU per request) and {how}, "
        f"{at_proxy:.2f} x h1; {server_id}: {own_why}, {own:.2f} x h1"
    )
    return Prediction(at_proxy, own, why)


def decision(ratio: Ratio) -> str | None:
    """Where to end the protocol, from nginx's figure over the server's (median of the
    rounds): nginx more than EVEN above, the server more than EVEN below, else either;
    None when no round measured both."""
    if ratio.median is None:
        return None
    if ratio.median > 1 + EVEN:
        return NGINX_END
    if ratio.median < 1 - EVEN:
        return SERVER_END
    return EITHER


HEADERS = [
    "pair",
    "scenario",
    "lane",
    "req/s",
    "p99 ms",
    "req/total CPU-s",
    "x h1",
    "x other end (range)",
    "predicted",
    "p99 x other end",
    "end it at",
    "why predicted",
]


def rows(outcome: ProtocolsOutcome) -> list[list[str]]:
    out = []
    options = outcome.options
    for (app, server, scenario), by_lane in sorted(outcome.measured.items()):
        base = by_lane.get(H1, Measured())
        skipped = outcome.skipped.get((app, server), {})
        pair = f"{app} @ {server}"
        for lane in outcome.lanes:
            if why_not := skipped.get(lane.name):
                out.append([pair, scenario, lane.name, *["–"] * 8, why_not])
                continue
            m = by_lane.get(lane.name, Measured())
            figures = [
                median(m.rps),
                median(m.p99_ms, "{:.1f}"),
                median(m.per_total_cpu),
            ]
            partner = other_end(lane)
            if partner is None:
                out.append([pair, scenario, lane.name, *figures, *[""] * 5, "the baseline"])
                continue
            to_h1 = paired_ratio(m.per_total_cpu, base.per_total_cpu)
            prediction = predict(server, lane.protocol, outcome.cpus, options.knobs)
            if partner in skipped:  # the server cannot end it: nginx is the only place
                out.append(
                    [pair, scenario, lane.name, *figures, to_h1.text(), "–", "–", "–",
                     NGINX_END, f"only nginx: {skipped[partner]}"]
                )  # fmt: skip
                continue
            other = by_lane.get(partner, Measured())
            ratio = paired_ratio(m.per_total_cpu, other.per_total_cpu)
            at_proxy = lane.front is not None
            predicted = prediction.proxy_over_server
            if not at_proxy:
                predicted = 1 / predicted
            off = ratio.median is not None and abs(ratio.median / predicted - 1) > TOLERANCE
            proxy_over_server = ratio if at_proxy else paired_ratio(
                other.per_total_cpu, m.per_total_cpu
            )  # fmt: skip
            out.append(
                [
                    pair,
                    scenario,
                    lane.name,
                    *figures,
                    to_h1.text(),
                    ratio.text() + (" ⚠" if off else ""),
                    f"{predicted:.2f}",
                    paired_ratio(m.p99_ms, other.p99_ms).text(),
                    decision(proxy_over_server) or "–",
                    prediction.why,
                ]
            )
    return out


def table(outcome: ProtocolsOutcome) -> Table:
    return terminal_table(EXPERIMENTS[NAME].question, HEADERS, rows(outcome), 3)


def markdown(outcome: ProtocolsOutcome, command: str) -> str:
    lines = [
        f"# {EXPERIMENTS[NAME].question}",
        "",
        f"`{command}`",
        "",
        *markdown_table(HEADERS, rows(outcome), labels=3),
        "",
        "req/total CPU-s: requests per CPU-second of the server, nginx (its lanes), the "
        "database and the client together, median over the rounds. x h1: over h1 straight to "
        "the server in the same round; x other end: over the same protocol ended at the other "
        "place in the same round, median (range); p99 likewise. end it at: nginx when its "
        f"figure is more than {EVEN:.0%} above the server's, the server when more than "
        f"{EVEN:.0%} below, either in between. ⚠: more than {TOLERANCE:.0%} away from the "
        "prediction.",
    ]
    if outcome.failures:
        lines += ["", "Not measured cleanly:", *(f"- {f}" for f in outcome.failures)]
    return "\n".join(lines) + "\n"
