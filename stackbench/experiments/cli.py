"""``python -m stackbench experiment NAME``: run one experiment, print its answer."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from stackbench import experiments
from stackbench.apps import get_app
from stackbench.experiments import report as experiment_report
from stackbench.experiments import run as experiment_run
from stackbench.matrix import Pair
from stackbench.measure import Progress
from stackbench.options import check_output, check_scenarios, positive, seconds
from stackbench.results import ROOT
from stackbench.servers import get_server


def _multiplier(text: str) -> float:
    value = positive(float)(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 1 for the rate to climb: {text!r}")
    return float(value)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("experiment", help="run a named experiment (README, Experiments)")
    parser.add_argument("name", help=f"one of: {', '.join(experiments.EXPERIMENTS)}")
    parser.add_argument("--output", type=Path, default=ROOT / "results")
    parser.add_argument(
        "--pool-size", type=positive(int), default=10, help="DB pool per process (10)"
    )
    shootout = parser.add_argument_group("server-shootout")
    shootout.add_argument(
        "--budget-ms", type=positive(float), default=100.0, help="p99 budget (100)"
    )
    shootout.add_argument("--scenario", default="db", help="loadgen scenario (db)")
    shootout.add_argument("--start-rate", type=positive(float), default=50.0)
    shootout.add_argument("--step", type=_multiplier, default=1.5, help="rate multiplier per step")
    shootout.add_argument("--step-duration", type=seconds, default=4.0, help="seconds per step")
    shootout.add_argument("--apps", help="comma-separated apps to include (default: all)")
    shootout.add_argument("--servers", help="comma-separated servers to include")


def run(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    experiment = experiments.get_experiment(args.name)  # unknown → one line listing the valid
    if experiment.name == "server-shootout":
        check_scenarios([args.scenario], [])
        apps = set(args.apps.split(",")) if args.apps else None
        servers = set(args.servers.split(",")) if args.servers else None
        for app in apps or ():
            get_app(app)  # an unknown name is one line listing the valid ones
        for server in servers or ():
            get_server(server)
    check_output(args.output)  # last: it creates the directory
    if experiment.name == "server-shootout":

        def wanted(pair: Pair) -> bool:
            return (apps is None or pair.app in apps) and (
                servers is None or pair.server in servers
            )

        outcome = experiment_run.run_shootout(
            output=args.output,
            budget_ms=args.budget_ms,
            scenario=args.scenario,
            start_rate=args.start_rate,
            step=args.step,
            duration=args.step_duration,
            pair_filter=wanted,
            progress=progress,
        )
        markdown = experiment_report.shootout_markdown(outcome, args.budget_ms)
        chart = experiment_report.shootout_chart(
            outcome, outcome.run_dir / "shootout.png", args.budget_ms
        )
        console.print(markdown)
        console.print(f"chart: {chart}")
        ok = all(entry["sustainable_rate"] for entry in outcome.shootout)
    else:
        outcome = experiment_run.run_cells(
            experiment, output=args.output, pool_size=args.pool_size, progress=progress
        )
        markdown = experiment_report.cells_markdown(outcome)
        console.print(experiment_report.cells_table(outcome))
        ok = all(row.measured_s is not None for row in outcome.rows)
    (outcome.run_dir / "experiment.md").write_text(markdown)
    console.print(f"results: {outcome.run_dir}")
    return 0 if ok else 1
