"""Run inside fastapi_sqla's directory (its cwd, a variant's directory on PYTHONPATH): import
MODULE (``main`` or a variant's ``sb_*``), serve /db and /fortunes in process through
httpx's ASGI transport on the real database, and print what FastAPI, SQLAlchemy and Jinja2
did for each, as JSON:

- ``orm_loads``: ORM objects SQLAlchemy built (its ``load`` event on World and Fortune);
- ``serialized``: calls of FastAPI's serialize_response (the response model's validation
  and serialization; a returned Response skips it);
- ``renders``: Jinja2 template renders;
- ``order``: when the request's AsyncSession closed relative to the response body's send;
- ``status`` and ``body``.

A probe, not a test module: tests/harness/test_fastapi_variants.py runs it.
"""

import asyncio
import importlib
import json
import sys
from typing import Any

import fastapi.routing
import httpx
import jinja2.environment
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from models import Fortune, World

counts: dict[str, Any] = {}


def reset() -> None:
    counts.update(orm_loads=0, serialized=0, renders=0, order=[])


def count(key: str, original: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return original(*args, **kwargs)

    return counted


for model in (World, Fortune):
    event.listen(model, "load", lambda *_: counts.__setitem__("orm_loads", counts["orm_loads"] + 1))
jinja2.environment.Template.render = count("renders", jinja2.environment.Template.render)
_serialize = fastapi.routing.serialize_response


async def serialize(**kwargs: Any) -> Any:
    counts["serialized"] += 1
    return await _serialize(**kwargs)


fastapi.routing.serialize_response = serialize
_close = AsyncSession.close


async def close(self: AsyncSession) -> None:
    counts["order"].append("session closed")
    await _close(self)


AsyncSession.close = close  # type: ignore[method-assign]


def watched(app: Any) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                counts["order"].append("body sent")
            await send(message)

        await app(scope, receive, sending)

    return asgi


async def probe(module: str) -> dict[str, Any]:
    app = importlib.import_module(module).app
    transport = httpx.ASGITransport(app=watched(app))
    out = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for path in ("/db", "/fortunes"):
            reset()
            response = await client.get(path)
            await asyncio.sleep(0.05)  # a request-scoped session closes after the send
            out[path] = {**counts, "status": response.status_code, "body": response.text}
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1]))))
