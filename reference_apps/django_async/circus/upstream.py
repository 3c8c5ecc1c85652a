"""Calls to the slow upstream service: one long-lived httpx.AsyncClient per process, and a
fanout of concurrent tasks on the event loop."""

import asyncio

import httpx
from django.conf import settings

_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    """The process's client, made on first use inside the server's event loop.

    It keeps connections alive between requests. Django has no lifespan hook to close it;
    the process exit does.
    """
    global _client
    if _client is None:  # no lock: only the event loop's thread runs this
        _client = httpx.AsyncClient(
            base_url=settings.UPSTREAM_URL,
            timeout=httpx.Timeout(15.0, connect=5.0),  # the upstream sleeps <= 10 s
            # Room for many concurrent fanouts, so the client is not the bottleneck.
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )
    return _client


async def delay(seconds: float) -> object:
    """GET /delay?seconds=S on the upstream; its JSON. Raises httpx.HTTPError or ValueError."""
    response = await client().get("/delay", params={"seconds": seconds})
    response.raise_for_status()
    return response.json()


async def fanout(n: int, seconds: float) -> list[object]:
    """n concurrent delay() calls as tasks on this event loop; results in call order."""
    return list(await asyncio.gather(*(delay(seconds) for _ in range(n))))
