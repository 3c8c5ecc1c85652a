"""Options for running the suite against an app you started yourself.

    pytest shared_fixtures/conformance --base-url http://127.0.0.1:8000 \
        [--database-url postgresql://...]

Without --database-url the tests that read data back or count statements are skipped;
with it, a database without pg_stat_statements fails the statement counts (never a skip).
The project's own test suite reuses these tests with its own ``target`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared_fixtures.conformance.target import AppTarget


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--base-url", help="the app's base URL, e.g. http://127.0.0.1:8000/fastapi")
    group.addoption("--database-url", help="the app's database, to read data back")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[AppTarget]:
    base_url = request.config.getoption("--base-url")
    if not base_url:
        raise pytest.UsageError("the conformance suite needs --base-url URL")
    judged = AppTarget(base_url, request.config.getoption("--database-url"))
    yield judged
    judged.close()
