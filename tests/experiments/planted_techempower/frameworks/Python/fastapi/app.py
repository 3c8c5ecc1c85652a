"""A planted stand-in for TechEmpower's frameworks/Python/fastapi/app.py (tests only): the
same layout and the same database literals the experiment rewrites, a minimal raw asyncpg
app behind them. Not TechEmpower's code."""

import os
from contextlib import asynccontextmanager
from html import escape
from random import randint

import asyncpg
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.pool = await asyncpg.create_pool(
        user=os.getenv("PGUSER", "benchmarkdbuser"),
        password=os.getenv("PGPASS", "benchmarkdbpass"),
        database="hello_world",
        host="tfb-database",
        port=5432,
        min_size=1,
        max_size=4,
    )
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/db")
async def db():
    row_id = randint(1, 10000)
    async with app.state.pool.acquire() as connection:
        number = await connection.fetchval("SELECT randomnumber FROM world WHERE id = $1", row_id)
    return JSONResponse({"id": row_id, "randomNumber": number})


@app.get("/fortunes")
async def fortunes():
    async with app.state.pool.acquire() as connection:
        rows = [tuple(r) for r in await connection.fetch("SELECT id, message FROM fortune")]
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in rows)
    return HTMLResponse(f"<!DOCTYPE html><html><body><table>{cells}</table></body></html>")
