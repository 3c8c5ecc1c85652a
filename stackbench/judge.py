"""The verdict on one scenario: its summary over repeats, its flags and its status.

Pure: it reads the repeats a bench job measured (loadgen's JSON reports and the server
figures beside them) and decides. Every status and flag here is proven by a test that
feeds it a known-bad input (tests/harness/test_judge.py).

- ``failed``: no measurement, the server died or hung, or nothing succeeded.
- ``degraded``: it completed, but more than 1 % of requests failed (transport errors or an
  unexpected status), a response carried a wrong body (any one: a wrong answer is never
  clean), a server process exited inside a measured window, or a connection of the load
  spoke another protocol than the one asked for (``bench --protocol``: loadgen's count of
  what each connection negotiated, or no such count for a protocol other than h1).
- ``ok``: none of the above.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from typing import Any, Literal

from stackbench.documents import (
    CpuPerRequest,
    CpuRead,
    DatabaseFigures,
    Flags,
    LatencyBlock,
    LoadgenReport,
    Negotiated,
    Repeat,
    Status,
    Summary,
    Verdict,
)
from stackbench.servers import H1, NEGOTIATED, TLS

NOISE_BOUND = 0.10  # repeats whose req/s spread (max-min)/median exceeds this are "noisy"
MAX_ERROR_RATE = 0.01  # above this a result is "degraded"

# loadgen derives one check per endpoint from the status codes ("db: status is 200"); those
# failures are the error rate's. Every other check looks at the body.
_STATUS_CHECK = re.compile(r": status is [\d/]+$")


def judge(repeats: list[Repeat], reason: str | None, protocol: str = H1) -> Verdict:
    """{status, reason, summary, flags} for the repeats of one scenario, whose load was
    asked to speak ``protocol``.

    ``reason`` is set when the measurement itself broke (loadgen failed, the server died):
    the result is then failed, with whatever repeats completed still summarised.
    """
    flags = Flags(
        noisy=False,
        client_saturated=False,
        checks_failed=False,
        worker_restarted=False,
        noise_bound=NOISE_BOUND,
    )
    if not repeats:
        return Verdict(
            status="failed", reason=reason or "no measurement", summary=None, flags=flags
        )
    reports = [r["loadgen"] for r in repeats]
    summary = _summary(repeats)
    failed_checks = _failed_body_checks(reports)
    worker_exits = summary["worker_exits"]
    flags["noisy"] = len(repeats) > 1 and summary["spread"] > NOISE_BOUND
    flags["client_saturated"] = any(not r["self_checks"]["client_cpu"]["ok"] for r in reports)
    flags["checks_failed"] = bool(failed_checks)
    flags["worker_restarted"] = worker_exits > 0
    summary["negotiated"] = negotiated(reports)
    spoke_other = protocol_problem(protocol, summary["negotiated"])
    flags["protocol_mismatch"] = spoke_other is not None

    status: Status
    if reason is not None:
        status = "failed"
    elif summary["responses"] == 0 or all(int(r["summary"]["ok"]) == 0 for r in reports):
        status, reason = "failed", "; ".join(filter(None, [spoke_other, "no successful responses"]))
    else:
        problems = [spoke_other] if spoke_other else []
        if summary["error_rate"] > MAX_ERROR_RATE:
            problems.append(f"error rate {summary['error_rate']:.2%}")
        if failed_checks:
            problems.append("wrong responses: " + ", ".join(failed_checks))
        if worker_exits:
            plural = "es" if worker_exits > 1 else ""
            problems.append(
                f"{worker_exits} server process{plural} exited during the measured window"
            )
        status = "degraded" if problems else "ok"
        reason = "; ".join(problems) or None
    return Verdict(status=status, reason=reason, summary=summary, flags=flags)


def negotiated(reports: list[LoadgenReport]) -> Negotiated | None:
    """What the connections of every repeat negotiated, summed; None when a report does
    not say (a loadgen from before TLS and HTTP/2)."""
    found = Negotiated(protocols={}, tls_versions={}, ciphers={})
    for report in reports:
        said = report.get("protocol")
        if said is None:
            return None
        tls = said["tls"]
        for total, counts in (
            (found["protocols"], said["negotiated"]),
            (found["tls_versions"], tls["versions"] if tls else {}),
            (found["ciphers"], tls["ciphers"] if tls else {}),
        ):
            for name, count in counts.items():
                total[name] = total.get(name, 0) + int(count)
    return found


def protocol_problem(protocol: str, spoken: Negotiated | None) -> str | None:
    """None when every connection spoke ``protocol`` (TLS ones over TLS); else what they
    spoke, in one line."""
    if spoken is None:
        if protocol == H1:
            return None  # what every loadgen spoke before it could speak anything else
        return f"asked {protocol}: loadgen did not report what its connections negotiated"
    wanted = NEGOTIATED[protocol]
    others = {name: n for name, n in spoken["protocols"].items() if name != wanted}
    if not others and not spoken["protocols"].get(wanted):
        return f"asked {protocol} ({wanted}): no connection spoke it"
    if others:
        total = sum(spoken["protocols"].values())
        said = ", ".join(f"{n} {name}" for name, n in sorted(others.items()))
        other = sum(others.values())
        return f"asked {protocol} ({wanted}): {other} of {total} connections spoke {said}"
    tls = sum(spoken["tls_versions"].values())
    if protocol in TLS and not tls:
        return f"asked {protocol}: no connection negotiated TLS"
    if protocol not in TLS and tls:
        return f"asked {protocol}: {tls} connections negotiated TLS"
    return None


def headline_name(report: LoadgenReport) -> Literal["corrected", "uncorrected"]:
    """Which latency loadgen leads with: corrected in the open model, when it has one."""
    latency = report["latency"]
    return latency["headline"] if latency[latency["headline"]] else "uncorrected"


def headline(report: LoadgenReport) -> LatencyBlock:
    """The latency block loadgen leads with."""
    block = report["latency"][headline_name(report)]
    assert block is not None  # "uncorrected" is always there
    return block


def median_index(values: list[float]) -> int:
    """Index of the repeat whose value is the median (the upper one of an even count)."""
    return sorted(range(len(values)), key=lambda i: values[i])[len(values) // 2]


def checks(report: LoadgenReport | dict[str, Any]) -> list[dict[str, Any]]:
    """loadgen's checks as a list of {name, passes, fails} (older reports used a dict)."""
    found = report.get("checks") or []
    if isinstance(found, dict):
        return [dict(value, name=name) for name, value in found.items()]
    return list(found)


def body_checks(report: LoadgenReport) -> list[dict[str, Any]]:
    """loadgen's checks that look at the body (the status checks are the error rate's)."""
    return [check for check in checks(report) if not _STATUS_CHECK.search(str(check["name"]))]


def _failed_body_checks(reports: list[LoadgenReport]) -> list[str]:
    """'name (fails of total)' for every body check that failed in any repeat."""
    fails: dict[str, list[int]] = {}
    for report in reports:
        for check in body_checks(report):
            counts = fails.setdefault(str(check["name"]), [0, 0])
            counts[0] += int(check["fails"])
            counts[1] += int(check["fails"]) + int(check["passes"])
    return [f"{name} ({bad} of {total})" for name, (bad, total) in fails.items() if bad]


def _ms(ns: int | float) -> float:
    return round(ns / 1e6, 3)


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _per_request_us(cpu_s: float | None, responses: int) -> float | None:
    return round(cpu_s / responses * 1e6, 1) if cpu_s is not None and responses else None


def _summary(repeats: list[Repeat]) -> Summary:
    reports = [r["loadgen"] for r in repeats]
    rps = [float(r["rps"]) for r in repeats]
    median_rps = statistics.median(rps)
    spread = (max(rps) - min(rps)) / median_rps if median_rps else 0.0
    # The repeat whose throughput is the median speaks for latency and CPU per request.
    middle = median_index(rps)
    measured, server = reports[middle], repeats[middle]["server"]
    latency = headline(measured)["percentiles_ns"]
    responses = sum(int(r["summary"]["responses"]) for r in reports)
    failed = sum(int(r["summary"]["failed"]) + int(r["summary"]["errors"]) for r in reports)
    sent = max(sum(int(r["summary"]["requests"]) for r in reports), 1)
    errors: dict[str, int] = {}
    for report in reports:
        for kind, count in report["errors"].items():
            errors[kind] = errors.get(kind, 0) + int(count)
    server_cpu = _median_or_none([r["server"]["cpu_s"] for r in repeats if r["server"]["cpu_s"]])
    database = repeats[middle].get("database") or DatabaseFigures(cpu_s=None, source=None)
    front = repeats[middle].get("proxy")  # a proxy in front (bench --proxy)
    client_cpu = _client_cpu_s(measured)
    ok = int(measured["summary"]["ok"])
    rss = [r["server"]["peak_rss_mb"] for r in repeats if r["server"]["peak_rss_mb"]]
    conns = [
        r["server"]["peak_db_connections"]
        for r in repeats
        if r["server"]["peak_db_connections"] is not None
    ]
    summary = Summary(
        responses=responses,
        rps=round(median_rps, 1),
        rps_min=round(min(rps), 1),
        rps_max=round(max(rps), 1),
        spread=round(spread, 4),
        p50_ms=_ms(latency["50"]),
        p90_ms=_ms(latency["90"]),
        p99_ms=_ms(latency["99"]),
        p999_ms=_ms(latency["99.9"]),
        max_ms=_ms(latency["100"]),
        error_rate=round(min(failed / sent, 1.0), 5),
        errors=errors,
        server_cpu_s=server_cpu,
        requests_per_server_cpu_s=round(ok / server["cpu_s"], 1) if server["cpu_s"] else None,
        database_cpu_s=database["cpu_s"],
        database_cpu_source=database["source"],
        server_cpu_read=coarsest([r["server"].get("cpu_read") for r in repeats]),
        database_cpu_read=database.get("cpu_read"),
        client_cpu_s=client_cpu,
        cpu_us_per_request=_cpu_per_request(
            _per_request_us(server["cpu_s"] or None, ok),
            None if front is None else _per_request_us(front["cpu_s"], ok),
            _per_request_us(database["cpu_s"], ok),
            _per_request_us(client_cpu, ok),
            proxied=front is not None,
        ),
        peak_rss_mb=max(rss) if rss else None,
        peak_db_connections=max(conns) if conns else None,
        client_cpu_per_wall_s=round(max(_client_cpu_per_process(r) for r in reports), 3),
        worker_exits=sum(int(r["server"].get("worker_exits", 0)) for r in repeats),
    )
    if front is not None:
        summary["proxy_cpu_s"] = front["cpu_s"]
        summary["proxy_cpu_read"] = front["cpu_read"]
    if measured.get("misbehaving"):
        summary["misbehaving"] = measured.get("misbehaving")
    return summary


def _cpu_per_request(
    server: float | None,
    proxy: float | None,
    database: float | None,
    client: float | None,
    *,
    proxied: bool,
) -> CpuPerRequest:
    """Who spent the CPU of a response: the proxy only when there was one in front."""
    split = CpuPerRequest(server=server, database=database, client=client)
    if proxied:
        split["proxy"] = proxy
    return split


def coarsest(reads: list[CpuRead | None]) -> CpuRead | None:
    """The read with the largest step among those known (figures over several repeats are
    no finer than their coarsest); None when none is."""
    known = [read for read in reads if read is not None]
    return max(known, key=lambda read: read["resolution_s"]) if known else None


def summary_cpu_read(summary: Summary | Mapping[str, Any]) -> CpuRead | None:
    """How a summary's CPU figures were read, the coarsest of server, proxy and database."""
    return coarsest(
        [
            summary.get("server_cpu_read"),
            summary.get("proxy_cpu_read"),
            summary.get("database_cpu_read"),
        ]
    )


def cpu_read_note(figures: list[tuple[str, CpuRead | None]]) -> str:
    """One sentence on how CPU figures were read, from (label, read) pairs: the source and
    its step, the figures resolved more coarsely (a tick: a short window's CPU per request
    is not resolved there), and those that do not say (recorded before reads were)."""
    known = [(label, read) for label, read in figures if read is not None]
    unknown = [label for label, read in figures if read is None]
    parts = []
    if known:
        sources = " and ".join(sorted({_SOURCES[read["source"]] for _, read in known}))
        finest = min(read["resolution_s"] for _, read in known)
        coarse = [label for label, read in known if read["resolution_s"] > finest]
        text = f"CPU time read from {sources} to {_step(finest)}"
        if coarse:
            worst = max(read["resolution_s"] for _, read in known)
            text += (
                f"; to {_step(worst)} only for {', '.join(coarse)} (a process reaped a child "
                "in the window, or was read in clock ticks)"
            )
        if max(read["resolution_s"] for _, read in known) >= 1e-3:
            text += ": CPU per request over a short window is no finer than that (docs/bench.md)"
        parts.append(text)
    if unknown:
        parts.append(
            f"{', '.join(unknown)}: recorded before stackbench said how it read CPU time "
            "(whole clock ticks then)"
        )
    return "; ".join(parts) + "." if parts else ""


_SOURCES = {
    "cpu-clock": "each process's CPU-time clock (cpu-clock)",
    "proc-stat": "/proc/PID/stat's clock ticks (proc-stat)",
}


def _step(seconds: float) -> str:
    for unit, scale in (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3)):
        if seconds < scale * 1000:
            return f"{seconds / scale:g} {unit}"
    return f"{seconds:g} s"


def _client_cpu_per_process(report: LoadgenReport) -> float:
    return float(report["self_checks"]["client_cpu"]["cpu_per_wall_s_per_process"])


def _client_cpu_s(report: LoadgenReport) -> float | None:
    """loadgen's CPU in the measured window: its CPU per wall second (warm-up included,
    a steady rate) times the window."""
    cpu = report["self_checks"]["client_cpu"]
    elapsed = float(report["summary"].get("elapsed_s") or 0)
    if not elapsed:
        return None
    return round(float(cpu["cpu_per_wall_s"]) * elapsed, 4)
