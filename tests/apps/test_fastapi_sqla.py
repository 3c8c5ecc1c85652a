"""fastapi_sqla beyond the conformance suite: bad input, pool bounds, no-lifespan servers."""

from __future__ import annotations

from fastapi_edges import (  # tests/apps is on sys.path (no __init__.py)
    FastAPIAppChecks,
    HostileClientChecks,
)


class TestFastapiSqla(FastAPIAppChecks, HostileClientChecks):
    APP = "fastapi_sqla"
