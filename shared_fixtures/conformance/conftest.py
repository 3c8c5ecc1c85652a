"""Options for running the suite against an app you started yourself.

    pytest shared_fixtures/conformance --base-url http://127.0.0.1:8000 \
        [--database-url postgresql://...] [--app-log PATH] [--cacert CA.pem] [--http2] \
        [--strained-base-url URL --strained-pool-size N --strained-pool-timeout S]

Without --database-url the tests that read data back or count statements are skipped;
with it, a database without pg_stat_statements fails the statement counts (never a skip).
Without --app-log (the file the server and the app write to) the tests that read the log
are skipped. The strained options name a second instance of the same app, served with
DB_POOL_SIZE (N connections in all), DB_POOL_TIMEOUT=S and an UPSTREAM_URL that refuses
connections, under a server that hands it more than N requests at once; without them the
pool-exhaustion and upstream-failure tests are skipped.
With --cacert (an https:// URL) and --http2, the contract and its edges are judged over TLS
or HTTP/2; the hostile section writes raw HTTP/1.1 in cleartext and needs an http:// URL.
The project's own test suite reuses these tests with its own ``target`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_fixtures.conformance.target import AppTarget, Strained


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--base-url", help="the app's base URL, e.g. http://127.0.0.1:8000/fastapi")
    group.addoption("--database-url", help="the app's database, to read data back")
    group.addoption("--app-log", type=Path, help="the served app's log file")
    group.addoption("--cacert", type=Path, help="an https:// app's CA certificate (PEM)")
    group.addoption(
        "--http2",
        action="store_true",
        help="speak HTTP/2 (ALPN for https://, prior knowledge for http://; httpx[http2])",
    )
    group.addoption("--strained-base-url", help="the app served with a small pool (see above)")
    group.addoption("--strained-pool-size", type=int, help="its connections, all workers")
    group.addoption("--strained-pool-timeout", type=float, help="its DB_POOL_TIMEOUT")


def pytest_configure(config: pytest.Config) -> None:
    _strained(config)  # a half-given strained instance is a usage error, before any test


def _strained(config: pytest.Config) -> Strained | None:
    values = [config.getoption(f"--strained-{name}") for name in ("base-url", "pool-size")]
    timeout = config.getoption("--strained-pool-timeout")
    if not any(values) and timeout is None:
        return None
    if not all(values) or timeout is None:
        raise pytest.UsageError(
            "--strained-base-url, --strained-pool-size and --strained-pool-timeout go together"
        )
    return Strained(values[0], values[1], timeout)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[AppTarget]:
    config = request.config
    base_url = config.getoption("--base-url")
    if not base_url:
        raise pytest.UsageError("the conformance suite needs --base-url URL")
    strained = _strained(config)
    judged = AppTarget(
        base_url,
        config.getoption("--database-url"),
        log_path=config.getoption("--app-log"),
        strained_by=(lambda: strained) if strained is not None else None,
        cafile=config.getoption("--cacert"),
        http2=config.getoption("--http2"),
    )
    yield judged
    judged.close()
