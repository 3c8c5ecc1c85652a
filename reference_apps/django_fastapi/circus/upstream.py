"""One long-lived HTTP client per process for the slow upstream service (sync code)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from django.conf import settings

# pg_sleep and /delay go up to 10 s; leave room for that plus a busy server.
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Enough connections for 50-way fan-out from a few requests at once, all kept alive.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100)


class UpstreamError(Exception):
    """The upstream service is not configured, unreachable, or answered with an error."""


_client: httpx.Client | None = None
_lock = threading.Lock()


def base_url() -> str:
    if not settings.UPSTREAM_URL:
        raise UpstreamError("UPSTREAM_URL is not set")
    return settings.UPSTREAM_URL


def client() -> httpx.Client:
    """The process's client (thread-safe; its connection pool is reused across requests)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(base_url=base_url(), timeout=TIMEOUT, limits=LIMITS)
    return _client


def delay(seconds: float | int) -> Any:
    """GET /delay?seconds=S on the upstream; its JSON."""
    try:
        response = client().get("/delay", params={"seconds": seconds})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamError(f"upstream call failed: {exc!r}") from None
