"""Figures taken beside the load: CPU time of the server's process group (and of a proxy's
in front of it) and of the database's process tree (from the kernel, to the nanosecond
where it can be, each CPU second counted once), server processes that exited, peak server
RSS, and peak client connections to the database."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import psycopg

from stackbench.documents import CpuRead, CpuSource, ProfileDoc, Sample

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")  # /proc/PID/stat's CPU unit: 10 ms here
_PAGE = os.sysconf("SC_PAGE_SIZE")

# How a process's own CPU time is read (docs/bench.md, "How CPU time is read").
# The process's CPU-time clock (clock_getcpuclockid): the kernel's sum of its threads'
# runtimes in ns (each thread's is the first field of /proc/PID/task/TID/schedstat),
# threads that have exited included and a zombie's too; a sum of the live threads' schedstat
# files drops both.
CPU_CLOCK: CpuSource = "cpu-clock"
PROC_STAT: CpuSource = "proc-stat"  # utime + stime of /proc/PID/stat: whole clock ticks
RESOLUTION_NS: dict[CpuSource, int] = {CPU_CLOCK: 1, PROC_STAT: TICK_NS}


def process_cpu_ns(pid: int) -> int:
    """CPU time of process ``pid``, every thread, from its CPU-time clock (OSError once
    it has been reaped). glibc's clock_getcpuclockid: MAKE_PROCESS_CPUCLOCK(pid, SCHED)."""
    return time.clock_gettime_ns((~pid << 3) | 2)


def host_cpu_source() -> CpuSource:
    """The finest source this host offers: the CPU-time clock where a process's clock can
    be read by its pid, /proc/PID/stat's ticks where it cannot."""
    try:
        process_cpu_ns(os.getpid())
    except OSError:
        return PROC_STAT
    return CPU_CLOCK


@dataclass(frozen=True)
class ProcessUsage:
    ppid: int
    own_cpu_ns: int  # every thread's on-CPU time, read from ``source``
    reaped_children_cpu_ns: int  # cutime + cstime: children it has waited for (ticks)
    reaped_children_faults: int  # cminflt: moves with every child it reaps
    rss_bytes: int
    source: CpuSource = PROC_STAT


@dataclass(frozen=True)
class ServerFigures:
    cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    database_cpu_s: float | None = None
    exited_pids: tuple[int, ...] = ()
    window_s: float | None = None  # wall seconds from mark to stop: CPU ≤ window × CPUs
    profile: ProfileDoc | None = None  # bench --profile: py-spy over the same window
    cpu_read: CpuRead | None = None  # how cpu_s was read: source, resolution
    database_cpu_read: CpuRead | None = None
    proxy_cpu_s: float | None = None  # a proxy in front (bench --proxy): its process group
    proxy_cpu_read: CpuRead | None = None  # None: no proxy was sampled
    samples: tuple[Sample, ...] = ()  # each reading over the measured window


def _all_processes() -> dict[int, tuple[int, ProcessUsage]]:
    """{pid: (process group, usage)} of every process (zombies included: their times stay
    until they are reaped), own CPU in /proc/PID/stat's ticks."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... cminflt(8) ... utime(11) stime(12) cutime
        # cstime ... rss(21)
        found[int(entry.name)] = (
            int(fields[2]),
            ProcessUsage(
                ppid=int(fields[1]),
                own_cpu_ns=(int(fields[11]) + int(fields[12])) * TICK_NS,
                reaped_children_cpu_ns=(int(fields[13]) + int(fields[14])) * TICK_NS,
                reaped_children_faults=int(fields[8]),
                rss_bytes=int(fields[21]) * _PAGE,
            ),
        )
    return found


def group_usage(pgid: int) -> dict[int, ProcessUsage]:
    """Every process of a process group: a server's master and its workers."""
    return {pid: usage for pid, (group, usage) in _all_processes().items() if group == pgid}


def tree_usage(root: int) -> dict[int, ProcessUsage]:
    """A process and its descendants: PostgreSQL puts each child in a session of its own."""
    every = _all_processes()
    tree: dict[int, ProcessUsage] = {}
    if root in every:
        tree[root] = every[root][1]
    grew = True
    while grew:
        grew = False
        for pid, (_, usage) in every.items():
            if pid not in tree and usage.ppid in tree:
                tree[pid] = usage
                grew = True
    return tree


def read_own_cpu(members: dict[int, ProcessUsage], source: CpuSource) -> dict[int, ProcessUsage]:
    """``members`` with their own CPU read from ``source``. A process whose clock cannot be
    read keeps its ticks (and says so), unless it has been reaped meanwhile: then it is gone."""
    if source == PROC_STAT:
        return members
    read = {}
    for pid, usage in members.items():
        try:
            read[pid] = replace(usage, own_cpu_ns=process_cpu_ns(pid), source=CPU_CLOCK)
        except OSError:
            if Path(f"/proc/{pid}").exists():
                read[pid] = usage
    return read


@dataclass(frozen=True)
class CpuTotal:
    """A running total of a set of processes' CPU time, as one reading saw it."""

    ns: int
    # Readings so far in which a count in clock ticks moved the total: a window between two
    # totals is resolved to the nanosecond only if this did not change in it.
    tick_moves: int


def cpu_window(start: CpuTotal, end: CpuTotal, source: CpuSource) -> tuple[float, CpuRead]:
    """CPU seconds between two readings (to the ns) and how they were read: ``source``, and
    the step of the coarsest counter that moved the figure."""
    ticks = end.tick_moves != start.tick_moves
    resolution_ns = TICK_NS if ticks else RESOLUTION_NS[source]
    read: CpuRead = {"source": source, "resolution_s": resolution_ns / 1e9}
    return round((end.ns - start.ns) / 1e9, 9), read


@dataclass
class _Reaped:
    """What a member's reaped children add to the total: its cutime + cstime beyond the
    last readings of the members among them (those stay counted once they are gone)."""

    counted_ns: int
    credited_ns: int = 0  # last readings of its children that were members


@dataclass
class GroupCPU:
    """CPU time a set of processes (a group, a tree) has used, each second counted once.

    A process's times include the children it has reaped (cutime, cstime), in whole clock
    ticks. A member that leaves keeps its last reading (to the ns); when its parent is a
    member and reaps it, the parent's cutime grows by what the child spent in all, and only
    the part beyond the child's last reading is added: what it spent after that reading,
    and children never seen (a backend that lived between two readings). A reaped child's
    last reading or its parent's cutime, never both; and no total ever goes down, however
    the ticks fall.

    Own times come from ``source`` (the CPU-time clock: ns). A reading in which a member
    reaped a child (its cminflt or cutime moved) or a process was read in ticks counts in
    ``tick_moves``: a window over it is no finer than a tick.
    """

    members: Callable[[], dict[int, ProcessUsage]]
    source: CpuSource = field(default_factory=host_cpu_source)
    exited: list[int] = field(default_factory=list)
    _last: dict[int, ProcessUsage] = field(default_factory=dict)
    _reaped: dict[int, _Reaped] = field(default_factory=dict)
    _departed_ns: int = 0
    _tick_moves: int = 0

    def read(self) -> tuple[CpuTotal, dict[int, ProcessUsage]]:
        now = read_own_cpu(self.members(), self.source)
        ticked = any(usage.source != CPU_CLOCK for usage in now.values())
        for pid, last in self._last.items():
            if pid in now:
                continue
            self.exited.append(pid)
            kept = last.own_cpu_ns + self._reaped.pop(pid).counted_ns
            self._departed_ns += kept
            if last.ppid in now and last.ppid in self._reaped:
                self._reaped[last.ppid].credited_ns += kept
        for pid, usage in now.items():
            before = self._last.get(pid)
            if before is None:  # a newcomer, with the children it reaped before it came
                self._reaped[pid] = _Reaped(usage.reaped_children_cpu_ns)
                ticked = ticked or usage.reaped_children_faults > 0
                continue
            if usage.own_cpu_ns < before.own_cpu_ns:  # its clock refused: ticks, a bit behind
                now[pid] = usage = replace(usage, own_cpu_ns=before.own_cpu_ns)
            if (usage.reaped_children_cpu_ns, usage.reaped_children_faults) != (
                before.reaped_children_cpu_ns,
                before.reaped_children_faults,
            ):
                ticked = True
                reaped = self._reaped[pid]
                reaped.counted_ns = max(
                    reaped.counted_ns, usage.reaped_children_cpu_ns - reaped.credited_ns
                )
        self._tick_moves += ticked
        self._last = now
        total = self._departed_ns + sum(
            u.own_cpu_ns + self._reaped[pid].counted_ns for pid, u in now.items()
        )
        return CpuTotal(total, self._tick_moves), now


CONNECTIONS_QUERY = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


class Sampler:
    """Samples every ``interval`` seconds in a thread between ``start`` and ``stop``.

    ``mark()`` starts the measured window (after warm-up): CPU is counted from there, and
    peaks and exited server processes are taken over the measured window too.
    ``database_pid`` is the embedded PostgreSQL's postmaster; None when the database is
    elsewhere and its CPU cannot be read. ``proxy_pgid``: the process group of a proxy in
    front of the server (nginx's master and workers), sampled as the server's is.
    ``cpu_source`` is how own CPU times are read (this host's finest unless a test plants
    another).
    """

    def __init__(
        self,
        pgid: int,
        database_url: str,
        interval: float = 0.25,
        *,
        database_pid: int | None = None,
        proxy_pgid: int | None = None,
        cpu_source: CpuSource | None = None,
    ) -> None:
        self.database_url, self.interval = database_url, interval
        self.cpu_source = cpu_source or host_cpu_source()
        self._server = GroupCPU(partial(group_usage, pgid), self.cpu_source)
        self._database = (
            GroupCPU(partial(tree_usage, database_pid), self.cpu_source)
            if database_pid is not None
            else None
        )
        self._proxy = (
            GroupCPU(partial(group_usage, proxy_pgid), self.cpu_source)
            if proxy_pgid is not None
            else None
        )
        self._lock = threading.Lock()
        self._at_mark: tuple[CpuTotal, CpuTotal | None, CpuTotal | None] | None = None
        self._marked_at = 0.0
        self._peak_rss = 0
        self._peak_connections: int | None = None
        self._samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _read(self) -> tuple[CpuTotal, CpuTotal | None, CpuTotal | None, int]:
        """(server CPU, database CPU, proxy CPU, server RSS bytes) now."""
        with self._lock:
            server_cpu, live = self._server.read()
            database_cpu = self._database.read()[0] if self._database else None
            proxy_cpu = self._proxy.read()[0] if self._proxy else None
        return server_cpu, database_cpu, proxy_cpu, sum(u.rss_bytes for u in live.values())

    def _sample(self, conn: psycopg.Connection | None) -> None:
        server_cpu, database_cpu, _, rss = self._read()
        if self._at_mark is None:
            return
        self._peak_rss = max(self._peak_rss, rss)
        count = None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                row = conn.execute(CONNECTIONS_QUERY).fetchone()
                count = int(row[0]) if row else 0
                self._peak_connections = max(self._peak_connections or 0, count)
        server_at_mark, database_at_mark, _ = self._at_mark
        database_s = None
        if database_cpu is not None and database_at_mark is not None:
            database_s = round((database_cpu.ns - database_at_mark.ns) / 1e9, 6)
        self._samples.append(
            Sample(
                t_s=round(time.monotonic() - self._marked_at, 3),
                cpu_s=round((server_cpu.ns - server_at_mark.ns) / 1e9, 6),
                database_cpu_s=database_s,
                rss_mb=round(rss / 1024 / 1024, 1) if rss else None,
                db_connections=count,
            )
        )

    def _run(self) -> None:
        conn = None
        with contextlib.suppress(psycopg.Error):
            conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        try:
            while not self._stop.wait(self.interval):
                self._sample(conn)
        finally:
            if conn is not None:
                conn.close()

    def start(self) -> Sampler:
        self._read()
        self._thread.start()
        return self

    def mark(self) -> None:
        server_cpu, database_cpu, proxy_cpu, _ = self._read()
        with self._lock:
            self._server.exited.clear()  # exits during warm-up are not the window's
        self._at_mark = (server_cpu, database_cpu, proxy_cpu)
        self._marked_at = time.monotonic()

    def stop(self) -> ServerFigures:
        self._stop.set()
        self._thread.join(5)
        if self._at_mark is None:
            return ServerFigures(None, None, self._peak_connections)
        server_cpu, database_cpu, proxy_cpu, _ = self._read()
        server_at_mark, database_at_mark, proxy_at_mark = self._at_mark
        cpu_s, cpu_read = cpu_window(server_at_mark, server_cpu, self.cpu_source)
        database_s, database_read = None, None
        if database_cpu is not None and database_at_mark is not None:
            database_s, database_read = cpu_window(database_at_mark, database_cpu, self.cpu_source)
        proxy_s, proxy_read = None, None
        if proxy_cpu is not None and proxy_at_mark is not None:
            proxy_s, proxy_read = cpu_window(proxy_at_mark, proxy_cpu, self.cpu_source)
        return ServerFigures(
            cpu_s=cpu_s,
            peak_rss_mb=round(self._peak_rss / 1024 / 1024, 1) if self._peak_rss else None,
            peak_db_connections=self._peak_connections,
            database_cpu_s=database_s,
            exited_pids=tuple(self._server.exited),
            window_s=round(time.monotonic() - self._marked_at, 3),
            cpu_read=cpu_read,
            database_cpu_read=database_read,
            proxy_cpu_s=proxy_s,
            proxy_cpu_read=proxy_read,
            samples=tuple(self._samples),
        )
