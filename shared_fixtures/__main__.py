"""Command line for the fixtures: a database to develop against, the seed, the upstream.

    pip install -e '.[harness]'                 # once, in the repository: psycopg, PostgreSQL
    python -m shared_fixtures db [--scale N]    # embedded PostgreSQL (or DATABASE_URL), seeded
    python -m shared_fixtures db --empty        # no tables: for an app's own tests
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

INSTALL = "pip install -e '.[harness]' in the stackbench repository"
try:
    import psycopg

    from shared_fixtures.db import Database, DatabaseError, database, external_database
    from shared_fixtures.net import PortError
    from shared_fixtures.processes import ProcessError
    from shared_fixtures.seed import MAX_SCALE, SeedError, checksum, seed, validate_scale
    from shared_fixtures.upstream import serve_forever
except ModuleNotFoundError as missing:  # the fixtures run on the harness's packages
    sys.exit(f"error: {missing.name} is not installed: {INSTALL}")


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
    db.add_argument(
        "--empty",
        action="store_true",
        help="no schema, no seed: a database with no tables, for an app's own tests (which "
        "make their tables)",
    )
    sd = commands.add_parser("seed", help="apply the schema and load the seed")
    sd.add_argument("--scale", type=_scale, default=1, help=f"seed scale, 1..{MAX_SCALE}")
    sd.add_argument("--database-url", required=True)
    cs = commands.add_parser("checksum", help="print the checksum of the seeded tables")
    cs.add_argument("--database-url", required=True)
    up = commands.add_parser("upstream", help="run the slow upstream service")
    up.add_argument("--port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--host", default="127.0.0.1")
    return parser


def _tables(db: Database) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_name"
        ).fetchall()
    return [str(name) for (name,) in rows]


def run_db(scale: int, url: str | None, empty: bool = False) -> None:
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind (and stop) on TERM too
    with contextlib.suppress(KeyboardInterrupt), database(url) as db:
        if empty:
            if tables := _tables(db):  # DATABASE_URL's: the app's tests would refuse it
                more = f" and {len(tables) - 3} more" if len(tables) > 3 else ""
                raise DatabaseError(
                    f"{db.display_url} is not empty (tables {', '.join(tables[:3])}{more}): "
                    "--empty needs a database with no tables (leave out --database-url and "
                    "DATABASE_URL for an embedded one)"
                )
            print("empty: no tables (an app's tests make their own)")
        else:
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
            run_db(args.scale, args.database_url, args.empty)
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
