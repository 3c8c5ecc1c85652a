"""``python -m stackbench``: what the nox sessions run.

    python -m stackbench bench --app fastapi_sqla --server uvicorn [options]
    python -m stackbench serve --app gino_style --server uvicorn
        [--bind ADDRESS]
    python -m stackbench bench --target http://HOST:PORT
        --target-stats http://HOST:PORT
    python -m stackbench matrix [--json]
    python -m stackbench report RUN_DIR [RUN_DIR...] [--baseline RUN_DIR]
        [--output DIR]
    python -m stackbench show RUN_DIR          # a run's table again
    python -m stackbench capacity --app django_sync [--budget 'p99<100ms']
        [--servers a,b]
    python -m stackbench experiment gevent-patching

Bad input is one line on stderr and exit code 2; a failed run exits 1; Ctrl-C
exits 130 after stopping everything it started.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.config import given
from shared_fixtures.db import DatabaseError
from shared_fixtures.processes import ProcessError
from shared_fixtures.seed import SeedError
from stackbench import bench, capacity_cli, experiments, matrix, serve_cli
from stackbench.apps import DeclarationError, UnknownAppError, get_app
from stackbench.console import (
    console,
    print_matrix,
    print_report,
    print_run_end,
    progress_display,
    show_run,
)
from stackbench.experiments import cli as experiment_cli
from stackbench.options import (
    DATA,
    HOSTS,
    LOAD,
    MISBEHAVING,
    PROTOCOL,
    PROXY,
    SERVER,
    OptionError,
    add_options,
    check_protocol,
    check_upstream,
    options_for_pairs,
    options_from,
    refuse_serve_options,
)
from stackbench.results import ResultsError
from stackbench.run import RunReport
from stackbench.servers import UnknownServerError, get_server
from stackbench.target import TargetError, agent_command
from stackbench.variants import VariantError, get_variant


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m stackbench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("bench", help="(app, server) pairs, end to end, in one run")
    chosen = run.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--app", help="an app, or several: a,b,c (with --server)")
    chosen.add_argument(
        "--pairs",
        help="exact pairs side by side in one run: app@server,app@server (CI's jobs)",
    )
    chosen.add_argument(
        "--target",
        metavar="URL",
        help="the app `serve` runs on another host (with --target-stats: docs/distributed.md)",
    )
    run.add_argument("--server", help="a server, or several: a,b")
    run.add_argument(
        "--target-stats", metavar="URL", help="that serve's stats endpoint (it prints both)"
    )
    add_options(run, "load", LOAD)
    add_options(run, "clients that misbehave, beside the load (loadgen's)", MISBEHAVING)
    add_options(run, "server", SERVER)
    add_options(run, "protocol (TLS and HTTP/2)", PROTOCOL)
    add_options(run, "a proxy in front (it ends the protocol; HTTP/1.1 to the server)", PROXY)
    add_options(run, "data", DATA)
    add_options(run, "load from several hosts (with --target)", HOSTS)
    add_options(run, "profiling", ["profile"])
    serve_cli.add_parser(commands)
    capacity_cli.add_parser(commands)
    experiment_cli.add_parser(commands)
    listing = commands.add_parser("matrix", help="the valid pairs, and why others are missing")
    listing.add_argument("--json", action="store_true", help="machine-readable, for CI")
    add_report_parser(commands)
    show = commands.add_parser("show", help="a run's summary table again, from its directory")
    show.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    return parser


def add_report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="run directories → Markdown, PNG charts and one HTML page; compare two runs",
        description=(
            "One report of every run directory given (merged: one table per scenario). "
            "Two run directories that measured the same pairs are compared, the first as "
            "the baseline; or name the baseline with --baseline."
        ),
    )
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument(
        "--baseline",
        action="append",
        type=Path,
        default=[],
        metavar="RUN_DIR",
        help="compare against this run directory (repeatable: merged)",
    )
    report.add_argument("--output", type=Path, help="where report.md, report.html and the PNGs go")
    report.add_argument(
        "--against",
        metavar="APP",
        help="price every other app measured beside APP under the same server against it "
        "(a copy with one more middleware: what that middleware costs per request)",
    )
    report.add_argument(
        "--across-interpreters",
        action="store_true",
        help="compare a pair measured on one Python against the same pair on another",
    )


def run_report(args: argparse.Namespace) -> int:
    """Write the report; unreadable files are warnings naming them, not failures."""
    from stackbench import report  # matplotlib is imported only when reporting

    try:
        outcome = report.make_report(
            args.run_dirs,
            args.baseline,
            args.output,
            across_interpreters=args.across_interpreters,
            against=args.against,
        )
    except report.ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ResultsError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print_report(outcome)
    return 0


def _check_target(args: argparse.Namespace) -> None:
    if not args.target_stats:
        raise OptionError("--target needs --target-stats URL (serve prints both)")
    if args.server:
        raise OptionError("--target measures the pair serve runs: drop --server")
    refuse_serve_options(args)


def _check_agents(args: argparse.Namespace) -> None:
    """--agent and its companions: one scenario, one repeat, one start for all agents."""
    load = given(args)
    agent, start_at = load.get("agent"), load.get("start_at")
    if args.target is None and (agent, start_at, args.agent_reports) != (None, None, None):
        raise OptionError("--agent, --start-at and --agent-reports go with --target")
    if agent is None:
        if args.agent_reports is not None:
            raise OptionError("--agent-reports goes with --agent I/N")
        return
    if start_at is None:
        raise OptionError("--agent needs --start-at: the agents' one start time")
    if agent[1] > 1 and args.agent_reports is None:
        raise OptionError("--agent I/N with N > 1 needs --agent-reports DIR (the others')")
    if len(args.scenarios) != 1 or args.repeats != 1:
        raise OptionError("--agent measures one scenario once: give one --scenarios, no --repeats")


def _chosen_pairs(args: argparse.Namespace) -> list[matrix.Pair]:
    """--pairs as exact pairs, or every valid combination of --app and --server (each name
    checked, not only the valid combinations; an app is an id or a directory)."""
    if args.target_stats:
        raise OptionError("--target-stats goes with --target")
    if given(args).get("cacert") is not None:
        raise OptionError("--cacert goes with --target: a local run trusts the CA it makes")
    if args.pairs is not None:
        if args.server:
            raise OptionError("--pairs names the servers: drop --server")
        return matrix.parse_pairs(args.pairs)
    if not args.server:
        raise OptionError("--app needs --server (or give --pairs app@server,...)")
    apps = [get_app(app) for app in args.app.split(",")]
    servers = [get_server(server).id for server in args.server.split(",")]
    if len(apps) == len(servers) == 1:
        matrix.get_pair(apps[0], servers[0])  # an invalid pair: its one-line reason
    chosen = [matrix.pair_of(a, s) for a in apps for s in servers]
    valid = [pair for pair in chosen if matrix.is_valid(pair)]
    if not valid:
        matrix.get_pair(apps[0], servers[0])  # raises the one-line reason
    return matrix.distinct(valid)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except experiments.UnknownExperimentError as exc:  # `experiment NAME`: lists the valid
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "report":
        return run_report(args)
    if args.command == "serve":
        return serve_cli.run(args)
    if args.command == "show":
        return show_run(args.run_dir)
    try:
        if args.command == "matrix":
            print_matrix(args.json)
            return 0
        if args.command == "experiment":
            return experiment_cli.run(args, console, progress_display())
        if args.command == "capacity":
            return capacity_cli.run(args, console, progress_display())
        _check_agents(args)
        if args.target is not None:
            _check_target(args)
            options = options_from(args)
            agent = options.load.agent
            if agent and agent[1] > 1:
                others = ", ".join(str(i) for i in range(agent[1]) if i != agent[0])
                print(
                    f"other agents (I = {others}), each on its host, reports into "
                    f"{options.agent_reports}:",
                    flush=True,
                )
                print(agent_command(options, args.target), flush=True)
            report = bench.remote_pair(
                args.target, args.target_stats, options, progress=progress_display()
            )
            return _summarize(report)
        chosen = _chosen_pairs(args)
        if args.variant is not None:  # it must apply to every app the run serves
            get_variant(args.variant, [p.app for p in chosen])
        named, proxied = [p.server for p in chosen], args.proxy is not None
        check_upstream(args.upstream, named, proxied=proxied)
        check_protocol(args.protocol, named, proxied=proxied)  # what faces the load speaks it
        options = options_for_pairs(args, chosen)
        if args.pairs is None and len(chosen) == 1:
            (pair,) = chosen
            app = str(pair.home or pair.app)
            report = bench.single_pair(app, pair.server, options, progress=progress_display())
        else:  # side by side in one run
            report = bench.many_pairs(chosen, options, progress=progress_display())
    except (
        OptionError,
        matrix.PairError,
        UnknownAppError,
        UnknownServerError,
        experiments.UnknownExperimentError,
        VariantError,
        DeclarationError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatabaseError, ProcessError, ResultsError, SeedError, TargetError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything started was stopped", file=sys.stderr)
        return 130
    return _summarize(report)


def _summarize(report: RunReport) -> int:
    print_run_end(report.run_dir, report.rows, report.status)
    return 0 if report.status == "ok" else 1
