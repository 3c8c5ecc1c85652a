"""Command line for the fixtures: a database to develop against, the seed, the upstream.

    python -m shared_fixtures db [--scale N]    # embedded PostgreSQL (or DATABASE_URL), seeded
    python -m shared_fixtures seed --database-url URL [--scale N]
    python -m shared_fixtures checksum --database-url URL
    python -m shared_fixtures upstream [--port P]

Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

import psycopg

from shared_fixtures.db import DatabaseError, database, external_database
from shared_fixtures.net import PortError
from shared_fixtures.processes import ProcessError
from shared_fixtures.seed import MAX_SCALE, SeedError, checksum, seed, validate_scale
from shared_fixtures.upstream import serve_forever


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _scale(text: str) -> int:
    try:
        return validate_scale(text)
    except SeedError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m shared_fixtures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    db = commands.add_parser("db", help="run a seeded database until Ctrl-C; prints its URL")
    db.add_argument("--scale", type=_scale, default=1, help=f"seed scale, 1..{MAX_SCALE}")
    db.add_argument("--database-url", help="use this PostgreSQL instead of an embedded one")
    sd = commands.add_parser("seed", help="apply the schema and load the seed")
    sd.add_argument("--scale", type=_scale, default=1, help=f"seed scale, 1..{MAX_SCALE}")
    sd.add_argument("--database-url", required=True)
    cs = commands.add_parser("checksum", help="print the checksum of the seeded tables")
    cs.add_argument("--database-url", required=True)
    up = commands.add_parser("upstream", help="run the slow upstream service")
    up.add_argument("--port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--host", default="127.0.0.1")
    return parser


def run_db(scale: int, url: str | None) -> None:
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind (and stop) on TERM too
    with contextlib.suppress(KeyboardInterrupt), database(url) as db:
        with db.connect() as conn:
            result = seed(conn, scale)
        print(f"seeded scale {scale} in {result.seconds:.2f} s, checksum {result.checksum}")
        print(f"DATABASE_URL={db.url}", flush=True)
        # Blocked only now, so that PostgreSQL did not inherit the mask; then wait for one.
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
    print("database stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            run_db(args.scale, args.database_url)
        elif args.command == "seed":
            with external_database(args.database_url).connect() as conn:
                result = seed(conn, args.scale)
            print(f"seeded scale {result.scale} in {result.seconds:.2f} s")
            print(f"checksum {result.checksum}")
        elif args.command == "checksum":
            with external_database(args.database_url).connect() as conn:
                print(checksum(conn))
        elif args.command == "upstream":
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve_forever(args.host, args.port))
    except (DatabaseError, ProcessError, PortError, SeedError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"error: database: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""  # never a bare "Permission denied"
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
