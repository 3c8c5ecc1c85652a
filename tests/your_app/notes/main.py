"""Notes: a small Starlette service on asyncpg, benched as it is (docs/your-app.md)."""

import os
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


@asynccontextmanager
async def lifespan(app):
    size = int(os.environ.get("POOL_SIZE", "5"))
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], max_size=size)
    yield
    await app.state.pool.close()


async def health(request):
    return JSONResponse({"status": "ok"})


async def note(request):
    query = "SELECT id, title FROM note WHERE id = $1"
    row = await request.app.state.pool.fetchrow(query, request.path_params["id"])
    if row is None:
        return JSONResponse({"detail": "no such note"}, status_code=404)
    return JSONResponse({"id": row["id"], "title": row["title"]})


async def latest(request):
    query = "SELECT id, title FROM note ORDER BY id DESC LIMIT 10"
    rows = await request.app.state.pool.fetch(query)
    return JSONResponse([{"id": row["id"], "title": row["title"]} for row in rows])


routes = [Route("/health", health), Route("/notes/{id:int}", note), Route("/notes", latest)]
app = Starlette(routes=routes, lifespan=lifespan)
