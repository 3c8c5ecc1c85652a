"""``python -m stackbench experiment NAME``: run one experiment, print its answer."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rich.console import Console

from stackbench import callgrind, experiments
from stackbench.apps import get_app
from stackbench.experiments import features, techempower, versions
from stackbench.experiments import report as experiment_report
from stackbench.experiments import run as experiment_run
from stackbench.matrix import Pair, parse_pairs
from stackbench.measure import Progress
from stackbench.options import (
    BenchOptions,
    OptionError,
    check_output,
    check_scenarios,
    cpus,
    positive,
    seconds,
)
from stackbench.results import ROOT, write_atomic
from stackbench.servers import get_server
from stackbench.variants import VARIANTS


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
    lanes = parser.add_argument_group("python-versions, django-features and fastapi-features")
    lanes.add_argument(
        "--interpreter",
        action="append",
        default=[],
        metavar="LABEL=VENV_BIN",
        help="an interpreter's virtualenv (repeat; the first is the baseline; nox passes these)",
    )
    lanes.add_argument("--pairs", help="app@server,... (default: one pair per kind of stack)")
    lanes.add_argument("--scenarios", default="db,fortunes", help="loadgen scenarios (db,fortunes)")
    lanes.add_argument("--repeats", type=positive(int), default=3, help="rounds over the lanes (3)")
    lanes.add_argument("--duration", type=seconds, default=5.0, help="measured per job (5s)")
    lanes.add_argument("--warmup", type=seconds, default=2.0, help="warm-up per job (2s)")
    lanes.add_argument("--connections", type=positive(int), default=32)
    priced = parser.add_argument_group("django-features, fastapi-features and techempower")
    priced.add_argument(
        "--variants", help="comma-separated bench variants (default: every one for the pairs)"
    )
    priced.add_argument("--server-cpus", type=cpus, help="pin the server: taskset CPU list")
    priced.add_argument("--client-cpus", type=cpus, help="pin loadgen: taskset CPU list")
    priced.add_argument(
        "--instructions",
        action="store_true",
        help="price by callgrind's instructions per request instead of CPU seconds under "
        "load (needs valgrind; --repeats rounds, default 3)",
    )
    priced.add_argument(
        "--requests",
        type=positive(int),
        default=200,
        help="--instructions: requests counted per path and job (200)",
    )
    priced.add_argument(
        "--warmup-requests",
        type=positive(int),
        default=50,
        help="--instructions: uncounted requests per path before them (50)",
    )
    theirs = parser.add_argument_group("techempower (and --apps, the lanes' and pinning options)")
    theirs.add_argument(
        "--techempower",
        type=Path,
        metavar="PATH",
        help="a checkout of TechEmpower/FrameworkBenchmarks (or an export of its "
        "frameworks/Python/django and fastapi folders)",
    )
    theirs.add_argument(
        "--their-venv",
        type=Path,
        metavar="BIN_DIR",
        help="serve their apps from this venv instead of one built from their requirements",
    )


def run(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    experiment = experiments.get_experiment(args.name)  # unknown → one line listing the valid
    if experiment.name == "server-shootout":
        return _shootout(args, console, progress)
    if experiment.name == "python-versions":
        return _versions(args, console, progress)
    if experiment.name in experiments.FEATURES_PAIRS:
        return _features(args, console, progress)
    if experiment.name == "techempower":
        return _techempower(args, console, progress)
    check_output(args.output)
    outcome = experiment_run.run_cells(
        experiment, output=args.output, pool_size=args.pool_size, progress=progress
    )
    console.print(experiment_report.cells_table(outcome))
    write_atomic(
        outcome.run_dir / "experiment.md", experiment_report.cells_markdown(outcome).encode()
    )
    console.print(f"results: {outcome.run_dir}")
    return 0 if all(row.measured_s is not None for row in outcome.rows) else 1


def _shootout(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    check_scenarios([args.scenario], [])
    apps = set(args.apps.split(",")) if args.apps else None
    servers = set(args.servers.split(",")) if args.servers else None
    for app in apps or ():
        get_app(app)  # an unknown name is one line listing the valid ones
    for server in servers or ():
        get_server(server)
    check_output(args.output)  # last: it creates the directory

    def wanted(pair: Pair) -> bool:
        return (apps is None or pair.app in apps) and (servers is None or pair.server in servers)

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
    write_atomic(outcome.run_dir / "experiment.md", markdown.encode())
    console.print(f"results: {outcome.run_dir}")
    return 0 if all(entry["sustainable_rate"] for entry in outcome.shootout) else 1


def _duet_options(
    args: argparse.Namespace, *, server_cpus: str | None = None, client_cpus: str | None = None
) -> BenchOptions:
    """The bench options of the duet experiments (python-versions, the features ones,
    techempower), checked: a bad scenario or output is one line and exit 2."""
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    check_scenarios(scenarios, [])
    check_output(args.output)  # last: it creates the directory
    return BenchOptions(
        scenarios=scenarios,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        pool_size=args.pool_size,
        server_cpus=server_cpus,
        client_cpus=client_cpus,
        output=args.output,
    )


def _versions(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    try:
        lanes = versions.parse_lanes(args.interpreter)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    chosen = parse_pairs(args.pairs) if args.pairs else list(experiments.VERSIONS_PAIRS)
    options = _duet_options(args)
    outcome = versions.run_versions(
        pairs=chosen, lanes=lanes, options=options, repeats=args.repeats, progress=progress
    )
    console.print(versions.table(outcome))
    for failure in outcome.failures:
        console.print(f"[yellow]not clean:[/yellow] {failure}")
    command = "nox -s \"experiment(name='python-versions')\""
    write_atomic(outcome.run_dir / "experiment.md", versions.markdown(outcome, command).encode())
    console.print(f"results: {outcome.run_dir}")
    return 0 if not outcome.failures else 1


def _features(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    chosen = parse_pairs(args.pairs) if args.pairs else [experiments.FEATURES_PAIRS[args.name][0]]
    names = [v for v in (args.variants or "").split(",") if v] or [
        name for name, v in VARIANTS.items() if all(p.app in v.apps for p in chosen)
    ]
    if not names:
        apps = ", ".join(sorted({pair.app for pair in chosen}))
        raise OptionError(f"no bench variant applies to {apps}")
    features.check_variants(names, chosen)  # an unknown or inapplicable one: exit 2
    if args.instructions:  # before _duet_options creates the output directory
        _check_countable(args.scenarios)
    options = _duet_options(args, server_cpus=args.server_cpus, client_cpus=args.client_cpus)
    if args.instructions:
        return _feature_instructions(args, chosen, names, options, console, progress)
    outcome = features.run_features(
        pairs=chosen,
        variants=names,
        options=options,
        rounds=args.repeats,
        progress=progress,
        experiment=args.name,
    )
    console.print(features.table(outcome))
    markdown = features.markdown(outcome, _command())
    return _finish(console, outcome.run_dir, outcome.failures, "not clean", markdown)


def _command() -> str:
    return "python -m stackbench " + shlex.join(sys.argv[1:])


def _finish(console: Console, run_dir: Path, failures: list[str], what: str, md: str) -> int:
    """Each failure in a line, the run's experiment.md written; exit 1 if any failed."""
    for failure in failures:
        console.print(f"[yellow]{what}:[/yellow] {failure}")
    write_atomic(run_dir / "experiment.md", md.encode())
    console.print(f"results: {run_dir}")
    return 0 if not failures else 1


def _check_countable(scenarios_arg: str) -> None:
    """--instructions: each scenario one fixed path, and valgrind installed (one line if not)."""
    scenarios = [s for s in scenarios_arg.split(",") if s]
    check_scenarios(scenarios, [])  # an unknown one is named as without --instructions
    uncountable = [s for s in scenarios if s not in callgrind.PATHS]
    if uncountable:
        raise OptionError(
            f"--instructions counts one fixed path per scenario ({', '.join(callgrind.PATHS)}), "
            f"not {', '.join(uncountable)}"
        )
    absent = callgrind.missing()
    if absent is not None:
        raise OptionError(absent)


def _feature_instructions(
    args: argparse.Namespace,
    chosen: list[Pair],
    names: list[str],
    options: BenchOptions,
    console: Console,
    progress: Progress,
) -> int:
    outcome = features.run_instructions(
        pairs=chosen,
        variants=names,
        options=options,
        rounds=args.repeats,
        requests=args.requests,
        warmup=args.warmup_requests,
        progress=progress,
        experiment=args.name,
    )
    console.print(features.instruction_table(outcome))
    markdown = features.instruction_markdown(outcome, _command())
    return _finish(console, outcome.run_dir, outcome.failures, "not counted", markdown)


def _techempower(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    if args.techempower is None:
        raise OptionError("techempower needs --techempower PATH (a TechEmpower checkout)")
    ours = [a for a in (args.apps or "").split(",") if a] or list(techempower.COUNTERPARTS)
    for app in ours:
        if app not in techempower.COUNTERPARTS:
            valid = ", ".join(techempower.COUNTERPARTS)
            raise OptionError(f"no TechEmpower counterpart for {app!r}; apps with one: {valid}")
    techempower.locate(args.techempower, ours)  # a missing or wrong path: exit 2
    if args.their_venv is not None and not (args.their_venv / "python").exists():
        raise OptionError(f"--their-venv {args.their_venv}: no python there")
    if args.instructions:  # before _duet_options creates the output directory
        _check_countable(args.scenarios)
    options = _duet_options(args, server_cpus=args.server_cpus, client_cpus=args.client_cpus)
    outcome = techempower.run_techempower(
        root=args.techempower,
        ours=ours,
        options=options,
        rounds=args.repeats,
        their_bin=args.their_venv,
        progress=progress,
        instructions=(args.requests, args.warmup_requests) if args.instructions else None,
    )
    markdown = techempower.markdown(outcome, _command())
    console.print(markdown)
    write_atomic(outcome.run_dir / "experiment.md", markdown.encode())
    console.print(f"results: {outcome.run_dir}")
    return 1 if outcome.missing else 0
