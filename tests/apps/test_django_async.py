"""django_async under uvicorn: its statement counts, and that waiting (pg_sleep in a worker
thread, the upstream on httpx.AsyncClient) never blocks the event loop."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.db import Database
from stackbench.apps import get_app

APP = get_app("django_async")


@pytest.fixture(scope="module")
def base_url(app_servers) -> str:  # type: ignore[no-untyped-def]
    return app_servers.get(APP.id, "uvicorn").base_url  # one worker, a pool of 4


def at_once(url: str, n: int) -> tuple[float, list[httpx.Response]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda _: httpx.get(url, timeout=60), range(n)))
    return time.perf_counter() - started, responses


def test_list_pages_take_a_fixed_number_of_statements(base_url: str, db: Database) -> None:
    target = AppTarget(base_url, db.url)
    try:
        for path, expected in [
            ("/api/troupes?page_size=100", 3),
            ("/api/colleges?page_size=100", 2),
            ("/api/troupes/5", 2),
            ("/queries?queries=7", 7),
        ]:
            target.get(path)
            assert target.statements(path) == expected, path
    finally:
        target.close()


@pytest.mark.serial  # concurrent or serial, told by the time taken
def test_pg_sleep_does_not_block_the_loop(base_url: str) -> None:
    """4 x pg_sleep(0.6) at once on one worker: each runs in its request's thread."""
    url = f"{base_url}/slow/db?seconds=0.6"
    at_once(url, 4)  # open the pool's connections
    elapsed, responses = at_once(url, 4)
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < 1.8, f"{elapsed:.2f} s: serialized?"
    # Meanwhile-style check: a quick request is answered while sleeps are in flight.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.get, f"{base_url}/slow/db?seconds=1", timeout=60)
        time.sleep(0.2)
        started = time.perf_counter()
        assert httpx.get(f"{base_url}/json", timeout=60).status_code == 200
        assert time.perf_counter() - started < 0.5
        assert pending.result().status_code == 200


@pytest.mark.serial  # concurrent or serial, told by the time taken
def test_upstream_calls_are_concurrent(base_url: str) -> None:
    elapsed, responses = at_once(f"{base_url}/slow/http?seconds=1", 10)
    assert all(r.status_code == 200 for r in responses)
    # One after the other would take 10 s; concurrent, about 1 s. The bound sits between
    # with room for a loaded machine (2.02 s was seen against an old bound of 2 s).
    assert elapsed < 5.0, f"{elapsed:.2f} s for 10 x 1 s"


@pytest.mark.serial  # concurrent or serial, told by the time taken
def test_fanout_is_asyncio_gather(base_url: str) -> None:
    started = time.perf_counter()
    response = httpx.get(f"{base_url}/slow/fanout?n=20&seconds=0.5", timeout=60)
    assert response.status_code == 200
    assert response.headers["x-fanout-concurrency"] == "asyncio"
    assert len(response.json()["results"]) == 20
    assert time.perf_counter() - started < 2.5  # 20 x 0.5 s one after the other is 10 s
