"""The database engine and the per-request session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine


def async_database_url(url: str) -> str:
    """DATABASE_URL is a plain ``postgresql://`` URL; SQLAlchemy needs the driver named."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


# Created at import, as SQLAlchemy recommends: the engine connects lazily, on first use,
# so this works under servers that run no ASGI lifespan (daphne) as well as those that do.
engine = create_async_engine(
    async_database_url(os.environ["DATABASE_URL"]),
    # One pool per worker process, DB_POOL_SIZE connections and no overflow, so that
    # workers x DB_POOL_SIZE is exactly what the server may open on PostgreSQL.
    pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
    max_overflow=0,
)

# expire_on_commit=False: after a commit, attributes stay readable without a refresh,
# which under asyncio would otherwise be an implicit (and forbidden) lazy load.
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request, closed (and its connection returned) when it ends."""
    async with SessionLocal() as session:
        yield session
