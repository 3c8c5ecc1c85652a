"""The capacity document: one capacity run's answer (``capacity.json``), its one
definition. stackbench/documents.py, the home of every document's definition, takes it
from here and lists it among the schemas it generates (``SCHEMAS``); apart so that
documents.py stays under the line limit. (No ``from __future__ import annotations``:
TypedDict reads the evaluated annotations.)
"""

from typing import Annotated, Literal, NotRequired, TypedDict

from stackbench.document_types import CLOSED, AtLeastOne, Count, Json, NonNegative, RunId, Version

ProbeOutcome = Literal["pass", "latency", "errors", "rate", "client_saturated", "failed"]
SearchStatus = Literal["resolved", "client_limited", "above_max", "below_lowest", "failed"]
PairVerdict = Literal["best", "tied", "worse", "unranked"]
Rate = Annotated[float, Json(exclusiveMinimum=0)]
Fraction = Annotated[float, Json(minimum=0, maximum=1)]
Range = Annotated[list[float], Json(minItems=2, maxItems=2)]


class LatencyLimitDoc(TypedDict):
    rule: str
    """as given, e.g. 'p99<100ms'"""
    percentile: str
    """a key of loadgen's percentiles_ns: '99', '99.9'"""
    limit_ms: Annotated[float, Json(exclusiveMinimum=0)]
    inclusive: bool
    """'<=' rather than '<'"""


class SloDoc(TypedDict):
    """What every repeat of a passing probe held (stackbench/capacity_search.py)."""

    rules: list[str]
    latency: list[Annotated[LatencyLimitDoc, CLOSED]]
    error_budget: Fraction
    """the largest share of requests that may fail (failed statuses, transport errors)"""
    errors_inclusive: bool
    min_achieved: Fraction
    """a repeat must answer at least this share of the offered rate over loadgen's window"""


class ProbeRepeat(TypedDict):
    outcome: ProbeOutcome
    achieved_rate: NonNegative
    """responses per second over loadgen's measured window (elapsed_s)"""
    latency_ms: dict[str, float]
    """corrected latency by percentile, each the SLO names"""
    error_rate: Fraction
    wrong_responses: Count
    client_cpu_saturated: bool
    """loadgen's client-CPU self-check failed (above 0.9 CPU-s per wall second)"""
    client_lag_p50_ms: NonNegative
    """how late loadgen's scheduler sent (median): a client that keeps up is late by its
    machine's scheduling noise only"""
    client_lag_p99_ms: NonNegative


class ProbeDoc(TypedDict):
    rate: Rate
    """offered, req/s (open model)"""
    outcome: ProbeOutcome
    """pass when most repeats held the SLO; else why it failed"""
    reason: str | None
    result: str | None
    """the result document of this probe, in the run directory"""
    achieved_rate: float | None
    """median over the repeats"""
    achieved_range: Range | None
    """[lowest, highest] over the repeats"""
    latency_ms: dict[str, float]
    """median over the repeats, by percentile"""
    latency_range_ms: dict[str, Range]
    """[lowest, highest] over the repeats, by percentile: the spread"""
    error_rate: Annotated[float | None, Json(minimum=0, maximum=1)]
    repeats: list[Annotated[ProbeRepeat, CLOSED]]
    agents: NotRequired[AtLeastOne]
    """the load agents whose reports every measured repeat merged (capacity --agents: one
    per host); without a measured repeat, the agents asked; absent before agents: one"""


class AtSustainable(TypedDict):
    """The pair's figures at its sustainable rate (the highest passing probe)."""

    rate: Rate
    p99_ms: float | None
    p999_ms: float | None
    server_cpu_us_per_request: Annotated[float | None, Json(minimum=0)]
    database_cpu_us_per_request: Annotated[float | None, Json(minimum=0)]
    rss_mb_per_worker: Annotated[float | None, Json(minimum=0)]
    """the server's peak RSS over its workers"""
    workers: AtLeastOne


class PairCapacity(TypedDict):
    app: str
    server: str
    status: SearchStatus
    """resolved; client_limited (the lowest failing probe's client was saturated);
    above_max (every rate passed); below_lowest (the first rate failed); failed (a
    measurement broke)"""
    reason: str | None
    sustainable_rate: Annotated[float | None, Json(exclusiveMinimum=0)]
    """the highest passing offered rate; null when none passed"""
    bracket: Annotated[list[float | None], Json(minItems=2, maxItems=2)]
    """[highest passing, lowest failing] offered rate; null where there is none"""
    verdict: PairVerdict
    """among the app's pairs at this SLO: best, tied (overlapping brackets), worse"""
    rank: str | None
    """among the app's pairs: '1', or '2=' for pairs whose brackets overlap (a tie); null when
    unranked"""
    at_sustainable: Annotated[AtSustainable, CLOSED] | None
    slo: Annotated[SloDoc, CLOSED]
    probes: list[Annotated[ProbeDoc, CLOSED]]
    """in the order they ran"""


class SearchDoc(TypedDict):
    """How the search ran: its rates and each probe's load."""

    scenario: str
    scenario_options: dict[str, str]
    start_rate: Rate
    step: Annotated[float, Json(exclusiveMinimum=1)]
    precision: Annotated[float, Json(exclusiveMinimum=0, exclusiveMaximum=1)]
    max_rate: Rate
    probe_duration_s: Annotated[float, Json(exclusiveMinimum=0)]
    warmup_s: NonNegative
    repeats: AtLeastOne
    connections: AtLeastOne
    timeout_s: NonNegative
    unseen_overload: NonNegative
    """the tightest latency limit over a probe's warm-up and duration: a rate less than this
    share above capacity queues too little work in one probe to fail it, and may pass"""
    agents: NotRequired[AtLeastOne]
    """the load agents of every probe, each on its host, this one agent 0 (capacity --target
    --agents N); absent in runs from before agents: one"""


class CapacityDocument(TypedDict):
    schema_version: Version
    kind: Literal["stackbench.capacity"]
    run_id: RunId
    started_at: str
    finished_at: str
    slo: Annotated[SloDoc, CLOSED]
    search: Annotated[SearchDoc, CLOSED]
    pairs: list[Annotated[PairCapacity, CLOSED]]
    """in the order of the first round (later rounds alternate it)"""
