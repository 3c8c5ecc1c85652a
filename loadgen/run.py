"""What both drivers share: the run's limits, timers and deadline, and the open model's
one global schedule.

Open model: one global schedule of intended send times ``t0 + j/R`` (``j`` = k*P + p
in process p of P, so processes interleave into the same schedule).  A due send
takes an idle slot (LIFO), else opens a new one up to ``-c``, else waits in a FIFO
queue (bounded by ``max_queue``; beyond it the send is dropped and counted).  A slot is
a connection (:mod:`loadgen.fastpath`) or a virtual user (:mod:`loadgen.flows`).

Every run ends by itself: ``-n`` or ``-z``, then a drain of at most ``grace``
seconds, then the hard deadline aborts whatever is still in flight (counted as
``aborted``) and drops whatever is still queued (counted as ``dropped``).
"""

from __future__ import annotations

import asyncio
import math
import random
import resource
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .config import Config, Target
from .csvout import CsvOut
from .dial import Dialer
from .errorkinds import ABORTED, READ_TIMEOUT
from .h2slot import H2Pool
from .protocol import HAVE_HTTPTOOLS, Conn
from .request import H2Request, build_h2_request, build_request
from .scenario_types import Scenario
from .stats import Stats

_pc = time.perf_counter_ns
NS = 1_000_000_000
FOREVER = 1 << 62


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


class BaseRun:
    """Limits, timers, deadline and the open-model schedule shared by both drivers.

    A driver provides ``prepare``, ``start``, ``_maybe_finish``, ``_new_slot`` and
    ``_send_open(slot, due)``; ``slots`` (all slots) and ``idle`` (idle slots, open
    model) are its lists.
    """

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
        # One seeded stream per process slot: the same run draws the same paths and samples.
        seed = config.seed if config.seed is not None else 12345
        self.rng = random.Random(seed * 1000 + self.part.index)
        self.target: Target = config.target
        self.use_httptools = config.httptools_enabled and HAVE_HTTPTOOLS
        self.open = config.open_model
        self.stats = Stats(open_model=self.open)
        self.stats.parser = "httptools" if self.use_httptools else "python"
        self.stats.loop = type(loop).__module__.split(".")[0]
        self.dialer = Dialer(config, self.stats.conn)
        # --h2: slots are streams, --streams of them on each of the -c connections
        # (the lean engine, h2wire, unless --pure asks for the reference: h2)
        lean = config.h2wire_enabled
        self.pool = H2Pool(loop, self.dialer, config.streams, lean) if config.h2 else None
        if self.pool is not None:
            self.stats.parser = "h2wire" if lean else "h2"
        self.c = self._share_conns() * config.streams
        self.timeout_ns = int(config.timeout * NS) if config.timeout else 0
        self.inflight = 0
        self.done = False
        self.finished: asyncio.Future[None] = loop.create_future()
        self.conns: list[Any] = []  # the slots: Conn (HTTP/1.1) or H2Slot (--h2)
        self.slots: list[Any] = []
        self.idle: list[Any] = []
        self.t0 = 0
        self.m_start = 0
        self.end_ns = FOREVER  # no new (measured) work after this
        self.remaining = -1  # measured iterations left (-1: unlimited)
        self.lag: list[int] = []
        self.queue: deque[int] = deque()
        self._timers: list[asyncio.TimerHandle] = []
        self.csv: CsvOut | None = None
        # csv.row while --csv writes rows, else None (one lookup on the hot path)
        self.csv_row: Callable[[Conn, str, int, str], None] | None = None

    def _share_conns(self) -> int:
        p = self.part
        c = self.config.concurrency
        return c // p.count + (1 if p.index < c % p.count else 0)

    def build(
        self, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> bytes | H2Request:
        """One request, built once, as this run's protocol sends it."""
        t = self.target
        if self.pool is not None:
            return build_h2_request(method, path, t.host_header, headers, body, t.scheme)
        return build_request(method, path, t.host_header, headers, body, self.config.keepalive)

    def connections(self) -> list[Any]:
        """What holds the run's connections: its Conn slots, or (--h2) the pool's."""
        return self.conns if self.pool is None else self.pool.conns

    async def connect_all(self) -> None:
        """Open the connections before the start; a failure is left for the slot's first
        request to meet (and count)."""
        await asyncio.gather(*(c.connect() for c in self.connections()), return_exceptions=True)

    # -- limits -------------------------------------------------------------------------
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
        grace_ns = int(cfg.effective_grace * NS)
        if cfg.deadline is not None:
            self.deadline_ns = self.t0 + int(cfg.deadline * NS)
        elif self.open:
            self.deadline_ns = self._due(max(self.k_total - 1, 0)) + grace_ns
            if cfg.duration is not None:
                self.deadline_ns = max(self.deadline_ns, self.end_ns + grace_ns)
        elif cfg.duration is not None:
            self.deadline_ns = self.end_ns + grace_ns
        else:
            self.deadline_ns = FOREVER

    def _due(self, k: int) -> int:
        j = k * self.part.count + self.part.index
        return self.t0 + int(j * self.period_ns)

    # -- lifecycle ------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Open connections before the start (closed model: all; open: a few)."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def _maybe_finish(self) -> None:
        raise NotImplementedError

    async def run(self, t0: int | None = None) -> Stats:
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = _pc()
        cfg = self.config
        if cfg.csv_path:
            # this host's part files: process p of --processes P (agent I: slot I*P + p)
            p = cfg.processes
            self.csv = CsvOut(cfg.csv_path, self.part.index % p, p, self.open)
            self.csv_row = self.csv.row
        now = _pc()
        self.t0 = t0 if t0 is not None else now
        while now < self.t0:  # uvloop's timers may fire up to 1 ms early: sleep again
            await asyncio.sleep((self.t0 - now) / NS)
            now = _pc()
        self._setup_limits()
        if self.csv is not None:
            self.csv.m_start = self.m_start
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
            if self.pool is not None:
                for h2c in self.pool.conns:
                    h2c.close()
            await asyncio.sleep(0)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            st = self.stats
            st.end_ns = _pc()
            st.cpu_user = ru1.ru_utime - ru0.ru_utime
            st.cpu_sys = ru1.ru_stime - ru0.ru_stime
            st.wall = (st.end_ns - w0) / NS
            st.connections = sum(c.n_connects for c in self.connections())
            # the fast path does not stamp every completion: take the latest of the slots
            for c in self.conns:
                if c.now > st.last_done_ns and c.t_sched >= self.m_start:
                    st.last_done_ns = c.now
            st.finalize()
            if self.csv is not None:
                self.csv.close()
        return self.stats

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            if not self.finished.done():
                self.finished.set_result(None)

    # -- timers ---------------------------------------------------------------------------
    def _arm_timers(self) -> None:
        # fold once a second, aligned to the measurement start
        self._fold_k = 1
        self._schedule_fold()
        sweep = 0.1 if not self.timeout_ns else min(0.1, self.timeout_ns / NS / 10)
        self._sweep_s = max(sweep, 0.005)
        self._timers.append(self.loop.call_later(self._sweep_s, self._sweep))
        if self.end_ns < FOREVER:
            self._at(self.end_ns, self._maybe_finish)  # -z elapsed: drain
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
        if self.csv is not None:
            self.csv.flush()

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

    # -- the hard deadline ------------------------------------------------------------------
    def _on_deadline(self) -> None:
        if self.done:
            return
        st = self.stats
        for c in self.conns:
            if c.busy:
                if self._measured(c):
                    st.aborted += 1
                    s = c.tag.sink  # the sink of the request in flight
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

    def _measured(self, c: Any) -> bool:
        return c.t_sched >= self.m_start

    # -- the open model's schedule ------------------------------------------------------------
    def _new_slot(self) -> Any:
        raise NotImplementedError

    def _send_open(self, slot: Any, due: int) -> None:
        raise NotImplementedError

    def _sched_tick(self) -> None:
        """Send everything due by now, then sleep until the next due send."""
        if self.done:
            return
        now = _pc()
        st = self.stats
        m_start = self.m_start
        idle = self.idle
        while self.k < self.k_total and self.next_due <= now:
            due = self.next_due
            self.k += 1
            self.next_due = self._due(self.k)
            measured = due >= m_start
            if measured:
                st.scheduled += 1
                self.lag.append(now - due)
            if idle:
                self._send_open(idle.pop(), due)
            elif len(self.slots) < self.c:
                self._send_open(self._new_slot(), due)
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
