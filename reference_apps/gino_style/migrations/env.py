"""Alembic's environment: DATABASE_URL, opened by asyncpg as main.py does, and db.py's tables."""

import asyncio
import os
from logging.config import fileConfig

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

# What `alembic revision --autogenerate` and `alembic check` compare the database with.
target_metadata = metadata


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit(
            "Set the DATABASE_URL environment variable, "
            "e.g. DATABASE_URL=postgresql://user:password@127.0.0.1:5432/dbname"
        )
    # asyncpg reads the URL itself, libpq options (?sslmode=...) included, as main.py's pool
    # does; SQLAlchemy only wraps the connection for Alembic.
    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(url)
    )
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
