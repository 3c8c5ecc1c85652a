"""Variant autocommit-session: /db and /fortunes get their session on a connection in
AUTOCOMMIT, so no BEGIN and no ROLLBACK surround each request's SELECT; the endpoints'
code is the app's own.

Not through app.dependency_overrides: while any override is set, FastAPI 0.165 rebuilds
the overridden dependency's Dependant (its signature read again) on every request, a cost
the app as shipped does not pay. The routes are rebuilt instead, the session parameter
declared with this dependency (same scope as the app's)."""

from collections.abc import AsyncIterator
from typing import Annotated, get_args

from fastapi import Depends
from sb_routes import VariantError, replace_route, with_parameter
from sqlalchemy.ext.asyncio import AsyncSession

import main
from db import SessionLocal, engine

AUTOCOMMIT = engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool


async def autocommit_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal(bind=AUTOCOMMIT) as session:
        yield session


_, shipped = get_args(main.Session)
if shipped.dependency is not main.get_session:
    raise VariantError("variant autocommit-session: the app's Session is not get_session")
AutocommitSession = Annotated[AsyncSession, Depends(autocommit_session, scope=shipped.scope)]

app = main.app
for path, endpoint in (("/db", main.single_query), ("/fortunes", main.fortunes)):
    changed = with_parameter(endpoint, "session", main.Session, AutocommitSession)
    replace_route(app, path, endpoint, changed)
