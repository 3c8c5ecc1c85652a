"""slow-clients: what clients that stay idle or send slowly cost each server, with and
without nginx in front (``experiment slow-clients``; README, "Experiments").

For each pair, reached directly and through ``--proxy nginx``: the normal ``/db`` load
alone, then beside 25 and 200 connections of each kind (idle, slow-headers: loadgen's
``--misbehaving``) held from before the warm-up to the end. Each cell is one bench job
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
from stackbench.documents import ResultRow, Summary
from stackbench.experiments import EXPERIMENTS, SLOW_CLIENTS_PAIRS
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.matrix import Pair, get_pair
from stackbench.measure import Progress
from stackbench.options import BenchOptions
from stackbench.proxy import NGINX
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
        return _held(cell.count >= slots, f"{workers} workers x {threads} threads = {slots}")
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


@dataclass
class Row:
    cell: Cell
    prediction: Prediction
    result: ResultRow | None
    baseline: Summary | None = None  # the same pair and front, nothing held

    @property
    def summary(self) -> Summary | None:
        return self.result["summary"] if self.result else None

    @property
    def verdict(self) -> str | None:
        """Measured against the baseline: stalled (no answer, or under half its throughput,
        or a p99 over 10 x its own and over 1 s), unaffected (at least 80 % of its
        throughput and a p99 within 2 x or 20 ms of it), slowed in between; None without a
        baseline."""
        base = self.baseline
        if base is None or not base["rps"]:
            return None
        summary = self.summary
        if summary is None or summary["rps"] == 0 or summary["responses"] == 0:
            return STALLED
        rps, p99 = summary["rps"] / base["rps"], summary["p99_ms"]
        if rps < 0.5 or p99 > max(10 * base["p99_ms"], 1000.0):
            return STALLED
        if rps >= 0.8 and p99 <= max(2 * base["p99_ms"], base["p99_ms"] + 20):
            return UNAFFECTED
        return SLOWED

    @property
    def as_predicted(self) -> bool:
        return self.verdict == self.prediction.verdict


@dataclass
class Outcome:
    run_dir: Path
    rows: list[Row] = field(default_factory=list)


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
        baselines: dict[tuple[Pair, str], Summary | None] = {}
        for cell in cells(pairs, counts, kinds, fronts):
            _, server = get_pair(cell.pair.app, cell.pair.server)
            settings = server.resolve(options.knobs, options.server_cpu_count)
            prediction = predict(cell, settings, options.load.concurrency)
            found = measure(run, cell, options)
            result = found[0] if found else None
            if cell.count == 0:
                baselines[(cell.pair, cell.front)] = result["summary"] if result else None
            baseline = baselines.get((cell.pair, cell.front))
            outcome.rows.append(Row(cell, prediction, result, baseline))
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
    "pair", "front", "held", "predicted", "measured", "req/s", "× alone", "p99 ms",
    "errors", "held at the end / closed by the server", "why",
]  # fmt: skip


def _body(outcome: Outcome) -> list[list[str]]:
    body = []
    for row in outcome.rows:
        cell, summary = row.cell, row.summary
        held = f"{cell.count} {cell.kind}" if cell.count else "0"
        base = row.baseline
        ratio = (
            f"{summary['rps'] / base['rps']:.2f}"
            if summary and base and base["rps"] and cell.count
            else "–"
        )
        measured = row.verdict or (row.result["status"] if row.result else "not measured")
        if cell.count and row.verdict and not row.as_predicted:
            measured += " ⚠"
        kinds = (summary.get("misbehaving") if summary else None) or {}
        server_side = "; ".join(f"{k['held']} / {k['closed']}" for k in kinds.values())
        body.append(
            [
                f"{cell.pair.app} @ {cell.pair.server}",
                cell.front,
                held,
                row.prediction.verdict if cell.count else "–",
                measured if cell.count else "baseline",
                f"{summary['rps']:,.0f}" if summary else "0",
                ratio,
                f"{summary['p99_ms']:,.1f}" if summary and summary["responses"] else "–",
                f"{100 * summary['error_rate']:.1f}%" if summary else "–",
                server_side or "–",
                row.prediction.why,
            ]
        )
    return body


def table(outcome: Outcome) -> Table:
    return terminal_table(EXPERIMENTS[NAME].question, HEADERS, _body(outcome), labels=5)


def markdown(outcome: Outcome, command: str) -> str:
    experiment = EXPERIMENTS[NAME]
    missed = [row for row in outcome.rows if row.cell.count and not row.as_predicted]
    lines = [
        f"### {NAME}",
        "",
        f"**{experiment.question}**",
        "",
        f"```bash\n{command}\n```",
        "",
        *markdown_table(HEADERS, _body(outcome), labels=5),
        "",
        "Measured against the same pair and front with nothing held (× alone: its req/s): "
        "**stalled** under half its throughput, no answer, or a p99 over 10 × its own and "
        "over 1 s; **unaffected** at least 80 % of it and a p99 within 2 × (or 20 ms); "
        "**slowed** in between. ⚠: not as predicted. held at the end / closed by the "
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
    """Cells that could not be judged: a baseline that did not measure."""
    return [
        f"{row.cell.pair.app} @ {row.cell.pair.server} {row.cell.front}: no baseline "
        f"({row.result['reason'] if row.result else 'not measured'})"
        for row in outcome.rows
        if row.cell.count == 0 and (row.summary is None or not row.summary["rps"])
    ]
