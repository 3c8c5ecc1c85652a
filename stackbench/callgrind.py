"""Instructions per request: a server run under valgrind's callgrind, its work counted.

On a shared 2-core machine, a server's CPU seconds per request move by ±20 % from one job
to the next; the instructions it executes for a request do not: callgrind counts them the
same whatever else the machine is doing, to a fraction of a percent from run to run of one
checkout. Not across checkouts: CPython's type-attribute cache is indexed by the address of
the attribute's name, so where the interpreter's strings land (the paths' lengths move them)
decides how many lookups miss it, and a count moves by up to 3 % (docs/feature-prices.md).
They are not time (cache misses, the kernel's work and the database's are not in them), so
they price what a feature adds to the code a request runs (middleware, ORM, validation,
templates) beside the CPU-second ratios, not instead of them.

The server starts under callgrind with instrumentation off, so its start-up, the import of
the app and the warm-up are not counted, and with a fixed hash seed (set and dict order,
hence the work, the same every run). For each path, after ``warmup`` requests, every process
of the server is switched on, ``requests`` GETs go out one after another on one keep-alive
connection (each must answer 200), and the processes are switched off and dumped: the sum
of the dumps' totals, over ``requests``, is the count per request. One request at a time,
so no request of another window is in flight when the counters switch.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from stackbench.sampler import group_usage

# Scenarios whose every request is one fixed GET: what a count per request can be taken of.
PATHS = {"json": "/json", "db": "/db", "fortunes": "/fortunes"}
TOOLS = ("valgrind", "callgrind_control")
# Uncounted requests per path before a count: after 50, fastapi_sqla's /db was still
# settling (docs/feature-prices.md).
WARMUP_REQUESTS = 300


class CallgrindError(Exception):
    """A count that could not be taken: the message says why, in one line."""


@dataclass(frozen=True)
class Count:
    path: str
    requests: int
    instructions: int  # every process of the server, over the counted requests
    processes: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def missing() -> str | None:
    """What is not installed for a count, in one line; None when everything is."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not absent:
        return None
    return f"{' and '.join(absent)} not found: install valgrind (Debian: apt-get install valgrind)"


def wrap(out_dir: Path) -> list[str]:
    """The command prefix that starts a server (and the workers it forks) under callgrind."""
    return [
        "env",
        "PYTHONHASHSEED=0",
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        f"--callgrind-out-file={out_dir}/callgrind.%p",
    ]


def count(server_pgid: int, base_url: str, path: str, warmup: int, requests: int) -> Count:
    """Instructions of every process in the server's process group over ``requests`` GETs
    of ``path``, after ``warmup`` uncounted ones (see the module)."""
    pids = sorted(group_usage(server_pgid))
    if not pids:
        raise CallgrindError(f"no process in the server's group {server_pgid}")
    for pid in pids:  # each under callgrind, or one line before any request goes out
        _out_file(pid)
    address = urlsplit(base_url)
    prefix = address.path.rstrip("/")
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=120)
    try:
        for _ in range(warmup):
            _get(connection, prefix + path)
        _control(pids, "--zero")
        _control(pids, "--instr=on")
        for _ in range(requests):
            _get(connection, prefix + path)
    finally:
        connection.close()
        _control(pids, "--instr=off")
    before = _dumps(pids)
    _control(pids, "--dump")
    written = _dumps(pids) - before
    if len(written) != len(pids):
        raise CallgrindError(f"{len(pids)} server processes, {len(written)} callgrind dumps")
    total = sum(totals(dump) for dump in written)
    return Count(path, requests, total, len(pids))


def _get(connection: http.client.HTTPConnection, path: str) -> None:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise CallgrindError(f"GET {path} answered {response.status}, not 200")


def _control(pids: list[int], command: str) -> None:
    """callgrind_control ``command`` to each process; it returns once the command is done.
    It exits 0 whatever happened ("Error: ... not detected" included): only its "OK." says
    the process got the command."""
    for pid in pids:
        done = subprocess.run(
            ["callgrind_control", command, str(pid)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        said = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        if done.returncode != 0 or "OK." not in said:
            errors = [line for line in said if line.startswith("Error")]
            reason = (errors or said or ["failed"])[0]
            raise CallgrindError(f"callgrind_control {command} {pid}: {reason}")


def _dumps(pids: list[int]) -> set[Path]:
    """The dump files of these processes: callgrind.<pid>.<part> beside the --callgrind-out-file
    of each, found through /proc (the file name is in valgrind's command line)."""
    found: set[Path] = set()
    for pid in pids:
        out = _out_file(pid)
        found.update(out.parent.glob(f"{out.name}.*"))
    return found


def _out_file(pid: int) -> Path:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    if argv == [] or argv == [b""]:  # exited, or a zombie: callgrind ends a process whose
        raise CallgrindError(f"server process {pid} is gone")  # dump cannot be written
    for arg in argv:
        if arg.startswith(b"--callgrind-out-file="):
            template = arg.decode().split("=", 1)[1]
            return Path(template.replace("%p", str(pid)))
    raise CallgrindError(f"server process {pid} does not run under callgrind")


def totals(dump: Path) -> int:
    """The ``totals:`` (or, failing that, ``summary:``) line of a callgrind dump."""
    found: dict[str, int] = {}
    for line in dump.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("totals", "summary") and value.strip().isdigit():
            found[key] = int(value)
    if not found:
        raise CallgrindError(f"{dump.name}: no totals line")
    return found.get("totals", found.get("summary", 0))
