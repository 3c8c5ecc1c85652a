"""``python -m stackbench serve``: the command line of stackbench/serving_host.py.

    python -m stackbench serve --app gino_style --server uvicorn
        [--bind ADDRESS] [--port N] [--stats-port N] [--ready-file PATH]
        [server options, --variant NAME]

Prints the app's URL, the stats endpoint's URL and DATABASE_URL, then serves
until Ctrl-C or SIGTERM (exit 130 / 143 after stopping everything), or until
the server exits (exit 1, with its last log lines). Bad input is one line and
exit 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from shared_fixtures.db import DatabaseError
from shared_fixtures.net import LOOPBACK, PortError
from shared_fixtures.processes import ProcessError, stopped_by_signals
from shared_fixtures.seed import SeedError
from stackbench import bench, matrix, proxy, serving_host
from stackbench.apps import DeclarationError, UnknownAppError, get_app
from stackbench.measure import BIN_DIR
from stackbench.options import (
    DEFAULTS,
    PROXY,
    SERVER,
    OptionError,
    add_options,
    check_protocol,
    check_upstream,
    cpus_named,
    positive_int,
)
from stackbench.results import ResultsError
from stackbench.servers import Knobs, UnknownServerError, get_server
from stackbench.variants import VariantError, get_variant


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(value)


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="one pair served until Ctrl-C, for load from other hosts (docs/distributed.md)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--app", required=True, help="a reference app, or a directory with a stackbench.toml"
    )
    serve.add_argument("--server", required=True)
    where = serve.add_argument_group("where")
    where.add_argument(
        "--bind",
        default=LOOPBACK,
        metavar="ADDRESS",
        help=f"IPv4 address the app and the stats endpoint listen on ({LOOPBACK}; "
        "0.0.0.0: every interface)",
    )
    where.add_argument("--port", type=_port, help="the app's port (default: a free one)")
    where.add_argument("--stats-port", type=_port, help="the stats endpoint's (default: free)")
    where.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="write serve's /info JSON here once everything answers (removed on exit)",
    )
    add_options(serve, "server", SERVER)
    add_options(serve, "protocol (TLS and HTTP/2)", ["protocol"])
    add_options(
        serve, "a proxy in front (it listens where --bind says; the server behind it)", PROXY
    )
    add_options(serve, "data", ["reseed"])


def options_from(args: argparse.Namespace) -> serving_host.ServeOptions:
    if args.port is not None and args.port == args.stats_port:
        raise OptionError("--port and --stats-port must differ")
    check_upstream(args.upstream, [args.server], proxied=args.proxy is not None)
    server_cpu_count = cpus_named(args.server_cpus) or os.cpu_count() or 1
    front = None
    if args.proxy is not None:
        front = proxy.Spec(
            args.proxy,
            args.upstream or proxy.TCP,
            client_protocol=args.protocol,
            workers=server_cpu_count,
        )
    return serving_host.ServeOptions(
        bind=serving_host.bind_address(args.bind),
        port=args.port,
        stats_port=args.stats_port,
        knobs=Knobs(workers=args.workers, threads=args.threads, pool_size=args.pool_size),
        server_cpus=args.server_cpus,
        server_cpu_count=server_cpu_count,
        scale=args.scale,
        ready_timeout=args.ready_timeout,
        ready_file=args.ready_file,
        variant=args.variant,
        protocol=args.protocol,
        reseed=args.reseed,
        front=front,
    )


def _announce(info: dict[str, Any]) -> None:
    settings = info["server_settings"]
    front = info.get("proxy")
    behind = f" behind {front['name']} ({front['upstream']})" if front else ""
    lines = [
        f"serving {info['app']} @ {info['server']}{behind}: {settings['workers']} worker(s), "
        f"{settings['threads']} thread(s), pool {settings['pool_size']}",
        f"  app:          {info['app_url']}" + (f"  (through {front['name']})" if front else ""),
        *([f"  {front['name']}:        {front['config']}"] if front else []),
        f"  stats:        {info['stats_url']}/stats  (read-only: /info, /stats, /statements)",
        f"  DATABASE_URL: {info['database']['url']}",
        f"  bench it:     python -m stackbench bench --target {info['app_url']} "
        f"--target-stats {info['stats_url']}{_protocol_options(info)}",
        "Ctrl-C or SIGTERM stops everything.",
    ]
    print("\n".join(lines), flush=True)


def _protocol_options(info: dict[str, Any]) -> str:
    """The bench's options for the protocol served: --protocol, and --cacert (a copy of
    this host's CA certificate on the load host) for a TLS one."""
    if info["protocol"] == DEFAULTS.protocol:
        return ""
    cacert = f" --cacert {info['ca_cert']}" if info.get("ca_cert") else ""
    return f" --protocol {info['protocol']}{cacert}"


def run(args: argparse.Namespace) -> int:
    stopped_by: list[int] = []  # the signal that stopped serve, for its exit code
    try:
        options = options_from(args)
        # One line for a pair that cannot be served, or an entry point that does not import.
        bench.check_entries(matrix.parse_pairs(f"{args.app}@{args.server}"), BIN_DIR)
        check_protocol(options.protocol, [args.server], proxied=options.front is not None)
        server = get_server(args.server)
        if options.protocol in server.speaks.loopback_only and not serving_host.is_loopback(
            options.bind
        ):
            raise OptionError(
                f"--protocol {options.protocol} on {options.bind}: "
                f"{server.speaks.notes[options.protocol]}"
            )
        if args.variant is not None:  # unknown, or not for this app: one line
            get_variant(args.variant, [get_app(args.app).id])
        if not serving_host.is_loopback(options.bind):
            print(
                f"WARNING: listening on {options.bind}, reachable from other hosts. The app "
                "and its stats endpoint have no authentication: serve only on a network "
                "you trust, for as long as the bench runs.",
                file=sys.stderr,
                flush=True,
            )
        # Ctrl-C is serve's documented stop, also when a shell started it as a background
        # job with SIGINT ignored (which Python would otherwise keep).
        with stopped_by_signals() as stopped_by:
            code, tail = serving_host.serve_until_stopped(args.app, args.server, options, _announce)
    except (
        OptionError,
        matrix.PairError,
        UnknownAppError,
        UnknownServerError,
        VariantError,
        DeclarationError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatabaseError, ProcessError, ResultsError, SeedError, PortError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped: everything serve started was stopped", file=sys.stderr)
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    print(f"error: the server exited with code {code}; the rest was stopped", file=sys.stderr)
    print(tail, file=sys.stderr)
    return 1
