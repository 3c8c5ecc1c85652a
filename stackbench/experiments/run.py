"""Running experiments through the bench machinery (definitions: the package's __init__)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadgen.config import Config
from stackbench.documents import ResultRow
from stackbench.experiments import DELAY, EXPERIMENTS, TOLERANCE, C, Cell, Experiment, N
from stackbench.matrix import Pair, pairs
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.results import read_result
from stackbench.run import BenchRun
from stackbench.servers import DEFAULT_POOL_SIZE


@dataclass
class Row:
    cell: Cell
    measured_s: float | None
    status: str
    reason: str | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.measured_s is None else self.measured_s / self.cell.predicted_s

    @property
    def within(self) -> bool:
        return self.ratio is not None and abs(self.ratio - 1) <= TOLERANCE


@dataclass
class ExperimentOutcome:
    experiment: Experiment
    run_dir: Path
    rows: list[Row] = field(default_factory=list)
    shootout: list[dict[str, Any]] = field(default_factory=list)


# The blog post's load: N requests at concurrency C, each endpoint waiting DELAY (its
# slow-fanout making 10 upstream calls), no warm-up; a request may take 60 s.
CELL_LOAD = Config(
    requests=N,
    concurrency=C,
    timeout=60.0,
    scenario_options={"seconds": f"{DELAY:g}", "n": "10"},
)


def run_cells(
    experiment: Experiment,
    *,
    output: Path,
    pool_size: int = DEFAULT_POOL_SIZE,
    progress: Progress | None = None,
) -> ExperimentOutcome:
    """Each server configuration served once; its endpoints measured as 10 x 10 at once."""
    with BenchRun(
        experiment.name, output=output, experiment=experiment.name, progress=progress
    ) as run:
        outcome = ExperimentOutcome(experiment, run.run_dir)
        by_config: dict[tuple[str, str, int, str], list[Cell]] = {}
        for cell in experiment.cells:
            by_config.setdefault(cell.config, []).append(cell)
        run.progress.jobs = len(by_config)  # a job per server configuration
        for (app, server, workers, prefix), cells in by_config.items():
            options = BenchOptions(
                scenarios=tuple(c.endpoint for c in cells),
                load=CELL_LOAD,
                workers=workers,
                pool_size=pool_size,
                prefix=prefix,
                output=output,
            )
            results = run.job(Pair(app, server), options, label=cells[0].label)
            by_scenario = {r["scenario"]: r for r in results}
            for cell in cells:
                result = by_scenario.get(cell.endpoint)
                outcome.rows.append(_row(cell, result, run.run_dir))
    return outcome


def _row(cell: Cell, result: ResultRow | None, run_dir: Path) -> Row:
    if result is None:
        return Row(cell, None, "failed", "not measured (the server stopped earlier)")
    if result["status"] == "failed" or result["summary"] is None:
        return Row(cell, None, "failed", result["reason"])
    # Total wall time of the 10 requests is what the model predicts: loadgen's elapsed.
    document = read_result(run_dir / result["file"])
    elapsed = float(document["repeats"][0]["loadgen"]["summary"]["elapsed_s"])
    return Row(cell, round(elapsed, 2), result["status"], result["reason"])


def run_shootout(
    options: BenchOptions,
    *,
    budget_ms: float,
    start_rate: float,
    step: float,
    duration: float,
    max_steps: int = 10,
    pair_filter: Callable[[Pair], bool] = lambda pair: True,
    progress: Progress | None = None,
) -> ExperimentOutcome:
    """Per pair: raise the open-model rate of ``options``' one scenario, ``duration``
    seconds a step, until p99 > budget or errors > 1%."""
    experiment = EXPERIMENTS["server-shootout"]
    with BenchRun(
        experiment.name, output=options.output, experiment=experiment.name, progress=progress
    ) as run:
        outcome = ExperimentOutcome(experiment, run.run_dir)
        for pair in filter(pair_filter, pairs()):
            rate, best, curve = start_rate, None, []
            for _ in range(max_steps):
                load = options.load.replace(rate=rate, duration=duration, requests=None)
                (result,) = run.job(pair, replace(options, load=load), label=f"r{rate:g}")
                summary = result["summary"]
                if summary is None:
                    break
                curve.append(
                    {
                        "rate": rate,
                        "p99_ms": summary["p99_ms"],
                        "error_rate": summary["error_rate"],
                        "achieved": achieved_rate(result, run.run_dir),
                    }
                )
                if summary["p99_ms"] > budget_ms or summary["error_rate"] > 0.01:
                    break
                best = rate
                rate = round(rate * step)
            outcome.shootout.append(
                {"app": pair.app, "server": pair.server, "sustainable_rate": best, "curve": curve}
            )
    return outcome


def achieved_rate(result: ResultRow, run_dir: Path) -> float:
    """Responses per second over the windows loadgen measured (``elapsed_s``), not over
    the duration asked for: a window that overran (a slow drain, a stall) is longer."""
    assert result["summary"] is not None
    document = read_result(run_dir / result["file"])
    measured = sum(float(r["loadgen"]["summary"]["elapsed_s"]) for r in document["repeats"])
    return result["summary"]["responses"] / measured if measured else 0.0
