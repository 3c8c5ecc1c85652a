"""Variant request-scope-session: /db and /fortunes take the app's session dependency with
FastAPI's default scope, as the app did before it declared scope="function": the session
closes (ROLLBACK, connection back to the pool) after the response is sent, not when the
endpoint returns. The endpoints' code is the app's own."""

from typing import Annotated, get_args

from fastapi import Depends
from sb_routes import VariantError, replace_route, with_parameter
from sqlalchemy.ext.asyncio import AsyncSession

import main

_, shipped = get_args(main.Session)
if (shipped.dependency, shipped.scope) != (main.get_session, "function"):
    raise VariantError(
        "variant request-scope-session: the app's Session is not get_session with "
        'scope="function"; nothing to change'
    )
RequestSession = Annotated[AsyncSession, Depends(main.get_session)]

app = main.app
for path, endpoint in (("/db", main.single_query), ("/fortunes", main.fortunes)):
    changed = with_parameter(endpoint, "session", main.Session, RequestSession)
    replace_route(app, path, endpoint, changed)
