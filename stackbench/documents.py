"""One typed definition of each document the harness writes or reads.

The JSON schemas in ``stackbench/schemas/`` say what a valid file is; these TypedDicts say
the same to the type checker, for the writer (``measure``, ``run``, ``judge``) and the
readers (the report). ``tests/harness/test_documents.py`` holds the two to one another,
so a renamed key fails type checking and a test, not a production run.

Keys that older files may lack are ``NotRequired``: the writer always writes them, and a
reader must say "unknown" when they are absent. (No ``from __future__ import
annotations`` here: TypedDict reads ``NotRequired`` from the evaluated annotations.)
"""

from typing import Any, Literal, NotRequired, TypedDict

Status = Literal["ok", "degraded", "failed"]
CpuSource = Literal["cpu-clock", "proc-stat"]
RunStatus = Literal["ok", "degraded", "failed", "interrupted"]


# -- loadgen's JSON report, as far as the harness reads it ------------------------------
class LoadgenSummary(TypedDict):
    requests: int
    responses: int
    ok: int
    failed: int
    errors: int
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


class LoadgenReport(TypedDict):
    version: str
    summary: LoadgenSummary
    latency: Latency
    errors: dict[str, int]
    checks: list[Check]
    self_checks: SelfChecks


# -- the result document: one (app, server, scenario) in one run -------------------------
class Interpreter(TypedDict):
    """The Python a server ran on."""

    version: str
    implementation: str
    executable: str
    free_threaded: bool
    gil_enabled: bool


class ServerSettings(TypedDict):
    workers: int
    threads: int
    pool_size: int


class LoadInfo(TypedDict):
    model: Literal["closed", "open"]
    duration_s: float
    warmup_s: float
    connections: int
    rate: float | None
    requests: NotRequired[int | None]
    repeats: int
    processes: int


class CpuRead(TypedDict):
    """How a CPU figure was read: ``cpu-clock`` (each process's CPU-time clock, ns) or
    ``proc-stat`` (/proc/PID/stat, clock ticks), and the step of the coarsest counter that
    moved it (a tick when a process was read in ticks or reaped a child in the window)."""

    source: CpuSource
    resolution_s: float


class CpuPerRequest(TypedDict):
    server: float | None
    database: float | None
    client: float | None


class Summary(TypedDict):
    requests: int
    rps: float
    rps_min: float
    rps_max: float
    spread: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    error_rate: float
    errors: dict[str, int]
    server_cpu_s: float | None
    requests_per_server_cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    client_cpu_per_wall_s: float
    database_cpu_s: NotRequired[float | None]
    database_cpu_source: NotRequired[str | None]
    server_cpu_read: NotRequired[CpuRead | None]
    database_cpu_read: NotRequired[CpuRead | None]
    client_cpu_s: NotRequired[float | None]
    cpu_us_per_request: NotRequired[CpuPerRequest | None]
    worker_exits: NotRequired[int]


class Flags(TypedDict):
    noisy: bool
    client_saturated: bool
    checks_failed: bool
    worker_restarted: NotRequired[bool]
    noise_bound: NotRequired[float]
    profiled: NotRequired[bool]  # bench --profile: py-spy paused the server 100 times a second


class ServerFiguresDoc(TypedDict):
    cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    alive_after: bool
    worker_exits: NotRequired[int]
    exited_pids: NotRequired[list[int]]
    window_s: NotRequired[float | None]
    cpu_read: NotRequired[CpuRead | None]


class DatabaseFigures(TypedDict):
    cpu_s: float | None
    source: str | None
    cpu_read: NotRequired[CpuRead | None]


class ProfileDoc(TypedDict):
    """bench --profile: py-spy's collapsed stacks and their summary, files in the run's
    profiles/ directory; or why there is none."""

    raw: str | None
    summary: str | None
    samples: int
    error: str | None


class Repeat(TypedDict):
    rps: float
    p99_ms: float
    server: ServerFiguresDoc
    database: NotRequired[DatabaseFigures]
    loadgen: LoadgenReport
    profile: NotRequired[ProfileDoc]


class ResultHeader(TypedDict):
    """What a result says about its pair before anything is measured."""

    schema_version: int
    kind: Literal["stackbench.result"]
    run_id: str
    app: str
    server: str
    interface: str | None
    interpreter: NotRequired[Interpreter]
    variant: NotRequired[str | None]
    server_command: list[str]
    server_env: NotRequired[dict[str, str]]
    server_settings: ServerSettings
    started_at: str


class ResultDocument(ResultHeader):
    scenario: str
    scenario_options: NotRequired[dict[str, str]]
    status: Status
    reason: str | None
    log_tail: str | None
    load: LoadInfo
    summary: Summary | None
    flags: Flags
    repeats: list[Repeat]
    finished_at: str


class Verdict(TypedDict):
    """What the judge decides about one scenario's repeats."""

    status: Status
    reason: str | None
    summary: Summary | None
    flags: Flags


class ResultRow(TypedDict):
    """A written result as a run's summary table lists it."""

    file: str
    app: str
    server: str
    variant: str | None
    scenario: str
    status: Status
    reason: str | None
    summary: Summary | None
    flags: Flags


# -- the manifest: one run directory's provenance ----------------------------------------
class Git(TypedDict):
    commit: str | None
    dirty: bool | None


class PythonInfo(TypedDict):
    version: str
    implementation: str
    executable: str
    free_threaded: NotRequired[bool]
    gil_enabled: NotRequired[bool]


class Machine(TypedDict):
    cpu_model: str
    cpu_count: int
    memory_gb: float | None
    platform: str


class Pinning(TypedDict):
    server_cpus: str | None
    client_cpus: str | None


class DatabaseInfo(TypedDict):
    embedded: bool
    url: str
    settings: dict[str, str]


class Seed(TypedDict):
    scale: int
    checksum: str
    reseeded: bool


class PairRef(TypedDict):
    app: str
    server: str


class Target(TypedDict):
    """A run of ``bench --target``: where the pair was served (``serve`` on that host)."""

    app_url: str
    stats_url: str
    host: str
    machine: Machine


class Manifest(TypedDict):
    schema_version: int
    kind: Literal["stackbench.manifest"]
    run_id: str
    status: RunStatus
    reason: NotRequired[str | None]
    experiment: NotRequired[str | None]
    started_at: str
    finished_at: str
    command: list[str]
    git: Git
    python: PythonInfo
    packages: dict[str, str]
    machine: Machine
    pinning: Pinning
    database: DatabaseInfo
    seed: Seed
    loadgen: dict[str, Any]
    options: dict[str, Any]
    pairs: list[PairRef]
    results: list[str]
    target: NotRequired[Target]
