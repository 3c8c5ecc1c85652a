"""tortoise beyond the conformance suite: bad input, pool bounds, no-lifespan servers."""

from __future__ import annotations

from fastapi_edges import FastAPIAppChecks  # tests/apps is on sys.path (no __init__.py)


class TestTortoise(FastAPIAppChecks):
    APP = "tortoise"
