"""The fast path: plain URLs and endpoint scenarios, closed and open model.

No task or future per request: each :class:`_FastConn` records its response inline
and sends the next request on the spot (one Python call per response from the
parser).  The requests come from a precomputed cycle of :data:`SEQ_LEN` prebuilt
requests (picked by weight for an endpoint scenario).  With ``--h2`` the slots are
HTTP/2 streams (:mod:`loadgen.h2protocol`), answered through :meth:`FastRun.on_response`.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, cast

from .config import Config
from .memo import verify
from .protocol import Conn
from .record import record_error, record_response
from .run import BaseRun, Part
from .scenario_types import Endpoint, Scenario
from .stats import Sink

_pc = time.perf_counter_ns
SEQ_LEN = 4096  # length of the precomputed request cycle (power of two)
SEQ_MASK = SEQ_LEN - 1


class _Req:
    """One prebuilt request of the cycle."""

    __slots__ = ("data", "endpoint", "head", "sample", "sink")

    def __init__(self, sink: Sink, data: Any, head: bool, sample: bool, ep: Endpoint | None):
        self.sink = sink
        self.data = data
        self.head = head
        self.sample = sample
        self.endpoint = ep


class _FastConn(Conn):
    """A slot of :class:`FastRun` whose response callback records the sample and sends
    the next request inline (one Python call per response on the hot path).

    It also remembers the last response it verified (``memo``, see :mod:`loadgen.memo`):
    a read that repeats those bytes exactly, with the parser between messages, is that
    response again and skips the parser."""

    __slots__ = ("inmsg", "memo", "memo_nbody", "memo_off", "memo_status", "run", "seen")

    run: FastRun

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.inmsg = False  # the parser is inside a message (between begin and complete)
        self.memo: bytes | None = None  # a verified response: exactly one, keep-alive
        self.memo_status = 0
        self.memo_nbody = 0
        self.seen: bytes | None = None  # the last first read (a memo candidate)
        self.memo_off: bytes | None = None  # a candidate that failed verification

    def _make_parser(self) -> object:
        self.inmsg = False  # a fresh parser is between messages
        return super()._make_parser()

    def send_closed(self) -> None:
        """Closed model: send this slot's next request (its first one, or the one after
        an error)."""
        self.on_message_complete(send_only=True)

    def on_message_begin(self) -> None:
        self.inmsg = True

    def data_received(self, data: bytes) -> None:
        if (
            data == self.memo
            and self.busy
            and not (self.inmsg or self.t_first or self.keep_body or self._head)
        ):
            # the verified response again, read whole from a parser between messages
            self.now = self.t_first = _pc()
            self.nbody = self.memo_nbody
            self.on_message_complete(self.memo_status)
            return
        if data == self.seen and self._remember(data):
            self.data_received(data)  # now a repeat of the memo
            return
        self.seen = data
        Conn.data_received(self, data)

    def _remember(self, data: bytes) -> bool:
        """``data`` is the second first read in a row with these bytes: make it the memo
        if the parser is between messages and :func:`verify` accepts it (once per
        distinct read: a rejected one is not verified again)."""
        if (
            data == self.memo_off
            or not self.run.memo
            or self.inmsg
            or self.t_first
            or self.keep_body
            or self._head
            or not self.busy
        ):
            return False
        v = verify(self._factory, data)
        if v is None:
            self.memo_off = data
            return False
        self.memo = data
        self.memo_status, self.memo_nbody = v
        return True

    # -- one response done: record it, send the next request ---------------------------------
    def on_message_complete(self, memo_status: int = 0, send_only: bool = False) -> None:
        """The parser's callback: record the response, then send the next request.

        The memo enters it with the status of the repeated response (kept alive, by
        verification).  It also holds THE closed-model send (the only copy):
        :meth:`send_closed` enters with ``send_only`` to skip the recording, so that the
        send stays inline on the hot path without a second copy of it."""
        run = self.run
        if not send_only:
            if memo_status:
                st = memo_status
                keep = True
            else:
                self.inmsg = False
                if not self.busy:
                    return
                parser = self.parser
                st = parser.get_status_code()
                if st < 200 and self._interim(st):
                    return
                keep = parser.should_keep_alive()
            self.busy = False
            self.status = st
            if (not keep or not self.keepalive) and self.transport:
                self.closing = True  # the response ends the connection
                self.transport.close()
            req: _Req = self.tag
            if self.t_sched >= run.m_start:
                # record_response(), inline
                now = self.now
                sink = req.sink
                tw = self.t_written
                tf = self.t_first
                sink.raw.extend((now - self.t_start, tw - self.t_write, tf - tw, now - tf))
                if self.connect_ns:
                    sink.connect.append(self.connect_ns)
                if run.open:
                    sink.clat.append(now - self.t_sched)
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
                if run.csv_row is not None:
                    run.csv_row(self, sink.name, st, "")
            if run.open:
                run.inflight -= 1
                run._next_open(self)
                return
            # closed model: the next request goes out right now, so this slot's request
            # stays counted in flight, unless the slot stops
            t = _pc()
            if t >= run.gate_ns and run._gate(t):
                run.inflight -= 1
                run._stop(self)
                return
        else:
            # closed model: a slot's first request, or the one after an error
            t = _pc()
            if t >= run.gate_ns and run._gate(t):
                run._stop(self)
                return
            run.inflight += 1
        if run.plain:  # a plain URL: its one request, already in self.tag
            req = self.tag
        else:
            i = run.seq_i
            req = run.seq[i]
            run.seq_i = (i + 1) & SEQ_MASK
            self.tag = req
            self.keep_body = req.sample
        tr = self.transport
        if tr is not None and not self.closing and req.head == self._head and not self.body_parts:
            self.busy = True
            self.t_sched = self.t_start = self.t_write = t
            self.t_first = self.nbody = self.connect_ns = 0
            tr.write(req.data)
            self.t_written = _pc()
        else:
            self.t_sched = t
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
        self.slots = self.conns
        self.seq = self._build_cycle()
        self.seq_i = 0
        self.plain = scenario is None  # one request, sent again and again
        self.gate_ns = 0  # set by start()
        self.stopped = 0  # closed model: connections that stopped
        # exact repeats of a verified response skip the parser (loadgen.memo)
        no_memo = os.environ.get("LOADGEN_NO_MEMO", "").strip().lower()
        self.memo = no_memo in ("", "0", "false", "no")

    def _build_cycle(self) -> list[_Req]:
        cfg = self.config
        t = self.target
        sc = self.scenario
        rng = self.rng
        if sc is None:
            sink = self.stats.sink(t.path_qs, None)
            data = self.build(cfg.method, t.path_qs, cfg.headers, cfg.body)
            head = cfg.method == "HEAD"
            return [_Req(sink, data, head, False, None)] * SEQ_LEN
        eps = sc.endpoints
        per_ep: list[list[Any]] = []
        for ep in eps:
            variants = []
            nvar = max(1, ep.variants) if callable(ep.path) else 1
            for _ in range(nvar):
                path = ep.path(rng) if callable(ep.path) else ep.path
                full = t.base_path + path
                headers = tuple(ep.headers) + tuple(cfg.headers)
                variants.append(self.build(ep.method, full, headers, ep.body))
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
            # Checked responses are drawn at random, 1 in sample_every on average: a fixed
            # stride could fall between the wrong answers of a server that is wrong
            # periodically (every 20th response, say) and never see one.
            sample = ep.validate is not None and rng.random() * max(1, ep.sample_every) < 1
            seq.append(_Req(sink, data, ep.method == "HEAD", sample, ep))
        return seq

    def _new_slot(self) -> Any:
        if self.pool is not None:  # --h2: a stream slot
            slot: Any = self.pool.new_slot(self)
        else:
            slot = _FastConn(self, self.loop, self.dialer, self.use_httptools)
            slot.run = self
            slot.keepalive = self.config.keepalive
        slot.tag = self.seq[0]  # a plain URL's one request (a scenario's: set per send)
        self.conns.append(slot)
        return slot

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
            self._new_slot()
        await self.connect_all()
        if self.open:
            self.idle = list(self.conns)

    def start(self) -> None:
        # closed model: sends before gate_ns need no check; from it on _gate() decides
        # (with -n every measured send is counted there)
        self.gate_ns = self.m_start if self.remaining >= 0 else self.end_ns
        if self.open:
            self._sched_tick()
        else:
            for c in list(self.conns):
                self._send_closed(c)
        self._maybe_finish()

    def _send_closed(self, slot: Any) -> None:
        if self.pool is None:
            cast(_FastConn, slot).send_closed()
        else:
            self._send_next(slot)

    def _gate(self, t: int) -> bool:
        """Closed model, a send at ``t`` >= ``gate_ns``: True if the slot must stop (-z
        elapsed, or -n sent); else count the send against -n."""
        if t < self.m_start:
            return False
        if t >= self.end_ns or self.remaining == 0:
            return True
        if self.remaining > 0:
            self.remaining -= 1
        return False

    def _stop(self, conn: Conn) -> None:
        """Closed model: ``conn`` sends no more (-n reached, or -z elapsed)."""
        self.stopped += 1
        if self.stopped == len(self.conns):
            self._maybe_finish()

    # -- open model -------------------------------------------------------------------------
    def _send_open(self, conn: Conn, due: int) -> None:
        req = self.seq[self.seq_i]
        self.seq_i = (self.seq_i + 1) & SEQ_MASK
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

    # -- callbacks from Conn (responses: _FastConn.on_message_complete) ----------------------
    def on_error(self, conn: Conn, kind: str) -> None:
        self.inflight -= 1
        if conn.t_sched >= self.m_start:
            record_error(self, conn, conn.tag.sink, kind)
        if self.done:
            return
        if self.open:
            self._next_open(conn)
        else:
            self._send_closed(conn)

    # -- --h2: _FastConn.on_message_complete's steps as calls (inline on HTTP/1.1's hot path;
    # beside the h2 library's tens of microseconds per response, calls are noise)
    def on_response(self, slot: Any) -> None:
        req: _Req = slot.tag
        if slot.t_sched >= self.m_start:
            sink = req.sink
            record_response(self, slot, sink, sink.expect)
            if slot.keep_body:
                self._validate(slot, req)
        self.inflight -= 1
        if self.open:
            self._next_open(slot)
        else:
            self._send_next(slot)

    def _send_next(self, slot: Any) -> None:
        """Closed model: the slot's next request, unless the slot stops."""
        t = _pc()
        if t >= self.gate_ns and self._gate(t):
            self._stop(slot)
            return
        self.inflight += 1
        i = self.seq_i
        req = self.seq[i]
        self.seq_i = (i + 1) & SEQ_MASK
        slot.tag = req
        slot.keep_body = req.sample
        slot.t_sched = t
        slot.request(req.data)

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
