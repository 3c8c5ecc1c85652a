"""``run`` / ``run_sync``: validate, probe the target, run one or N processes, merge."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import time
from multiprocessing.connection import Connection
from typing import Any

from .config import Config, ConfigError, LoadgenError, TargetUnreachable
from .requester import CSV_HEADER, Part, make_run
from .result import Result
from .scenario import Scenario, load_scenario
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


def _scenario(config: Config) -> Scenario | None:
    if config.scenario is None:
        return None
    return load_scenario(config.scenario, dict(config.scenario_options))


async def probe(config: Config) -> None:
    """One TCP connect to the target; raises TargetUnreachable with a one-line reason."""
    t = config.target
    try:
        _r, w = await asyncio.wait_for(
            asyncio.open_connection(t.connect_host, t.port),
            timeout=config.effective_connect_timeout,
        )
    except TimeoutError:
        raise TargetUnreachable(f"cannot connect to {t.connect_host}:{t.port}: timed out") from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise TargetUnreachable(f"cannot connect to {t.connect_host}:{t.port}: {reason}") from None
    w.close()
    with contextlib.suppress(Exception):
        await w.wait_closed()


async def run(config: Config) -> Result:
    """Run ``config`` on the running event loop (or in ``config.processes`` processes)."""
    config.validate()
    scenario = _scenario(config)
    if config.check_target:
        await probe(config)
    if config.processes > 1:
        loop = asyncio.get_running_loop()
        stats = await loop.run_in_executor(None, _run_processes, config)
    else:
        r = make_run(config, asyncio.get_running_loop(), None, scenario)
        await r.prepare()
        stats = await r.run()
    return Result(config, stats, scenario)


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
def _child(config: Config, index: int, count: int, pipe: Connection) -> None:
    try:
        loop = new_event_loop(config)
        asyncio.set_event_loop(loop)
        scenario = _scenario(config)
        r = make_run(config, loop, Part(index, count), scenario)
        loop.run_until_complete(r.prepare())
        pipe.send(("ready", None))
        msg, t0_mono = pipe.recv()
        if msg != "go":
            return
        t0 = t0_mono - time.monotonic_ns() + time.perf_counter_ns()
        stats = loop.run_until_complete(r.run(t0))
        pipe.send(("done", stats))
        loop.close()
    except BaseException as e:  # report, never hang the parent
        with contextlib.suppress(Exception):
            pipe.send(("error", f"{type(e).__name__}: {e}"))


def _run_processes(config: Config) -> Stats:
    n = config.processes
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[Any] = []
    try:
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_child, args=(config, i, n, child), daemon=True)
            p.start()
            child.close()
            pipes.append(parent)
            procs.append(p)
        for pipe in pipes:
            if not pipe.poll(60):
                raise LoadgenError("a worker process did not start within 60 s")
            msg, payload = pipe.recv()
            if msg != "ready":
                raise LoadgenError(f"worker process failed: {payload}")
        t0 = time.monotonic_ns() + _START_DELAY_NS
        for pipe in pipes:
            pipe.send(("go", t0))
        merged = Stats(open_model=config.open_model)
        for pipe in pipes:
            msg, payload = pipe.recv()
            if msg != "done":
                raise LoadgenError(f"worker process failed: {payload}")
            if not merged.loop:
                merged.loop, merged.parser = payload.loop, payload.parser
            merged.merge(payload)
        merged.processes = n
        if config.csv_path:
            _concat_csv(config.csv_path, n)
        return merged
    except EOFError:
        raise LoadgenError("a worker process died") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _concat_csv(path: str, n: int) -> None:
    with open(path, "w", newline="") as out:
        out.write(",".join(CSV_HEADER) + "\r\n")
        for i in range(n):
            part = f"{path}.part{i}"
            if os.path.exists(part):
                with open(part, newline="") as f:
                    shutil.copyfileobj(f, out)
                os.unlink(part)


__all__ = ["ConfigError", "new_event_loop", "probe", "run", "run_sync"]
