"""``python -m stackbench capacity``: the command line of stackbench/capacity.py.

  python -m stackbench capacity --app django_sync [--servers a,b]
      [--budget 'p99<100ms'] [--budget 'p99.9<250ms'] [--budget 'errors<1%']
      [--precision 5%] [--probe-duration 5s] [--repeats 3]
      [load, server and data options]
  python -m stackbench capacity --target URL --target-stats URL
      [search and load options]
      [--agents N --agent-via 'ssh load-{i} -- .venv/bin/python']

Prints each app's table, writes capacity.json, capacity.md and capacity.png in
the run directory. Bad input is one line and exit 2, before anything starts; a
pair that fails at the lowest rate, or whose measurement broke, is one line each
and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from rich.console import Console

from stackbench import capacity
from stackbench.agents import AgentHosts, via_words
from stackbench.apps import App, get_app
from stackbench.capacity_search import Probe, SearchSpec, parse_precision
from stackbench.matrix import Pair, app_servers, pair_of, scenario_file_of
from stackbench.options import (
    BENCH_LOAD,
    SERVER,
    BenchOptions,
    OptionError,
    add_options,
    load_from,
    options_for_pairs,
    positive_duration,
    positive_int,
    positive_number,
    refuse_serve_options,
)
from stackbench.progress import Progress
from stackbench.results import write_atomic
from stackbench.slo import DEFAULT_BUDGET, DEFAULT_ERROR_BUDGET, BudgetError, parse_rule, slo_from
from stackbench.target import check_url

T = TypeVar("T")

# The capacity run's options where they differ from the bench's (stackbench/options.py):
# one scenario, three repeats per probe, connections enough for a high open-model rate, and
# an overloaded probe's stragglers given up on after 10 s.
CAPACITY = BenchOptions(
    scenarios=("db",), repeats=3, load=BENCH_LOAD.replace(concurrency=256, timeout=10.0)
)
SEARCH = SearchSpec()
PROBE_DURATION = 5.0
# The load options a probe takes: the search sets the rate and the duration itself.
CAPACITY_LOAD = (
    "scenarios", "scenario_file", "scenario_options", "warmup", "concurrency", "timeout",
    "processes", "repeats", "client_cpus",
)  # fmt: skip


def _checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except BudgetError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument


def _multiplier(text: str) -> float:
    value = positive_number(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 1 for the rate to climb: {text!r}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "capacity",
        help="each pair's sustainable rate at an SLO, resolved, and which pairs it ranks apart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--app", help="an app: every server it has (or --servers) in one run")
    which.add_argument(
        "--target",
        metavar="URL",
        help="the pair `serve` runs on another host (docs/distributed.md)",
    )
    parser.add_argument(
        "--servers", metavar="A,B", help="with --app: these servers (default: every one that "
        "shares a venv with the others; a pinned server only when named)",
    )  # fmt: skip
    parser.add_argument("--target-stats", metavar="URL", help="with --target: serve's stats URL")
    slo = parser.add_argument_group("SLO (loadgen's threshold grammar)")
    slo.add_argument(
        "--budget", type=_checked(parse_rule), action="append", default=[], metavar="RULE",
        help="a corrected latency percentile's limit or the error budget, repeatable "
        f"(default {', '.join(DEFAULT_BUDGET)} and {DEFAULT_ERROR_BUDGET})".replace("%", "%%"),
    )  # fmt: skip
    search = parser.add_argument_group("search")
    search.add_argument(
        "--precision", type=_checked(parse_precision), default=SEARCH.precision, metavar="P",
        help="stop bisecting when lowest failing <= highest passing x (1 + P) "
        f"(default {SEARCH.precision:.0%}%)",
    )  # fmt: skip
    search.add_argument(
        "--probe-duration", type=positive_duration, default=PROBE_DURATION, metavar="D",
        help=f"each repeat of a probe, measured after the warm-up (default {PROBE_DURATION:g}s)",
    )  # fmt: skip
    search.add_argument(
        "--start-rate", type=positive_number, default=SEARCH.start_rate, metavar="RATE",
        help=f"the first rate probed, req/s (default {SEARCH.start_rate:g})",
    )  # fmt: skip
    search.add_argument(
        "--step", type=_multiplier, default=SEARCH.step, metavar="X",
        help=f"the rate's multiplier until a probe fails (default {SEARCH.step:g})",
    )  # fmt: skip
    search.add_argument(
        "--max-rate", type=positive_number, default=SEARCH.max_rate, metavar="RATE",
        help=f"a pair passing here is reported as at least this (default {SEARCH.max_rate:g})",
    )  # fmt: skip
    add_options(parser, "load (each probe)", CAPACITY_LOAD, CAPACITY)
    hosts = parser.add_argument_group("load from several hosts (with --target)")
    hosts.add_argument(
        "--agents", type=positive_int, metavar="N",
        help="every repeat's load from N agents: this host is agent 0, --agent-via starts "
        "agents 1..N-1 on one start time, their reports merged (default 1)",
    )  # fmt: skip
    hosts.add_argument(
        "--agent-via", metavar="TEMPLATE",
        help="the command that runs Python on agent i's host, {i} its index, e.g. "
        "'ssh -o BatchMode=yes load-{i} -- .venv/bin/python' (docs/distributed.md)",
    )  # fmt: skip
    add_options(parser, "server", SERVER, CAPACITY)
    add_options(parser, "data", ["output"], CAPACITY)


def app_named(text: str) -> App:
    """The app ``--app`` names: a reference app's id, or an app's directory, read as the
    bench reads it (its declared scenario file and entries: ``plan_from``,
    ``capacity.run_app``)."""
    return get_app(text)


def plan_from(args: argparse.Namespace, pairs: Sequence[Pair] = ()) -> capacity.CapacityPlan:
    """Everything checked that can be checked before anything starts; the output
    directory is made last. ``pairs``: those searched here, whose apps' declared scenario
    file the search loads (as ``bench --app PATH`` does: ``options_for_pairs``)."""
    try:
        slo = slo_from(args.budget)
        spec = SearchSpec(args.start_rate, args.step, args.precision, args.max_rate).check()
    except BudgetError as exc:
        raise OptionError(str(exc)) from None
    if len(args.scenarios or CAPACITY.scenarios) != 1:
        raise OptionError("a capacity search loads one scenario: give one --scenario")
    typed = load_from(args, CAPACITY.load)  # checked as the bench checks it
    declared = typed.scenario_file is None and scenario_file_of(list(pairs)) is not None
    if (typed.scenario_file is not None or declared) and args.scenarios is CAPACITY.scenarios:
        raise OptionError("a capacity search loads one scenario: name the file's (--scenario)")
    hosts = agent_hosts(args)
    if hosts is not None:
        try:
            hosts.first(typed)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    options = options_for_pairs(args, list(pairs), CAPACITY)
    load = options.load.replace(duration=args.probe_duration, requests=None)
    if hosts is not None:  # this host is agent 0 of N in every probe
        load = hosts.first(load)
    return capacity.CapacityPlan(slo, spec, replace(options, load=load), hosts)


def agent_hosts(args: argparse.Namespace) -> AgentHosts | None:
    """The agents --agents and --agent-via start on other hosts for every probe; None when
    the load is this host's alone. Each option without the other is refused."""
    count, via = args.agents, args.agent_via
    if args.target is None and (count, via) != (None, None):
        raise OptionError("--agents and --agent-via go with --target (the pair serve runs)")
    if via is not None and (count or 1) == 1:
        raise OptionError("--agent-via starts agents 1..N-1 on their hosts: give --agents N > 1")
    if (count or 1) == 1:
        return None
    if via is None:
        raise OptionError(
            f"--agents {count} needs --agent-via TEMPLATE: the command that runs Python on "
            "agent i's host, e.g. 'ssh -o BatchMode=yes load-{i} -- .venv/bin/python'"
        )
    try:
        return AgentHosts(count, via_words(via))
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def run(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    if args.target is not None:
        if not args.target_stats:
            raise OptionError("--target needs --target-stats URL (serve prints both)")
        if args.servers:
            raise OptionError("--target searches the pair serve runs: drop --servers")
        refuse_serve_options(args, CAPACITY)
        agent_hosts(args)  # before the URLs: said first when the agents are wrong
        check_url(args.target, "--target")
        check_url(args.target_stats, "--target-stats")
        plan = _warned(plan_from(args))
        outcome = capacity.run_target(
            args.target, args.target_stats, plan, progress, on_probe=_printer(console)
        )
    else:
        if args.target_stats:
            raise OptionError("--target-stats goes with --target")
        agent_hosts(args)  # refused without --target
        app = app_named(args.app)
        servers = app_servers(app, args.servers)
        plan = _warned(plan_from(args, [pair_of(app, server) for server in servers]))
        outcome = capacity.run_app(app, servers, plan, progress, on_probe=_printer(console))
    return _answer(outcome, console)


def _warned(plan: capacity.CapacityPlan) -> capacity.CapacityPlan:
    """A probe too short to see an overload of the precision is said, not refused."""
    unseen, precision = plan.unseen_overload, plan.spec.precision
    if unseen > precision:
        load = plan.options.load
        window = load.warmup + (load.duration or 0.0)
        print(
            f"warning: a probe of {window:g} s (warm-up + --probe-duration) may pass a rate up "
            f"to {unseen:.1%} above capacity ({plan.slo.tightest_ms:g} ms of queue over "
            f"{window:g} s), more than --precision {precision:.1%}: give longer probes",
            file=sys.stderr,
            flush=True,
        )
    return plan


def _printer(console: Console) -> Callable[[Pair, Probe], None]:
    def printed(pair: Pair, probe: Probe) -> None:
        p99 = probe.latency_ms("99")
        figures = (
            f"p99 {p99:.1f} ms, {probe.achieved:.0f} req/s answered"
            if p99 is not None and probe.achieved is not None
            else ""
        )
        said = probe.reason if not probe.passed else figures
        console.print(
            f"{pair.app} @ {pair.server} at {probe.rate:g} req/s: {probe.outcome}; {said}"
        )

    return printed


def _answer(outcome: capacity.CapacityOutcome, console: Console) -> int:
    from stackbench.report import capacity as capacity_report  # matplotlib: only now

    document = outcome.document
    for table in capacity_report.tables(document):
        console.print(capacity_report.terminal_table(table, console.width))
    write_atomic(outcome.run_dir / "capacity.md", capacity_report.markdown(document).encode())
    chart = capacity_report.chart(document, outcome.run_dir / "capacity.png")
    console.print(f"chart:   {chart}")
    console.print(f"results: {outcome.run_dir}")
    for pair in document["pairs"]:
        if pair["status"] in ("below_lowest", "failed"):
            print(f"error: {pair['app']} @ {pair['server']}: {pair['reason']}", file=sys.stderr)
    return 0 if outcome.answered else 1
