"""loadgen's JSON report, as far as the harness reads it: the part of the document
``loadgen/report.schema.json`` defines (loadgen's own, one definition) that the harness
reads, typed. ``tests/harness/test_documents.py`` checks that each key here is required
there and of a type the harness reads. stackbench/documents.py, the harness's documents,
takes these from here. (No ``from __future__ import annotations``: TypedDict reads
``NotRequired`` from the evaluated annotations.)
"""

from typing import Any, Literal, NotRequired, TypedDict


class LoadgenSummary(TypedDict):
    requests: int  # sent
    responses: int  # received (ok + failed)
    ok: int
    failed: int
    errors: int
    dropped: int  # open model: due sends never made (no connection came free in time)
    elapsed_s: float
    rps: float


class LatencyBlock(TypedDict):
    percentiles_ns: dict[str, float]
    histogram: NotRequired[dict[str, Any]]


class Latency(TypedDict):
    headline: Literal["corrected", "uncorrected"]
    uncorrected: LatencyBlock
    corrected: LatencyBlock | None


class Check(TypedDict):
    name: str
    passes: int
    fails: int


class ClientCpu(TypedDict):
    cpu_per_wall_s: float
    cpu_per_wall_s_per_process: float
    ok: bool


class SelfChecks(TypedDict):
    client_cpu: ClientCpu


class LoadgenTls(TypedDict):
    versions: dict[str, int]
    ciphers: dict[str, int]
    alpn: dict[str, int]


class LoadgenProtocol(TypedDict):
    """What loadgen asked for and what each connection negotiated (its TLS socket's
    version, cipher and ALPN answer; h2c once the server's SETTINGS came)."""

    requested: str
    scheme: str
    negotiated: dict[str, int]
    tls: LoadgenTls | None


class MisbehavingKind(TypedDict):
    """loadgen's report on one kind of misbehaving connection held beside the load."""

    asked: int
    opened: int
    failed: int
    """could not connect"""
    closed: int
    """closed by the server before the run ended"""
    held: int
    """still open when the run ended"""
    answered: dict[str, int]
    """answers the server sent them, by status"""
    closed_after_s: dict[str, float] | None
    """seconds from connect to the server's close: min, median, max"""


class SchedulerLag(TypedDict):
    p50: int
    p99: int


class OpenModel(TypedDict):
    scheduler_lag_ns: SchedulerLag


class LoadgenReport(TypedDict):
    version: int
    summary: LoadgenSummary
    latency: Latency
    errors: dict[str, int]
    checks: list[Check]
    self_checks: SelfChecks
    protocol: NotRequired[LoadgenProtocol]
    misbehaving: NotRequired[dict[str, MisbehavingKind] | None]
    open_model: OpenModel | None
