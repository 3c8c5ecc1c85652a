"""Duets in rounds: what the experiments that compare two sides share (django-features
and fastapi-features: a variant and its baseline; techempower: ours and theirs;
python-versions: a lane and the oldest).

The two sides are served one right after the other, round after round, and each round's
figure of one side is divided by the other side's from the same round (a paired ratio), so
the slow drift of a shared machine lands on both. A round a side missed stays in its
series as a None, so that later rounds stay paired with their own round. A side's figure
is measured under load (:class:`Measured`, from its result's summary) or counted under
valgrind's callgrind (:func:`count_job`: instructions per request, which do not move with
the machine's load as CPU seconds do).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

from shared_fixtures.processes import ProcessError
from stackbench import callgrind
from stackbench.apps import App
from stackbench.documents import CpuPerRequest, Summary
from stackbench.matrix import Pair
from stackbench.options import BenchOptions
from stackbench.run import BenchRun


@dataclass
class Measured:
    """One side (pair, scenario, side), per round: req/s, req per server CPU-s, req per
    server+database CPU-s, req per total CPU-s (server, proxy, database and client) and p99
    (None where a round was not measured)."""

    rps: list[float | None] = field(default_factory=list)
    per_server_cpu: list[float | None] = field(default_factory=list)
    per_stack_cpu: list[float | None] = field(default_factory=list)
    per_total_cpu: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)

    def record(self, summary: Summary | None, round_: int) -> None:
        """Round ``round_``'s figures from a result's summary (None: not measured)."""
        series = (
            self.rps, self.per_server_cpu, self.per_stack_cpu, self.per_total_cpu, self.p99_ms
        )  # fmt: skip
        for values in series:  # a side that missed a round keeps the slots aligned
            values.extend([None] * (round_ - len(values)))
        split = summary.get("cpu_us_per_request") if summary else None
        stack_us = (split["server"] or 0) + (split["database"] or 0) if split else 0
        self.rps.append(summary["rps"] if summary else None)
        self.per_server_cpu.append(summary["requests_per_server_cpu_s"] if summary else None)
        self.per_stack_cpu.append(round(1e6 / stack_us, 1) if stack_us else None)
        total_us = total_cpu_us(split) if split else None
        self.per_total_cpu.append(round(1e6 / total_us, 1) if total_us else None)
        self.p99_ms.append(summary["p99_ms"] if summary else None)


def total_cpu_us(split: CpuPerRequest) -> float | None:
    """CPU microseconds per request of everything that served it: server, proxy (when one
    was in front), database and client; None when one of them was not read (a total
    missing a part would flatter its side)."""
    parts = [split["server"], split["database"], split["client"]]
    if "proxy" in split:
        parts.append(split["proxy"])
    if any(part is None for part in parts):
        return None
    return sum(part for part in parts if part is not None)


def append_round(series: list[float | None], round_: int, value: float | None) -> None:
    """``value`` as round ``round_`` of ``series``; a round missed before it stays a None."""
    series.extend([None] * (round_ - len(series)))
    series.append(value)


def median(values: list[float | None], form: str = "{:,.0f}") -> str:
    """The median of the rounds measured, formatted; "–" when none was."""
    present = [v for v in values if v]
    return form.format(statistics.median(present)) if present else "–"


@dataclass(frozen=True)
class Ratio:
    median: float | None
    low: float | None
    high: float | None

    def text(self, digits: int = 2) -> str:
        if self.median is None or self.low is None or self.high is None:
            return "–"
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def paired_ratio(values: list[float | None], baseline: list[float | None]) -> Ratio:
    """Median and range of value/baseline, repeat by repeat (only repeats both measured)."""
    ratios = [v / b for v, b in zip(values, baseline, strict=False) if v and b]
    if not ratios:
        return Ratio(None, None, None)
    return Ratio(statistics.median(ratios), min(ratios), max(ratios))


def count_job(
    run: BenchRun,
    pair: Pair,
    options: BenchOptions,
    label: str,
    requests: int,
    warmup: int,
    app: App | None = None,
) -> tuple[dict[str, float | None], str | None]:
    """Serve ``pair`` under callgrind (its dumps kept in the run directory) and count each
    scenario's instructions per request: {scenario: count, None if not counted}, and why
    not, in one line, when some were not."""
    dumps = run.run_dir / "callgrind" / f"{app.id if app else pair.app}-{pair.server}-{label}"
    dumps.mkdir(parents=True)
    options = replace(options, ready_timeout=max(options.ready_timeout, 300.0))  # valgrind
    counts: dict[str, float | None] = dict.fromkeys(options.scenarios)
    wrap = callgrind.wrap(dumps)
    try:
        with run.serving(pair, options, wrap=wrap, label=label, app=app) as served:
            for scenario in options.scenarios:
                path = options.prefix + callgrind.PATHS[scenario]
                taken = callgrind.count(served.process.pid, served.base_url, path, warmup, requests)
                counts[scenario] = round(taken.per_request)
    except (ProcessError, callgrind.CallgrindError) as exc:
        return counts, f"{pair.app} @ {pair.server} {label}: {str(exc).splitlines()[0]}"
    return counts, None
