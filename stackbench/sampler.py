"""Figures taken beside the load: CPU seconds of the server's process group and of the
database's process tree (from /proc, each CPU second counted once), server processes that
exited, peak server RSS, and peak client connections to the database."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psycopg

from stackbench.documents import ProfileDoc

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessUsage:
    ppid: int
    own_cpu_s: float  # utime + stime
    reaped_children_cpu_s: float  # cutime + cstime: children this process has waited for
    rss_bytes: int

    @property
    def cpu_s(self) -> float:
        return self.own_cpu_s + self.reaped_children_cpu_s


@dataclass(frozen=True)
class ServerFigures:
    cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None
    database_cpu_s: float | None = None
    exited_pids: tuple[int, ...] = ()
    window_s: float | None = None  # wall seconds from mark to stop: CPU ≤ window × CPUs
    profile: ProfileDoc | None = None  # bench --profile: py-spy over the same window


def _all_processes() -> dict[int, tuple[int, ProcessUsage]]:
    """{pid: (process group, usage)} of every process (zombies included: their times stay
    until they are reaped)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime(12) stime(13) cutime cstime ... rss(22)
        found[int(entry.name)] = (
            int(fields[2]),
            ProcessUsage(
                ppid=int(fields[1]),
                own_cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS,
                reaped_children_cpu_s=(int(fields[13]) + int(fields[14])) / _TICKS,
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


@dataclass
class GroupCPU:
    """CPU seconds a set of processes (a group, a tree) has used, each second counted once.

    A process's times include the children it has reaped (cutime, cstime). So when a
    process leaves and its parent is still in the group, the parent now carries its CPU;
    only a process reaped from outside the group (the master, by us) keeps its last reading.
    Counting both, as a plain sum of last readings does, counts a dead worker twice.
    """

    members: Callable[[], dict[int, ProcessUsage]]
    exited: list[int] = field(default_factory=list)
    _last: dict[int, ProcessUsage] = field(default_factory=dict)
    _departed_cpu_s: float = 0.0

    def read(self) -> tuple[float, dict[int, ProcessUsage]]:
        now = self.members()
        for pid, last in self._last.items():
            if pid in now:
                continue
            self.exited.append(pid)
            if last.ppid not in now:
                self._departed_cpu_s += last.cpu_s
        self._last = now
        return self._departed_cpu_s + sum(u.cpu_s for u in now.values()), now


CONNECTIONS_QUERY = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


class Sampler:
    """Samples every ``interval`` seconds in a thread between ``start`` and ``stop``.

    ``mark()`` starts the measured window (after warm-up): CPU is counted from there, and
    peaks and exited server processes are taken over the measured window too.
    ``database_pid`` is the embedded PostgreSQL's postmaster; None when the database is
    elsewhere and its CPU cannot be read.
    """

    def __init__(
        self,
        pgid: int,
        database_url: str,
        interval: float = 0.25,
        *,
        database_pid: int | None = None,
    ) -> None:
        self.database_url, self.interval = database_url, interval
        self._server = GroupCPU(partial(group_usage, pgid))
        self._database = (
            GroupCPU(partial(tree_usage, database_pid)) if database_pid is not None else None
        )
        self._lock = threading.Lock()
        self._at_mark: tuple[float, float | None] | None = None
        self._marked_at = 0.0
        self._peak_rss = 0
        self._peak_connections: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _read(self) -> tuple[float, float | None, int]:
        """(server CPU s, database CPU s, server RSS bytes) now."""
        with self._lock:
            server_cpu, live = self._server.read()
            database_cpu = self._database.read()[0] if self._database else None
        return server_cpu, database_cpu, sum(u.rss_bytes for u in live.values())

    def _sample(self, conn: psycopg.Connection | None) -> None:
        _, _, rss = self._read()
        if self._at_mark is None:
            return
        self._peak_rss = max(self._peak_rss, rss)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                row = conn.execute(CONNECTIONS_QUERY).fetchone()
                count = int(row[0]) if row else 0
                self._peak_connections = max(self._peak_connections or 0, count)

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
        server_cpu, database_cpu, _ = self._read()
        with self._lock:
            self._server.exited.clear()  # exits during warm-up are not the window's
        self._at_mark = (server_cpu, database_cpu)
        self._marked_at = time.monotonic()

    def stop(self) -> ServerFigures:
        self._stop.set()
        self._thread.join(5)
        if self._at_mark is None:
            return ServerFigures(None, None, self._peak_connections)
        server_cpu, database_cpu, _ = self._read()
        server_at_mark, database_at_mark = self._at_mark
        database = None
        if database_cpu is not None and database_at_mark is not None:
            database = round(database_cpu - database_at_mark, 3)
        return ServerFigures(
            cpu_s=round(server_cpu - server_at_mark, 3),
            peak_rss_mb=round(self._peak_rss / 1024 / 1024, 1) if self._peak_rss else None,
            peak_db_connections=self._peak_connections,
            database_cpu_s=database,
            exited_pids=tuple(self._server.exited),
            window_s=round(time.monotonic() - self._marked_at, 3),
        )
