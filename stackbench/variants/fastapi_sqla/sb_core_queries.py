"""Variant core-queries: /db and /fortunes select through SQLAlchemy Core on the mapped
tables (Row tuples: no ORM objects, no identity map, no unit of work), in a session
opened as the app opens it, answering the same bytes."""

from typing import NamedTuple

from fastapi import Request
from fastapi.responses import HTMLResponse
from sb_routes import replace_route
from sqlalchemy import select

import main
from main import SessionLocal, app, random_id, templates
from models import Fortune, World

WORLD = World.__table__
FORTUNE = Fortune.__table__


class Extra(NamedTuple):  # the fortune added at request time, shaped like a Row
    id: int
    message: str


async def single_query() -> dict[str, int]:
    statement = select(WORLD.c.id, WORLD.c.randomnumber).where(WORLD.c.id == random_id())
    async with SessionLocal() as session:
        world = (await session.execute(statement)).one()
    return {"id": world.id, "randomNumber": world.randomnumber}


async def fortunes(request: Request) -> HTMLResponse:
    async with SessionLocal() as session:
        rows: list[object] = list(await session.execute(select(FORTUNE.c.id, FORTUNE.c.message)))
    rows.append(Extra(0, "Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)  # type: ignore[attr-defined]
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


replace_route(app, "/db", main.single_query, single_query)
replace_route(app, "/fortunes", main.fortunes, fortunes)
