"""Server-side figures while load runs: CPU seconds and peak RSS of the server's process
group (master and workers, from /proc), and peak client connections to the database."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ServerFigures:
    cpu_s: float | None
    peak_rss_mb: float | None
    peak_db_connections: int | None


def group_usage(pgid: int) -> dict[int, tuple[float, int]]:
    """{pid: (cpu seconds, rss bytes)} of every live process in the group."""
    usage = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime(12) stime(13) cutime cstime ... rss(22)
        if int(fields[2]) != pgid:
            continue
        cpu = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _TICKS
        usage[int(entry.name)] = (cpu, int(fields[21]) * _PAGE)
    return usage


_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


class Sampler:
    """Samples every ``interval`` seconds in a thread between ``start`` and ``stop``.

    ``mark()`` starts the measured window (after warm-up): CPU is counted from there;
    peaks are taken over the measured window too.
    """

    def __init__(self, pgid: int, database_url: str, interval: float = 0.25) -> None:
        self.pgid, self.database_url, self.interval = pgid, database_url, interval
        self._cpu_by_pid: dict[int, float] = {}
        self._cpu_at_mark: float | None = None
        self._peak_rss = 0
        self._peak_connections: int | None = None
        self._measuring = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _cpu_total(self) -> float:
        # Exited processes keep their last reading, so their CPU is not lost.
        for pid, (cpu, _) in group_usage(self.pgid).items():
            self._cpu_by_pid[pid] = cpu
        return sum(self._cpu_by_pid.values())

    def _sample(self, conn: psycopg.Connection | None) -> None:
        usage = group_usage(self.pgid)
        for pid, (cpu, _) in usage.items():
            self._cpu_by_pid[pid] = cpu
        if not self._measuring:
            return
        self._peak_rss = max(self._peak_rss, sum(rss for _, rss in usage.values()))
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                row = conn.execute(_CONNECTIONS).fetchone()
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
        self._cpu_total()
        self._thread.start()
        return self

    def mark(self) -> None:
        self._cpu_at_mark = self._cpu_total()
        self._measuring = True

    def stop(self) -> ServerFigures:
        self._stop.set()
        self._thread.join(5)
        cpu = None
        if self._cpu_at_mark is not None:
            cpu = round(self._cpu_total() - self._cpu_at_mark, 3)
        rss = round(self._peak_rss / 1024 / 1024, 1) if self._peak_rss else None
        return ServerFigures(cpu, rss, self._peak_connections)
