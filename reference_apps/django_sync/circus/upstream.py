"""Calls to the slow upstream service: one long-lived client per process, and a fanout that
uses whatever concurrency the server gives this process (greenlets or threads)."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import urllib3
from django.conf import settings

from project.concurrency import green_threads

# urllib3 (the engine under `requests`), not httpx: under gevent, 100 concurrent httpx
# calls cost 6-11 ms of CPU each against 0.4 ms here, and CPU is what a fanout shares.
UpstreamError = urllib3.exceptions.HTTPError

_pool: urllib3.PoolManager | None = None
_lock = threading.Lock()


def pool() -> urllib3.PoolManager:
    """The process's connection pool, made on first use (after the server forked its workers).

    It keeps connections alive between requests and is safe to share between threads.
    """
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = urllib3.PoolManager(
                    maxsize=200,  # room for many concurrent fanouts: the client is no bottleneck
                    block=False,  # past 200, open (and close) extra connections, never wait
                    timeout=urllib3.Timeout(connect=5.0, read=15.0),  # upstream sleeps <= 10 s
                    retries=False,
                )
    return _pool


def delay(seconds: float) -> object:
    """GET /delay?seconds=S on the upstream; its JSON. Raises UpstreamError or ValueError."""
    response = pool().request("GET", f"{settings.UPSTREAM_URL}/delay", fields={"seconds": seconds})
    if response.status != 200:
        raise UpstreamError(f"upstream answered {response.status}")
    return json.loads(response.data)


def fanout(n: int, seconds: float) -> tuple[list[object], str]:
    """n concurrent delay() calls; (results in call order, the concurrency used)."""
    mode = green_threads() or "threads"
    calls = [seconds] * n
    if mode == "gevent":
        import gevent.pool

        return gevent.pool.Pool(n).map(delay, calls), mode
    if mode == "eventlet":
        import eventlet

        return list(eventlet.GreenPool(n).imap(delay, calls)), mode
    # One thread per call, so concurrent fanouts never queue behind a shared pool;
    # starting a thread costs microseconds next to a network wait.
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(delay, calls)), mode
