"""One worker process of ``--processes N`` (``python -m loadgen.worker``).

Talks pickles with the parent over stdin/stdout: receives ``(config, index, count)``,
opens its connections, answers ``("ready", None)``, waits for ``("go", t0)`` (a
``time.monotonic_ns`` instant shared by all workers), runs its share of the one global
schedule and answers ``("done", Stats)`` or ``("error", message)``.  A plain
subprocess (not ``multiprocessing``) so nothing outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
import time
from typing import Any, BinaryIO

from .api import _scenario, make_run, new_event_loop
from .run import Part


def _send(out: BinaryIO, msg: Any) -> None:
    pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def main() -> int:
    # the protocol owns the real stdout; anything printed by scenario code goes to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    try:
        config, index, count = pickle.load(inp)
        loop = new_event_loop(config)
        asyncio.set_event_loop(loop)
        scenario = _scenario(config)
        r = make_run(config, loop, Part(index, count), scenario)
        loop.run_until_complete(r.prepare())
        _send(out, ("ready", None))
        msg, t0_mono = pickle.load(inp)
        if msg != "go":
            return 0
        t0 = t0_mono - time.monotonic_ns() + time.perf_counter_ns()
        stats = loop.run_until_complete(r.run(t0))
        loop.close()
        _send(out, ("done", stats))
        return 0
    except EOFError:
        return 0  # the parent went away
    except BaseException as e:
        with contextlib.suppress(Exception):
            _send(out, ("error", f"{type(e).__name__}: {e}"))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
