"""The one definition of each document the harness writes or reads.

The result and the manifest are these TypedDicts, and only these. Writers build each part
by calling its TypedDict (``Summary(responses=…, …)``: mypy refuses a key the definition
lacks and names a required one left out); readers are typed by them. The JSON schemas in
``stackbench/schemas/`` are generated from them (``python -m stackbench.json_schema``:
``Json(...)`` adds the bounds a type cannot say, a key's docstring is its description);
``tests/harness/test_documents.py`` fails, naming the key, when a committed schema is not
the generated one.

loadgen's report is loadgen's (``loadgen/report.schema.json``); its TypedDicts here are the
part the harness reads, and the same test checks that each of their keys is required there.

Keys that older files may lack are ``NotRequired``: the writer always writes them, and a
reader must say "unknown" when they are absent. A renamed key bumps ``SCHEMA_VERSION``;
``results.upgraded`` reads an older file in this version's words. (No ``from __future__
import annotations`` here: TypedDict reads ``NotRequired`` from the evaluated annotations.)
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, NotRequired, TypedDict, cast, get_args

from stackbench import capacity_document as _capacity
from stackbench import document_types as _types
from stackbench import loadgen_report as _loadgen
from stackbench import protocol_documents as _protocol

# -- the types the documents' keys share (stackbench/document_types.py)
SCHEMA_VERSION = _types.SCHEMA_VERSION
Json = _types.Json
Count = _types.Count
AtLeastOne = _types.AtLeastOne
NonNegative = _types.NonNegative
Status = _types.Status
CpuSource = _types.CpuSource
RunStatus = _types.RunStatus
Interface = _types.Interface
Version = _types.Version
CLOSED = _types.CLOSED
RunId = _types.RunId


def interface(name: str | None) -> Interface:
    """``name`` as the result's ``interface``; anything else is a bug, said here."""
    for known in get_args(Interface):
        if name == known:
            return known  # typed Any: get_args cannot say it is one of Interface
    raise ValueError(f"not an app interface: {name!r}")


# -- the protocol (stackbench/protocol_documents.py)
Protocol = _protocol.Protocol
Negotiated = _protocol.Negotiated
ProtocolCheck = _protocol.ProtocolCheck
protocol_name = _protocol.protocol_name

# -- loadgen's report, as far as the harness reads it (stackbench/loadgen_report.py): its
# readers take its parts from here, beside the harness's own documents
Check = _loadgen.Check
ClientCpu = _loadgen.ClientCpu
Latency = _loadgen.Latency
LatencyBlock = _loadgen.LatencyBlock
LoadgenProtocol = _loadgen.LoadgenProtocol
LoadgenReport = _loadgen.LoadgenReport
LoadgenSummary = _loadgen.LoadgenSummary
LoadgenTls = _loadgen.LoadgenTls
MisbehavingKind = _loadgen.MisbehavingKind
OpenModel = _loadgen.OpenModel
SchedulerLag = _loadgen.SchedulerLag
SelfChecks = _loadgen.SelfChecks


# -- the result document: one (app, server, scenario) in one run -------------------------
class Interpreter(TypedDict):
    """The Python a server ran on."""

    version: str
    implementation: str
    executable: str
    free_threaded: bool
    gil_enabled: bool


class ServerSettings(TypedDict):
    workers: AtLeastOne
    threads: AtLeastOne
    pool_size: AtLeastOne


class LoadInfo(TypedDict):
    model: Literal["closed", "open"]
    duration_s: Annotated[float, Json(exclusiveMinimum=0)]
    warmup_s: NonNegative
    connections: AtLeastOne
    rate: float | None
    requests: NotRequired[int | None]
    """count mode (-n): requests per repeat"""
    repeats: AtLeastOne
    processes: AtLeastOne
    """loadgen's processes on each load host"""
    misbehaving: NotRequired[dict[str, int]]
    """connections held beside the load, by kind (loadgen --misbehaving): none when empty"""
    agents: NotRequired[AtLeastOne]
    """the load agents, each on its host, whose reports every repeat merged (bench --agent
    I/N, capacity --agents N); absent in results from before agents: one"""


class CpuRead(TypedDict):
    """How a CPU figure was read: ``cpu-clock`` (each process's CPU-time clock, ns) or
    ``proc-stat`` (/proc/PID/stat, clock ticks), and the step of the coarsest counter that
    moved it (a tick when a process was read in ticks or reaped a child in the window)."""

    source: CpuSource
    resolution_s: float


class CpuPerRequest(TypedDict):
    server: Annotated[float | None, Json(minimum=0)]
    proxy: NotRequired[Annotated[float | None, Json(minimum=0)]]
    """the proxy in front (bench --proxy); absent without one"""
    database: Annotated[float | None, Json(minimum=0)]
    client: Annotated[float | None, Json(minimum=0)]


class Summary(TypedDict):
    responses: Count
    """responses received, over every repeat (loadgen's summary.responses, summed)"""
    rps: NonNegative
    rps_min: NonNegative
    rps_max: NonNegative
    spread: NonNegative
    p50_ms: NonNegative
    p90_ms: NonNegative
    p99_ms: NonNegative
    p999_ms: NonNegative
    max_ms: NonNegative
    error_rate: Annotated[float, Json(minimum=0, maximum=1)]
    errors: dict[str, int]
    server_cpu_s: float | None
    requests_per_server_cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    client_cpu_per_wall_s: NonNegative
    database_cpu_s: NotRequired[float | None]
    """CPU seconds of the database's processes in the measured window (median repeat); null when
    unknown"""
    database_cpu_source: NotRequired[str | None]
    """'proc': the embedded PostgreSQL's processes from /proc; null: an external DATABASE_URL,
    unknown"""
    server_cpu_read: NotRequired[CpuRead | None]
    """how the server's CPU figures were read: the coarsest of the repeats'"""
    database_cpu_read: NotRequired[CpuRead | None]
    """how the database's CPU figure was read (median repeat)"""
    client_cpu_s: NotRequired[float | None]
    """loadgen's CPU seconds in the measured window (CPU per wall second × window)"""
    cpu_us_per_request: NotRequired[Annotated[CpuPerRequest | None, CLOSED]]
    """CPU microseconds per successful response, by who spent them (median repeat)"""
    worker_exits: NotRequired[Count]
    """server processes that exited during the measured windows"""
    negotiated: NotRequired[Annotated[Negotiated | None, CLOSED]]
    """what the load's connections negotiated (loadgen's protocol block, summed over the
    repeats); null when loadgen did not say"""
    proxy_cpu_s: NotRequired[float | None]
    """CPU seconds of the proxy in front (bench --proxy) in the measured window (median repeat)"""
    proxy_cpu_read: NotRequired[CpuRead | None]
    """how the proxy's CPU figure was read (median repeat)"""
    misbehaving: NotRequired[dict[str, MisbehavingKind] | None]
    """the misbehaving connections held beside the load (median repeat), by kind"""


class Flags(TypedDict):
    noisy: bool
    client_saturated: bool
    checks_failed: bool
    worker_restarted: NotRequired[bool]
    """a server process exited during a measured window"""
    noise_bound: NotRequired[float]
    profiled: NotRequired[bool]
    """bench --profile: a sampling profiler paused the server; its figures are not for comparison"""
    protocol_mismatch: NotRequired[bool]
    """a connection of the load spoke another protocol than the one asked for"""


class Sample(TypedDict):
    """One reading of the sampler in the measured window."""

    t_s: NonNegative
    """seconds since the measured window began"""
    cpu_s: float | None
    """the server's CPU seconds since the window began"""
    database_cpu_s: float | None
    """the embedded database's CPU seconds since the window began (null: not read here)"""
    rss_mb: float | None
    """the server's resident memory, every process of its group"""
    db_connections: int | None
    """client connections to the database (null: not read)"""


class ServerFiguresDoc(TypedDict):
    cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    alive_after: bool
    worker_exits: NotRequired[Count]
    exited_pids: NotRequired[list[int]]
    window_s: NotRequired[float | None]
    """wall seconds the CPU figures cover"""
    cpu_read: NotRequired[CpuRead | None]
    """how cpu_s was read"""
    samples: NotRequired[list[Annotated[Sample, CLOSED]]]
    """the sampler's readings over the measured window (every 0.25 s): what the report charts
    over time; absent when the figures came from another host's stats endpoint"""


class DatabaseFigures(TypedDict):
    cpu_s: float | None
    source: str | None
    cpu_read: NotRequired[CpuRead | None]


class ProxyFigures(TypedDict):
    """The proxy in front, over the measured window."""

    cpu_s: float | None
    cpu_read: CpuRead | None


class ProfileDoc(TypedDict):
    raw: str | None
    summary: str | None
    samples: Count
    error: str | None


class Repeat(TypedDict):
    rps: NonNegative
    p99_ms: NonNegative
    server: ServerFiguresDoc
    database: NotRequired[DatabaseFigures]
    proxy: NotRequired[ProxyFigures]
    """bench --proxy: the proxy's CPU in the same window as the server's"""
    # loadgen's own schema says what a valid report is; a result only needs its head.
    loadgen: Annotated[
        LoadgenReport,
        Json(replace=True, type="object", required=["version", "summary", "latency"]),
    ]
    profile: NotRequired[Annotated[ProfileDoc, CLOSED]]
    """bench --profile: py-spy's on-CPU samples of the server in the measured window (files in
    profiles/), or why there are none"""


class Git(TypedDict):
    commit: str | None
    dirty: bool | None


class AppSource(TypedDict):
    """Where the app served came from: its directory, its declaration (docs/your-app.md)
    as written, and the commit of the repository it is in."""

    path: str
    declaration: str
    """the declaration's file: stackbench.toml, or the pyproject.toml holding [tool.stackbench]"""
    declared: dict[str, Any]
    git: Git
    """the commit of the repository the directory is in, and whether anything under the directory
    differs from it; both null outside a repository"""


class ProxyDoc(TypedDict):
    """The proxy in front of the pair (bench --proxy): clients reached the server through it."""

    name: str
    version: str
    client_protocol: Protocol
    """what clients spoke to the proxy (bench --protocol); it spoke HTTP/1.1 to the server"""
    upstream: Literal["tcp", "unix"]
    """how the proxy reached the server"""
    upstream_address: str
    """host:port or unix:PATH"""
    workers: AtLeastOne
    command: list[str]
    config: str
    """its configuration, relative to the run directory (written for this serving)"""


class ResultHeader(TypedDict):
    """What a result says about its pair before anything is measured."""

    schema_version: Version
    kind: Literal["stackbench.result"]
    run_id: RunId
    app: str
    app_source: NotRequired[AppSource]
    """the app's directory, declaration and commit (results before stackbench read declarations
    lack it)"""
    server: str
    interface: Interface
    protocol: NotRequired[Protocol]
    """what the load was asked to speak (bench --protocol); absent in older files: h1"""
    protocol_check: NotRequired[Annotated[ProtocolCheck, CLOSED]]
    """what the server spoke on one connection before the load"""
    interpreter: NotRequired[Interpreter]
    """the Python the server ran on (its virtualenv's), which may differ from the harness's"""
    label: NotRequired[str | None]
    """tells apart several jobs of one pair in one run (e.g. 'w1', 'r200'); the file name ends in
    --LABEL"""
    server_command: list[str]
    server_env: NotRequired[dict[str, str]]
    server_settings: ServerSettings
    proxy: NotRequired[Annotated[ProxyDoc, CLOSED]]
    """bench --proxy: the proxy in front of the server; absent when clients reached it directly"""
    started_at: str


class ResultDocument(ResultHeader):
    scenario: str
    scenario_options: NotRequired[dict[str, str]]
    scenario_file: NotRequired[str]
    """the scenario file the scenario is declared in (loadgen's --scenario-file), if any"""
    status: Status
    reason: str | None
    log_tail: str | None
    load: LoadInfo
    summary: Summary | None
    flags: Flags
    repeats: list[Repeat]
    finished_at: str


class Verdict(TypedDict):
    """What the judge decides about one scenario's repeats (not a file)."""

    status: Status
    reason: str | None
    summary: Summary | None
    flags: Flags


class ResultRow(TypedDict):
    """A written result as a run's summary table lists it (not a file)."""

    file: str
    app: str
    server: str
    label: str | None
    scenario: str
    status: Status
    reason: str | None
    summary: Summary | None
    flags: Flags
    proxy: NotRequired[str | None]
    """the proxy in front and how it reached the server: 'nginx (unix)'"""


# -- the manifest: one run directory's provenance ----------------------------------------
class PythonInfo(TypedDict):
    version: str
    implementation: str
    executable: str
    free_threaded: NotRequired[bool]
    """a build with Py_GIL_DISABLED"""
    gil_enabled: NotRequired[bool]
    """the GIL at run time (PYTHON_GIL=0 turns it off on a free-threaded build)"""


class Machine(TypedDict):
    cpu_model: str
    cpu_count: int
    memory_gb: float
    platform: str


class Pinning(TypedDict):
    server_cpus: str | None
    client_cpus: str | None


class DatabaseInfo(TypedDict):
    embedded: bool
    url: str
    settings: dict[str, Any]


class Seed(TypedDict):
    scale: int
    checksum: str
    reseeded: bool


class PairRef(TypedDict):
    app: str
    server: str


class Job(TypedDict):
    """One job of the run: its pair and label, then every field of the ``BenchOptions`` it
    ran with (their names and values are ``BenchOptions.as_dict``'s), built by ``job``."""

    app: str
    server: str
    label: str | None
    """the label of the job's results (a result's label)"""


class JobProtocol(TypedDict):
    """One job's protocol: asked, and negotiated by the load's connections over all its
    scenarios (the results' summaries summed)."""

    app: str
    server: str
    label: str | None
    protocol: Protocol
    negotiated: Annotated[Negotiated | None, CLOSED]
    """null when a result of the job does not say (it failed before the load, or loadgen
    did not report it)"""


class RunOptions(TypedDict):
    jobs: NotRequired[list[Job]]


class Target(TypedDict):
    """A run of ``bench --target``: where the pair was served (``serve`` on that host)."""

    app_url: str
    stats_url: str
    host: str
    machine: Machine


class Manifest(TypedDict):
    schema_version: Version
    kind: Literal["stackbench.manifest"]
    run_id: RunId
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
    options: RunOptions
    pairs: list[PairRef]
    results: list[str]
    target: NotRequired[Annotated[Target, CLOSED]]
    """bench --target: the pair was served by `serve` on another host; its machine is here, the load
    host's is `machine`"""
    protocols: NotRequired[list[Annotated[JobProtocol, CLOSED]]]
    """each job's protocol, asked and negotiated"""
    proxy_configs: NotRequired[list[str]]
    """bench --proxy: the proxy's configuration of each job, relative to the run directory"""


def job(app: str, server: str, label: str | None, options: Mapping[str, Any]) -> Job:
    """The manifest's record of one job; an option named like a key of ``Job`` would
    overwrite it (as the served variant once did the label), so it is refused."""
    clash = sorted(set(options) & set(Job.__annotations__))
    if clash:
        raise ValueError(f"job options may not be named {', '.join(clash)}: Job's own keys")
    return cast(Job, {**Job(app=app, server=server, label=label), **options})


# -- the capacity document (stackbench/capacity_document.py): one capacity run's answer
AtSustainable = _capacity.AtSustainable
CapacityDocument = _capacity.CapacityDocument
LatencyLimitDoc = _capacity.LatencyLimitDoc
PairCapacity = _capacity.PairCapacity
PairVerdict = _capacity.PairVerdict
ProbeDoc = _capacity.ProbeDoc
ProbeOutcome = _capacity.ProbeOutcome
ProbeRepeat = _capacity.ProbeRepeat
SearchDoc = _capacity.SearchDoc
SearchStatus = _capacity.SearchStatus
SloDoc = _capacity.SloDoc


# -- the files on disk ------------------------------------------------------------------
@dataclass(frozen=True)
class Schema:
    """A document written to disk: its TypedDict, validated against the schema generated
    from it (``stackbench/schemas/<name>.schema.json``)."""

    name: str
    document: type
    title: str


SCHEMAS: Final = (
    Schema("result", ResultDocument, "stackbench result: one (app, server, scenario) in one run"),
    Schema("manifest", Manifest, "stackbench run manifest: provenance of one run directory"),
    Schema(
        "capacity",
        CapacityDocument,
        "stackbench capacity: each pair's sustainable rate at an SLO, in one run",
    ),
)
