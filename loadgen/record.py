"""Recording one finished request into its sink (flow path, and errors on both paths).

The fast path records responses inline in ``_FastConn.on_message_complete`` (the same
steps as :func:`record_response`, without the call); everything else comes here.
"""

from __future__ import annotations

import time

from .protocol import Conn
from .run import BaseRun
from .stats import Sink

_pc = time.perf_counter_ns


def record_response(run: BaseRun, conn: Conn, sink: Sink, expect: frozenset[int] | None) -> None:
    now = conn.now
    tw = conn.t_written
    tf = conn.t_first
    sink.raw.extend((now - conn.t_start, tw - conn.t_write, tf - tw, now - tf))
    if run.open:
        sink.clat.append(now - conn.t_sched)
    c = conn.connect_ns
    if c:
        sink.connect.append(c)
    st = conn.status
    d = sink.statuses
    d[st] = d.get(st, 0) + 1
    sink.nbytes += conn.nbody
    if expect is None:
        if st < 200 or st >= 400:
            sink.failed += 1
    elif st not in expect:
        sink.failed += 1
    run.stats.last_done_ns = now
    if run.csv_row is not None:
        run.csv_row(conn, sink.name, st, "")


def record_error(run: BaseRun, conn: Conn, sink: Sink, kind: str) -> None:
    e = sink.errors
    e[kind] = e.get(kind, 0) + 1
    now = run.stats.last_done_ns = _pc()
    sink.error_ns += now - conn.t_start  # for Little's law: errors were in flight too
    if run.csv_row is not None:
        run.csv_row(conn, sink.name, 0, kind)
