"""The SLO a capacity search holds a pair to, and one measured repeat judged against it.

**The SLO** is loadgen's threshold grammar (loadgen/thresholds.py), restricted to what a
capacity answer can be judged on: corrected latency percentiles that must stay below a
limit (``p99<100ms``, ``p99.9<250ms``) and an error budget (``errors<1%``, the default).

**A repeat holds it** when every latency limit and the error budget hold, no response
carried a wrong body, and the achieved rate (responses over loadgen's measured window,
``elapsed_s``) is at least ``MIN_ACHIEVED`` of the offered one. A repeat that fails while
its client was saturated (loadgen's client-CPU self-check failed, its scheduler fell
behind: sends 10 ms late at the median, or it stalled: later than half the tightest
latency limit and than 50 ms at p99) fails as
``client_saturated``: a client that cannot keep the offered rate is never the reason for a
pass, and a failure it measured is not blamed on the server. Pure: stackbench/capacity.py
reads the repeats from loadgen's reports; the search (capacity_search.py) asks for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loadgen.errors import ConfigError
from loadgen.outcome import PERCENTILES
from loadgen.thresholds import parse_threshold
from stackbench.documents import ProbeOutcome

DEFAULT_BUDGET = ("p99<100ms",)
DEFAULT_ERROR_BUDGET = "errors<1%"
# A repeat holds the offered rate when it answered at least this share of it over the
# window loadgen measured: the same bound as loadgen's own rate self-check.
MIN_ACHIEVED = 0.95
# How late loadgen's scheduler sent says whether the client kept its schedule. One that
# keeps up is late by its machine's scheduling noise only: median 0.7-2.4 ms, p99 7-35 ms,
# measured here at load averages of 13-15 on 2 cores, whatever the server did. One that
# cannot keeps getting later: its median lateness grows past CLIENT_LAG_MEDIAN_MS (16-525
# ms measured, 10-40 % over its cap). A client that stalled past half the tightest
# latency limit (and the floor, p99) spent that much of the budget itself.
CLIENT_LAG_MEDIAN_MS = 10.0
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


@dataclass(frozen=True)
class Reading:
    """One repeat of a probe, as loadgen measured it."""

    achieved: float  # responses per second of loadgen's measured window (elapsed_s)
    latency_ms: Mapping[str, float]  # corrected latency by percentile ('99', '99.9')
    error_rate: float  # failed + transport errors over requests sent
    wrong: int = 0  # responses whose body check failed
    client_busy: bool = False  # loadgen's client-CPU self-check failed
    client_lag_ms: float = 0.0  # p99 of how late loadgen's scheduler sent
    client_lag_median_ms: float = 0.0  # its median


def judge_reading(offered: float, reading: Reading, slo: Slo) -> tuple[ProbeOutcome, str | None]:
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
    behind = reading.client_lag_median_ms > CLIENT_LAG_MEDIAN_MS
    stalled = reading.client_lag_ms > max(CLIENT_LAG_SHARE * slo.tightest_ms, CLIENT_LAG_FLOOR_MS)
    if reading.client_busy or behind or stalled:
        if reading.client_busy:
            why = "its CPU was saturated"
        elif behind:
            why = f"its sends ran {reading.client_lag_median_ms:.0f} ms late (median)"
        else:
            why = f"its sends ran {reading.client_lag_ms:.0f} ms late (p99)"
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
