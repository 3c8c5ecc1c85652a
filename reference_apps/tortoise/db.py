"""Tortoise's configuration, and its start and stop."""

from __future__ import annotations

import asyncio
import os

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url


def tortoise_config() -> dict:
    # DATABASE_URL is postgresql://user:password@host:port/dbname; Tortoise picks its
    # driver from the scheme, and "asyncpg" names the asyncpg backend.
    url = os.environ["DATABASE_URL"].split("://", 1)[1]
    connection = expand_db_url(f"asyncpg://{url}")
    # One asyncpg pool per worker process, at most DB_POOL_SIZE connections.
    connection["credentials"]["maxsize"] = int(os.environ.get("DB_POOL_SIZE", "10"))
    return {
        "connections": {"default": connection},
        "apps": {
            "circus": {
                "models": ["models"],
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
    }


# What the `tortoise` CLI reads: `tortoise -c db.TORTOISE_ORM migrate` creates the tables.
TORTOISE_ORM = tortoise_config()


_init_lock = asyncio.Lock()
_ready = False


async def init_orm() -> None:
    """Register the models and the connection (the pool itself opens on first query).

    Called from the ASGI lifespan; servers that run no lifespan (daphne) reach it from
    the first request instead (see ``orm_ready``), hence the lock and the flag.
    """
    global _ready
    async with _init_lock:
        if not _ready:
            # Tortoise 1.x keeps its state in a context variable: the lifespan's (or the
            # first request's) task would be the only one to see it. The global fallback
            # (what tortoise.contrib.fastapi.RegisterTortoise enables) shares it with every
            # request of this worker process.
            await Tortoise.init(config=tortoise_config(), _enable_global_fallback=True)
            _ready = True


async def orm_ready() -> None:
    """A dependency of every route that queries: a no-op once the ORM is initialised."""
    if not _ready:
        await init_orm()


async def close_orm() -> None:
    await Tortoise.close_connections()
