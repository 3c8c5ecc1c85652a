"""A minimal ASGI app that counts the requests it answers, for exact counts against real
HTTP/2 servers (hypercorn, granian): every path answers ``ok`` and is counted, but
``/__count``, which answers the count so far."""

from __future__ import annotations

from typing import Any

COUNT = {"requests": 0}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/__count":
        body = str(COUNT["requests"]).encode()
    else:
        COUNT["requests"] += 1
        body = b"ok"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
