"""Creates the notes table with 100 notes (python schema.py, DATABASE_URL set)."""

import asyncio
import os

import asyncpg


async def main():
    connection = await asyncpg.connect(os.environ["DATABASE_URL"])
    await connection.execute("CREATE TABLE IF NOT EXISTS note (id int PRIMARY KEY, title text)")
    rows = [(n, f"note {n}") for n in range(1, 101)]
    await connection.executemany("INSERT INTO note VALUES ($1, $2) ON CONFLICT DO NOTHING", rows)
    await connection.close()


asyncio.run(main())
