"""Running experiments' cells through the bench machinery (definitions: the package's
__init__)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadgen.config import Config
from stackbench.documents import ResultRow
from stackbench.experiments import DELAY, TOLERANCE, C, Cell, Experiment, N
from stackbench.matrix import Pair
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
