"""Calls to the slow upstream service: one long-lived client per process, and a fanout that
uses whatever concurrency the server gives this process (greenlets or threads)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.conf import settings

from project.concurrency import green_threads

_client: httpx.Client | None = None
_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's client, made on first use (after the server forked its workers).

    It keeps connections alive between requests; it is safe to share between threads.
    """
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    base_url=settings.UPSTREAM_URL,
                    timeout=httpx.Timeout(15.0, connect=5.0),  # the upstream sleeps <= 10 s
                    # Room for many concurrent fanouts, so the client is not the bottleneck.
                    limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
                )
    return _client


def delay(seconds: float) -> object:
    """GET /delay?seconds=S on the upstream; its JSON. Raises httpx.HTTPError or ValueError."""
    response = client().get("/delay", params={"seconds": seconds})
    response.raise_for_status()
    return response.json()


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
