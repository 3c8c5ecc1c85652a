"""Variant no-response-model: /db returns a JSONResponse itself, with response_model=None,
so FastAPI neither validates its dict[str, int] nor serializes it through Pydantic (the
app's annotation makes FastAPI build that response model). /fortunes has none to remove."""

from fastapi.responses import JSONResponse
from sb_routes import VariantError, find_route, replace_route

import main
from main import SessionLocal, app, fetch_world, random_id


async def single_query() -> JSONResponse:
    async with SessionLocal() as session:
        world = await fetch_world(session, random_id())
    return JSONResponse({"id": world.id, "randomNumber": world.randomnumber})


if find_route(app, "/db", main.single_query)[1].response_field is None:
    raise VariantError("variant no-response-model: /db has no response model to remove")
replace_route(app, "/db", main.single_query, single_query, response_model=None)
