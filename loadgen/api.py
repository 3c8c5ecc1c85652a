"""``run`` / ``run_sync``: validate, probe the target, run one or N processes, merge."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from . import scenario_file
from .config import Config, ConfigError, LoadgenError, TargetUnreachable
from .connstats import ConnStats
from .csvout import concat_parts
from .dial import Dialer, describe_failure
from .fastpath import FastRun
from .flows import FlowRun
from .h2slot import greet
from .misbehave import Asked, held_beside
from .report import Result
from .run import BaseRun, Part
from .scenario import load_scenario
from .scenario_types import Scenario
from .stats import Stats

_START_DELAY_NS = 150_000_000  # processes start together this long after all are ready


def new_event_loop(config: Config) -> asyncio.AbstractEventLoop:
    if config.uvloop_enabled:
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


def make_run(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    part: Part | None = None,
    scenario: Scenario | None = None,
) -> BaseRun:
    """The driver for ``config``: flows on the flow path, anything else on the fast path."""
    if scenario is not None and scenario.flows:
        return FlowRun(config, loop, part, scenario)
    return FastRun(config, loop, part, scenario)


def _scenario(config: Config) -> Scenario | None:
    if config.scenario is None:
        if config.scenario_file is not None:
            names = ", ".join(scenario_file.read(config.scenario_file).names)
            raise ConfigError(
                f"--scenario-file: name one of its scenarios with --scenario ({names})"
            )
        return None
    return load_scenario(config.scenario, dict(config.scenario_options), config.scenario_file)


async def probe(config: Config) -> None:
    """One connection to the target as the run will open them (TCP; the TLS handshake for
    https://; with --h2 up to the server's HTTP/2 SETTINGS), then closed; raises
    TargetUnreachable with a one-line reason."""
    t = config.target
    dialer = Dialer(config, ConnStats())  # the probe's connection is not the run's
    loop = asyncio.get_running_loop()
    try:
        if config.h2:
            await greet(loop, dialer, config.h2wire_enabled)
        else:
            transport = await dialer.open(loop, asyncio.Protocol())
            transport.close()
    except OSError as e:
        raise TargetUnreachable(describe_failure(e, t.connect_host, t.port)) from None


async def run(config: Config) -> Result:
    """Run ``config`` on the running event loop (or in ``config.processes`` processes)."""
    config.validate()
    scenario = _scenario(config)
    if config.check_target:
        await probe(config)
    misbehaving: dict[str, Any] = {}
    # Held by this process, beside the load (its workers' too): open before the warm-up.
    async with held_beside(misbehaving_asked(config), misbehaving):
        if config.processes > 1:
            loop = asyncio.get_running_loop()
            stats = await loop.run_in_executor(None, _run_processes, config)
        else:
            r = make_run(config, asyncio.get_running_loop(), part_for(config, 0), scenario)
            await r.prepare()
            t0 = None
            if config.start_at is not None:  # --start-at: the schedule starts then
                now = time.perf_counter_ns()
                t0 = max(now, now + round(config.start_at * 1e9) - time.time_ns())
            stats = await r.run(t0)
    stats.misbehaving = misbehaving or None
    stats.wall_offset_ns = time.time_ns() - time.perf_counter_ns()
    stats.host = socket.gethostname()
    return Result(config, stats, scenario)


def misbehaving_asked(config: Config) -> Asked | None:
    """What ``--misbehaving`` asks of this run (None: nothing)."""
    if not config.misbehaving:
        return None
    target = config.target
    return Asked(
        counts=dict(config.misbehaving),
        host=target.connect_host,
        port=target.port,
        host_header=target.host_header,
        path=config.misbehaving_path or target.path_qs,
        pace=config.misbehaving_pace,
        connect_timeout=config.effective_connect_timeout,
    )


def part_for(config: Config, p: int) -> Part:
    """Process ``p`` of this run's share: with ``--agent I/N`` and ``--processes P``,
    slot ``I*P + p`` of ``N*P`` (see :mod:`loadgen.agent`)."""
    i, n = config.agent or (0, 1)
    count = config.processes
    return Part(i * count + p, n * count)


def run_sync(config: Config) -> Result:
    """Run ``config`` on a fresh event loop (uvloop unless disabled)."""
    config.validate()
    loop = new_event_loop(config)
    try:
        return loop.run_until_complete(run(config))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# --------------------------------------------------------------------------------------
# --processes N
# --------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, proc: subprocess.Popen[bytes], err: Any) -> None:
        self.proc = proc
        self.err = err


def _spawn_worker(config: Config, index: int, count: int) -> _Worker:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # stderr to a file, never a pipe nobody reads while the worker runs
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _run_processes
    p = subprocess.Popen(
        [sys.executable, "-m", "loadgen.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        env=env,
    )
    assert p.stdin is not None
    part = part_for(config, index)
    pickle.dump((config, part.index, part.count), p.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    p.stdin.flush()
    return _Worker(p, err)


def _recv(w: _Worker, expect: str) -> Any:
    p = w.proc
    assert p.stdout is not None
    try:
        msg, payload = pickle.load(p.stdout)
    except (EOFError, pickle.UnpicklingError):
        err = b""
        with contextlib.suppress(Exception):
            p.wait(timeout=5)
        with contextlib.suppress(Exception):
            w.err.seek(0)
            err = w.err.read()
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise LoadgenError(f"a worker process died: {last[0]}") from None
    if msg != expect:
        raise LoadgenError(f"worker process failed: {payload}")
    return payload


def _run_processes(config: Config) -> Stats:
    n = config.processes
    procs: list[_Worker] = []
    try:
        for i in range(n):
            procs.append(_spawn_worker(config, i, n))
        for w in procs:
            _recv(w, "ready")
        t0 = time.monotonic_ns() + _START_DELAY_NS
        if config.start_at is not None:  # --start-at, unless it has already passed
            t0 = max(t0, time.monotonic_ns() + round(config.start_at * 1e9) - time.time_ns())
        for w in procs:
            assert w.proc.stdin is not None
            pickle.dump(("go", t0), w.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            w.proc.stdin.flush()
        merged = Stats(open_model=config.open_model)
        for w in procs:
            st: Stats = _recv(w, "done")
            if not merged.loop:
                merged.loop, merged.parser = st.loop, st.parser
            merged.merge(st)
        merged.processes = n
        if config.csv_path:
            concat_parts(config.csv_path, n)
        return merged
    finally:
        for w in procs:
            proc = w.proc
            with contextlib.suppress(Exception):
                if proc.stdin:
                    proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for f in (proc.stdout, w.err):
                with contextlib.suppress(Exception):
                    if f:
                        f.close()


__all__ = ["ConfigError", "make_run", "new_event_loop", "part_for", "probe", "run", "run_sync"]
