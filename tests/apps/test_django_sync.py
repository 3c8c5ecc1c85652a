"""django_sync under each concurrency model: threads, gevent with psycopg 3, gevent with
psycopg2 unpatched (serial) and patched by psycogreen, plus its statement counts.

Every server is a real subprocess on the session's seeded PostgreSQL (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.db import Database
from stackbench.apps import get_app
from stackbench.server_process import Served, serve
from stackbench.servers import Knobs, get_server

APP = get_app("django_sync")
KNOBS = Knobs(workers=1, pool_size=4)  # as the session's app_servers
GEVENT = importlib.util.find_spec("gevent") is not None
PSYCOPG2 = importlib.util.find_spec("psycopg2") is not None


def at_once(url: str, n: int) -> tuple[float, list[httpx.Response]]:
    """n GETs of url at the same time; (seconds until the last answered, responses)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda _: httpx.get(url, timeout=60), range(n)))
    return time.perf_counter() - started, responses


@pytest.fixture(scope="module")
def custom(db: Database, upstream_url: str, work_dir: Path) -> Iterator[object]:
    """Serve under a registry server with other driver settings (no registry entry has them)."""
    stack: list = []

    def start(server_id: str, **env: str) -> Served:
        server = dataclasses.replace(get_server(server_id), env=env)
        context = serve(
            APP,
            server,
            database_url=db.url,
            upstream_url=upstream_url,
            bin_dir=Path(sys.executable).parent,
            log_dir=work_dir / "logs" / f"django_sync-{'-'.join(env.values())}",
            knobs=KNOBS,
            cpus=1,
        )
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


# ---------------------------------------------------------------- threads (gthread)


def test_list_pages_take_a_fixed_number_of_statements(app_servers, db: Database) -> None:  # type: ignore[no-untyped-def]
    """COUNT + page + one prefetch of members; COUNT + one JOIN for colleges."""
    served = app_servers.get(APP.id, "gunicorn-gthread")
    target = AppTarget(served.base_url, db.url)
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


def test_fanout_uses_threads_under_gthread(app_servers) -> None:  # type: ignore[no-untyped-def]
    served = app_servers.get(APP.id, "gunicorn-gthread")
    started = time.perf_counter()
    response = httpx.get(f"{served.base_url}/slow/fanout?n=20&seconds=0.5", timeout=60)
    assert response.status_code == 200
    assert response.headers["x-fanout-concurrency"] == "threads"
    assert time.perf_counter() - started < 2.5  # 20 x 0.5 s one after the other is 10 s


@pytest.mark.skipif(not PSYCOPG2, reason="psycopg2 not installed")
def test_psycopg2_under_gthread(custom, db: Database) -> None:  # type: ignore[no-untyped-def]
    """DJANGO_DB_DRIVER=psycopg2: persistent connections, the same statements per page."""
    served = custom("gunicorn-gthread", DJANGO_DB_DRIVER="psycopg2")
    target = AppTarget(served.base_url, db.url)
    try:
        for _ in range(8):  # a thread's first request also sets up its new connection
            target.get("/api/troupes?page_size=100")
        assert target.statements("/api/troupes?page_size=100") == 3
        taken = httpx.post(
            f"{served.base_url}/api/troupes", json={"name": "x" * 101, "member_ids": []}
        )
        assert taken.status_code == 422
    finally:
        target.close()


# ---------------------------------------------------------------- gevent

SLEEP, CALLS = 0.6, 4  # 4 x pg_sleep(0.6): about 0.6 s when concurrent, >= 2.4 s when serial


@pytest.mark.serial  # cooperative or serial, told by the time taken
@pytest.mark.skipif(not GEVENT, reason="gevent not installed")
def test_gevent_with_psycopg3_is_cooperative(app_servers) -> None:  # type: ignore[no-untyped-def]
    served = app_servers.get(APP.id, "gunicorn-gevent")
    url = f"{served.base_url}/slow/db?seconds={SLEEP}"
    at_once(url, CALLS)  # open the pool's connections
    elapsed, responses = at_once(url, CALLS)
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < CALLS * SLEEP * 0.75, f"{elapsed:.2f} s: serialized?"

    fanout = httpx.get(f"{served.base_url}/slow/fanout?n=5&seconds=0", timeout=60)
    assert fanout.headers["x-fanout-concurrency"] == "gevent"


@pytest.mark.skipif(not (GEVENT and PSYCOPG2), reason="gevent or psycopg2 not installed")
def test_gevent_with_unpatched_psycopg2_serializes(app_servers) -> None:  # type: ignore[no-untyped-def]
    """The registry's gevent-blocking case: psycopg2 blocks the whole worker while it waits."""
    served = app_servers.get(APP.id, "gunicorn-gevent-blocking")
    assert served.env["DJANGO_DB_DRIVER"] == "psycopg2" and "PSYCOGREEN" not in served.env
    elapsed, responses = at_once(f"{served.base_url}/slow/db?seconds={SLEEP}", CALLS)
    assert all(r.status_code == 200 for r in responses)
    assert elapsed >= CALLS * SLEEP * 0.95, f"{elapsed:.2f} s: not serialized?"
    fanout = httpx.get(f"{served.base_url}/slow/fanout?n=5&seconds=0", timeout=60)
    assert fanout.headers["x-fanout-concurrency"] == "gevent"  # sockets are still green


@pytest.mark.serial  # cooperative or serial, told by the time taken
@pytest.mark.skipif(
    not (GEVENT and PSYCOPG2 and importlib.util.find_spec("psycogreen")),
    reason="gevent, psycopg2 or psycogreen not installed",
)
def test_gevent_with_psycogreen_is_cooperative(custom) -> None:  # type: ignore[no-untyped-def]
    served = custom("gunicorn-gevent-blocking", DJANGO_DB_DRIVER="psycopg2", PSYCOGREEN="gevent")
    url = f"{served.base_url}/slow/db?seconds={SLEEP}"
    at_once(url, CALLS)
    elapsed, responses = at_once(url, CALLS)
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < CALLS * SLEEP * 0.75, f"{elapsed:.2f} s: serialized?"
