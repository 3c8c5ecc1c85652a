"""The load models: closed (hey/wrk) and open (wrk2/k6 constant-arrival-rate).

:class:`FastRun` drives plain URLs and endpoint scenarios with no task or future per
request: each :class:`~loadgen.protocol.Conn` calls back ``on_response`` /
``on_error``, which records the sample and sends the next request on the spot.
:class:`FlowRun` drives flow scenarios (``async def flow(user)``): one task per
iteration, one future per request.

Open model: one global schedule of intended send times ``t0 + j/R`` (``j`` = k*P + p
in process p of P, so processes interleave into the same schedule).  A due send
takes an idle connection (LIFO), else opens a new one up to ``-c``, else waits in a
FIFO queue (bounded by ``max_queue``; beyond it the send is dropped and counted).
Corrected latency = completion - intended send time; uncorrected = completion -
actual start.  Both are recorded.

Every run ends by itself: ``-n`` or ``-z``, then a drain of at most ``grace``
seconds, then the hard deadline aborts whatever is still in flight (counted as
``aborted``) and drops whatever is still queued (counted as ``dropped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
import random
import resource
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from . import __version__
from .config import Config, Target
from .protocol import ABORTED, HAVE_HTTPTOOLS, READ_TIMEOUT, Conn, FullConn
from .scenario import Endpoint, Response, Scenario, User
from .stats import Sink, Stats

_pc = time.perf_counter_ns
NS = 1_000_000_000
SEQ_LEN = 4096  # length of the precomputed request cycle (power of two)
SEQ_MASK = SEQ_LEN - 1
FOREVER = 1 << 62


def build_request(
    method: str,
    target: str,
    host: str,
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    body: bytes,
    keepalive: bool = True,
) -> bytes:
    """Preformatted HTTP/1.1 request bytes."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    names = {k.lower() for k, _ in headers}
    if "user-agent" not in names:
        lines.append(f"User-Agent: loadgen/{__version__}")
    for k, v in headers:
        if k.lower() in ("host", "content-length"):
            if k.lower() == "host":
                lines[1] = f"Host: {v}"
            continue
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    if not keepalive and "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Part:
    """This worker's share of a run split over ``count`` processes."""

    __slots__ = ("count", "index")

    def __init__(self, index: int = 0, count: int = 1) -> None:
        self.index = index
        self.count = count

    def share(self, total: int) -> int:
        """How many of ``total`` items (indices j with j % count == index) are ours."""
        if total <= self.index:
            return 0
        return (total - 1 - self.index) // self.count + 1


class _Req:
    """One prebuilt request of the cycle."""

    __slots__ = ("data", "endpoint", "head", "sample", "sink")

    def __init__(self, sink: Sink, data: bytes, head: bool, sample: bool, ep: Endpoint | None):
        self.sink = sink
        self.data = data
        self.head = head
        self.sample = sample
        self.endpoint = ep


class BaseRun:
    """Timers, deadline and bookkeeping shared by both drivers."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        part: Part | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        self.config = config
        self.loop = loop
        self.part = part or Part()
        self.scenario = scenario
        self.target: Target = config.target
        self.use_httptools = config.httptools_enabled and HAVE_HTTPTOOLS
        self.open = config.open_model
        self.stats = Stats(open_model=self.open)
        self.stats.parser = "httptools" if self.use_httptools else "python"
        self.stats.loop = type(loop).__module__.split(".")[0]
        self.c = self._share_conns()
        self.timeout_ns = int(config.timeout * NS) if config.timeout else 0
        self.inflight = 0
        self.done = False
        self.finished: asyncio.Future[None] = loop.create_future()
        self.conns: list[Conn] = []
        self.t0 = 0
        self.m_start = 0
        self.end_ns = FOREVER  # no new (measured) work after this
        self.remaining = -1  # measured iterations left (-1: unlimited)
        self.lag: list[int] = []
        self.queue: deque[int] = deque()
        self._timers: list[asyncio.TimerHandle] = []
        self.csv_rows: list[tuple[Any, ...]] | None = None
        self._csv_file: IO[str] | None = None
        self._csv: Any = None

    def _share_conns(self) -> int:
        p = self.part
        c = self.config.concurrency
        return c // p.count + (1 if p.index < c % p.count else 0)

    # -- schedule ---------------------------------------------------------------------
    def _setup_limits(self) -> None:
        cfg = self.config
        p = self.part
        self.m_start = self.t0 + int(cfg.warmup * NS)
        if cfg.duration is not None:
            self.end_ns = self.m_start + int(cfg.duration * NS)
        n = cfg.n_total
        if self.open:
            assert cfg.rate is not None
            self.period_ns = NS / cfg.rate
            if n is not None:
                total = math.ceil(cfg.warmup * cfg.rate) + n
            else:
                assert cfg.duration is not None
                total = math.ceil((cfg.warmup + cfg.duration) * cfg.rate - 1e-9)
            self.k_total = p.share(total)
            self.k = 0
            self.next_due = self._due(0)
        elif n is not None:
            self.remaining = p.share(n)
        if cfg.deadline is not None:
            self.deadline_ns = self.t0 + int(cfg.deadline * NS)
        elif self.open:
            self.deadline_ns = self._due(max(self.k_total - 1, 0)) + int(cfg.effective_grace * NS)
            if cfg.duration is not None:
                self.deadline_ns = max(
                    self.deadline_ns, self.end_ns + int(cfg.effective_grace * NS)
                )
        elif cfg.duration is not None:
            self.deadline_ns = self.end_ns + int(cfg.effective_grace * NS)
        else:
            self.deadline_ns = FOREVER

    def _due(self, k: int) -> int:
        j = k * self.part.count + self.part.index
        return self.t0 + int(j * self.period_ns)

    # -- lifecycle ------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Open connections before the start (closed model: all; open: a few)."""
        raise NotImplementedError

    async def run(self, t0: int | None = None) -> Stats:
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = _pc()
        if self.config.csv_path:
            self._open_csv()
        now = _pc()
        self.t0 = t0 if t0 is not None else now
        if self.t0 > now:
            await asyncio.sleep((self.t0 - now) / NS)
        self._setup_limits()
        self.stats.start_ns = self.m_start
        self._arm_timers()
        self.start()
        try:
            await self.finished
        finally:
            for h in self._timers:
                h.cancel()
            self._final_fold()
            for c in self.conns:
                c.close()
            await asyncio.sleep(0)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            st = self.stats
            st.end_ns = _pc()
            st.cpu_user = ru1.ru_utime - ru0.ru_utime
            st.cpu_sys = ru1.ru_stime - ru0.ru_stime
            st.wall = (st.end_ns - w0) / NS
            st.connections = sum(c.n_connects for c in self.conns)
            # the fast path does not stamp every completion: take the latest of the slots
            for c in self.conns:
                if c.now > st.last_done_ns and c.t_sched >= self.m_start:
                    st.last_done_ns = c.now
            st.finalize()
            if self._csv_file is not None:
                self._csv_file.close()
        return self.stats

    def start(self) -> None:
        raise NotImplementedError

    def _arm_timers(self) -> None:
        loop = self.loop
        # fold once a second, aligned to the measurement start
        self._fold_k = 1
        self._schedule_fold()
        sweep = 0.1 if not self.timeout_ns else min(0.1, self.timeout_ns / NS / 10)
        self._sweep_s = max(sweep, 0.005)
        self._timers.append(loop.call_later(self._sweep_s, self._sweep))
        if self.end_ns < FOREVER:
            self._at(self.end_ns, self._on_end)
        if self.deadline_ns < FOREVER:
            self._at(self.deadline_ns, self._on_deadline)

    def _at(self, t_ns: int, cb: Callable[[], None]) -> None:
        self._timers.append(self.loop.call_later(max(0, t_ns - _pc()) / NS, cb))

    def _schedule_fold(self) -> None:
        self._at(self.m_start + self._fold_k * NS, self._fold_tick)

    def _fold_tick(self) -> None:
        if self.done:
            return
        sec = self._fold_k - 1
        self._fold(sec if sec >= 0 else None)
        self._fold_k += 1
        self._schedule_fold()

    def _fold(self, second: int | None) -> None:
        if self.lag:
            lag = self.lag
            self.lag = []
            lag.sort()
            self.stats.lag.record_sorted(lag)
        self.stats.fold(second)
        if self._csv is not None and self.csv_rows:
            self._csv.writerows(self.csv_rows)
            self.csv_rows.clear()

    def _final_fold(self) -> None:
        now = _pc()
        sec = (now - self.m_start) // NS if now >= self.m_start else None
        self._fold(int(sec) if sec is not None else None)

    def _sweep(self) -> None:
        if self.done:
            return
        now = _pc()
        tmo = self.timeout_ns
        if tmo:
            cutoff = now - tmo
            for c in self.conns:
                if c.busy and c.t_start < cutoff and not c._connecting:
                    c.abort(READ_TIMEOUT)
        if now >= self.m_start:
            st = self.stats
            st.inflight_samples += 1
            st.inflight_sum += self.inflight
            if self.open:
                st.queue_samples += 1
                st.queue_sum += len(self.queue)
        self._timers.append(self.loop.call_later(self._sweep_s, self._sweep))

    def _on_end(self) -> None:
        """-z elapsed: stop starting new work, drain."""
        self.stop_new_work()
        self._maybe_finish()

    def stop_new_work(self) -> None:
        pass

    def _on_deadline(self) -> None:
        if self.done:
            return
        st = self.stats
        for c in self.conns:
            if c.busy:
                if self._measured(c):
                    st.aborted += 1
                    s = c.sink
                    if s is not None:
                        s.errors[ABORTED] = s.errors.get(ABORTED, 0) + 1
                        s.error_ns += _pc() - c.t_start
                c.close()
        for due in self.queue:
            if due >= self.m_start:
                st.dropped += 1
        self.queue.clear()
        self.abort_rest()
        self._finish()

    def abort_rest(self) -> None:
        pass

    def _measured(self, c: Conn) -> bool:
        return c.t_sched >= self.m_start

    def _maybe_finish(self) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            if not self.finished.done():
                self.finished.set_result(None)

    # -- recording (hot path) -----------------------------------------------------------------
    def _record(self, conn: Conn, sink: Sink, expect: frozenset[int] | None) -> None:
        now = conn.now
        sink.lat.append(now - conn.t_start)
        if self.open:
            sink.clat.append(now - conn.t_sched)
        c = conn.connect_ns
        if c:
            sink.connect.append(c)
        tw = conn.t_written
        sink.write.append(tw - conn.t_write)
        tf = conn.t_first
        sink.wait.append(tf - tw)
        sink.read.append(now - tf)
        st = conn.status
        d = sink.statuses
        d[st] = d.get(st, 0) + 1
        sink.nbytes += conn.nbody
        if expect is None:
            if st < 200 or st >= 400:
                sink.failed += 1
        elif st not in expect:
            sink.failed += 1
        self.stats.last_done_ns = now
        if self.csv_rows is not None:
            self._csv_row(conn, sink.name, st, "")

    def _record_error(self, conn: Conn, sink: Sink, kind: str) -> None:
        e = sink.errors
        e[kind] = e.get(kind, 0) + 1
        now = self.stats.last_done_ns = _pc()
        sink.error_ns += now - conn.t_start  # for Little's law: errors were in flight too
        if self.csv_rows is not None:
            self._csv_row(conn, sink.name, 0, kind)

    # -- csv ----------------------------------------------------------------------------------
    def _open_csv(self) -> None:
        path = self.config.csv_path
        assert path is not None
        if self.part.count > 1:
            path = f"{path}.part{self.part.index}"
        self._csv_file = open(path, "w", newline="")  # noqa: SIM115 - closed in run()
        self._csv = csv.writer(self._csv_file)
        if self.part.count == 1:
            self._csv.writerow(CSV_HEADER)
        self.csv_rows = []

    def _csv_row(self, conn: Conn, name: str, status: int, error: str) -> None:
        assert self.csv_rows is not None
        now = _pc() if error else conn.now
        t_sched = conn.t_sched
        ok = not error
        self.csv_rows.append(
            (
                round((conn.t_start - self.m_start) / 1000),
                name,
                status,
                error,
                round((now - conn.t_start) / 1000),
                round((now - t_sched) / 1000) if self.open else "",
                round(conn.connect_ns / 1000),
                round((conn.t_first - conn.t_written) / 1000) if ok else "",
                round((now - conn.t_first) / 1000) if ok else "",
                conn.nbody,
            )
        )


CSV_HEADER = (
    "start_us",
    "name",
    "status",
    "error",
    "latency_us",
    "corrected_us",
    "connect_us",
    "wait_us",
    "read_us",
    "body_bytes",
)


# ======================================================================================
# Fast path: plain URL and endpoint scenarios
# ======================================================================================
class _FastConn(Conn):
    """A slot of :class:`FastRun` whose response callback records the sample and sends
    the next request inline (one Python call per response on the hot path)."""

    __slots__ = ("run",)

    run: FastRun

    def on_message_complete(self) -> None:
        if not self.busy:
            return
        parser = self.parser
        st = parser.get_status_code()
        if st < 200 and self._interim(st):
            return
        self.busy = False
        self.status = st
        if (not self.keepalive or not parser.should_keep_alive()) and self.transport is not None:
            self.closing = True
            self.transport.close()
        run = self.run
        run.inflight -= 1
        now = self.now
        if self.t_sched >= run.m_start:
            req: _Req = self.tag
            sink = req.sink
            sink.lat.append(now - self.t_start)
            if run.open:
                sink.clat.append(now - self.t_sched)
            c = self.connect_ns
            if c:
                sink.connect.append(c)
            tw = self.t_written
            sink.write.append(tw - self.t_write)
            tf = self.t_first
            sink.wait.append(tf - tw)
            sink.read.append(now - tf)
            d = sink.statuses
            try:
                d[st] += 1
            except KeyError:
                d[st] = 1
            sink.nbytes += self.nbody
            exp = sink.expect
            if exp is None:
                if st < 200 or st >= 400:
                    sink.failed += 1
            elif st not in exp:
                sink.failed += 1
            if self.keep_body:
                run._validate(self, req)
            if run.csv_rows is not None:
                run._csv_row(self, sink.name, st, "")
        if run.open:
            run._next_open(self)
            return
        # closed model: the next request goes out right now
        t = _pc()
        if t >= run.m_start:
            if t >= run.end_ns or run.remaining == 0:
                run.stopped += 1
                if run.stopped == len(run.conns):
                    run._maybe_finish()
                return
            if run.remaining > 0:
                run.remaining -= 1
        i = run.seq_i
        req = run.seq[i]
        run.seq_i = (i + 1) & SEQ_MASK
        self.tag = req
        self.keep_body = req.sample
        self.t_sched = t
        run.inflight += 1
        tr = self.transport
        if tr is not None and not self.closing and req.head == self._head and not self.body_parts:
            self.busy = True
            self.t_start = self.t_write = t
            self.t_first = 0
            self.nbody = 0
            self.connect_ns = 0
            tr.write(req.data)
            self.t_written = _pc()
        else:
            self.request(req.data, req.head)


class FastRun(BaseRun):
    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        part: Part | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        super().__init__(config, loop, part, scenario)
        self.seq = self._build_cycle()
        self.seq_i = 0
        self.idle: list[Conn] = []
        self.stopped = 0  # closed model: connections that stopped
        self.validated: dict[str, Endpoint] = {}

    def _build_cycle(self) -> list[_Req]:
        cfg = self.config
        t = self.target
        sc = self.scenario
        seed = cfg.seed if cfg.seed is not None else 12345
        rng = random.Random(seed * 1000 + self.part.index)
        if sc is None:
            hdrs = cfg.headers
            sink = self.stats.sink(t.path_qs, None)
            data = build_request(
                cfg.method, t.path_qs, t.host_header, hdrs, cfg.body, cfg.keepalive
            )
            head = cfg.method == "HEAD"
            return [_Req(sink, data, head, False, None)] * SEQ_LEN
        eps = sc.endpoints
        per_ep: list[list[bytes]] = []
        for ep in eps:
            variants = []
            nvar = max(1, ep.variants) if callable(ep.path) else 1
            for _ in range(nvar):
                path = ep.path(rng) if callable(ep.path) else ep.path
                full = t.base_path + path
                variants.append(
                    build_request(
                        ep.method,
                        full,
                        t.host_header,
                        tuple(ep.headers) + tuple(cfg.headers),
                        ep.body,
                        cfg.keepalive,
                    )
                )
            per_ep.append(variants)
        idx = rng.choices(range(len(eps)), weights=[e.weight for e in eps], k=SEQ_LEN)
        occ = [0] * len(eps)
        seq = []
        for i in idx:
            ep = eps[i]
            sink = self.stats.sink(ep.name, ep.expect)
            n = occ[i]
            occ[i] += 1
            data = per_ep[i][n % len(per_ep[i])]
            sample = ep.validate is not None and n % max(1, ep.sample_every) == 0
            seq.append(_Req(sink, data, ep.method == "HEAD", sample, ep))
        return seq

    def _add_conn(self) -> _FastConn:
        t = self.target
        conn = _FastConn(
            self,
            self.loop,
            t.connect_host,
            t.port,
            self.config.effective_connect_timeout,
            self.use_httptools,
        )
        conn.run = self
        conn.keepalive = self.config.keepalive
        self.conns.append(conn)
        return conn

    async def prepare(self) -> None:
        cfg = self.config
        if self.open:
            assert cfg.rate is not None
            n0 = min(self.c, max(1, int(cfg.rate / self.part.count / 100)))
        else:
            n0 = self.c
            if cfg.n_total is not None:
                n0 = max(1, min(n0, self.part.share(cfg.n_total)))
                self.c = n0
        for _ in range(n0):
            self._add_conn()
        res = await asyncio.gather(*(c.connect() for c in self.conns), return_exceptions=True)
        del res  # failures: those slots connect (and count errors) on first use
        if self.open:
            self.idle = list(self.conns)

    def start(self) -> None:
        if self.open:
            self._sched_tick()
        else:
            for c in list(self.conns):
                self._send_closed(c)
        self._maybe_finish()

    # -- closed --------------------------------------------------------------------------
    def _send_closed(self, conn: Conn) -> None:
        t = _pc()
        if t >= self.m_start:
            if t >= self.end_ns or self.remaining == 0:
                self.stopped += 1
                return
            if self.remaining > 0:
                self.remaining -= 1
        req = self.seq[self.seq_i]
        self.seq_i = (self.seq_i + 1) & SEQ_MASK
        conn.sink = req.sink
        conn.tag = req
        conn.keep_body = req.sample
        conn.t_sched = t
        self.inflight += 1
        conn.request(req.data, req.head)

    # -- open ------------------------------------------------------------------------------
    def _sched_tick(self) -> None:
        if self.done:
            return
        now = _pc()
        st = self.stats
        m_start = self.m_start
        while self.k < self.k_total and self.next_due <= now:
            due = self.next_due
            self.k += 1
            self.next_due = self._due(self.k)
            measured = due >= m_start
            if measured:
                st.scheduled += 1
                self.lag.append(now - due)
            if self.idle:
                self._send_open(self.idle.pop(), due)
            elif len(self.conns) < self.c:
                self._send_open(self._add_conn(), due)
            elif len(self.queue) < self.config.max_queue:
                self.queue.append(due)
                if len(self.queue) > st.max_queue:
                    st.max_queue = len(self.queue)
            elif measured:
                st.dropped += 1
        if self.k < self.k_total:
            delay = (self.next_due - _pc()) / NS
            self._timers.append(self.loop.call_later(max(delay, 0.0), self._sched_tick))
        else:
            self._maybe_finish()

    def _send_open(self, conn: Conn, due: int) -> None:
        req = self.seq[self.seq_i]
        self.seq_i = (self.seq_i + 1) & SEQ_MASK
        conn.sink = req.sink
        conn.tag = req
        conn.keep_body = req.sample
        conn.t_sched = due
        self.inflight += 1
        conn.request(req.data, req.head)
        if due >= self.m_start:
            st = self.stats
            st.sent += 1
            if not st.first_send_ns:
                st.first_send_ns = conn.t_start
            st.last_send_ns = conn.t_start

    def _next_open(self, conn: Conn) -> None:
        if self.queue and not self.done:
            self._send_open(conn, self.queue.popleft())
        else:
            self.idle.append(conn)
            self._maybe_finish()

    # -- callbacks from Conn -------------------------------------------------------------------
    def on_response(self, conn: Conn) -> None:
        self.inflight -= 1
        if conn.t_sched >= self.m_start:
            req: _Req = conn.tag
            self._record(conn, req.sink, req.sink.expect)
            if conn.keep_body:
                self._validate(conn, req)
        if self.open:
            self._next_open(conn)
        else:
            self._send_closed(conn)
            if self.stopped == len(self.conns):
                self._maybe_finish()

    def on_error(self, conn: Conn, kind: str) -> None:
        self.inflight -= 1
        if conn.t_sched >= self.m_start:
            self._record_error(conn, conn.tag.sink, kind)
        if self.done:
            return
        if self.open:
            self._next_open(conn)
        else:
            self._send_closed(conn)
            if self.stopped == len(self.conns):
                self._maybe_finish()

    def _validate(self, conn: Conn, req: _Req) -> None:
        ep = req.endpoint
        if ep is None or ep.validate is None:
            return
        try:
            ok = bool(ep.validate(conn.status, conn.body))
        except Exception:
            ok = False
        self.stats.check(f"{ep.name}: {ep.check}", ok)

    def _maybe_finish(self) -> None:
        if self.done:
            return
        if self.open:
            if self.k >= self.k_total and not self.queue and self.inflight == 0:
                self._finish()
        elif self.stopped >= len(self.conns) and self.inflight == 0:
            self._finish()

    def stop_new_work(self) -> None:
        if self.open:
            pass  # the schedule ends by itself at k_total
        # closed: connections stop at their next send (t >= end_ns)


# ======================================================================================
# Flow scenarios
# ======================================================================================
class FlowRun(BaseRun):
    scenario: Scenario

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        part: Part | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        assert scenario is not None and scenario.flows
        super().__init__(config, loop, part, scenario)
        seed = config.seed if config.seed is not None else 12345
        self.rng = random.Random(seed * 1000 + self.part.index)
        self.flows = [f for _, f in scenario.flows]
        self.weights = [w for w, _ in scenario.flows]
        self.users: list[User] = []
        self.idle_users: list[User] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.active_loops = 0
        self.running_iters = 0

    def make_user_conn(self, user: User) -> FullConn:
        t = self.target
        conn = FullConn(
            _UserOwner(self, user),
            self.loop,
            t.connect_host,
            t.port,
            self.config.effective_connect_timeout,
            self.use_httptools,
        )
        conn.keepalive = self.config.keepalive
        self.conns.append(conn)
        return conn

    def _new_user(self) -> User:
        u = User(self, len(self.users), random.Random(self.rng.random()))
        self.users.append(u)
        return u

    async def prepare(self) -> None:
        n0 = self.c
        cfg = self.config
        if self.open:
            assert cfg.rate is not None
            n0 = min(self.c, max(1, int(cfg.rate / self.part.count / 100)))
        elif cfg.n_total is not None:
            n0 = max(1, min(n0, self.part.share(cfg.n_total)))
        for _ in range(n0):
            self._new_user()
        await asyncio.gather(*(u.conn.connect() for u in self.users), return_exceptions=True)
        self.idle_users = list(self.users)

    def start(self) -> None:
        if self.open:
            self._sched_tick()
        else:
            for u in self.users:
                self._spawn(self._closed_loop(u))
                self.active_loops += 1
        self._maybe_finish()

    def _spawn(self, coro: Any) -> None:
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def _pick(self) -> Any:
        if len(self.flows) == 1:
            return self.flows[0]
        return self.rng.choices(self.flows, self.weights)[0]

    async def _iteration(self, user: User, intended: int) -> None:
        now = _pc()
        user.measured = intended >= self.m_start
        user.iter_delay = now - intended if self.open else 0
        user.cookies.clear()
        fn = self._pick()
        try:
            await fn(user)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if user.measured:
                st = self.stats
                k = type(e).__name__
                st.flow_errors[k] = st.flow_errors.get(k, 0) + 1
                if not st.flow_error_example:
                    st.flow_error_example = f"{k}: {e}"[:300]
        if user.measured:
            self.stats.iterations += 1

    async def _closed_loop(self, user: User) -> None:
        try:
            while not self.done:
                t = _pc()
                if t >= self.m_start:
                    if t >= self.end_ns or self.remaining == 0:
                        break
                    if self.remaining > 0:
                        self.remaining -= 1
                await self._iteration(user, t)
        finally:
            self.active_loops -= 1
            self._maybe_finish()

    def _sched_tick(self) -> None:
        if self.done:
            return
        now = _pc()
        st = self.stats
        while self.k < self.k_total and self.next_due <= now:
            due = self.next_due
            self.k += 1
            self.next_due = self._due(self.k)
            measured = due >= self.m_start
            if measured:
                st.scheduled += 1
                self.lag.append(now - due)
            if self.idle_users:
                self._start_open(self.idle_users.pop(), due)
            elif len(self.users) < self.c:
                self._start_open(self._new_user(), due)
            elif len(self.queue) < self.config.max_queue:
                self.queue.append(due)
                st.max_queue = max(st.max_queue, len(self.queue))
            elif measured:
                st.dropped += 1
        if self.k < self.k_total:
            delay = (self.next_due - _pc()) / NS
            self._timers.append(self.loop.call_later(max(delay, 0.0), self._sched_tick))
        else:
            self._maybe_finish()

    def _start_open(self, user: User, due: int) -> None:
        self.running_iters += 1
        if due >= self.m_start:
            st = self.stats
            st.sent += 1
            t = _pc()
            if not st.first_send_ns:
                st.first_send_ns = t
            st.last_send_ns = t
        self._spawn(self._open_iteration(user, due))

    async def _open_iteration(self, user: User, due: int) -> None:
        try:
            await self._iteration(user, due)
        finally:
            self.running_iters -= 1
        if self.queue and not self.done:
            self._start_open(user, self.queue.popleft())
        else:
            self.idle_users.append(user)
            self._maybe_finish()

    async def user_request(
        self,
        user: User,
        method: str,
        path: str,
        hdrs: list[tuple[str, str]],
        data: bytes,
        name: str,
        expect: frozenset[int] | None,
    ) -> Response:
        t = self.target
        if not path.startswith("/"):
            path = "/" + path
        req = build_request(
            method,
            t.base_path + path,
            t.host_header,
            tuple(hdrs) + tuple(self.config.headers),
            data,
            self.config.keepalive,
        )
        conn = user.conn
        fut: asyncio.Future[Response] = self.loop.create_future()
        conn.tag = (fut, name, expect, user)
        conn.sink = self.stats.sink(name, expect)
        self.inflight += 1
        conn.request(req, method == "HEAD")
        conn.t_sched = conn.t_start - user.iter_delay
        if not user.measured:
            conn.t_sched = -1  # never counted (warm-up)
        try:
            return await fut
        except asyncio.CancelledError:
            conn.close()
            raise

    def flow_response(self, conn: FullConn) -> None:
        self.inflight -= 1
        fut, name, expect, user = conn.tag
        if conn.t_sched >= 0:
            self._record(conn, conn.sink, expect)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in conn.headers]
        user.absorb_cookies(headers)
        resp = Response(name, conn.status, headers, conn.body, (conn.now - conn.t_start) / NS)
        if not fut.done():
            fut.set_result(resp)

    def flow_error(self, conn: FullConn, kind: str) -> None:
        self.inflight -= 1
        fut, name, _expect, _user = conn.tag
        if conn.t_sched >= 0:
            self._record_error(conn, conn.sink, kind)
        resp = Response(name, 0, [], b"", (_pc() - conn.t_start) / NS, kind)
        if not fut.done():
            fut.set_result(resp)

    def _measured(self, c: Conn) -> bool:
        return c.t_sched >= 0

    def abort_rest(self) -> None:
        for t in list(self.tasks):
            t.cancel()

    def _maybe_finish(self) -> None:
        if self.done:
            return
        if self.open:
            if self.k >= self.k_total and not self.queue and self.running_iters == 0:
                self._finish()
        elif self.active_loops == 0:
            self._finish()


class _UserOwner:
    """Adapts Conn callbacks to the FlowRun (one per user connection)."""

    __slots__ = ("run", "user")

    def __init__(self, run: FlowRun, user: User) -> None:
        self.run = run
        self.user = user

    def on_response(self, conn: FullConn) -> None:
        self.run.flow_response(conn)

    def on_error(self, conn: FullConn, kind: str) -> None:
        self.run.flow_error(conn, kind)


def make_run(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    part: Part | None = None,
    scenario: Scenario | None = None,
) -> BaseRun:
    if scenario is not None and scenario.flows:
        return FlowRun(config, loop, part, scenario)
    return FastRun(config, loop, part, scenario)


async def close_quietly(run: BaseRun) -> None:
    with contextlib.suppress(Exception):
        for c in run.conns:
            c.close()
