"""The conformance suite against every reference app, each under a real server.

The contract's tests live in ``shared_fixtures/conformance`` (runnable against any URL);
here they are collected once per (app, server, mount point) with a ``target`` that this
session serves itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared_fixtures.conformance.target import Target
from shared_fixtures.conformance.test_contract import *  # noqa: F403  (the tests themselves)
from shared_fixtures.db import Database
from stackbench.apps import APPS

# Each app under one server per interface it has: (app, server, prefix).
TARGETS = [
    (app.id, "uvicorn" if interface == "asgi" else "gunicorn-gthread", prefix)
    for app in APPS.values()
    for interface in app.interfaces
    for prefix in app.prefixes
]


@pytest.fixture(
    scope="module",
    params=TARGETS,
    ids=[f"{app}@{server}{prefix or '/'}" for app, server, prefix in TARGETS],
)
def target(request: pytest.FixtureRequest, app_servers, db: Database) -> Iterator[Target]:
    app_id, server_id, prefix = request.param
    served = app_servers.get(app_id, server_id)
    judged = Target(served.base_url + prefix, db.url, name=request.node.name)
    yield judged
    judged.close()
