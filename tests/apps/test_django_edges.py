"""The three Django apps at the edge of HTTP, under the servers that exposed issue 26's findings.

Each case was a 500, a traceback or an internal in a body before the fix; the contract
(shared_fixtures/CONTRACT.md, "Hostile clients") now decides the answer:

- a ``Content-Length`` of thousands of digits (leading zeros) is read by its value: 201 for
  a valid body of that length, 413 past 64 KiB (``int()`` refuses over 4,300 digits);
- a malformed chunked body (granian hands the app a disconnect) is a 400 from the app,
  and a client that leaves mid-body is one log line, never a traceback;
- a WebSocket upgrade the app does not serve is refused before accept (the server's 403);
- no pooled connection within ``DB_POOL_TIMEOUT`` seconds: 503, ``Retry-After: 1``;
- an upstream that is down: 502 ``{"detail": "Upstream unavailable."}`` and one log line.

Every server is a real subprocess on the session's seeded PostgreSQL (tests/conftest.py).
granian and hypercorn come from the tests session's servers (noxfile TEST_SERVERS).
"""

from __future__ import annotations

import ast
import json
import re
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.db import Database
from shared_fixtures.net import free_port
from stackbench.apps import get_app
from stackbench.server_process import Served, serve
from stackbench.servers import Knobs, get_server

BIN_DIR = Path(sys.executable).parent
# (app, server, path prefix): the Django side of every app, under each server that reached
# the app with the input (gunicorn refuses a 4,301-digit Content-Length and bad chunks itself).
ASGI = [
    ("django_async", "uvicorn", ""),
    ("django_async", "granian", ""),
    ("django_fastapi", "uvicorn", ""),
    ("django_fastapi", "granian", ""),
]
WSGI = [("django_sync", "granian", "")]  # gunicorn answers such a header 400 itself
DIGITS = 4301  # one past int()'s limit


def _id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}@{case[1]}{case[2]}"


def exchange(base_url: str, request: bytes, *, close: bool = False, timeout: float = 20) -> bytes:
    """Send raw bytes, read until the server closes (or one whole response has arrived)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        if close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    return data


def status_of(response: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    assert match, response[:200]
    return int(match.group(1))


def json_body(response: bytes) -> object:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def log_of(served: Served) -> str:
    return served.process.log_path.read_text(errors="replace")


# ---------------------------------------------------------------- Content-Length


@pytest.mark.parametrize("case", ASGI + WSGI, ids=_id)
def test_a_content_length_of_4301_digits_is_read_by_its_value(app_servers, case) -> None:  # type: ignore[no-untyped-def]
    app_id, server_id, prefix = case
    served = app_servers.get(app_id, server_id)
    body = json.dumps({"name": f"Digits {time.time_ns()}", "member_ids": [1]}).encode()
    length = str(len(body)).rjust(DIGITS, "0")
    headers = {"Content-Type": "application/json", "Content-Length": length}
    created = exchange(served.base_url, request("POST", f"{prefix}/api/troupes", headers, body))
    assert status_of(created) == 201, created[:300]
    got = exchange(
        served.base_url, request("GET", f"{prefix}/json", {"Content-Length": "0" * DIGITS})
    )
    assert status_of(got) == 200, got[:300]
    assert json_body(got) == {"message": "Hello, World!"}
    # Past the 64 KiB limit by its value: refused before the body is sent.
    over = exchange(
        served.base_url,
        request("POST", f"{prefix}/api/troupes", {"Content-Length": "70000".rjust(DIGITS, "0")}),
    )
    assert status_of(over) == 413, over[:300]
    assert "detail" in json_body(over)  # type: ignore[operator]
    assert "Traceback" not in log_of(served)


# ---------------------------------------------------------------- bodies that never complete

MALFORMED_CHUNKS = {
    "zz": b"zz\r\n{}\r\n0\r\n\r\n",
    "-2": b"-2\r\n{}\r\n0\r\n\r\n",
    "size mismatch": b"5\r\n{}\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("chunks", MALFORMED_CHUNKS)
@pytest.mark.parametrize(
    "case", [("django_async", "granian", ""), ("django_fastapi", "granian", "")], ids=_id
)
def test_a_malformed_chunked_body_is_a_400_from_the_app(app_servers, case, chunks: str) -> None:  # type: ignore[no-untyped-def]
    """granian hands the app a disconnect for a bad chunk; Django then answered nothing and
    granian sent its own 500. The app answers 400 with one log line, no traceback."""
    app_id, server_id, prefix = case
    served = app_servers.get(app_id, server_id)
    lines_before = log_of(served).count("\n")
    raw = request("POST", f"{prefix}/api/troupes", {"Transfer-Encoding": "chunked"})
    response = exchange(served.base_url, raw + MALFORMED_CHUNKS[chunks])
    assert status_of(response) == 400, response[:300]
    assert "detail" in json_body(response)  # type: ignore[operator]
    time.sleep(0.3)  # the log line is written after the answer
    new = log_of(served).splitlines()[lines_before:]
    assert "Traceback" not in "\n".join(new)
    assert len([line for line in new if "request body" in line]) == 1, new


@pytest.mark.parametrize("case", ASGI, ids=_id)
def test_a_client_gone_mid_body_is_one_log_line(app_servers, case) -> None:  # type: ignore[no-untyped-def]
    app_id, server_id, prefix = case
    served = app_servers.get(app_id, server_id)
    lines_before = log_of(served).count("\n")
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    exchange(
        served.base_url, request("POST", f"{prefix}/api/troupes", headers, b'{"na'), close=True
    )
    deadline = time.monotonic() + 10
    new: list[str] = []
    while time.monotonic() < deadline:
        new = log_of(served).splitlines()[lines_before:]
        if any("request body" in line for line in new):
            break
        time.sleep(0.1)
    assert "Traceback" not in "\n".join(new), new
    assert len([line for line in new if "request body" in line]) == 1, new
    assert httpx.get(f"{served.base_url}/health", timeout=10).status_code == 200


# ---------------------------------------------------------------- WebSocket upgrades

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    "case",
    [
        ("django_async", "uvicorn", ""),
        ("django_async", "hypercorn", ""),
        ("django_fastapi", "uvicorn", ""),
        ("django_fastapi", "hypercorn", ""),
    ],
    ids=_id,
)
def test_a_websocket_upgrade_is_refused_before_accept(app_servers, case) -> None:  # type: ignore[no-untyped-def]
    app_id, server_id, prefix = case
    served = app_servers.get(app_id, server_id)
    raw = f"GET {prefix}/json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    raw += "".join(f"{name}: {value}\r\n" for name, value in UPGRADE.items()) + "\r\n"
    response = exchange(served.base_url, raw.encode(), timeout=10)
    assert status_of(response) == 403, response[:300]  # the server's answer to a close
    assert "Traceback" not in log_of(served)


# ---------------------------------------------------------------- a busy pool, a dead upstream


@pytest.fixture
def serve_with(db: Database, upstream_url: str, work_dir: Path, monkeypatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Serve one app with its own knobs, environment and upstream; stopped after the test."""
    contexts: list = []

    def start(
        app_id: str, server_id: str, knobs: Knobs, upstream: str = upstream_url, **env: str
    ) -> Served:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        context = serve(
            get_app(app_id),
            get_server(server_id),
            database_url=db.url,
            upstream_url=upstream,
            bin_dir=BIN_DIR,
            log_dir=work_dir / "logs" / "edges",
            knobs=knobs,
            cpus=1,
        )
        contexts.append(context)
        return context.__enter__()

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)


POOL_CASES = [
    ("django_async", "uvicorn", Knobs(workers=1, pool_size=1)),
    ("django_sync", "gunicorn-gthread", Knobs(workers=1, pool_size=1, threads=3)),
    ("django_fastapi", "uvicorn", Knobs(workers=1, pool_size=1)),
    ("django_fastapi", "gunicorn-gthread", Knobs(workers=1, pool_size=1, threads=3)),
]


@pytest.mark.parametrize(
    ("app_id", "server_id", "knobs"), POOL_CASES, ids=[f"{a}@{s}" for a, s, _ in POOL_CASES]
)
def test_no_connection_in_time_is_a_503_with_retry_after(
    serve_with, app_id: str, server_id: str, knobs: Knobs
) -> None:  # type: ignore[no-untyped-def]
    """One pooled connection, held 4 s by a pg_sleep; two more requests wait DB_POOL_TIMEOUT=1
    second for it and are told 503 (psycopg_pool's PoolTimeout was a 500 after 30 s)."""
    served = serve_with(app_id, server_id, knobs, DB_POOL_TIMEOUT="1")
    url = f"{served.base_url}/slow/db?seconds=4"
    with ThreadPoolExecutor(3) as pool:
        holder = pool.submit(httpx.get, url, timeout=60)
        time.sleep(1.0)  # the first request holds the only connection
        started = time.perf_counter()
        waiting = list(pool.map(lambda _: httpx.get(url, timeout=60), range(2)))
        waited = time.perf_counter() - started
        assert holder.result().status_code == 200
    for response in waiting:
        assert response.status_code == 503, response.text[:300]
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"detail": "Database busy, retry later."}
    assert waited < 3.0, f"{waited:.1f} s: the wait is not bounded by DB_POOL_TIMEOUT"
    assert "Traceback" not in log_of(served)


UPSTREAM_CASES = [
    ("django_async", "uvicorn"),
    ("django_sync", "gunicorn-gthread"),
    ("django_fastapi", "uvicorn"),
    ("django_fastapi", "gunicorn-gthread"),
]


@pytest.mark.parametrize(
    ("app_id", "server_id"), UPSTREAM_CASES, ids=[f"{a}@{s}" for a, s in UPSTREAM_CASES]
)
def test_an_upstream_that_is_down_is_a_502_without_internals(
    serve_with, app_id: str, server_id: str
) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    served = serve_with(app_id, server_id, Knobs(workers=1, pool_size=2), upstream=dead)
    for path in ("/slow/http?seconds=0", "/slow/both?seconds=0", "/slow/fanout?n=3&seconds=0"):
        response = httpx.get(served.base_url + path, timeout=30)
        assert response.status_code == 502, (path, response.text[:300])
        assert response.json() == {"detail": "Upstream unavailable."}, path
    log = log_of(served)
    assert "Traceback" not in log
    assert len(re.findall(r"(?i)upstream", log)) >= 3, log[-2000:]  # one line per failure


# ---------------------------------------------------------------- minus zero


@pytest.mark.parametrize(
    ("app_id", "server_id"),
    [
        ("django_async", "uvicorn"),
        ("django_sync", "gunicorn-gthread"),
        ("django_fastapi", "uvicorn"),
    ],
)
@pytest.mark.parametrize("seconds", ["-0", "-0.0", "-0e0", "-.0"])
def test_minus_zero_seconds_is_zero(app_servers, app_id: str, server_id: str, seconds: str) -> None:  # type: ignore[no-untyped-def]
    served = app_servers.get(app_id, server_id)
    response = httpx.get(f"{served.base_url}/slow/db?seconds={seconds}", timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"slept": 0}
    assert "-0" not in response.text


# ---------------------------------------------------------------- a taken name


@pytest.mark.parametrize(
    ("app_id", "server_id"),
    [
        ("django_async", "uvicorn"),
        ("django_sync", "gunicorn-gthread"),
        ("django_fastapi", "uvicorn"),
    ],
)
def test_a_taken_name_is_decided_by_the_unique_constraint(
    app_servers, db: Database, app_id: str, server_id: str
) -> None:  # type: ignore[no-untyped-def]
    """409 from the INSERT's unique violation, with no SELECT of the name before it."""
    served = app_servers.get(app_id, server_id)
    target = AppTarget(served.base_url, db.url)
    name = f"Taken {time.time_ns()}"
    try:
        assert (
            target.post("/api/troupes", json={"name": name, "member_ids": [1]}).status_code == 201
        )
        answers: list[httpx.Response] = []

        def again() -> None:
            answers.append(target.post("/api/troupes", json={"name": name, "member_ids": [2]}))

        counted = target.counted(
            again, "POST a taken name", matching='%FROM "troupe"%WHERE%"name"%'
        )
        assert answers[0].status_code == 409, answers[0].text[:300]
        assert "detail" in answers[0].json()
        assert counted.calls == 0, "the name was looked up before the INSERT"
        with db.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM troupe_member JOIN troupe ON troupe.id = troupe_id"
                " WHERE troupe.name = %s",
                [name],
            ).fetchone()
        assert row and row[0] == 1  # the losing request wrote nothing
    finally:
        with db.connect() as conn:
            conn.execute("DELETE FROM troupe WHERE name = %s", [name])
        target.close()


# ---------------------------------------------------------------- Django's own means


@pytest.mark.parametrize("app_id", ["django_sync", "django_async", "django_fastapi"])
def test_settings_and_views_use_djangos_own_means(app_id: str) -> None:
    """dj-database-url reads DATABASE_URL (no hand-written parser), the settings leave
    sys.modules alone, and Django's csrf_exempt marks one view: POST /api/troupes's."""
    directory = get_app(app_id).directory
    settings = (directory / "project" / "settings.py").read_text()
    assert "dj_database_url.parse(" in settings and "urlsplit" not in settings
    assert "sys.modules" not in settings
    assert "dj-database-url" in (directory / "requirements.txt").read_text()
    views = ast.parse((directory / "circus" / "views.py").read_text())
    exempt = [
        node.name
        for node in ast.walk(views)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(getattr(d, "id", None) == "csrf_exempt" for d in node.decorator_list)
    ]
    assert exempt == ["troupes"]
    called = [n for n in ast.walk(views) if isinstance(n, ast.Call)]
    assert not [n for n in called if getattr(n.func, "id", None) == "csrf_exempt"]
