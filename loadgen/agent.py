"""``--agent I/N`` and ``--start-at``: one run split over agents on several hosts.

Agent I of N (0-based) with ``--processes P`` runs the process slots ``I*P + p`` of
``N*P`` (``p`` = 0..P-1): ``(I, p) -> I*P + p`` is a bijection onto ``0..N*P-1``, so
the open model's global schedule (slot s sends ``j`` with ``j % (N*P) == s``) and the
closed model's split of ``-c`` and ``-n`` (slot s gets ``c // (N*P)``, plus one if
``s < c % (N*P)``) are exactly those of one run with ``--processes N*P``.

An agent's JSON report carries an ``agent`` block: its identity, host, the wall-clock
window it measured and ``state``, its complete raw statistics (every histogram bucket,
per request name) with times converted to Unix nanoseconds, from which
:mod:`loadgen.merge` rebuilds and merges the agents' :class:`~loadgen.stats.Stats`.
"""

from __future__ import annotations

from typing import Any

from .connstats import ConnStats
from .histogram import Histogram
from .stats import PHASES, PhaseStat, Second, Sink, Stats
from .values import parse_agent, parse_start_at  # --agent and --start-at, read as options

__all__ = ["agent_block", "parse_agent", "parse_start_at", "stats_from_state", "stats_to_state"]

# -- the raw statistics as JSON ------------------------------------------------------------
_TIMES = ("start_ns", "end_ns", "last_done_ns", "first_send_ns", "last_send_ns")
_PLAIN = (
    "open_model",
    "flow_error_example",
    "iterations",
    "scheduled",
    "sent",
    "dropped",
    "max_queue",
    "queue_samples",
    "queue_sum",
    "aborted",
    "inflight_samples",
    "inflight_sum",
    "connections",
    "cpu_user",
    "cpu_sys",
    "wall",
    "processes",
    "loop",
    "parser",
    "inflight_mean",
    "queue_mean",
    "host",
)


def _sink_state(s: Sink) -> dict[str, Any]:
    return {
        "name": s.name,
        "expect": None if s.expect is None else sorted(s.expect),
        "h_lat": s.h_lat.to_dict(),
        "h_clat": s.h_clat.to_dict(),
        "phases": {
            p: [s.phases[p].count, s.phases[p].total, s.phases[p].min, s.phases[p].max]
            for p in PHASES
        },
        "statuses": {str(k): v for k, v in sorted(s.statuses.items())},
        "errors": dict(sorted(s.errors.items())),
        "error_ns": s.error_ns,
        "nbytes": s.nbytes,
        "failed": s.failed,
        "n_responses": s.n_responses,
    }


def _sink_from(d: dict[str, Any]) -> Sink:
    s = Sink(d["name"], None if d["expect"] is None else frozenset(d["expect"]))
    s.h_lat = Histogram.from_dict(d["h_lat"])
    s.h_clat = Histogram.from_dict(d["h_clat"])
    s.phases = {p: PhaseStat(*d["phases"][p]) for p in PHASES}
    s.statuses = {int(k): int(v) for k, v in d["statuses"].items()}
    s.errors = {k: int(v) for k, v in d["errors"].items()}
    s.error_ns = int(d["error_ns"])
    s.nbytes = int(d["nbytes"])
    s.failed = int(d["failed"])
    s.n_responses = int(d["n_responses"])
    return s


def stats_to_state(st: Stats) -> dict[str, Any]:
    """Everything :meth:`Stats.merge` uses, as JSON; times in Unix ns (0 = unset)."""
    off = st.wall_offset_ns
    d: dict[str, Any] = {k: getattr(st, k) for k in _PLAIN}
    d.update({k: (getattr(st, k) + off if getattr(st, k) else 0) for k in _TIMES})
    d["sinks"] = [_sink_state(s) for _n, s in sorted(st.sinks.items())]
    d["checks"] = {k: list(v) for k, v in st.checks.items()}
    d["flow_errors"] = dict(st.flow_errors)
    d["lag"] = st.lag.to_dict()
    d["conn"] = st.conn.to_state()
    d["series"] = [
        [t, x.completed, x.failed, x.errors, x.bytes, sorted(x.coarse.items())]
        for t, x in sorted(st.series.items())
    ]
    return d


def stats_from_state(d: dict[str, Any], shift_s: int = 0) -> Stats:
    """The :class:`Stats` of :func:`stats_to_state` (times in Unix ns); its series moved
    ``shift_s`` seconds later (to align agents on wall-clock seconds)."""
    st = Stats()
    for k in _PLAIN + _TIMES:
        setattr(st, k, d[k])
    st.sinks = {}
    for sd in d["sinks"]:
        s = _sink_from(sd)
        st.sinks[s.name] = s
    st.checks = {k: [int(v[0]), int(v[1])] for k, v in d["checks"].items()}
    st.flow_errors = {k: int(v) for k, v in d["flow_errors"].items()}
    st.lag = Histogram.from_dict(d["lag"])
    st.conn = ConnStats.from_state(d.get("conn"))
    st.series = {}
    for t, completed, failed, errors, nbytes, coarse in d["series"]:
        sec = Second(t + shift_s, completed, failed, errors, nbytes, {int(c): n for c, n in coarse})
        st.series[sec.t] = sec
    return st


def agent_block(agent: tuple[int, int], start_at: float | None, st: Stats) -> dict[str, Any]:
    """The ``agent`` block of an agent's JSON report (its window as ``Outcome.elapsed``)."""
    end = max(st.last_done_ns, st.last_send_ns)
    if end <= st.start_ns:
        end = st.end_ns
    off = st.wall_offset_ns
    return {
        "index": agent[0],
        "count": agent[1],
        "host": st.host,
        "start_at": start_at,
        "window_start_unix_ns": st.start_ns + off,
        "window_end_unix_ns": max(end, st.start_ns + 1) + off,
        "state": stats_to_state(st),
    }
