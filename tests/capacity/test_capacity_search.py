"""The capacity search on its own (stackbench/slo.py, stackbench/capacity_search.py): the
SLO's grammar, how a repeat and a probe are judged, the bracket-and-bisect search against
servers of known capacity played by functions, and the ranking. Each verdict is shown
failing on a planted input; the proof against a real server is test_known_capacity.py."""

from __future__ import annotations

import math
import random

import pytest

from stackbench.capacity_search import (
    Probe,
    Search,
    SearchSpec,
    judge_probe,
    parse_precision,
    run_search,
    standings,
)
from stackbench.slo import (
    BudgetError,
    ErrorBudget,
    LatencyLimit,
    Reading,
    judge_reading,
    parse_rule,
    slo_from,
)

SLO = slo_from(["p99<100ms"])  # and the default errors<1%


# -- the SLO ---------------------------------------------------------------------------
def test_budgets_read_in_loadgens_threshold_grammar() -> None:
    assert parse_rule("p99<100ms") == LatencyLimit("p99<100ms", "99", 100.0, False)
    assert parse_rule("p99.9<=0.25s") == LatencyLimit("p99.9<=0.25s", "99.9", 250.0, True)
    assert parse_rule("corrected.p50<5ms").percentile == "50"
    assert parse_rule("p99<100") == LatencyLimit("p99<100", "99", 100.0, False)  # ms by default
    assert parse_rule("errors<1%") == ErrorBudget("errors<1%", 0.01, False)
    assert parse_rule("errors<=0%") == ErrorBudget("errors<=0%", 0.0, True)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("p99<<100ms", "not a budget 'p99<<100ms' (e.g."),
        ("p99<100%", "latency needs a time unit"),
        ("p99>100ms", "a budget is an upper bound"),
        ("rps<100", "not a latency percentile or an error budget"),
        ("mean<10ms", "not a latency percentile or an error budget"),
        ("checks<99%", "not a latency percentile or an error budget"),
        ("uncorrected.p99<100ms", "judged on corrected latency"),
        ("errors<5", "the error budget is a percentage"),
        ("p98<100ms", "loadgen reports p10, p25, p50"),
        ("p99<0ms", "can never hold"),
        ("errors<0%", "use 'errors<=0%'"),
        ("p101<1ms", "percentile out of range"),
    ],
)
def test_a_rule_that_cannot_be_a_budget_is_one_line(rule: str, says: str) -> None:
    with pytest.raises(BudgetError) as refused:
        parse_rule(rule)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_the_slo_defaults_and_refuses_a_rule_twice() -> None:
    default = slo_from([])
    assert default.rules == ["p99<100ms", "errors<1%"]
    assert slo_from(["errors<5%"]).rules == ["p99<100ms", "errors<5%"]  # a latency limit always
    both = slo_from(["p99.9<250ms", "p99<100ms"])
    assert [lim.percentile for lim in both.latency] == ["99", "99.9"] and both.tightest_ms == 100
    with pytest.raises(BudgetError, match="p99 given twice"):
        slo_from(["p99<100ms", "p99<=50ms"])
    with pytest.raises(BudgetError, match="error budget given twice"):
        slo_from(["errors<1%", "errors<2%"])


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125)])
def test_a_precision_is_a_fraction_or_a_percentage(text: str, value: float) -> None:
    assert parse_precision(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "0%", "1", "100%", "1.5", "-0.05", "five", ""])
def test_a_precision_of_0_or_at_least_1_is_refused(text: str) -> None:
    with pytest.raises(BudgetError, match="must be above 0 and below 1"):
        parse_precision(text)


def test_an_overload_a_short_probe_cannot_see_is_said() -> None:
    """Offered ε above capacity, a probe's queue grows ε x window seconds: under the limit
    it passes. 100 ms over 2 s is 5 %; over 7 s (the defaults) 1.4 %."""
    assert SLO.unseen_overload(2.0) == pytest.approx(0.05)
    assert SLO.unseen_overload(7.0) == pytest.approx(0.1 / 7)


# -- one repeat, one probe ---------------------------------------------------------------
def reading(
    achieved: float = 100.0,
    p99: float = 20.0,
    p999: float = 40.0,
    errors: float = 0.0,
    **more: object,
) -> Reading:
    return Reading(achieved, {"99": p99, "99.9": p999}, errors, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("planted", "outcome", "says"),
    [
        (reading(), "pass", None),
        (reading(p99=120.0), "latency", "p99 120.0 ms > 100 ms"),
        (reading(p99=100.0), "latency", "p99 100.0 ms > 100 ms"),  # '<' is strict
        (reading(errors=0.02), "errors", "errors 2.00% (budget errors<1%)"),
        (reading(errors=0.01), "errors", "errors 1.00%"),
        (reading(wrong=3), "errors", "3 wrong responses"),
        (reading(achieved=90.0), "rate", "answered 90 req/s of the 100 offered"),
        (reading(achieved=95.0), "pass", None),  # 95 % of the offered rate holds it
        # the client saturated: a failure it measured is its own, a pass still a pass
        (reading(achieved=70.0, client_busy=True), "client_saturated", "its CPU was saturated"),
        (reading(p99=400.0, client_busy=True), "client_saturated", "could not keep 100 req/s"),
        (reading(client_busy=True), "pass", None),
        (reading(p99=400.0, client_lag_ms=300.0), "client_saturated", "300 ms late"),
        (reading(p99=400.0, client_lag_ms=40.0), "latency", "p99 400.0 ms"),  # under half
        # late as a rule, not by a stall: the client fell behind its schedule
        (
            reading(p99=400.0, client_lag_ms=45.0, client_lag_median_ms=16.0),
            "client_saturated",
            "16 ms late (median)",
        ),
        (reading(p99=400.0, client_lag_ms=30.0, client_lag_median_ms=2.4), "latency", "p99"),
    ],
)
def test_a_repeat_is_judged_on_latency_errors_and_the_rate(
    planted: Reading, outcome: str, says: str | None
) -> None:
    judged, why = judge_reading(100.0, planted, SLO)
    assert judged == outcome
    assert (why is None) if says is None else (why is not None and says in why)


def test_a_late_client_is_late_beyond_its_machines_noise() -> None:
    """Against a budget of 10 ms, a client 20 ms late (p99) has not stalled: a busy
    machine's scheduling noise. 60 ms is past the floor; against 1 s, half of it is."""
    tight, loose = slo_from(["p99<10ms"]), slo_from(["p99<1s"])
    assert judge_reading(100.0, reading(p99=30.0, client_lag_ms=20.0), tight)[0] == "latency"
    assert judge_reading(100.0, reading(p99=90.0, client_lag_ms=60.0), tight)[0] == (
        "client_saturated"
    )
    assert judge_reading(100.0, reading(p99=2e3, client_lag_ms=400.0), loose)[0] == "latency"
    assert judge_reading(100.0, reading(p99=2e3, client_lag_ms=600.0), loose)[0] == (
        "client_saturated"
    )


def test_every_latency_limit_of_the_slo_is_held() -> None:
    slo = slo_from(["p99<100ms", "p99.9<=250ms"])
    assert judge_reading(100.0, reading(p999=250.0), slo) == ("pass", None)
    assert judge_reading(100.0, reading(p999=251.0), slo)[0] == "latency"
    assert judge_reading(100.0, reading(p99=20.0, p999=900.0), SLO) == ("pass", None)  # not asked


def test_a_probe_passes_when_most_of_its_repeats_do() -> None:
    good, slow, busy = reading(), reading(p99=150.0), reading(achieved=60.0, client_busy=True)
    assert judge_probe(100.0, [good, good, slow], SLO).outcome == "pass"
    assert judge_probe(100.0, [good, good], SLO).passed
    split = judge_probe(100.0, [good, slow], SLO)  # half is not most
    assert split.outcome == "latency" and split.reason is not None
    assert split.reason.endswith("(1 of 2 repeats)")
    many = judge_probe(100.0, [slow, reading(errors=0.5), slow], SLO)
    assert (many.outcome, many.outcomes) == ("latency", ("latency", "errors", "latency"))
    # one saturated client among the failures: the probe is not blamed on the server
    assert judge_probe(100.0, [slow, slow, busy], SLO).outcome == "client_saturated"
    assert judge_probe(100.0, [], SLO).outcome == "failed"


def test_a_probe_reports_the_spread_over_its_repeats() -> None:
    probe = judge_probe(100.0, [reading(p99=10.0), reading(p99=30.0), reading(p99=20.0)], SLO)
    assert probe.latency_ms("99") == 20.0 and probe.latency_range("99") == (10.0, 30.0)
    assert probe.achieved == 100.0 and probe.latency_ms("50") is None


# -- the search against servers of known capacity ------------------------------------------
def server(capacity: float, client_cap: float = math.inf, lowest: float = 0.0):
    """A server holding the SLO up to ``capacity`` req/s, loaded by a client that cannot
    offer more than ``client_cap``; below ``lowest`` nothing passes (a budget too tight)."""
    calls: list[float] = []

    def measure(rate: float) -> Probe:
        calls.append(rate)
        if rate > client_cap:  # the client falls behind: late sends, a short rate
            planted = reading(achieved=client_cap, p99=500.0, client_busy=True)
        elif rate > capacity:  # the queue grows: latency over the limit
            planted = reading(achieved=capacity, p99=100.0 * rate / capacity + 1)
        elif rate < lowest:
            planted = reading(achieved=rate, p99=500.0)
        else:
            planted = reading(achieved=rate)
        return judge_probe(rate, [planted], SLO)

    measure.calls = calls  # type: ignore[attr-defined]
    return measure


CAPACITIES = [round(10 ** (0.7 + i * 0.037), 2) for i in range(100)]  # 5 to 25,000 req/s


@pytest.mark.parametrize("precision", [0.2, 0.05, 0.01])
def test_the_search_brackets_every_known_capacity_within_its_precision(precision: float) -> None:
    spec = SearchSpec(start_rate=5.0, step=2.0, precision=precision, max_rate=20_000.0)
    for capacity in CAPACITIES:
        measure = server(capacity)
        search = run_search(measure, spec)
        if capacity >= spec.max_rate:
            assert search.status == "above_max" and search.bracket == (20_000.0, None)
            continue
        low, high = search.bracket
        assert search.status == "resolved" and low is not None and high is not None
        assert low <= capacity < high <= low * (1 + precision), (capacity, low, high)
        assert len(search.probes) <= spec.most_probes()
        assert measure.calls == [p.rate for p in search.probes]  # type: ignore[attr-defined]
        assert all(p.passed == (p.rate <= capacity) for p in search.probes)


def test_doubling_the_service_time_halves_the_answer() -> None:
    spec = SearchSpec(start_rate=10.0, precision=0.05)
    fast, slow = run_search(server(100.0), spec), run_search(server(50.0), spec)
    assert fast.low is not None and slow.low is not None
    assert slow.low < fast.low / 1.8 and 50.0 / 1.05 <= slow.low <= 50.0


def test_a_capped_client_bounds_the_answer_and_is_named() -> None:
    """The server holds 100 req/s, the client offers at most 40: the answer moves down to
    the client's cap and the search says the client, not the server, failed first."""
    search = run_search(server(100.0, client_cap=40.0), SearchSpec(start_rate=10.0))
    low, high = search.bracket
    assert search.status == "client_limited" and low is not None and high is not None
    assert 40.0 / 1.05 <= low <= 40.0 < high
    assert not any(p.passed for p in search.probes if p.rate > 40.0)  # never a pass above it
    assert "the client could not offer" in (search.reason or "")


def test_a_budget_the_lowest_rate_already_fails_is_said_so() -> None:
    search = run_search(server(100.0, lowest=1e9), SearchSpec(start_rate=50.0))
    assert search.status == "below_lowest" and search.bracket == (None, 50.0)
    assert [p.rate for p in search.probes] == [50.0]
    assert (search.reason or "").startswith("fails at the lowest rate 50 req/s: p99")


def test_a_broken_measurement_stops_the_search_without_an_answer() -> None:
    def measure(rate: float) -> Probe:
        if rate > 150:
            return Probe(rate, "failed", "server exited with code 1 during the run")
        return judge_probe(rate, [reading(achieved=rate)], SLO)

    search = run_search(measure, SearchSpec(start_rate=50.0))
    assert [p.rate for p in search.probes] == [50.0, 100.0, 200.0]
    assert search.status == "failed" and search.high is None
    assert search.reason == (
        "the measurement broke at 200 req/s: server exited with code 1 during the run"
    )


def test_noise_never_makes_the_search_run_on_or_contradict_itself() -> None:
    """Near capacity a noisy server passes or fails at random: the search still ends
    within its bound, on a bracket whose low passed and whose high failed."""
    spec = SearchSpec(start_rate=7.0, step=1.7, precision=0.02)
    for seed in range(200):
        rng = random.Random(seed)

        def noisy(rate: float, rng: random.Random = rng) -> Probe:
            holds = rate < 100 * rng.uniform(0.8, 1.25)
            return judge_probe(rate, [reading(achieved=rate, p99=20 if holds else 300)], SLO)

        search = run_search(noisy, spec)
        low, high = search.bracket
        assert len(search.probes) <= spec.most_probes()
        assert low is not None and high is not None and low < high <= low * 1.02
        assert any(p.rate == low and p.passed for p in search.probes)
        assert any(p.rate == high and not p.passed for p in search.probes)


def test_rates_are_rounded_to_four_significant_digits() -> None:
    search = Search(SearchSpec(start_rate=33.333333, precision=0.05))
    assert search.next_rate() == 33.33
    search.record(judge_probe(33.33, [reading(achieved=33.33)], SLO))
    assert search.next_rate() == 66.66


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (SearchSpec(precision=0.0), "--precision must be above 0"),
        (SearchSpec(precision=1.0), "--precision must be above 0"),
        (SearchSpec(step=1.0), "--step must be above 1"),
        (SearchSpec(start_rate=500.0, max_rate=100.0), "at most --max-rate"),
    ],
)
def test_a_search_that_cannot_run_is_refused(spec: SearchSpec, says: str) -> None:
    with pytest.raises(BudgetError, match=says):
        spec.check()


# -- standing ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("brackets", "ranks"),
    [
        ({"a": (100, 105), "b": (50, 52)}, {"a": "best 1", "b": "worse 2"}),
        ({"a": (100, 105), "b": (102, 107)}, {"a": "tied 1=", "b": "tied 1="}),
        # touching is not overlapping: b passed at 105, where a failed
        ({"a": (100, 105), "b": (105, 110)}, {"a": "worse 2", "b": "best 1"}),
        # tied with the top, not with each other's neighbours: a ranks after both
        (
            {"a": (100, 105), "b": (103, 108), "c": (107, 112)},
            {"a": "worse 3", "b": "tied 1=", "c": "tied 1="},
        ),
        # ties below the top are ties too: b and c share rank 2, d comes 4th
        (
            {"a": (200, 210), "b": (64.4, 67.3), "c": (64.4, 67.3), "d": (30, 31)},
            {"a": "best 1", "b": "worse 2=", "c": "worse 2=", "d": "worse 4"},
        ),
        # an open upper end (every rate passed, or the client limited it) overlaps higher
        ({"a": (100, None), "b": (150, 155)}, {"a": "tied 1=", "b": "tied 1="}),
        ({"a": (None, 50), "b": (40, 42)}, {"a": "unranked –", "b": "best 1"}),
        ({"a": (None, 50)}, {"a": "unranked –"}),
    ],
)
def test_overlapping_brackets_are_a_tie_not_a_ranking(brackets: dict, ranks: dict) -> None:
    found = standings(brackets)
    assert {k: f"{s.verdict} {s.rank or '–'}" for k, s in found.items()} == ranks
