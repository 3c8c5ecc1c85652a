"""slow-clients: what clients that stay idle or send slowly cost each server, with and
without nginx in front (``experiment slow-clients``; README, "Experiments").

For each pair, reached directly and through ``--proxy nginx``: the normal ``/db`` load (at a
fixed rate, the open model: a stall shows in the corrected p99 and in the throughput, where a
closed model's stuck connections would only send less) alone, then beside 25 and 200
connections of each kind (idle, slow-headers: loadgen's ``--misbehaving``) held from before
the warm-up to the end. Each cell is one bench job
(its own server start, so no cell inherits another's held threads), and each is judged
against the same pair and front without them: its throughput and p99 beside the
prediction of the concurrency model.

The model: a held connection costs a thread-per-connection server one of its threads for
as long as the client waits (gunicorn's sync workers: a whole worker; gthread: a thread of
``workers × threads``); a gevent worker one greenlet of its pool, whose size bounds the
connections it accepts (``workers × worker_connections``); an event loop (every ASGI server
here) a socket and a few kilobytes. nginx in front reads whole requests before it passes
them on, so the app server sees none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from loadgen.misbehave import STALLED_BODY
from stackbench.documents import LoadgenSummary, MisbehavingKind, ResultRow
from stackbench.experiments import EXPERIMENTS, SLOW_CLIENTS_PAIRS
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.matrix import Pair, get_pair
from stackbench.measure import Progress
from stackbench.options import BenchOptions
from stackbench.proxy import NGINX
from stackbench.results import read_result
from stackbench.run import BenchRun

NAME = "slow-clients"
PAIRS = SLOW_CLIENTS_PAIRS  # each WSGI worker class of gunicorn and every ASGI server
COUNTS = (0, 25, 200)
KINDS = ("idle", "slow-headers")
DIRECT = "direct"
FRONTS = (DIRECT, NGINX)
# A verdict relative to the same pair and front with nothing held (its "0" cell).
UNAFFECTED, SLOWED, STALLED = "unaffected", "slowed", "stalled"
THREAD_PER_CONNECTION = ("gunicorn-sync", "gunicorn-gthread")
GREEN_POOL = ("gunicorn-gevent", "gunicorn-gevent-blocking", "gunicorn-eventlet")


@dataclass(frozen=True)
class Cell:
    pair: Pair
    front: str  # direct, or the proxy in front
    kind: str  # what the held connections do ("-" for none)
    count: int  # how many are held

    @property
    def label(self) -> str:
        return f"{self.front}-{self.kind}{self.count}" if self.count else f"{self.front}-alone"

    @property
    def front_of(self) -> tuple[Pair, str]:
        """The baseline's key: this pair, reached this way."""
        return self.pair, self.front


@dataclass(frozen=True)
class Prediction:
    verdict: str  # unaffected or stalled
    why: str


def predict(cell: Cell, settings: dict[str, int], connections: int) -> Prediction:
    """What the concurrency model says ``cell.count`` held connections do to the load's
    ``connections``, given the server's resolved ``settings`` (workers, threads)."""
    server, workers, threads = cell.pair.server, settings["workers"], settings["threads"]
    if cell.count == 0:
        return Prediction(UNAFFECTED, "the load alone: the baseline")
    if cell.front != DIRECT:
        return Prediction(
            UNAFFECTED,
            f"{cell.front} holds them and passes on only whole requests: the server sees none",
        )
    if server == "gunicorn-sync":
        return _held(cell.count >= workers, f"{workers} sync workers, each held by one of them")
    if server == "gunicorn-gthread":
        slots = workers * threads
        # gunicorn 27 gives a silent new connection its thread for 5 s, then parks it in its
        # poller; a slow head keeps its thread for as long as it trickles.
        hold = "for 5 s each" if cell.kind == "idle" else "as long as they send"
        return _held(
            cell.count >= slots, f"{workers} workers x {threads} threads = {slots}, held {hold}"
        )
    if server in GREEN_POOL:
        slots = workers * threads
        return _held(
            cell.count + connections > slots,
            f"{workers} workers x {threads} greenlets = {slots} connections accepted, "
            f"{cell.count} held + {connections} of the load",
        )
    return Prediction(UNAFFECTED, "an event loop: a held connection costs a socket, no thread")


def _held(stalls: bool, capacity: str) -> Prediction:
    if stalls:
        return Prediction(STALLED, f"{capacity}: all taken, the load waits")
    return Prediction(UNAFFECTED, f"{capacity}: some left for the load")


@dataclass(frozen=True)
class Figures:
    """What a cell measured of the normal load (its result's repeats)."""

    answered_per_s: float  # successful responses per second of loadgen's measured windows
    p99_ms: float | None  # None: nothing was answered
    unanswered: float  # the share of the window's sends not answered 2xx/3xx
    misbehaving: dict[str, MisbehavingKind]  # the held connections, by kind (median repeat)
    status: str
    reason: str | None = None


def figures_of(result: ResultRow | None, run_dir: Path) -> Figures | None:
    """A result's figures; None when nothing was measured (the server did not start)."""
    if result is None or result["summary"] is None:
        return None
    summary = result["summary"]
    document = read_result(run_dir / result["file"])
    reports = [repeat["loadgen"]["summary"] for repeat in document["repeats"]]
    elapsed = sum(float(report["elapsed_s"]) for report in reports)
    answered = sum(int(report["ok"]) for report in reports)
    return Figures(
        answered_per_s=round(answered / elapsed, 1) if elapsed else 0.0,
        p99_ms=summary["p99_ms"] if answered else None,
        unanswered=unanswered_share(reports),
        misbehaving=dict(summary.get("misbehaving") or {}),
        status=result["status"],
        reason=result["reason"],
    )


def unanswered_share(reports: list[LoadgenSummary]) -> float:
    """The share of the measured sends not answered 2xx/3xx: failed, errors (a request still
    waiting at the end is one) and the sends dropped because no connection came free, which
    a server holding every connection turns all of its load into (loadgen's error rate
    leaves them out: there, a stalled server shows no errors at all)."""
    offered = sum(report["requests"] + report["dropped"] for report in reports)
    answered = sum(report["ok"] for report in reports)
    return (offered - answered) / offered if offered else 0.0


@dataclass
class Row:
    cell: Cell
    prediction: Prediction
    figures: Figures | None
    baseline: Figures | None = None  # the same pair and front, nothing held

    @property
    def verdict(self) -> str | None:
        """Measured against the baseline: stalled (nothing answered, or under half its
        throughput, or a p99 over 10 x its own and over 1 s), unaffected (at least 80 % of
        its throughput, a p99 within 2 x or 20 ms of it and no more unanswered: a request
        still waiting when the run ended is one), slowed in between; None without a baseline or a
        measurement."""
        base = self.baseline
        if base is None or not base.answered_per_s or base.p99_ms is None:
            return None
        found = self.figures
        if found is None:
            return None  # not measured: the server did not start, or the load broke
        if found.p99_ms is None or not found.answered_per_s:
            return STALLED
        throughput, p99 = found.answered_per_s / base.answered_per_s, found.p99_ms
        if throughput < 0.5 or p99 > max(10 * base.p99_ms, 1000.0):
            return STALLED
        unanswered = found.unanswered > base.unanswered  # stuck past the end, or refused
        if throughput >= 0.8 and p99 <= max(2 * base.p99_ms, base.p99_ms + 20) and not unanswered:
            return UNAFFECTED
        return SLOWED

    @property
    def as_predicted(self) -> bool:
        return self.verdict == self.prediction.verdict


@dataclass
class Outcome:
    run_dir: Path
    rows: list[Row] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)


def cells(
    pairs: list[Pair], counts: tuple[int, ...], kinds: tuple[str, ...], fronts: tuple[str, ...]
) -> list[Cell]:
    """Each pair and front: the load alone first (the baseline), then each kind held at each
    count, fewest first."""
    found = []
    for pair in pairs:
        for front in fronts:
            if 0 in counts:
                found.append(Cell(pair, front, "-", 0))
            for kind in kinds:
                found += [Cell(pair, front, kind, n) for n in sorted(counts) if n]
    return found


def run_slow_clients(
    pairs: list[Pair],
    options: BenchOptions,
    *,
    counts: tuple[int, ...] = COUNTS,
    kinds: tuple[str, ...] = KINDS,
    fronts: tuple[str, ...] = FRONTS,
    progress: Progress | None = None,
    job: Callable[[BenchRun, Cell, BenchOptions], list[ResultRow]] | None = None,
) -> Outcome:
    """Every cell as a bench job of ``options`` (one scenario: /db by default) in one run
    directory; each judged against its pair and front's baseline. ``job`` runs one cell
    (a test plants one); by default, ``run.job``."""
    for pair in pairs:
        get_pair(pair.app, pair.server)  # one line for an invalid pair, before anything
    measure = job or _job
    with BenchRun(NAME, output=options.output, experiment=NAME, progress=progress) as run:
        outcome = Outcome(run.run_dir)
        baselines: dict[tuple[Pair, str], Figures | None] = {}
        for cell in cells(pairs, counts, kinds, fronts):
            _, server = get_pair(cell.pair.app, cell.pair.server)
            settings = server.resolve(options.knobs, options.server_cpu_count)
            prediction = predict(cell, settings, options.load.concurrency)
            found = measure(run, cell, options)
            figures = figures_of(found[0] if found else None, run.run_dir)
            if cell.count == 0:
                baselines[(cell.pair, cell.front)] = figures
            outcome.rows.append(Row(cell, prediction, figures, baselines.get(cell.front_of)))
            if not found:
                outcome.unmeasured.append(f"{cell.pair.app} @ {cell.pair.server}: {cell.label}")
        # A stalled cell answered nothing: that is its measurement, not the run failing.
        run.judge_by(failures(outcome))
    return outcome


def cell_options(cell: Cell, options: BenchOptions) -> BenchOptions:
    """``options`` for one cell: its proxy in front (or none), its connections held."""
    held = ((cell.kind, cell.count),) if cell.count else ()
    # A stalled body goes where the app reads one: POST /api/troupes (under the prefix).
    path = f"{options.prefix}/api/troupes" if cell.kind == STALLED_BODY else None
    return replace(
        options,
        proxy=None if cell.front == DIRECT else cell.front,
        upstream=options.upstream if cell.front != DIRECT else None,
        load=options.load.replace(misbehaving=held, misbehaving_path=path),
    )


def _job(run: BenchRun, cell: Cell, options: BenchOptions) -> list[ResultRow]:
    return run.job(cell.pair, cell_options(cell, options), label=cell.label)


HEADERS = [
    "pair", "front", "held", "predicted", "measured", "answered/s", "× alone", "p99 ms",
    "unanswered", "held at the end / closed by the server", "why",
]  # fmt: skip


def _body(outcome: Outcome) -> list[list[str]]:
    body = []
    for row in outcome.rows:
        cell, found, base = row.cell, row.figures, row.baseline
        held = f"{cell.count} {cell.kind}" if cell.count else "0"
        ratio = "–"
        if found and base and base.answered_per_s and cell.count:
            ratio = f"{found.answered_per_s / base.answered_per_s:.2f}"
        if found is None:
            measured = "not measured"
        elif not cell.count:
            measured = "baseline"
        else:
            measured = row.verdict or "no baseline"
            if row.verdict and not row.as_predicted:
                measured += " ⚠"
        kinds = found.misbehaving.values() if found else ()
        server_side = "; ".join(f"{k['held']} / {k['closed']}" for k in kinds)
        body.append(
            [
                f"{cell.pair.app} @ {cell.pair.server}",
                cell.front,
                held,
                row.prediction.verdict if cell.count else "–",
                measured,
                f"{found.answered_per_s:,.0f}" if found else "–",
                ratio,
                f"{found.p99_ms:,.1f}" if found and found.p99_ms is not None else "–",
                f"{100 * found.unanswered:.1f}%" if found else "–",
                server_side or "–",
                row.prediction.why,
            ]
        )
    return body


def table(outcome: Outcome) -> Table:
    return terminal_table(EXPERIMENTS[NAME].question, HEADERS, _body(outcome), labels=5)


def markdown(outcome: Outcome, command: str) -> str:
    experiment = EXPERIMENTS[NAME]
    missed = [row for row in outcome.rows if row.verdict and not row.as_predicted]
    lines = [
        f"### {NAME}",
        "",
        f"**{experiment.question}**",
        "",
        f"```bash\n{command}\n```",
        "",
        *markdown_table(HEADERS, _body(outcome), labels=5),
        "",
        "answered/s: successful responses per second of the measured windows; p99: corrected "
        "for coordinated omission (the load is offered at a fixed rate). "
        "Measured against the same pair and front with nothing held (× alone: its answered/s): "
        "**stalled** under half its throughput, no answer, or a p99 over 10 × its own and "
        "over 1 s; **unaffected** at least 80 % of it, a p99 within 2 × (or 20 ms) and no "
        "more unanswered; "
        "**slowed** in between. ⚠: not as predicted. unanswered: the window's sends not "
        "answered 2xx/3xx (errors, those still waiting when the run ended, and those "
        "dropped for want of a free connection).  held at the end / closed by the "
        "server: the misbehaving connections still open when the load ended, and those the "
        "server (or nginx) closed.",
        "",
        experiment.notes,
        "",
    ]
    if missed:
        lines += [f"{len(missed)} cell(s) not as predicted.", ""]
    return "\n".join(lines)


def failures(outcome: Outcome) -> list[str]:
    """Cells that could not be judged: not measured, or their baseline answered nothing."""
    unjudged = [
        f"{row.cell.pair.app} @ {row.cell.pair.server}: {row.cell.label}: no baseline"
        for row in outcome.rows
        if row.cell.count and row.figures is not None and row.verdict is None
    ]
    return [f"{cell}: not measured" for cell in outcome.unmeasured] + unjudged
