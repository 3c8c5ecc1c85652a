"""Capacity runs (docs/capacity.md): each pair searched for its sustainable rate at an SLO
(the search: stackbench/capacity_search.py), in one run directory, the answer written as
``capacity.json`` (``CapacityDocument``, stackbench/documents.py).

A probe is a bench job at one open-model rate: the pair served afresh (no probe inherits
the last one's backlog, and a server that dies at one rate does not take the next probe
with it), smoke-checked, its scenario measured ``repeats`` times after the bench's
warm-up, one result document labelled ``r<rate>``. Pairs take turns: each round gives
every unfinished search one probe, the order reversed every round, so a machine that
slows down for a while slows every pair alike. Against ``serve`` on another host
(``--target``) the one pair is served there for the whole search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from stackbench import results
from stackbench.agents import AgentHosts
from stackbench.apps import App
from stackbench.bench import check_apps
from stackbench.capacity_search import (
    Probe,
    Search,
    SearchSpec,
    failed_probe,
    judge_probe,
    standings,
)
from stackbench.documents import (
    SCHEMA_VERSION,
    AtSustainable,
    CapacityDocument,
    LatencyLimitDoc,
    LoadgenReport,
    PairCapacity,
    ProbeDoc,
    ProbeRepeat,
    ResultRow,
    SchedulerLag,
    SearchDoc,
    SloDoc,
)
from stackbench.judge import body_checks, headline
from stackbench.matrix import Pair, pair_of
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.results import read_result
from stackbench.run import BenchRun
from stackbench.slo import MIN_ACHIEVED, Reading, Slo
from stackbench.target import connect

# Latency the document keeps for every probe (the table's and the chart's), beside the SLO's.
SHOWN_PERCENTILES = ("99", "99.9")


@dataclass(frozen=True)
class CapacityPlan:
    """What a capacity run is asked: the SLO, the search, and each probe's load and
    serving (``options``: one scenario, its duration the probe's, its repeats)."""

    slo: Slo
    spec: SearchSpec
    options: BenchOptions
    # capacity --target --agents N: agents 1..N-1 started on their hosts for every repeat
    # (this host agent 0: options.load.agent); None: the load from this host alone.
    agents: AgentHosts | None = None

    @property
    def agent_count(self) -> int:
        return self.agents.count if self.agents is not None else 1

    @property
    def scenario(self) -> str:
        (scenario,) = self.options.scenarios
        return scenario

    @property
    def unseen_overload(self) -> float:
        """How far above capacity a probe may pass (``Slo.unseen_overload``)."""
        load = self.options.load
        return self.slo.unseen_overload(load.warmup + (load.duration or 0.0))


@dataclass(frozen=True)
class CapacityOutcome:
    run_dir: Path
    document: CapacityDocument

    @property
    def answered(self) -> bool:
        """Every pair has a sustainable rate and no measurement broke (else exit 1)."""
        return all(p["status"] not in ("below_lowest", "failed") for p in self.document["pairs"])


def probe_options(options: BenchOptions, rate: float) -> BenchOptions:
    """The job of one probe: ``options``' load at ``rate`` req/s, open model, for its duration."""
    return replace(options, load=options.load.replace(rate=rate, requests=None))


def probe_label(rate: float) -> str:
    return f"r{rate:.6g}"


def reading(report: LoadgenReport) -> Reading:
    """One repeat as the search judges it, from loadgen's report."""
    summary = report["summary"]
    elapsed = float(summary["elapsed_s"])
    sent = int(summary["requests"])
    open_model = report.get("open_model")
    lag = open_model["scheduler_lag_ns"] if open_model else SchedulerLag(p50=0, p99=0)
    return Reading(
        achieved=int(summary["responses"]) / elapsed if elapsed > 0 else 0.0,
        latency_ms={k: v / 1e6 for k, v in headline(report)["percentiles_ns"].items()},
        error_rate=(int(summary["failed"]) + int(summary["errors"])) / sent if sent else 1.0,
        wrong=sum(int(check["fails"]) for check in body_checks(report)),
        client_busy=not report["self_checks"]["client_cpu"]["ok"],
        client_lag_ms=lag["p99"] / 1e6,
        client_lag_median_ms=lag["p50"] / 1e6,
    )


def probe_from_row(rate: float, row: ResultRow, run_dir: Path, slo: Slo) -> Probe:
    """The probe a job measured. A job that broke (fewer repeats than asked, or the
    server gone) is a broken measurement, not a failure of the rate."""
    document = read_result(run_dir / row["file"])
    repeats = document["repeats"]
    complete = len(repeats) == document["load"]["repeats"]
    alive = all(repeat["server"]["alive_after"] for repeat in repeats)
    if row["status"] == "failed" and not (repeats and complete and alive):
        return failed_probe(rate, row["reason"] or "no measurement", row["file"])
    readings = [reading(repeat["loadgen"]) for repeat in repeats]
    return judge_probe(rate, readings, slo, row["file"])


Prober = Callable[[float], ResultRow]  # measures one rate: the probe's job, its one row
OnProbe = Callable[[Pair, Probe], None]  # told of each probe as it is judged


def search_in_turns(
    probers: dict[Pair, Prober],
    plan: CapacityPlan,
    run_dir: Path,
    on_probe: OnProbe | None = None,
) -> dict[Pair, Search]:
    """Every pair's search, one probe per pair per round, the order reversed each round."""
    searches = {pair: Search(plan.spec) for pair in probers}
    order = list(probers)
    while True:
        probed = False
        for pair in order:
            rate = searches[pair].next_rate()
            if rate is None:
                continue
            probed = True
            probe = probe_from_row(rate, probers[pair](rate), run_dir, plan.slo)
            searches[pair].record(probe)
            if on_probe is not None:
                on_probe(pair, probe)
        if not probed:
            return searches
        order.reverse()


def run_app(
    app: App,
    servers: list[str],
    plan: CapacityPlan,
    progress: Progress | None = None,
    on_probe: OnProbe | None = None,
) -> CapacityOutcome:
    """Each of ``servers`` serving ``app``, searched in turns, in one run directory. An
    app from outside reference_apps/ is checked first, as the bench checks it
    (``bench.check_apps``: its entries import, a contract it claims holds)."""
    plan.spec.check()
    options, started_at = plan.options, results.now()
    pairs = [pair_of(app, server) for server in servers]
    check_apps(pairs, options)
    with BenchRun(
        f"{app.id}-capacity", output=options.output, scale=options.scale, progress=progress
    ) as run:

        def prober(pair: Pair) -> Prober:
            def probe(rate: float) -> ResultRow:
                rows = run.job(pair, probe_options(options, rate), probe_label(rate), app=app)
                return rows[0]

            return probe

        probers = {pair: prober(pair) for pair in pairs}
        searches = search_in_turns(probers, plan, run.run_dir, on_probe)
        return _finish(run, searches, plan, started_at)


def run_target(
    target_url: str,
    stats_url: str,
    plan: CapacityPlan,
    progress: Progress | None = None,
    on_probe: OnProbe | None = None,
) -> CapacityOutcome:
    """The pair ``serve`` runs at ``target_url`` (its figures from ``stats_url``), searched
    from here; the server is the one ``serve`` started, for every probe."""
    plan.spec.check()
    subject = connect(target_url, stats_url, plan.agents)  # unreachable: one line, first
    pair = Pair(subject.info["app"], subject.info["server"])
    options, started_at = plan.options, results.now()
    with BenchRun(
        f"{pair.app}-{pair.server}-target-capacity",
        output=options.output,
        progress=progress,
        target=subject,
    ) as run:

        def probe(rate: float) -> ResultRow:
            return run.remote_job(probe_options(options, rate), probe_label(rate))[0]

        searches = search_in_turns({pair: probe}, plan, run.run_dir, on_probe)
        return _finish(run, searches, plan, started_at)


def _finish(
    run: BenchRun, searches: dict[Pair, Search], plan: CapacityPlan, started_at: str
) -> CapacityOutcome:
    """capacity.json written; the run's verdict is the searches' (an overloaded probe's
    result is degraded by design: it is what bounds the bracket)."""
    document = capacity_document(run.run_dir, searches, plan, started_at)
    results.write_json(run.run_dir / results.CAPACITY_FILE, document, "capacity")
    run.judge_by([f"{p['app']} @ {p['server']}: {p['reason']}" for p in _unanswered(document)])
    return CapacityOutcome(run.run_dir, document)


def _unanswered(document: CapacityDocument) -> list[PairCapacity]:
    return [p for p in document["pairs"] if p["status"] in ("below_lowest", "failed")]


# -- the document --------------------------------------------------------------------
def slo_doc(slo: Slo) -> SloDoc:
    return SloDoc(
        rules=slo.rules,
        latency=[
            LatencyLimitDoc(
                rule=lim.rule,
                percentile=lim.percentile,
                limit_ms=lim.limit_ms,
                inclusive=lim.inclusive,
            )
            for lim in slo.latency
        ],
        error_budget=slo.errors.fraction,
        errors_inclusive=slo.errors.inclusive,
        min_achieved=MIN_ACHIEVED,
    )


def capacity_document(
    run_dir: Path, searches: dict[Pair, Search], plan: CapacityPlan, started_at: str
) -> CapacityDocument:
    load = plan.options.load
    assert load.duration is not None
    shown = [*SHOWN_PERCENTILES, *(lim.percentile for lim in plan.slo.latency)]
    percentiles = list(dict.fromkeys(shown))
    pairs = [_pair(pair, search, plan, run_dir, percentiles) for pair, search in searches.items()]
    for app in dict.fromkeys(p["app"] for p in pairs):
        mine = [p for p in pairs if p["app"] == app]
        found = standings({index: _bracket(p) for index, p in enumerate(mine)})
        for index, entry in enumerate(mine):
            entry["verdict"], entry["rank"] = found[index].verdict, found[index].rank
    return CapacityDocument(
        schema_version=SCHEMA_VERSION,
        kind="stackbench.capacity",
        run_id=run_dir.name,
        started_at=started_at,
        finished_at=results.now(),
        slo=slo_doc(plan.slo),
        search=SearchDoc(
            scenario=plan.scenario,
            scenario_options=dict(load.scenario_options),
            start_rate=plan.spec.start_rate,
            step=plan.spec.step,
            precision=plan.spec.precision,
            max_rate=plan.spec.max_rate,
            probe_duration_s=load.duration,
            warmup_s=load.warmup,
            repeats=plan.options.repeats,
            connections=load.concurrency,
            timeout_s=load.timeout,
            unseen_overload=round(plan.unseen_overload, 4),
            agents=plan.agent_count,
        ),
        pairs=pairs,
    )


def _bracket(entry: PairCapacity) -> tuple[float | None, float | None]:
    """The bracket for ranking: a client-limited pair's upper end is the client's, open."""
    low, high = entry["bracket"]
    return low, None if entry["status"] == "client_limited" else high


def _pair(
    pair: Pair, search: Search, plan: CapacityPlan, run_dir: Path, percentiles: list[str]
) -> PairCapacity:
    slo = plan.slo
    low, high = search.bracket
    passing = next((p for p in search.probes if p.passed and p.rate == low), None)
    return PairCapacity(
        app=pair.app,
        server=pair.server,
        status=search.status,
        reason=search.reason,
        sustainable_rate=low,
        bracket=[low, high],
        verdict="unranked",  # set beside the app's other pairs
        rank=None,
        at_sustainable=_at(passing, run_dir) if passing else None,
        slo=slo_doc(slo),
        probes=[
            _probe_doc(probe, percentiles, _agents_merged(probe, run_dir, plan.agent_count))
            for probe in search.probes
        ],
    )


def _agents_merged(probe: Probe, run_dir: Path, asked: int) -> int:
    """The agents whose reports every measured repeat of ``probe`` merged (loadgen's merge
    lists them); ``asked`` when no repeat was measured."""
    if probe.result is None:
        return asked
    repeats = read_result(run_dir / probe.result)["repeats"]
    merged = [len(cast(dict[str, Any], r["loadgen"]).get("agents") or ()) or 1 for r in repeats]
    return min(merged, default=asked)


def _at(probe: Probe, run_dir: Path) -> AtSustainable:
    assert probe.result is not None
    document = read_result(run_dir / probe.result)
    summary = document["summary"]
    workers = document["server_settings"]["workers"]
    cpu = summary.get("cpu_us_per_request") if summary else None
    rss = summary["peak_rss_mb"] if summary else None
    return AtSustainable(
        rate=probe.rate,
        p99_ms=_round(probe.latency_ms("99")),
        p999_ms=_round(probe.latency_ms("99.9")),
        server_cpu_us_per_request=cpu["server"] if cpu else None,
        database_cpu_us_per_request=cpu["database"] if cpu else None,
        rss_mb_per_worker=round(rss / workers, 1) if rss else None,
        workers=workers,
    )


def _probe_doc(probe: Probe, percentiles: list[str], agents: int) -> ProbeDoc:
    achieved = probe.achieved_range
    ranges = {p: probe.latency_range(p) for p in percentiles}
    return ProbeDoc(
        rate=probe.rate,
        outcome=probe.outcome,
        reason=probe.reason,
        result=probe.result,
        achieved_rate=_round(probe.achieved, 1),
        achieved_range=[round(achieved[0], 1), round(achieved[1], 1)] if achieved else None,
        latency_ms={p: v for p in percentiles if (v := _round(probe.latency_ms(p))) is not None},
        latency_range_ms={
            p: [round(r[0], 3), round(r[1], 3)] for p, r in ranges.items() if r is not None
        },
        error_rate=_round(probe.error_rate, 5),
        repeats=[
            ProbeRepeat(
                outcome=outcome,
                achieved_rate=round(r.achieved, 1),
                latency_ms={p: round(r.latency_ms[p], 3) for p in percentiles},
                error_rate=round(min(r.error_rate, 1.0), 5),
                wrong_responses=r.wrong,
                client_cpu_saturated=r.client_busy,
                client_lag_p50_ms=round(r.client_lag_median_ms, 3),
                client_lag_p99_ms=round(r.client_lag_ms, 3),
            )
            for r, outcome in zip(probe.readings, probe.outcomes, strict=True)
        ],
        agents=agents,
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
