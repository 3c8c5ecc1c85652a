"""tortoise beyond the conformance suite: bad input, pool bounds, no-lifespan servers, and
what a connection costs on its way back to the pool."""

from __future__ import annotations

from fastapi_edges import (  # tests/apps is on sys.path (no __init__.py)
    FastAPIAppChecks,
    HostileClientChecks,
)

from shared_fixtures.conformance.target import AppTarget


class TestTortoise(FastAPIAppChecks, HostileClientChecks):
    APP = "tortoise"

    def test_a_db_request_is_one_statement(self, base: str, db_url: str) -> None:
        """asyncpg's default reset adds four statements at every release (UNLISTEN *,
        pg_advisory_unlock_all(), CLOSE ALL, RESET ALL); the app's own reset sends none."""
        target = AppTarget(base, db_url)
        try:
            assert target.statements("/db") == 1
            assert target.counts_now("%RESET ALL%").calls == 0
        finally:
            target.close()
