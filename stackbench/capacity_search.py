"""The capacity search, pure: the highest open-model rate that holds an SLO (stackbench/
slo.py), and which pairs it ranks apart.

Nothing here measures. A search asks for rates (``Search.next_rate``) and is told how
each probe went (``Search.record``); stackbench/capacity.py serves a pair and runs loadgen
for each, a test passes a function. That keeps the algorithm provable on its own.

**A probe** is one offered rate, measured ``repeats`` times, each repeat judged against
the SLO; the probe passes when most of its repeats pass.

**The search**: from ``start_rate``, multiply by ``step`` until a probe fails (or
``max_rate`` passes); then bisect [highest passing, lowest failing] at its geometric
midpoint until ``high <= low * (1 + precision)``. Rates are rounded to four significant
digits. A probe whose measurement broke (the server died, loadgen failed) stops the
search: it is no answer about the rate.

**Standing**: pairs whose brackets overlap share a rank (a tie), never ranked apart
(``standings``).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from stackbench.documents import PairVerdict, ProbeOutcome, SearchStatus
from stackbench.slo import BudgetError, Reading, Slo, judge_reading


def parse_precision(text: str) -> float:
    """'5%' or '0.05' -> 0.05: above 0 and below 1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise BudgetError(f"must be above 0 and below 1 (e.g. 0.05 or 5%), got {text!r}")
    return value


_ORDER: tuple[ProbeOutcome, ...] = ("client_saturated", "latency", "errors", "rate", "failed")


@dataclass(frozen=True)
class Probe:
    rate: float  # offered, req/s
    outcome: ProbeOutcome
    reason: str | None
    readings: tuple[Reading, ...] = ()
    outcomes: tuple[ProbeOutcome, ...] = ()  # each repeat's
    result: str | None = None  # where the measurement is recorded (a result document)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def latency_ms(self, percentile: str) -> float | None:
        """The median over the repeats."""
        values = [r.latency_ms[percentile] for r in self.readings if percentile in r.latency_ms]
        return statistics.median(values) if values else None

    def latency_range(self, percentile: str) -> tuple[float, float] | None:
        values = [r.latency_ms[percentile] for r in self.readings if percentile in r.latency_ms]
        return (min(values), max(values)) if values else None

    @property
    def achieved(self) -> float | None:
        return statistics.median(r.achieved for r in self.readings) if self.readings else None

    @property
    def achieved_range(self) -> tuple[float, float] | None:
        values = [r.achieved for r in self.readings]
        return (min(values), max(values)) if values else None

    @property
    def error_rate(self) -> float | None:
        return statistics.median(r.error_rate for r in self.readings) if self.readings else None


def judge_probe(
    rate: float, readings: Iterable[Reading], slo: Slo, result: str | None = None
) -> Probe:
    """The probe passes when most of its repeats hold the SLO; otherwise it fails as a
    saturated client if any failing repeat's client was, else as most of them failed."""
    readings = tuple(readings)
    if not readings:
        return Probe(rate, "failed", "nothing was measured", result=result)
    judged = [judge_reading(rate, reading, slo) for reading in readings]
    outcomes = tuple(outcome for outcome, _ in judged)
    passes = outcomes.count("pass")
    if 2 * passes > len(outcomes):
        return Probe(rate, "pass", None, readings, outcomes, result)
    failing = Counter(o for o in outcomes if o != "pass")
    worst = (
        "client_saturated"
        if "client_saturated" in failing
        else max(failing, key=lambda o: (failing[o], -_ORDER.index(o)))
    )
    reason = next(why for outcome, why in judged if outcome == worst)
    if len(outcomes) > 1:
        reason = f"{reason} ({failing[worst]} of {len(outcomes)} repeats)"
    return Probe(rate, worst, reason, readings, outcomes, result)


def failed_probe(rate: float, reason: str, result: str | None = None) -> Probe:
    """A probe whose measurement broke: no answer about the rate."""
    return Probe(rate, "failed", reason, result=result)


# -- the search ------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchSpec:
    start_rate: float = 50.0
    step: float = 2.0  # the bracketing multiplier
    precision: float = 0.05  # the bracket is resolved when high <= low * (1 + precision)
    max_rate: float = 20_000.0  # a pair still passing here is reported as ">= max_rate"

    def check(self) -> SearchSpec:
        if not 0 < self.precision < 1:
            raise BudgetError(f"--precision must be above 0 and below 1, got {self.precision!r}")
        if self.step <= 1:
            raise BudgetError(f"--step must be above 1 for the rate to climb, got {self.step!r}")
        if not 0 < self.start_rate <= self.max_rate:
            raise BudgetError(
                f"--start-rate ({self.start_rate:g}) must be above 0 and at most --max-rate "
                f"({self.max_rate:g})"
            )
        return self

    def most_probes(self) -> int:
        """An upper bound of any search's probes: climbing, then bisecting."""
        climbing = math.ceil(math.log(self.max_rate / self.start_rate, self.step)) + 1
        halving = math.ceil(math.log2(math.log(self.step) / math.log1p(self.precision))) + 1
        return climbing + max(halving, 0)


def round_rate(rate: float) -> float:
    """Four significant digits: a rate that reads as it was offered."""
    return float(f"{rate:.4g}")


@dataclass
class Search:
    """One pair's search: ask ``next_rate()``, measure it, ``record()`` the probe."""

    spec: SearchSpec
    probes: list[Probe] = field(default_factory=list)

    @property
    def low(self) -> float | None:
        """The highest passing rate."""
        return max((p.rate for p in self.probes if p.passed), default=None)

    @property
    def high(self) -> float | None:
        """The lowest failing rate (a broken measurement is no failure of the rate)."""
        return min(
            (p.rate for p in self.probes if not p.passed and p.outcome != "failed"), default=None
        )

    @property
    def broken(self) -> Probe | None:
        return next((p for p in self.probes if p.outcome == "failed"), None)

    def next_rate(self) -> float | None:
        """The next rate to probe, or None when the search is over."""
        spec = self.spec
        if not self.probes:
            return round_rate(spec.start_rate)
        low, high = self.low, self.high
        if self.broken is not None or low is None:
            return None
        if high is None:  # still climbing
            return None if low >= spec.max_rate else min(round_rate(low * spec.step), spec.max_rate)
        if high <= low * (1 + spec.precision):
            return None
        middle = math.sqrt(low * high)
        rounded = round_rate(middle)
        return rounded if low < rounded < high else middle

    def record(self, probe: Probe) -> None:
        self.probes.append(probe)

    @property
    def status(self) -> SearchStatus:
        if self.broken is not None:
            return "failed"
        if self.low is None:
            return "below_lowest"
        high = self.high
        if high is None:
            return "above_max"
        lowest_failing = next(p for p in self.probes if p.rate == high and not p.passed)
        return "client_limited" if lowest_failing.outcome == "client_saturated" else "resolved"

    @property
    def bracket(self) -> tuple[float | None, float | None]:
        """[highest passing, lowest failing] offered rate."""
        return self.low, self.high

    @property
    def reason(self) -> str | None:
        """What the status needs said: a broken measurement, the lowest rate failing, the
        client limiting the answer, or every rate up to the most passing."""
        status = self.status
        if status == "failed":
            broken = self.broken
            assert broken is not None
            return f"the measurement broke at {broken.rate:g} req/s: {broken.reason}"
        if status == "below_lowest":
            first = self.probes[0]
            return f"fails at the lowest rate {first.rate:g} req/s: {first.reason}"
        if status == "client_limited":
            return (
                f"the client could not offer {self.high:g} req/s: the server may hold more "
                "(give the load its own CPUs or host)"
            )
        if status == "above_max":
            return f"held every rate up to --max-rate {self.spec.max_rate:g} req/s"
        return None


def run_search(measure: Callable[[float], Probe], spec: SearchSpec) -> Search:
    """One search to its end, ``measure`` probing each rate it asks for."""
    search = Search(spec.check())
    while (rate := search.next_rate()) is not None:
        search.record(measure(rate))
    return search


# -- standing --------------------------------------------------------------------------
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Standing:
    verdict: PairVerdict
    rank: str | None  # '1', '2=' (tied with another pair), None when unranked


def standings(brackets: Mapping[K, tuple[float | None, float | None]]) -> dict[K, Standing]:
    """Ranks that do not rank what the search cannot tell apart. Highest sustainable rate
    first: the pair at the top of what is left shares its rank with every pair whose
    bracket overlaps its own (a tie, written '2='), and the next rank is after them all.
    The first rank is best (one pair) or tied (several); the others are worse. A pair
    with no sustainable rate is unranked. An unknown upper end (every rate passed, or the
    client limited the answer) is open: ``(low, None)``."""
    found = {key: Standing("unranked", None) for key in brackets}
    left = sorted(
        ((low, math.inf if high is None else high, key) for key, (low, high) in brackets.items()
         if low is not None),
        key=lambda bracket: -bracket[0],
    )  # fmt: skip
    rank = 1
    while left:
        top_low, top_high, _ = left[0]
        group = [b for b in left if b[0] < top_high and top_low < b[1]]  # overlapping the top
        for _, _, key in group:
            verdict: PairVerdict = "worse" if rank > 1 else "tied" if len(group) > 1 else "best"
            found[key] = Standing(verdict, f"{rank}=" if len(group) > 1 else str(rank))
        left = [b for b in left if b not in group]
        rank += len(group)
    return found
