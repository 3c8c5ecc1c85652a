"""Variant autocommit-session: /db and /fortunes open their session on a connection in
AUTOCOMMIT, so no BEGIN and no ROLLBACK surround each request's SELECT. The endpoints'
code is the app's own (the same code object); only the ``SessionLocal`` it opens is
another, bound to the same pool in AUTOCOMMIT."""

from functools import partial

from sb_routes import opens_its_session_inline, replace_route, with_global

import main
from db import engine

AUTOCOMMIT = engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool

app = main.app
for path, shipped in (("/db", main.single_query), ("/fortunes", main.fortunes)):
    opens_its_session_inline(shipped)
    autocommit = partial(main.SessionLocal, bind=AUTOCOMMIT)
    replace_route(app, path, shipped, with_global(shipped, "SessionLocal", autocommit))
