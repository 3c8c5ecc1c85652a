"""What the conformance suite leaves out, for the FastAPI / Starlette apps.

``test_fastapi_sqla.py`` and ``test_tortoise.py`` each subclass ``FastAPIAppChecks`` with
their app id; they and ``test_gino_style.py`` subclass ``HostileClientChecks`` (issue 26's
findings, the contract's answers). Every test runs against the app served by a real server
(a subprocess on a real PostgreSQL); POSTs that must fail are checked to write nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from stackbench.apps import get_app
from stackbench.server_process import Served, serve
from stackbench.servers import Knobs, get_server

BIN_DIR = Path(sys.executable).parent
POOL_SIZE = 4  # what tests/conftest.py serves every app with


def table_counts(db_url: str) -> tuple[int, int]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        troupes = conn.execute("SELECT count(*) FROM troupe").fetchone()
        members = conn.execute("SELECT count(*) FROM troupe_member").fetchone()
    assert troupes and members
    return int(troupes[0]), int(members[0])


def delete_troupe(db_url: str, name: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM troupe WHERE name = %s", [name])


BAD_BODIES = {
    "deeply nested": b'{"name": "x", "member_ids": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "number too long to convert": b'{"name": ' + b"9" * 5_000 + b', "member_ids": []}',
    "lone surrogate in name": b'{"name": "a\\ud800b", "member_ids": []}',
    "NUL in name": b'{"name": "a\\u0000b", "member_ids": []}',
    "id as a string": b'{"name": "Stringly", "member_ids": ["5"]}',
    "id as a bool": b'{"name": "Boolean", "member_ids": [true]}',
    "id as a float": b'{"name": "Floaty", "member_ids": [1.0]}',
    "id past int4": b'{"name": "Overflow", "member_ids": [99999999999999999999]}',
    "negative id": b'{"name": "Negative", "member_ids": [-1]}',
    "name not text": b'{"name": ["a"], "member_ids": []}',
    "null body": b"null",
    "empty body": b"",
    "latin-1 bytes": '{"name": "Caf\xe9", "member_ids": []}'.encode("latin-1"),
}


class FastAPIAppChecks:
    APP = ""  # set by the subclass

    @pytest.fixture(scope="class")
    @classmethod
    def base(cls, app_servers) -> str:
        return app_servers.get(cls.APP, "uvicorn").base_url

    @pytest.fixture(scope="class")
    @classmethod
    def db_url(cls, db) -> str:
        return db.url

    # ---------------------------------------------------------------- bad POST bodies

    @pytest.mark.parametrize("case", BAD_BODIES)
    def test_bad_body_is_422_and_writes_nothing(self, base: str, db_url: str, case: str) -> None:
        before = table_counts(db_url)
        response = httpx.post(
            f"{base}/api/troupes",
            content=BAD_BODIES[case],
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text[:300]
        assert "detail" in response.json()
        assert table_counts(db_url) == before

    def test_oversized_body_is_413_and_writes_nothing(self, base: str, db_url: str) -> None:
        before = table_counts(db_url)
        padding = "x" * (200 * 1024)
        body = json.dumps({"name": "Huge", "member_ids": [1], "padding": padding})
        response = httpx.post(
            f"{base}/api/troupes", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert table_counts(db_url) == before

    def test_oversized_chunked_body_is_413(self, base: str, db_url: str) -> None:
        """No Content-Length to refuse up front: the limit must count streamed bytes."""
        before = table_counts(db_url)

        def chunks():
            yield b'{"name": "Streamed", "member_ids": [1], "padding": "'
            for _ in range(40):
                yield b"x" * 4096
            yield b'"}'

        response = httpx.post(
            f"{base}/api/troupes", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert table_counts(db_url) == before

    def test_unknown_performer_among_known_writes_nothing(self, base: str, db_url: str) -> None:
        before = table_counts(db_url)
        body = {"name": f"Half real {uuid.uuid4().hex[:8]}", "member_ids": [1, 2, 2_000_000]}
        response = httpx.post(f"{base}/api/troupes", json=body)
        assert response.status_code == 422
        assert table_counts(db_url) == before

    def test_duplicate_member_ids_count_once(self, base: str, db_url: str) -> None:
        name = f"Echo {uuid.uuid4().hex[:8]}"
        try:
            response = httpx.post(
                f"{base}/api/troupes", json={"name": name, "member_ids": [4, 4, 3, 4]}
            )
            assert response.status_code == 201, response.text
            assert [m["id"] for m in response.json()["members"]] == [3, 4]
        finally:
            delete_troupe(db_url, name)

    def test_concurrent_posts_of_one_name_create_one_troupe(self, base: str, db_url: str) -> None:
        """The UNIQUE constraint decides: exactly one 201, every other request a 409."""
        name = f"Race {uuid.uuid4().hex[:8]}"
        before = table_counts(db_url)
        try:
            with ThreadPoolExecutor(8) as pool:
                statuses = sorted(
                    pool.map(
                        lambda _: (
                            httpx.post(
                                f"{base}/api/troupes", json={"name": name, "member_ids": [1, 2]}
                            ).status_code
                        ),
                        range(8),
                    )
                )
            assert statuses == [201] + [409] * 7
            assert table_counts(db_url) == (before[0] + 1, before[1] + 2)
        finally:
            delete_troupe(db_url, name)

    # ---------------------------------------------------------------- huge query values

    @pytest.mark.parametrize(
        ("query", "length"),
        [
            ("99999999999999999999999", 500),
            ("9" * 5000, 500),
            ("-99999999999999999999999", 1),
            ("٣", 1),  # an Arabic-Indic three is not an ASCII integer
            ("1_0", 1),
            (" 7", 1),
        ],
    )
    def test_queries_huge_or_odd(self, base: str, query: str, length: int) -> None:
        response = httpx.get(f"{base}/queries", params={"queries": query}, timeout=30)
        assert response.status_code == 200
        assert len(response.json()) == length

    @pytest.mark.parametrize(
        ("size", "effective"), [("9" * 30, 100), ("9" * 5000, 100), ("-" + "9" * 30, 1)]
    )
    def test_page_size_huge(self, base: str, size: str, effective: int) -> None:
        response = httpx.get(f"{base}/api/troupes", params={"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == effective

    @pytest.mark.parametrize("page", ["9" * 30, "9" * 5000, "٢"])
    def test_page_huge_is_invalid(self, base: str, page: str) -> None:
        response = httpx.get(f"{base}/api/colleges", params={"page": page})
        assert response.status_code == 404
        assert response.json() == {"detail": "Invalid page."}

    @pytest.mark.parametrize("item", ["2147483648", "9" * 5000, "%E0%A5%A9", "1e3"])
    def test_detail_id_out_of_range(self, base: str, item: str) -> None:
        for kind in ("colleges", "troupes"):
            response = httpx.get(f"{base}/api/{kind}/{item}")
            assert response.status_code == 404
            assert response.json() == {"detail": "Not found."}

    # ---------------------------------------------------------------- the async stack

    def test_pool_is_bounded_by_db_pool_size(self, base: str, db_url: str) -> None:
        """12 concurrent sleeps in the database: at most DB_POOL_SIZE run at once, and
        more than one does (requests do not queue behind each other on one connection)."""
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            with psycopg.connect(db_url, autocommit=True) as conn:
                while not done.is_set():
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE state = 'active' AND query ILIKE 'SELECT pg_sleep%'"
                    ).fetchone()
                    peak = max(peak, int(row[0]) if row else 0)
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(12) as pool:
                statuses = list(
                    pool.map(
                        lambda _: (
                            httpx.get(
                                f"{base}/slow/db", params={"seconds": "0.3"}, timeout=30
                            ).status_code
                        ),
                        range(12),
                    )
                )
        finally:
            done.set()
            watcher.join()
        assert statuses == [200] * 12
        assert 2 <= peak <= POOL_SIZE, f"{peak} sleeps ran at once with a pool of {POOL_SIZE}"

    @pytest.mark.serial  # concurrent or serial, told by the time taken
    def test_fanout_calls_run_concurrently(self, base: str) -> None:
        started = time.perf_counter()
        response = httpx.get(f"{base}/slow/fanout", params={"n": 10, "seconds": "1"}, timeout=60)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200 and len(response.json()["results"]) == 10
        # One after the other would take 10 s; concurrent, about 1 s. The bound sits between
        # with room for a loaded machine (10 x 0.3 s under a bound of 1.5 s took 1.52 s).
        assert elapsed < 5.0, f"10 x 1 s upstream calls took {elapsed:.2f} s: serial?"

    def test_health_needs_no_database(self, work_dir: Path, upstream_url: str) -> None:
        """/health answers even when the database is unreachable (the harness polls it)."""
        dead = "postgresql://postgres@127.0.0.1:1/nowhere"
        with serve(
            get_app(self.APP),
            get_server("uvicorn"),
            database_url=dead,
            upstream_url=upstream_url,
            bin_dir=BIN_DIR,
            log_dir=work_dir / "logs",
            knobs=Knobs(workers=1, pool_size=2),
            cpus=1,
        ) as served:
            assert httpx.get(f"{served.base_url}/health").json() == {"status": "ok"}
            assert httpx.get(f"{served.base_url}/json").status_code == 200

    def test_serves_without_a_lifespan_under_daphne(
        self, db_url: str, upstream_url: str, work_dir: Path
    ) -> None:
        """Daphne runs no ASGI lifespan: the ORM and the HTTP client must still work."""
        if not (BIN_DIR / "daphne").exists() and not shutil.which("daphne"):
            pytest.skip("daphne is not installed in this environment")
        with serve(
            get_app(self.APP),
            get_server("daphne"),
            database_url=db_url,
            upstream_url=upstream_url,
            bin_dir=BIN_DIR,
            log_dir=work_dir / "logs",
            knobs=Knobs(workers=1, pool_size=2),
            cpus=1,
        ) as served:
            assert httpx.get(f"{served.base_url}/db").status_code == 200
            troupe = httpx.get(f"{served.base_url}/api/troupes/1").json()
            assert troupe["id"] == 1 and len(troupe["members"]) == 6
            upstream = httpx.get(f"{served.base_url}/slow/http", params={"seconds": "0"})
            assert upstream.status_code == 200


# ---------------------------------------------------------------- hostile clients (issue 26)


def malformed_chunked(prefix: str) -> bytes:
    """A POST whose chunk size is `zz` (the issue's reproduction)."""
    return (
        f"POST {prefix}/api/troupes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ).encode()


TRACEBACK_MARKS = ("Traceback", "Exception in ASGI application", "ClientDisconnect")


def raw_exchange(base_url: str, request: bytes, *, close_early: bool = False) -> bytes:
    """Send bytes no client library would send; the server's answer (b"" when it closes
    without one). ``close_early``: hang up right after sending, as a client that gives up."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        if close_early:
            return b""
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and b"content-length: 0" in received.lower():
                    break
    return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b"\r\n", 1)[0].split()[1])


def log_after(served: Served, offset: int) -> str:
    return served.process.log_path.read_bytes()[offset:].decode(errors="replace")


@contextlib.contextmanager
def served_with(
    app_id: str, server_id: str, db_url: str, upstream_url: str, log_dir: Path, **knobs: int
) -> Iterator[Served]:
    """The app under its own server (its own log): for settings the shared one lacks."""
    with serve(
        get_app(app_id),
        get_server(server_id),
        database_url=db_url,
        upstream_url=upstream_url,
        bin_dir=BIN_DIR,
        log_dir=log_dir,
        knobs=Knobs(workers=1, pool_size=knobs.get("pool_size", 2)),
        cpus=1,
    ) as served:
        yield served


class HostileClientChecks:
    """Issue 26's findings, each with the contract's answer (CONTRACT.md, the lead's
    decisions): documentation routes off, -0 is 0, an upstream failure without internals,
    a bounded wait for a pooled connection, a body that never completes in one log line."""

    APP = ""  # set by the subclass
    PREFIX = ""  # where the app serves the contract (django_fastapi's FastAPI half: /fastapi)
    DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")

    @pytest.fixture(scope="class")
    @classmethod
    def hostile_base(cls, app_servers) -> str:
        return app_servers.get(cls.APP, "uvicorn").base_url + cls.PREFIX

    @pytest.mark.parametrize("path", DOCS)
    def test_docs_routes_are_404_unless_api_docs(self, hostile_base: str, path: str) -> None:
        response = httpx.get(hostile_base + path)
        assert response.status_code == 404, response.text[:200]
        assert "detail" in response.json()

    @pytest.mark.parametrize("seconds", ["-0", "-0.0", "-0e0", "-.0"])
    def test_negative_zero_seconds_is_zero(self, hostile_base: str, seconds: str) -> None:
        response = httpx.get(f"{hostile_base}/slow/db", params={"seconds": seconds})
        assert response.status_code == 200, response.text
        assert response.json() == {"slept": 0} and "-" not in response.text, response.text

    def test_upstream_down_is_a_bare_502(self, db_url: str, work_dir: Path) -> None:
        dead = f"http://127.0.0.1:{_closed_port()}"
        with served_with(self.APP, "uvicorn", db_url, dead, work_dir / "upstream-down") as served:
            start = served.process.log_path.stat().st_size
            for path in ("/slow/http?seconds=0", "/slow/fanout?n=2&seconds=0"):
                response = httpx.get(served.base_url + self.PREFIX + path)
                assert response.status_code == 502, response.text
                assert response.json() == {"detail": "Upstream unavailable."}
            log = log_after(served, start)
        assert "Connect" in log, log  # what failed is in the server's log ...
        assert "Traceback" not in log, log  # ... in one line each, not a traceback

    def test_pool_wait_is_bounded_then_503(
        self, db_url: str, upstream_url: str, work_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One connection, held by a 4 s pg_sleep: the next request waits DB_POOL_TIMEOUT
        (1 s here), then gets the contract's 503, while the sleeper still gets its 200."""
        monkeypatch.setenv("DB_POOL_TIMEOUT", "1")
        log_dir = work_dir / "pool-timeout"
        with (
            served_with(self.APP, "uvicorn", db_url, upstream_url, log_dir, pool_size=1) as s,
            ThreadPoolExecutor(1) as pool,
        ):
            base = s.base_url + self.PREFIX
            holder = pool.submit(httpx.get, f"{base}/slow/db", params={"seconds": 4}, timeout=30)
            time.sleep(0.5)  # the sleeper has the one connection
            started = time.perf_counter()
            busy = httpx.get(f"{base}/db", timeout=30)
            waited = time.perf_counter() - started
            assert holder.result().status_code == 200
        assert busy.status_code == 503, busy.text
        assert busy.json() == {"detail": "Database busy, retry later."}
        assert busy.headers["content-type"].startswith("application/json")
        assert busy.headers["retry-after"] == "1"
        assert 0.8 <= waited < 3.0, f"answered after {waited:.1f} s with DB_POOL_TIMEOUT=1"

    def test_malformed_chunked_body_is_one_log_line(self, app_servers) -> None:
        """uvicorn answers a chunk size of `zz` 400 itself; the app sees its body end early
        (Starlette's ClientDisconnect) and logs one line, not a traceback per request."""
        served = app_servers.get(self.APP, "uvicorn")
        start = served.process.log_path.stat().st_size
        answer = raw_exchange(served.base_url, malformed_chunked(self.PREFIX))
        assert answer and status_of(answer) == 400, answer[:300]
        time.sleep(0.5)  # the app's log line follows the server's answer
        log = log_after(served, start)
        assert not any(mark in log for mark in TRACEBACK_MARKS), log

    def test_body_cut_short_is_one_log_line(self, app_servers) -> None:
        """A client that declares 100 bytes, sends 10 and hangs up."""
        served = app_servers.get(self.APP, "uvicorn")
        start = served.process.log_path.stat().st_size
        head = (
            f"POST {self.PREFIX}/api/troupes HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        ).encode()
        raw_exchange(served.base_url, head + b'{"name": "', close_early=True)
        time.sleep(0.5)
        log = log_after(served, start)
        assert "the body ended before it was complete" in log, log
        assert not any(mark in log for mark in TRACEBACK_MARKS), log
        assert httpx.get(served.base_url + "/health").status_code == 200

    @pytest.mark.skipif(
        shutil.which("granian", path=str(BIN_DIR)) is None
        and importlib.util.find_spec("granian") is None,
        reason="granian is not installed in this environment (noxfile: TEST_SERVERS)",
    )
    def test_malformed_chunked_body_under_granian_is_400(
        self, db_url: str, upstream_url: str, work_dir: Path
    ) -> None:
        """granian hands the app a body that ends early and sends what the app answers:
        the app's 400, where an unhandled ClientDisconnect made granian answer 500."""
        log_dir = work_dir / "granian-chunked"
        with served_with(self.APP, "granian", db_url, upstream_url, log_dir) as served:
            start = served.process.log_path.stat().st_size
            answer = raw_exchange(served.base_url, malformed_chunked(self.PREFIX))
            time.sleep(0.5)
            log = log_after(served, start)
        assert answer and status_of(answer) == 400, answer[:300]
        body = answer.split(b"\r\n\r\n", 1)[1]
        assert b'"detail"' in body, answer[:300]
        assert not any(mark in log for mark in TRACEBACK_MARKS), log

    def test_content_length_of_thousands_of_digits_is_4xx(self, hostile_base: str) -> None:
        """A Content-Length over int()'s 4,300 digits, with leading zeros and a small value."""
        declared = b"0" * 4999 + b"2"
        request = (
            f"POST {self.PREFIX}/api/troupes HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Content-Type: application/json\r\nConnection: close\r\n"
            + b"Content-Length: "
            + declared
            + b"\r\n\r\n{}"
        )
        answer = raw_exchange(hostile_base.removesuffix(self.PREFIX), request)
        assert answer and 400 <= status_of(answer) < 500, answer[:300]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
