"""The capacity search, pure: the highest open-model rate that holds an SLO, and which
pairs it ranks apart.

Nothing here measures. A search asks for rates (``Search.next_rate``) and is told how
each probe went (``Search.record``); stackbench/capacity.py serves a pair and runs loadgen
for each, a test passes a function. That keeps the algorithm provable on its own.

**The SLO** is loadgen's threshold grammar (loadgen/thresholds.py), restricted to what a
capacity answer can be judged on: corrected latency percentiles that must stay below a
limit (``p99<100ms``, ``p99.9<250ms``) and an error budget (``errors<1%``, the default).

**A probe** is one offered rate, measured ``repeats`` times. Each repeat holds the SLO
when every latency limit and the error budget hold and the achieved rate (responses over
loadgen's measured window, ``elapsed_s``) is at least ``MIN_ACHIEVED`` of the offered one.
A repeat that fails while its client was saturated (loadgen's client-CPU self-check
failed, or its scheduler fell behind: later than half the tightest latency limit and than
50 ms, p99) fails as
``client_saturated``: a client that cannot keep the offered rate is never the reason for
a pass, and a failure it measured is not blamed on the server. The probe passes when
most of its repeats pass.

**The search**: from ``start_rate``, multiply by ``step`` until a probe fails (or
``max_rate`` passes); then bisect [highest passing, lowest failing] at its geometric
midpoint until ``high <= low * (1 + precision)``. Rates are rounded to four significant
digits. A probe whose measurement broke (the server died, loadgen failed) stops the
search: it is no answer about the rate.

**Standing**: pairs whose brackets overlap are tied, not ranked (``standings``).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from loadgen.errors import ConfigError
from loadgen.outcome import PERCENTILES
from loadgen.thresholds import parse_threshold

Outcome = Literal["pass", "latency", "errors", "rate", "client_saturated", "failed"]
Status = Literal["resolved", "client_limited", "above_max", "below_lowest", "failed"]
Verdict = Literal["best", "tied", "worse", "unranked"]

DEFAULT_BUDGET = ("p99<100ms",)
DEFAULT_ERROR_BUDGET = "errors<1%"
# A repeat holds the offered rate when it answered at least this share of it over the
# window loadgen measured: the same bound as loadgen's own rate self-check.
MIN_ACHIEVED = 0.95
# A client whose scheduler sent later than this share of the tightest latency limit (p99
# of its lag), and later than the floor, fell behind its schedule: a client that keeps up
# is late by its machine's scheduling noise only (p99 7-35 ms measured here at a load
# average of 13 on 2 cores), one that cannot keeps getting later (hundreds of ms).
CLIENT_LAG_SHARE = 0.5
CLIENT_LAG_FLOOR_MS = 50.0
_EXAMPLES = "e.g. 'p99<100ms', 'p99.9<250ms', 'errors<1%'"
_REPORTED = {f"{p:g}" for p in PERCENTILES}  # the percentiles loadgen's report holds


class BudgetError(ValueError):
    """A budget, a precision or a search setting that cannot be used; one line."""


@dataclass(frozen=True)
class LatencyLimit:
    rule: str  # as given: 'p99<100ms'
    percentile: str  # a key of loadgen's percentiles_ns: '99', '99.9'
    limit_ms: float
    inclusive: bool  # '<=' rather than '<'

    def holds(self, ms: float) -> bool:
        return ms <= self.limit_ms if self.inclusive else ms < self.limit_ms


@dataclass(frozen=True)
class ErrorBudget:
    rule: str  # 'errors<1%'
    fraction: float
    inclusive: bool

    def holds(self, rate: float) -> bool:
        return rate <= self.fraction if self.inclusive else rate < self.fraction


Rule = LatencyLimit | ErrorBudget


def parse_rule(text: str) -> Rule:
    """One ``--budget`` rule in loadgen's threshold grammar: a corrected latency
    percentile below a limit, or the error budget as a percentage."""
    try:
        threshold = parse_threshold(text)
    except ConfigError as exc:
        detail = str(exc).split(repr(text), 1)[-1].lstrip(": ")
        said = "" if detail.startswith("(") else f": {detail}"
        raise BudgetError(f"not a budget {text!r}{said} ({_EXAMPLES})") from None
    metric = threshold.metric.removeprefix("corrected.")
    if threshold.op not in ("<", "<="):
        raise BudgetError(f"a budget is an upper bound (< or <=), not {text!r} ({_EXAMPLES})")
    inclusive = threshold.op == "<="
    if metric == "errors":
        if not threshold.percent:
            raise BudgetError(f"the error budget is a percentage: {text!r} ({_EXAMPLES})")
        if threshold.value <= 0 and not inclusive:
            raise BudgetError(f"{text!r} can never hold: use 'errors<=0%' for no errors at all")
        return ErrorBudget(text, threshold.value, inclusive)
    if metric.startswith("uncorrected."):
        raise BudgetError(f"a probe is judged on corrected latency: drop 'uncorrected.' ({text})")
    if not metric.startswith("p"):
        raise BudgetError(f"not a latency percentile or an error budget: {text!r} ({_EXAMPLES})")
    percentile = f"{float(metric[1:]):g}"
    if percentile not in _REPORTED:
        known = ", ".join(f"p{p}" for p in sorted(_REPORTED, key=float))
        raise BudgetError(f"{text!r}: loadgen reports {known}")
    if threshold.value <= 0:
        raise BudgetError(f"{text!r} can never hold: a latency limit is above 0")
    return LatencyLimit(text, percentile, threshold.value / 1e6, inclusive)


@dataclass(frozen=True)
class Slo:
    """What a probe must hold: each latency limit, and the error budget."""

    latency: tuple[LatencyLimit, ...]
    errors: ErrorBudget

    @property
    def rules(self) -> list[str]:
        return [limit.rule for limit in self.latency] + [self.errors.rule]

    @property
    def text(self) -> str:
        return ", ".join(self.rules)

    @property
    def tightest_ms(self) -> float:
        return min(limit.limit_ms for limit in self.latency)

    def unseen_overload(self, window_s: float) -> float:
        """The overload a probe of ``window_s`` (warm-up and measured, one run) may not
        see: offered a share ε above capacity, the queue grows by ε x window seconds of
        work, which stays under the tightest latency limit while ε < limit / window."""
        return self.tightest_ms / 1000 / window_s


def slo_from(rules: Iterable[Rule | str]) -> Slo:
    """The SLO of ``--budget`` rules (the default's when none): at least one latency
    limit, one rule per percentile, the error budget ``errors<1%`` unless given."""
    parsed = [parse_rule(r) if isinstance(r, str) else r for r in rules]
    latency = [r for r in parsed if isinstance(r, LatencyLimit)]
    budgets = [r for r in parsed if isinstance(r, ErrorBudget)]
    if not latency:
        latency = [r for r in map(parse_rule, DEFAULT_BUDGET) if isinstance(r, LatencyLimit)]
    seen = Counter(limit.percentile for limit in latency)
    twice = [p for p, n in seen.items() if n > 1]
    if twice:
        raise BudgetError(f"--budget: p{twice[0]} given twice; give each percentile once")
    if len(budgets) > 1:
        raise BudgetError("--budget: the error budget given twice; give it once")
    errors = budgets[0] if budgets else parse_rule(DEFAULT_ERROR_BUDGET)
    assert isinstance(errors, ErrorBudget)
    return Slo(tuple(sorted(latency, key=lambda lim: float(lim.percentile))), errors)


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


# -- one probe -----------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """One repeat of a probe, as loadgen measured it."""

    achieved: float  # responses per second of loadgen's measured window (elapsed_s)
    latency_ms: Mapping[str, float]  # corrected latency by percentile ('99', '99.9')
    error_rate: float  # failed + transport errors over requests sent
    wrong: int = 0  # responses whose body check failed
    client_busy: bool = False  # loadgen's client-CPU self-check failed
    client_lag_ms: float = 0.0  # p99 of how late loadgen's scheduler sent


def judge_reading(offered: float, reading: Reading, slo: Slo) -> tuple[Outcome, str | None]:
    """Whether one repeat held the SLO at ``offered`` req/s, and if not, why."""
    over = [
        f"{lim.rule.split('<')[0]} {reading.latency_ms[lim.percentile]:.1f} ms"
        f" > {lim.limit_ms:g} ms"
        for lim in slo.latency
        if not lim.holds(reading.latency_ms[lim.percentile])
    ]
    errors = not slo.errors.holds(reading.error_rate) or reading.wrong > 0
    short = reading.achieved < MIN_ACHIEVED * offered
    if not (over or errors or short):
        return "pass", None
    lagging = reading.client_lag_ms > max(CLIENT_LAG_SHARE * slo.tightest_ms, CLIENT_LAG_FLOOR_MS)
    if reading.client_busy or lagging:
        why = "its CPU was saturated" if reading.client_busy else (
            f"its sends ran {reading.client_lag_ms:.0f} ms late (p99)"
        )  # fmt: skip
        return "client_saturated", (
            f"the client could not keep {offered:g} req/s ({why}; "
            f"{reading.achieved:.0f} req/s answered)"
        )
    if over:
        return "latency", ", ".join(over)
    if errors:
        wrong = f", {reading.wrong} wrong responses" if reading.wrong else ""
        return "errors", f"errors {reading.error_rate:.2%} (budget {slo.errors.rule}){wrong}"
    return "rate", f"answered {reading.achieved:.0f} req/s of the {offered:g} offered"


_ORDER: tuple[Outcome, ...] = ("client_saturated", "latency", "errors", "rate", "failed")


@dataclass(frozen=True)
class Probe:
    rate: float  # offered, req/s
    outcome: Outcome
    reason: str | None
    readings: tuple[Reading, ...] = ()
    outcomes: tuple[Outcome, ...] = ()  # each repeat's
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
    def status(self) -> Status:
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


def standings(brackets: Mapping[K, tuple[float | None, float | None]]) -> dict[K, Verdict]:
    """Best, tied or worse: the pair with the highest sustainable rate is best unless
    another's bracket overlaps its own, and then every such pair is tied; the rest are
    worse. A pair with no sustainable rate is unranked. An unknown upper end (every rate
    passed, or the client limited the answer) is open: ``(low, None)``."""
    ranked = {key: (low, high) for key, (low, high) in brackets.items() if low is not None}
    verdicts: dict[K, Verdict] = {key: "unranked" for key in brackets}
    if not ranked:
        return verdicts
    top = max(ranked, key=lambda key: ranked[key][0] or 0.0)
    top_low, top_high = ranked[top]
    assert top_low is not None

    def overlaps(low: float, high: float | None) -> bool:
        return low < (math.inf if top_high is None else top_high) and top_low < (
            math.inf if high is None else high
        )

    tied = [key for key, (low, high) in ranked.items() if low is not None and overlaps(low, high)]
    for key in ranked:
        verdicts[key] = "worse"
    for key in tied:
        verdicts[key] = "tied" if len(tied) > 1 else "best"
    return verdicts
