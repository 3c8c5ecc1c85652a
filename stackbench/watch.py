"""The serving host's figures while ``serve`` runs, for a bench on another host.

A remote bench cannot read this host's /proc, so ``serve`` samples what ``bench`` samples
locally (stackbench/sampler.py) without pause: the server's, the database's (and a proxy's in
front) CPU time
(to the nanosecond where this host can, each second counted once), the server's RSS and
the database's client connections. Each
reading has a sequence number; the bench reads one when its measured window opens and asks
for the window since it when it closes, so any number of windows, one after another, can
be taken from one serve. Nothing here changes what is served.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import psycopg

from stackbench.documents import CpuSource
from stackbench.sampler import (
    CONNECTIONS_QUERY,
    CpuTotal,
    GroupCPU,
    cpu_window,
    group_usage,
    host_cpu_source,
    tree_usage,
)

HISTORY_S = 4 * 3600  # readings kept: a window may open at most this long ago


@dataclass(frozen=True)
class Reading:
    seq: int
    monotonic_s: float  # this host's clock: window lengths are taken on one clock
    unix_s: float
    server_cpu_ns: int  # running totals: a window is the difference of two readings
    database_cpu_ns: int | None
    server_rss_mb: float
    db_connections: int | None
    cpu_source: CpuSource
    # Readings so far in which a count in clock ticks moved the CPU total (a child reaped,
    # a process read in ticks): a window in which it moved is resolved to a tick only.
    server_cpu_tick_moves: int
    database_cpu_tick_moves: int | None
    # serve --proxy: the proxy's process group, read as the server's is
    proxy_cpu_ns: int | None = None
    proxy_cpu_tick_moves: int | None = None


class ServerWatch:
    """Readings of one served pair every ``interval`` seconds, in a thread.

    ``server_state`` says whether the server still runs and, if not, its exit code;
    ``proxy_pgid`` and ``proxy_state`` the same of a proxy in front (serve --proxy).
    """

    def __init__(
        self,
        pgid: int,
        database_url: str,
        *,
        database_pid: int | None,
        server_state: Callable[[], tuple[bool, int | None]],
        interval: float = 0.25,
        cpu_source: CpuSource | None = None,
        proxy_pgid: int | None = None,
        proxy_state: Callable[[], tuple[bool, int | None]] | None = None,
    ) -> None:
        self.database_url, self.interval, self.server_state = database_url, interval, server_state
        self.proxy_state = proxy_state
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
        self._readings: deque[Reading] = deque(maxlen=int(HISTORY_S / interval))
        self._exits: list[tuple[int, int]] = []  # (seq of the reading that missed it, pid)
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-watch", daemon=True)

    def __enter__(self) -> ServerWatch:
        with contextlib.suppress(psycopg.Error):
            self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        self.read()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._conn is not None:
            self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.read()

    def _connections(self) -> int | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(CONNECTIONS_QUERY).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row else 0

    def read(self) -> Reading:
        """A reading now (kept in the history)."""
        with self._lock:  # the HTTP threads and the sampling thread read in turn
            before = len(self._server.exited)
            server_cpu, live = self._server.read()
            database_cpu = self._database.read()[0] if self._database else None
            proxy_cpu = self._proxy.read()[0] if self._proxy else None
            seq = self._readings[-1].seq + 1 if self._readings else 0
            self._exits += [(seq, pid) for pid in self._server.exited[before:]]
            reading = Reading(
                seq=seq,
                monotonic_s=time.monotonic(),
                unix_s=time.time(),
                server_cpu_ns=server_cpu.ns,
                database_cpu_ns=None if database_cpu is None else database_cpu.ns,
                server_rss_mb=round(sum(u.rss_bytes for u in live.values()) / 1024 / 1024, 1),
                db_connections=self._connections(),
                cpu_source=self.cpu_source,
                server_cpu_tick_moves=server_cpu.tick_moves,
                database_cpu_tick_moves=None if database_cpu is None else database_cpu.tick_moves,
                proxy_cpu_ns=None if proxy_cpu is None else proxy_cpu.ns,
                proxy_cpu_tick_moves=None if proxy_cpu is None else proxy_cpu.tick_moves,
            )
            self._readings.append(reading)
            return reading

    def stats(self, since: int | None = None) -> dict[str, Any]:
        """``GET /stats``: a reading now, the server's state and, with ``since`` (a reading's
        seq), the window from that reading to this one: peaks, and server processes that
        exited in it."""
        now = self.read()
        running, exit_code = self.server_state()
        document: dict[str, Any] = {
            "reading": asdict(now),
            "server": {"running": running, "exit_code": exit_code},
        }
        if self.proxy_state is not None:
            running, exit_code = self.proxy_state()
            document["proxy"] = {"running": running, "exit_code": exit_code}
        if since is not None:
            document["window"] = self._window(since, now)
        return document

    def _window(self, since: int, now: Reading) -> dict[str, Any]:
        with self._lock:
            readings = [r for r in self._readings if since <= r.seq <= now.seq]
            exited = [pid for seq, pid in self._exits if since < seq <= now.seq]
        if not readings or readings[0].seq != since:
            raise KeyError(f"reading {since} is not kept (the oldest kept is an older window's)")
        first = readings[0]
        connections = [r.db_connections for r in readings if r.db_connections is not None]
        server_cpu, server_read = cpu_window(
            CpuTotal(first.server_cpu_ns, first.server_cpu_tick_moves),
            CpuTotal(now.server_cpu_ns, now.server_cpu_tick_moves),
            now.cpu_source,
        )
        database_cpu, database_read = None, None
        if now.database_cpu_ns is not None and first.database_cpu_ns is not None:
            database_cpu, database_read = cpu_window(
                CpuTotal(first.database_cpu_ns, first.database_cpu_tick_moves or 0),
                CpuTotal(now.database_cpu_ns, now.database_cpu_tick_moves or 0),
                now.cpu_source,
            )
        proxy_cpu, proxy_read = None, None
        if now.proxy_cpu_ns is not None and first.proxy_cpu_ns is not None:
            proxy_cpu, proxy_read = cpu_window(
                CpuTotal(first.proxy_cpu_ns, first.proxy_cpu_tick_moves or 0),
                CpuTotal(now.proxy_cpu_ns, now.proxy_cpu_tick_moves or 0),
                now.cpu_source,
            )
        return {
            "since": since,
            "window_s": round(now.monotonic_s - first.monotonic_s, 3),
            "proxy_cpu_s": proxy_cpu,
            "proxy_cpu_read": proxy_read,
            "server_cpu_s": server_cpu,
            "server_cpu_read": server_read,
            "database_cpu_s": database_cpu,
            "database_cpu_read": database_read,
            "peak_rss_mb": max(r.server_rss_mb for r in readings) or None,
            "peak_db_connections": max(connections) if connections else None,
            "exited_pids": exited,
            "samples": [_sample(first, r) for r in readings[1:]],
        }


def _sample(first: Reading, reading: Reading) -> dict[str, Any]:
    """A reading as the sampler's ``Sample``: its figures since the window's first reading."""
    database_cpu_s = None
    if reading.database_cpu_ns is not None and first.database_cpu_ns is not None:
        database_cpu_s = round((reading.database_cpu_ns - first.database_cpu_ns) / 1e9, 6)
    return {
        "t_s": round(reading.monotonic_s - first.monotonic_s, 3),
        "cpu_s": round((reading.server_cpu_ns - first.server_cpu_ns) / 1e9, 6),
        "database_cpu_s": database_cpu_s,
        "rss_mb": reading.server_rss_mb or None,
        "db_connections": reading.db_connections,
    }
