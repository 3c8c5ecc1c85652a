"""The database engine and the per-request session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    raise RuntimeError(
        "Set the DATABASE_URL environment variable, "
        "e.g. DATABASE_URL=postgresql://user:password@127.0.0.1:5432/dbname"
    )

# How long a request waits for a pooled connection before the app answers 503.
DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", "10"))

# Created at import, as SQLAlchemy recommends: the engine connects lazily, on first use,
# so this works under servers that run no ASGI lifespan (daphne) as well as those that do.
engine = create_async_engine(
    "postgresql+asyncpg://",
    # asyncpg reads DATABASE_URL itself, libpq options included (?sslmode=require,
    # ?application_name=...); from SQLAlchemy's URL they would reach asyncpg as keyword
    # arguments it does not take.
    async_creator=lambda: asyncpg.connect(DATABASE_URL),
    # One pool per worker process, DB_POOL_SIZE connections and no overflow, so that
    # workers x DB_POOL_SIZE is exactly what the server may open on PostgreSQL.
    pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
    max_overflow=0,
    # A request that finds every connection busy waits this long, then gets a 503
    # (main.database_busy) instead of queueing without bound.
    pool_timeout=DB_POOL_TIMEOUT,
)

# expire_on_commit=False: after a commit, attributes stay readable without a refresh,
# which under asyncio would otherwise be an implicit (and forbidden) lazy load.
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and its connection returned) when it ends."""
    async with SessionLocal() as session:
        yield session
