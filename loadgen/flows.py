"""The flow path: flow scenarios (``async def flow(user)``), closed and open model.

One task per iteration, one future per request.  Closed model: each virtual user loops
over iterations; open model: the shared schedule (:class:`~loadgen.run.BaseRun`)
starts an iteration per due send on an idle user.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from .config import Config
from .protocol import FullConn
from .record import record_error, record_response
from .run import NS, BaseRun, Part
from .scenario_types import Scenario
from .stats import Sink
from .user import Response, User

_pc = time.perf_counter_ns


class _FlowReq:
    """The request in flight on a user's connection (``conn.tag``: one per user,
    refilled for each request, as a user has one request in flight at a time)."""

    __slots__ = ("expect", "fut", "name", "sink", "user")

    def __init__(self, user: User) -> None:
        self.user = user
        self.fut: asyncio.Future[Response] | None = None
        self.name = ""
        self.expect: frozenset[int] | None = None
        self.sink: Sink | None = None


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
        self.flows = [f for _, f in scenario.flows]
        self.weights = [w for w, _ in scenario.flows]
        self.users: list[User] = []
        self.slots = self.users
        self.tasks: set[asyncio.Task[Any]] = set()
        self.active_loops = 0
        self.running_iters = 0

    def make_user_conn(self, user: User) -> Any:
        """The user's connection: its own (HTTP/1.1), or a stream slot (--h2)."""
        owner = _UserOwner(self, user)
        if self.pool is not None:
            conn: Any = self.pool.new_slot(owner, full=True)
        else:
            conn = FullConn(owner, self.loop, self.dialer, self.use_httptools)
            conn.keepalive = self.config.keepalive
        conn.tag = _FlowReq(user)
        self.conns.append(conn)
        return conn

    def _new_slot(self) -> User:
        u = User(
            self,
            len(self.users),
            random.Random(self.rng.random()),
            self.scenario.options,
            self.target.base_url,
        )
        u.conn = self.make_user_conn(u)
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
            self._new_slot()
        await self.connect_all()
        self.idle = list(self.users)

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

    # -- open model: the schedule (BaseRun._sched_tick) calls _send_open -------------------
    def _send_open(self, user: User, due: int) -> None:
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
            self._send_open(user, self.queue.popleft())
        else:
            self.idle.append(user)
            self._maybe_finish()

    # -- one request of a flow --------------------------------------------------------------
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
        if not path.startswith("/"):
            path = "/" + path
        headers = tuple(hdrs) + tuple(self.config.headers)
        req = self.build(method, self.target.base_path + path, headers, data)
        conn: Any = user.conn  # a FullConn, or an H2Slot (--h2)
        fut: asyncio.Future[Response] = self.loop.create_future()
        pending: _FlowReq = conn.tag
        pending.fut = fut
        pending.name = name
        pending.expect = expect
        pending.sink = self.stats.sink(name, expect)
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
        req: _FlowReq = conn.tag
        fut, sink = req.fut, req.sink
        assert fut is not None and sink is not None
        if conn.t_sched >= 0:
            record_response(self, conn, sink, req.expect)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in conn.headers]
        req.user.absorb_cookies(headers)
        resp = Response(req.name, conn.status, headers, conn.body, (conn.now - conn.t_start) / NS)
        if not fut.done():
            fut.set_result(resp)

    def flow_error(self, conn: FullConn, kind: str) -> None:
        self.inflight -= 1
        req: _FlowReq = conn.tag
        fut, sink = req.fut, req.sink
        assert fut is not None and sink is not None
        if conn.t_sched >= 0:
            record_error(self, conn, sink, kind)
        resp = Response(req.name, 0, [], b"", (_pc() - conn.t_start) / NS, kind)
        if not fut.done():
            fut.set_result(resp)

    def _measured(self, c: Any) -> bool:
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
