"""Variant session-dependency: /db and /fortunes take their session from the app's
``get_session`` yield dependency with FastAPI's default scope, FastAPI's documented
pattern and what the app did before it opened these endpoints' sessions inline: the
session closes (ROLLBACK, connection back to the pool) only after the response has been
sent, so a request holds its pooled connection through rendering and the send. The
endpoints' bodies are the app's as they were then."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sb_routes import opens_its_session_inline, replace_route
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import main
from main import app, fetch_world, get_session, random_id, templates
from models import Fortune

DependencySession = Annotated[AsyncSession, Depends(get_session)]


async def single_query(session: DependencySession) -> dict[str, int]:
    world = await fetch_world(session, random_id())
    return {"id": world.id, "randomNumber": world.randomnumber}


async def fortunes(request: Request, session: DependencySession) -> HTMLResponse:
    rows = list(await session.scalars(select(Fortune)))
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


for path, shipped, changed in (
    ("/db", main.single_query, single_query),
    ("/fortunes", main.fortunes, fortunes),
):
    opens_its_session_inline(shipped)
    replace_route(app, path, shipped, changed)
