"""``python -m stackbench experiment NAME [options]``: run one experiment, print its answer.

Each experiment is a subcommand with only its own options: the bench's option groups
(stackbench/options.py) with the experiment's defaults where they differ (``DUETS``),
and what is the experiment's alone. ``experiment NAME --help`` lists them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from loadgen.misbehave import KINDS, MAX_HELD
from stackbench import callgrind, experiments, proxy
from stackbench.bench import check_claims
from stackbench.console import print_results
from stackbench.experiments import (
    EXPERIMENTS,
    features,
    protocols,
    slow_clients,
    techempower,
    tls_termination,
    versions,
)
from stackbench.experiments import report as experiment_report
from stackbench.experiments import run as experiment_run
from stackbench.matrix import Pair, pair_of, parse_pairs
from stackbench.options import (
    BENCH_LOAD,
    DEFAULTS,
    LOAD,
    BenchOptions,
    OptionError,
    add_options,
    check_output,
    check_scenarios,
    check_upstream,
    load_from,
    non_negative_int,
    options_for_pairs,
    options_from,
    positive_int,
)
from stackbench.progress import Progress
from stackbench.proxy import NGINX
from stackbench.results import write_atomic
from stackbench.servers import H1_TLS, get_server
from stackbench.variants import VARIANTS

# Each experiment's options where they differ from the bench's (stackbench/options.py).
# The duets (python-versions, the features experiments, techempower) alternate lanes in
# rounds (--repeats) of shorter runs over two scenarios.
DUETS = BenchOptions(scenarios=("db", "fortunes"), repeats=3, load=BENCH_LOAD.replace(duration=5.0))
# protocol-costs: rounds of 5 s lanes on db (CPU per request) and slow-http (waits of
# 0.25 s, where HTTP/2's streams may or may not overlap).
PROTOCOL_COSTS = BenchOptions(
    scenarios=("db", "slow-http"),
    repeats=3,
    load=BENCH_LOAD.replace(duration=5.0),
)
PROTOCOL_COSTS_WAIT = {"seconds": "0.25"}  # unless --scenario-option seconds=… says otherwise
# The duets' load options: the bench's, but --requests (count mode) is --instructions'.
DUET_LOAD = tuple(name for name in LOAD if name != "requests")
# slow-clients: /db at a fixed rate (the open model: a stalled server shows in the corrected
# p99 and in the throughput, where the closed model would only send less), below what every
# pair sustains alone on a 2-core machine; the misbehaving connections are the experiment's.
SLOW_CLIENTS = BenchOptions(scenarios=("db",), load=BENCH_LOAD.replace(rate=200.0, concurrency=64))
SLOW_CLIENTS_LOAD = tuple(name for name in LOAD if name != "requests")
# tls-termination: rounds of 5 s lanes on db, whose figure is requests per total CPU-second.
TLS_TERMINATION = BenchOptions(scenarios=("db",), repeats=3, load=BENCH_LOAD.replace(duration=5.0))
Handler = Callable[[argparse.Namespace, Console, Progress], int]


class _Experiments(argparse._SubParsersAction):
    """The experiments' subcommands; an unknown name is one line listing the valid ones
    (UnknownExperimentError, the CLI's exit 2), not argparse's list of choices."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = None  # type: ignore[assignment]  # checked in __call__

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        experiments.get_experiment(values[0])
        super().__call__(parser, namespace, values, option_string)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("experiment", help="run a named experiment (README, Experiments)")
    names = parser.add_subparsers(
        dest="name", required=True, metavar="NAME", action=_Experiments,
        help="`experiment NAME --help`: that experiment's options",
    )  # fmt: skip

    def add(name: str, handler: Handler, defaults: BenchOptions = DEFAULTS) -> Any:
        # a short usage line: the options, grouped, are listed below it (argparse aligns
        # a long one under this long prog, in about 25 columns at 80)
        sub = names.add_parser(name, help=EXPERIMENTS[name].question, usage="%(prog)s [options]")
        sub.set_defaults(handler=handler)
        add_options(sub, "data", ["output"], defaults)
        return sub

    for name, experiment in EXPERIMENTS.items():
        if experiment.cells:
            add_options(add(name, _cells), "server", ["pool_size"])
        elif name == protocols.NAME:
            _add_protocol_costs(add(name, _protocol_costs, PROTOCOL_COSTS))
        elif name == slow_clients.NAME:
            _add_slow_clients(add(name, _slow_clients, SLOW_CLIENTS))
        elif name == tls_termination.NAME:
            _add_tls_termination(add(name, _tls_termination, TLS_TERMINATION))
        else:
            _add_duet(add(name, _DUETS[name], DUETS), name)


def _counts(text: str) -> tuple[int, ...]:
    """'0,25,200' -> (0, 25, 200): how many connections each cell holds."""
    try:
        counts = tuple(sorted({non_negative_int(part) for part in text.split(",") if part}))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} in {text!r}") from None
    if not counts or max(counts) > MAX_HELD:
        raise argparse.ArgumentTypeError(f"counts from 0 to {MAX_HELD}, e.g. 0,25,200")
    return counts


def _choices(valid: tuple[str, ...], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part for part in text.split(",") if part)
        unknown = [part for part in chosen if part not in valid]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)}; {what}s: {', '.join(valid)}"
            )
        return chosen

    return parse


def _add_slow_clients(parser: argparse.ArgumentParser) -> None:
    held = parser.add_argument_group("the cells")
    held.add_argument(
        "--pairs", help="app@server,... (default: each gunicorn worker class, each ASGI server)"
    )
    held.add_argument(
        "--counts", type=_counts, default=slow_clients.COUNTS, metavar="N,N",
        help="connections held beside the load in each cell, 0 alone (0,25,200)",
    )  # fmt: skip
    held.add_argument(
        "--kinds", type=_choices(KINDS, "kind"), default=slow_clients.KINDS, metavar="K,K",
        help=f"what they do: {', '.join(KINDS)} (idle,slow-headers)",
    )  # fmt: skip
    held.add_argument(
        "--fronts", type=_choices(slow_clients.FRONTS, "front"), default=slow_clients.FRONTS,
        metavar="F,F", help="reached directly and/or through nginx (direct,nginx)",
    )  # fmt: skip
    add_options(parser, "load (each cell)", SLOW_CLIENTS_LOAD, SLOW_CLIENTS)
    add_options(parser, "slow-headers", ["misbehaving_pace"], SLOW_CLIENTS)
    add_options(
        parser, "server", ["pool_size", "server_cpus", "ready_timeout", "upstream"], SLOW_CLIENTS
    )


def _add_tls_termination(parser: argparse.ArgumentParser) -> None:
    add_options(
        parser, "load (each lane; --repeats: rounds over the lanes)", DUET_LOAD, TLS_TERMINATION
    )
    add_options(
        parser, "server", ["pool_size", "server_cpus", "ready_timeout", "upstream"], TLS_TERMINATION
    )
    parser.add_argument_group("lanes").add_argument(
        "--pairs", help="app@server,... (default: gino_style and django_sync under the servers "
        "that end TLS themselves)",
    )  # fmt: skip


def _add_duet(parser: argparse.ArgumentParser, name: str) -> None:
    add_options(parser, "load (each job; --repeats: rounds over the lanes)", DUET_LOAD, DUETS)
    add_options(parser, "server", ["pool_size", "server_cpus"], DUETS)
    if name != "techempower":
        parser.add_argument("--pairs", help="app@server,... (default: one pair per kind of stack)")
    if name == "python-versions":
        parser.add_argument(
            "--interpreter",
            action="append",
            default=[],
            metavar="LABEL=VENV_BIN",
            help="an interpreter's virtualenv (repeat; the first is the baseline; nox "
            "passes these)",
        )
        return
    if name == "techempower":
        _add_techempower(parser)
    else:
        parser.add_argument(
            "--variants", help="comma-separated bench variants (default: every one for the pairs)"
        )
    _add_instructions(parser)


def _add_protocol_costs(parser: argparse.ArgumentParser) -> None:
    add_options(
        parser, "load (each lane; --repeats: rounds over the lanes)", DUET_LOAD, PROTOCOL_COSTS
    )
    add_options(parser, "server", ["pool_size", "server_cpus"], PROTOCOL_COSTS)
    lanes = parser.add_argument_group("lanes")
    lanes.add_argument("--pairs", help="app@server,... (default: one pair per server family)")
    lanes.add_argument(
        "--streams", dest="lane_streams", type=positive_int, default=8, metavar="N",
        help="the multiplexed lane: N streams per HTTP/2 connection over 1/N of the "
        "connections (8)",
    )  # fmt: skip


def _add_instructions(parser: argparse.ArgumentParser) -> None:
    counted = parser.add_argument_group("--instructions")
    counted.add_argument(
        "--instructions",
        action="store_true",
        help="price by callgrind's instructions per request instead of CPU seconds under "
        "load (needs valgrind; --repeats rounds, default 3)",
    )
    counted.add_argument(
        "--requests",
        type=positive_int,
        default=200,
        help="--instructions: requests counted per path and job (200)",
    )
    counted.add_argument(
        "--warmup-requests",
        type=positive_int,
        default=callgrind.WARMUP_REQUESTS,
        help="--instructions: uncounted requests per path before them "
        f"({callgrind.WARMUP_REQUESTS}: a count settles over the first few hundred, "
        "docs/feature-prices.md)",
    )


def _add_techempower(parser: argparse.ArgumentParser) -> None:
    theirs = parser.add_argument_group("techempower")
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
    theirs.add_argument("--apps", help="comma-separated apps of ours (default: every one)")


def run(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    handler: Handler = args.handler
    return handler(args, console, progress)


def _cells(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    experiment = experiments.get_experiment(args.name)
    check_output(args.output)
    outcome = experiment_run.run_cells(
        experiment, output=args.output, pool_size=args.pool_size, progress=progress
    )
    console.print(experiment_report.cells_table(outcome))
    write_atomic(
        outcome.run_dir / "experiment.md", experiment_report.cells_markdown(outcome).encode()
    )
    print_results(outcome.run_dir)
    return 0 if all(row.measured_s is not None for row in outcome.rows) else 1


def _slow_clients(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    chosen = parse_pairs(args.pairs) if args.pairs else list(slow_clients.PAIRS)
    if NGINX in args.fronts and (absent := proxy.missing(NGINX)) is not None:
        raise OptionError(f"--fronts {NGINX}: {absent}")
    check_upstream(args.upstream, [pair.server for pair in chosen], proxied=NGINX in args.fronts)
    options = _options_behind(args, SLOW_CLIENTS)
    if len(options.scenarios) != 1:
        raise OptionError("slow-clients measures one scenario per cell: give one --scenario")
    outcome = slow_clients.run_slow_clients(
        chosen,
        options,
        counts=args.counts,
        kinds=args.kinds,
        fronts=args.fronts,
        progress=progress,
    )
    console.print(slow_clients.table(outcome))
    markdown = slow_clients.markdown(outcome, _command())
    return _finish(
        console, outcome.run_dir, slow_clients.failures(outcome), "not measured", markdown
    )


def _options_behind(args: argparse.Namespace, defaults: BenchOptions) -> BenchOptions:
    """``options_from`` for an experiment whose jobs are direct and behind a proxy:
    --upstream is for the jobs behind it, each job's options say whether one is in front
    (slow_clients.cell_options, protocols.lane_options). It creates the output directory."""
    without = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "upstream"})
    return replace(options_from(without, defaults), upstream=args.upstream)


def _tls_termination(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    chosen = parse_pairs(args.pairs) if args.pairs else list(experiments.TLS_TERMINATION_PAIRS)
    for pair in chosen:
        if (why := get_server(pair.server).why_not(H1_TLS)) is not None:
            raise OptionError(
                f"{pair.app}@{pair.server} cannot end TLS itself ({why}): tls-termination "
                "compares the server's TLS with nginx's"
            )
    if (absent := proxy.missing(NGINX)) is not None:
        raise OptionError(f"tls-termination: {absent}")
    check_upstream(args.upstream, [pair.server for pair in chosen], proxied=True)
    options = _options_behind(args, TLS_TERMINATION)  # last: it creates the output directory
    outcome = protocols.run_protocols(
        pairs=chosen,
        lanes=tls_termination.lanes(),
        options=options,
        rounds=options.repeats,
        progress=progress,
        experiment=tls_termination.NAME,
    )
    console.print(tls_termination.table(outcome))
    markdown = tls_termination.markdown(outcome, _command())
    return _finish(console, outcome.run_dir, outcome.failures, "not clean", markdown)


def _versions(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    try:
        lanes = versions.parse_lanes(args.interpreter)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    chosen = parse_pairs(args.pairs) if args.pairs else list(experiments.VERSIONS_PAIRS)
    options = options_for_pairs(args, chosen, DUETS)
    outcome = versions.run_versions(
        pairs=chosen, lanes=lanes, options=options, repeats=options.repeats, progress=progress
    )
    console.print(versions.table(outcome))
    for failure in outcome.failures:
        console.print(f"[yellow]not clean:[/yellow] {failure}")
    command = "nox -s \"experiment(name='python-versions')\""
    write_atomic(outcome.run_dir / "experiment.md", versions.markdown(outcome, command).encode())
    print_results(outcome.run_dir)
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
    if args.instructions:  # before options_from creates the output directory
        _check_countable(args.scenarios)
    options = options_for_pairs(args, chosen, DUETS)
    copies = features.app_variants(names, chosen).values()
    check_claims([pair_of(app, pair.server) for app in copies for pair in chosen], options)
    if args.instructions:
        return _feature_instructions(args, chosen, names, options, console, progress)
    outcome = features.run_features(
        pairs=chosen,
        variants=names,
        options=options,
        rounds=options.repeats,
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
    print_results(run_dir)
    return 0 if not failures else 1


def _check_countable(scenarios: tuple[str, ...]) -> None:
    """--instructions: each scenario one fixed path, and valgrind installed (one line if not)."""
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
        rounds=options.repeats,
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
    if args.instructions:  # before options_from creates the output directory
        _check_countable(args.scenarios)
    options = options_from(args, DUETS)
    outcome = techempower.run_techempower(
        root=args.techempower,
        ours=ours,
        options=options,
        rounds=options.repeats,
        their_bin=args.their_venv,
        progress=progress,
        instructions=(args.requests, args.warmup_requests) if args.instructions else None,
    )
    markdown = techempower.markdown(outcome, _command())
    console.print(markdown)
    write_atomic(outcome.run_dir / "experiment.md", markdown.encode())
    print_results(outcome.run_dir)
    return 1 if outcome.missing else 0


def _protocol_costs(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    chosen = parse_pairs(args.pairs) if args.pairs else list(experiments.PROTOCOL_PAIRS)
    connections = load_from(args, PROTOCOL_COSTS.load).concurrency
    if args.lane_streams > connections:
        raise OptionError(
            f"--streams {args.lane_streams} needs at least as many --connections "
            f"({connections}): the lanes keep the same requests in flight"
        )
    options = options_from(args, PROTOCOL_COSTS)  # last: it creates the output directory
    waits = {**PROTOCOL_COSTS_WAIT, **options.load.scenario_options}
    options = replace(options, load=options.load.replace(scenario_options=waits))
    outcome = protocols.run_protocols(
        pairs=chosen,
        lanes=experiments.protocol_lanes(args.lane_streams),
        options=options,
        rounds=options.repeats,
        progress=progress,
    )
    console.print(protocols.table(outcome))
    markdown = protocols.markdown(outcome, _command())
    return _finish(console, outcome.run_dir, outcome.failures, "not clean", markdown)


_DUETS: dict[str, Handler] = {
    "python-versions": _versions,
    "django-features": _features,
    "fastapi-features": _features,
    "techempower": _techempower,
}
