"""``python -m stackbench.cpu_sources``: one served pair's CPU per request, read both ways.

    python -m stackbench.cpu_sources [--app gino_style] [--server uvicorn]
        [--requests 200,2000,20000] [--rounds 3] [-c 4] [--workers N] [--pool-size N]

Serves the pair as ``bench`` does (embedded PostgreSQL, seeded), then loads ``/db`` in
windows of a given number of requests. Each window's CPU is read from the same processes
at the same moments both ways: each process's CPU-time clock (what the harness uses, ns)
and /proc/PID/stat's clock ticks (the old source, 10 ms here). One table row per window:
what CPU per request each source makes of it (docs/bench.md, "How CPU time is read").
Bad input is one line and exit 2; Ctrl-C stops everything (exit 130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from shared_fixtures.db import DatabaseError, database
from shared_fixtures.processes import ProcessError
from shared_fixtures.seed import SeedError, ensure_seeded
from stackbench import matrix
from stackbench.apps import UnknownAppError
from stackbench.documents import CpuSource
from stackbench.options import positive_int
from stackbench.sampler import (
    CPU_CLOCK,
    PROC_STAT,
    TICK_NS,
    CpuTotal,
    GroupCPU,
    cpu_window,
    group_usage,
    host_cpu_source,
    tree_usage,
)
from stackbench.server_process import serve
from stackbench.servers import Knobs, UnknownServerError

BIN_DIR = Path(sys.executable).parent
SOURCES: tuple[CpuSource, ...] = (CPU_CLOCK, PROC_STAT)
UNUSED_UPSTREAM = "http://127.0.0.1:9"  # /db never calls the upstream


def _counts(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(","))


@dataclass
class Readers:
    """The server's group and the database's tree, each read with both sources."""

    server: dict[CpuSource, GroupCPU]
    database: dict[CpuSource, GroupCPU]

    @classmethod
    def of(cls, server_pgid: int, database_pid: int) -> Readers:
        return cls(
            {s: GroupCPU(partial(group_usage, server_pgid), s) for s in SOURCES},
            {s: GroupCPU(partial(tree_usage, database_pid), s) for s in SOURCES},
        )

    def read(self) -> dict[str, dict[CpuSource, CpuTotal]]:
        return {
            "server": {s: reader.read()[0] for s, reader in self.server.items()},
            "database": {s: reader.read()[0] for s, reader in self.database.items()},
        }


def _load(url: str, requests: int, connections: int, report: Path) -> int:
    """``requests`` /db requests; the count of good responses."""
    argv = [sys.executable, "-m", "loadgen", "--scenario", "db", "-n", str(requests)]
    argv += ["-c", str(connections), "--json", str(report), "-q", url]
    subprocess.run(argv, check=True, timeout=600, stdout=subprocess.DEVNULL)
    return int(json.loads(report.read_text())["summary"]["ok"])


def _window(
    start: dict[CpuSource, CpuTotal], end: dict[CpuSource, CpuTotal], ok: int
) -> tuple[list[str], float, float]:
    """CPU ms and µs per request, clock then ticks ('*': a child was reaped in the window,
    so even the clock's figure is resolved to a tick only); the clock's seconds and how far
    the ticks were from them."""
    cells, seconds = [], {}
    for source in SOURCES:
        seconds[source], read = cpu_window(start[source], end[source], source)
        coarse = "*" if source == CPU_CLOCK and read["resolution_s"] * 1e9 >= TICK_NS else ""
        cells += [f"{seconds[source] * 1e3:.3f}{coarse}", f"{seconds[source] / ok * 1e6:.1f}"]
    return cells, seconds[CPU_CLOCK], abs(seconds[PROC_STAT] - seconds[CPU_CLOCK])


def measure(
    app: str,
    server: str,
    counts: tuple[int, ...],
    rounds: int,
    connections: int,
    knobs: Knobs,
) -> Iterator[str]:
    """The table's lines, one window at a time."""
    app_spec, server_spec = matrix.get_pair(app, server)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stackbench-cpu-")))
        db = stack.enter_context(database(work_dir=work))
        if not db.embedded or db.process is None:
            raise DatabaseError("an external DATABASE_URL: its processes cannot be read here")
        with db.connect() as conn:
            ensure_seeded(conn, 1)
        served = stack.enter_context(
            serve(
                app_spec,
                server_spec,
                database_url=db.url,
                upstream_url=UNUSED_UPSTREAM,
                bin_dir=BIN_DIR,
                log_dir=work / "logs",
                knobs=knobs,
            )
        )
        readers = Readers.of(served.process.pid, db.process.pid)
        url = served.base_url
        _load(url, max(counts[0], 200), connections, work / "warm.json")  # not measured
        yield f"{app} @ {server}, /db at {connections} connections, closed model"
        yield (
            "| requests | round | server CPU ms: clock | µs/req | ticks | µs/req "
            "| database CPU ms: clock | µs/req | ticks | µs/req |"
        )
        yield "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        worst: dict[tuple[int, str], tuple[float, float]] = {}
        for count in counts:
            for round_ in range(1, rounds + 1):
                start = readers.read()
                ok = _load(url, count, connections, work / "window.json")
                end = readers.read()
                cells = [str(count), str(round_)]
                for part in ("server", "database"):
                    window, clock_s, off_s = _window(start[part], end[part], ok)
                    cells += window
                    if off_s >= worst.get((count, part), (0.0, 0.0))[0]:
                        worst[count, part] = (off_s, off_s / clock_s if clock_s else 0.0)
                yield "| " + " | ".join(cells) + " |"
        yield "ticks against the clock, the worst window of each size:"
        for count in counts:
            parts = [
                f"{part} {worst[count, part][0] * 1e3:.1f} ms ({worst[count, part][1]:.1%})"
                for part in ("server", "database")
            ]
            yield f"  {count} requests: off by up to " + ", ".join(parts)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m stackbench.cpu_sources",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--app", default="gino_style")
    parser.add_argument("--server", default="uvicorn")
    parser.add_argument(
        "--requests",
        type=_counts,
        default=(200, 2000, 20000),
        help="requests per window, comma-separated (200,2000,20000)",
    )
    parser.add_argument("--rounds", type=positive_int, default=3, help="windows per count (3)")
    parser.add_argument("-c", "--connections", type=positive_int, default=4)
    parser.add_argument("--workers", type=positive_int, help="server processes (its default)")
    parser.add_argument("--pool-size", type=positive_int, default=Knobs().pool_size)
    args = parser.parse_args(argv)
    try:
        matrix.get_pair(args.app, args.server)
        if host_cpu_source() != CPU_CLOCK:
            print("error: this host cannot read a process's CPU-time clock", file=sys.stderr)
            return 2
        knobs = Knobs(workers=args.workers, pool_size=args.pool_size)
        for line in measure(
            args.app, args.server, args.requests, args.rounds, args.connections, knobs
        ):
            print(line, flush=True)
    except (matrix.PairError, UnknownAppError, UnknownServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatabaseError, ProcessError, SeedError, subprocess.SubprocessError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped: everything it started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
