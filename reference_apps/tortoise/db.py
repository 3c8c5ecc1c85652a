"""Tortoise's configuration, and its start and stop."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.config_generator import expand_db_url

# How long a request waits for a pooled connection before the app answers 503.
DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", "10"))


async def reset_connection(connection: asyncpg.Connection) -> None:
    """What asyncpg runs when a connection goes back to the pool.

    Its default sends four statements at every release (UNLISTEN *, SELECT
    pg_advisory_unlock_all(), CLOSE ALL, RESET ALL). This app never listens, takes advisory
    locks, keeps cursors or SETs anything, so only an interrupted transaction needs undoing.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class BoundedPool:
    """asyncpg's pool as Tortoise uses it, except that acquiring a connection waits at most
    DB_POOL_TIMEOUT seconds, then raises TimeoutError (main.database_busy answers 503).

    Tortoise acquires with no timeout and has no setting for one: a request would wait for
    a connection as long as the others hold theirs.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def acquire(self, *, timeout: float | None = None) -> Any:
        return self._pool.acquire(timeout=DB_POOL_TIMEOUT if timeout is None else timeout)

    def __getattr__(self, name: str) -> Any:  # release, close, terminate, ...: asyncpg's
        return getattr(self._pool, name)


class BoundedWaitClient(AsyncpgDBClient):
    """Tortoise's asyncpg client on a BoundedPool."""

    async def create_pool(self, **kwargs: Any) -> Any:
        return BoundedPool(await super().create_pool(**kwargs))


# Tortoise imports the module its config names as "engine" and takes this class from it.
client_class = BoundedWaitClient


def tortoise_config() -> dict:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise RuntimeError(
            "Set the DATABASE_URL environment variable, "
            "e.g. DATABASE_URL=postgresql://user:password@127.0.0.1:5432/dbname"
        )
    # DATABASE_URL is postgresql://user:password@host:port/dbname[?options]; Tortoise picks
    # its driver from the scheme, and "asyncpg" names the asyncpg backend.
    connection = expand_db_url("asyncpg://" + url.split("://", 1)[1])
    # Query options become keyword arguments of asyncpg's pool. application_name is one
    # Tortoise knows; libpq's sslmode is asyncpg's `ssl` (same values: require, verify-full...).
    credentials = connection["credentials"]
    if "sslmode" in credentials:
        credentials["ssl"] = credentials.pop("sslmode")
    # One asyncpg pool per worker process, at most DB_POOL_SIZE connections.
    credentials["maxsize"] = int(os.environ.get("DB_POOL_SIZE", "10"))
    credentials["reset"] = reset_connection  # passed on to asyncpg's pool
    connection["engine"] = "db"  # this module: client_class, asyncpg's with a bounded wait
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
