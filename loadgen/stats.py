"""Raw sample sinks, folded statistics, and their exact merge.

The hot path only appends integers to the lists of a :class:`Sink` (one per request
name: the latency and the write, wait and read phases of a response as four consecutive
items of one list) and bumps a few counters.  Once a second the driver calls :meth:`Stats.fold`,
which sorts each list, folds it into the histograms (one bisection per distinct
bucket) and closes one entry of the per-second series.  Everything here is picklable
and :meth:`Stats.merge` is exact, which is how ``--processes N`` combines workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .connstats import ConnStats
from .histogram import Histogram, percentiles_from_coarse


@dataclass
class PhaseStat:
    """count / sum / min / max of one request phase (ns)."""

    count: int = 0
    total: int = 0
    min: int = 0
    max: int = 0

    def add_list(self, vals: list[int]) -> None:
        if not vals:
            return
        lo = min(vals)
        hi = max(vals)
        if self.count == 0 or lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi
        self.count += len(vals)
        self.total += sum(vals)

    def merge(self, o: PhaseStat) -> None:
        if o.count == 0:
            return
        if self.count == 0 or o.min < self.min:
            self.min = o.min
        if o.max > self.max:
            self.max = o.max
        self.count += o.count
        self.total += o.total

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean_ns": round(self.mean),
            "min_ns": self.min,
            "max_ns": self.max,
        }


PHASES = ("connect", "write", "wait", "read")
RAW_WIDTH = 4  # items per response in Sink.raw: latency, write, wait, read


class Sink:
    """Per request-name raw samples (hot path) and folded statistics."""

    __slots__ = (
        "clat",
        "connect",
        "error_ns",
        "errors",
        "expect",
        "failed",
        "h_clat",
        "h_lat",
        "n_responses",
        "name",
        "nbytes",
        "phases",
        "raw",
        "statuses",
    )

    def __init__(self, name: str, expect: frozenset[int] | None = None) -> None:
        self.name = name
        self.expect = expect  # None: 2xx/3xx are successes
        # raw, appended by the hot path: per response RAW_WIDTH items, its uncorrected
        # latency (complete - start) then its write, wait and read phases
        self.raw: list[int] = []
        self.clat: list[int] = []  # corrected: complete - intended (open model)
        self.connect: list[int] = []  # connect phase, of the requests that connected
        self.statuses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.error_ns = 0  # summed time in flight of the requests that ended in an error
        self.nbytes = 0
        self.failed = 0  # responses whose status is not expected
        # folded
        self.n_responses = 0
        self.h_lat = Histogram()
        self.h_clat = Histogram()
        self.phases = {p: PhaseStat() for p in PHASES}

    def fold(self, headline_coarse: dict[int, int] | None, open_model: bool) -> int:
        """Fold the raw lists; returns the number of responses folded."""
        raw = self.raw
        n = len(raw) // RAW_WIDTH
        if n:
            self.raw = []
            lat = raw[0::RAW_WIDTH]
            lat.sort()
            self.h_lat.record_sorted(lat, None if open_model else headline_coarse)
            self.n_responses += n
            ph = self.phases
            for k, p in enumerate(PHASES[1:], 1):
                ph[p].add_list(raw[k::RAW_WIDTH])
        if self.clat:
            clat = self.clat
            self.clat = []
            clat.sort()
            self.h_clat.record_sorted(clat, headline_coarse if open_model else None)
        if self.connect:
            self.phases["connect"].add_list(self.connect)
            self.connect = []
        return n

    def merge(self, o: Sink) -> None:
        self.h_lat.merge(o.h_lat)
        self.h_clat.merge(o.h_clat)
        for p in PHASES:
            self.phases[p].merge(o.phases[p])
        for k, v in o.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v
        for k2, v in o.errors.items():
            self.errors[k2] = self.errors.get(k2, 0) + v
        self.error_ns += o.error_ns
        self.nbytes += o.nbytes
        self.failed += o.failed
        self.n_responses += o.n_responses

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def n_requests(self) -> int:
        return self.n_responses + self.n_errors

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, st: dict[str, Any]) -> None:
        for k, v in st.items():
            setattr(self, k, v)


@dataclass
class Second:
    """One entry of the per-second series (seconds since the measurement start)."""

    t: int
    completed: int = 0  # responses
    failed: int = 0  # responses with an unexpected status
    errors: int = 0  # transport errors
    bytes: int = 0
    coarse: dict[int, int] = field(default_factory=dict)  # headline latency, 2 digits

    def merge(self, o: Second) -> None:
        self.completed += o.completed
        self.failed += o.failed
        self.errors += o.errors
        self.bytes += o.bytes
        for k, v in o.coarse.items():
            self.coarse[k] = self.coarse.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        p50, p99 = percentiles_from_coarse(self.coarse, (50, 99))
        return {
            "t": self.t,
            "completed": self.completed,
            "failed": self.failed,
            "errors": self.errors,
            "bytes": self.bytes,
            "p50_ns": p50,
            "p99_ns": p99,
        }


@dataclass
class Stats:
    """Everything one worker measured.  Mergeable across processes."""

    open_model: bool = False
    sinks: dict[str, Sink] = field(default_factory=dict)
    checks: dict[str, list[int]] = field(default_factory=dict)  # name -> [pass, fail]
    flow_errors: dict[str, int] = field(default_factory=dict)  # exception type -> count
    flow_error_example: str = ""
    iterations: int = 0
    series: dict[int, Second] = field(default_factory=dict)
    # open model
    scheduled: int = 0  # measured intended sends
    sent: int = 0  # measured sends actually made
    dropped: int = 0  # never sent (queue full, or still queued at the deadline)
    max_queue: int = 0
    queue_samples: int = 0
    queue_sum: int = 0
    lag: Histogram = field(default_factory=Histogram)  # scheduler lag (ns)
    first_send_ns: int = 0  # absolute perf_counter_ns of first measured send
    last_send_ns: int = 0
    # run
    aborted: int = 0  # in flight at the hard deadline
    inflight_samples: int = 0
    inflight_sum: int = 0
    start_ns: int = 0  # measurement start (perf_counter_ns)
    end_ns: int = 0  # end of the run
    last_done_ns: int = 0  # last measured completion
    connections: int = 0  # TCP connections opened
    conn: ConnStats = field(default_factory=ConnStats)  # their set-up, protocol, HTTP/2 events
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    wall: float = 0.0
    processes: int = 1
    loop: str = ""
    parser: str = ""
    inflight_mean: float = 0.0  # finalize(); summed over workers by merge
    queue_mean: float = 0.0
    # set by loadgen.api after the run (not merged): wall clock = perf_counter_ns + this
    wall_offset_ns: int = 0
    host: str = ""
    # set by loadgen.api after the run (not merged): --misbehaving's report, by kind
    misbehaving: dict[str, Any] | None = None
    # cumulative (failed, errors, bytes) at the last fold, for per-second deltas
    _snap: tuple[int, int, int] = (0, 0, 0)

    def sink(self, name: str, expect: frozenset[int] | None = None) -> Sink:
        s = self.sinks.get(name)
        if s is None:
            s = self.sinks[name] = Sink(name, expect)
        return s

    def check(self, name: str, ok: bool) -> None:
        c = self.checks.get(name)
        if c is None:
            c = self.checks[name] = [0, 0]
        c[0 if ok else 1] += 1

    def fold(self, second: int | None) -> None:
        """Fold every sink; attribute what was folded to ``second`` (None: warm-up,
        counted nowhere in the series)."""
        sec = Second(t=second if second is not None else -1)
        failed = errors = nbytes = 0
        for s in self.sinks.values():
            sec.completed += s.fold(sec.coarse, self.open_model)
            failed += s.failed
            errors += s.n_errors
            nbytes += s.nbytes
        f0, e0, b0 = self._snap
        self._snap = (failed, errors, nbytes)
        sec.failed = failed - f0
        sec.errors = errors - e0
        sec.bytes = nbytes - b0
        if second is None:
            return
        cur = self.series.get(second)
        if cur is None:
            self.series[second] = sec
        else:
            cur.merge(sec)

    def finalize(self) -> None:
        """Per-worker means, so that merged values are sums over workers."""
        if self.inflight_samples:
            self.inflight_mean = self.inflight_sum / self.inflight_samples
        if self.queue_samples:
            self.queue_mean = self.queue_sum / self.queue_samples

    def merge(self, o: Stats) -> None:
        for name, s in o.sinks.items():
            mine = self.sinks.get(name)
            if mine is None:
                self.sinks[name] = mine = Sink(name, s.expect)
            mine.merge(s)
        for k, (p, f) in o.checks.items():
            c = self.checks.setdefault(k, [0, 0])
            c[0] += p
            c[1] += f
        for k, v in o.flow_errors.items():
            self.flow_errors[k] = self.flow_errors.get(k, 0) + v
        self.flow_error_example = self.flow_error_example or o.flow_error_example
        self.iterations += o.iterations
        for t, sec in o.series.items():
            cur = self.series.get(t)
            if cur is None:
                self.series[t] = cur = Second(t=t)
            cur.merge(sec)
        self.scheduled += o.scheduled
        self.sent += o.sent
        self.dropped += o.dropped
        self.max_queue = max(self.max_queue, o.max_queue)
        self.queue_mean += o.queue_mean
        self.inflight_mean += o.inflight_mean
        self.inflight_samples += o.inflight_samples
        self.lag.merge(o.lag)
        if o.first_send_ns and (not self.first_send_ns or o.first_send_ns < self.first_send_ns):
            self.first_send_ns = o.first_send_ns
        self.last_send_ns = max(self.last_send_ns, o.last_send_ns)
        self.aborted += o.aborted
        self.start_ns = min(self.start_ns, o.start_ns) if self.start_ns else o.start_ns
        self.end_ns = max(self.end_ns, o.end_ns)
        self.last_done_ns = max(self.last_done_ns, o.last_done_ns)
        self.connections += o.connections
        self.conn.merge(o.conn)
        self.cpu_user += o.cpu_user
        self.cpu_sys += o.cpu_sys
        self.wall = max(self.wall, o.wall)
