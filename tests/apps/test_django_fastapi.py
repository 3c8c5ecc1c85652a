"""django_fastapi beyond the conformance suite: admin login, deploy checks, bad input, gevent.

Every test talks to the app over real HTTP, served by a real server as a subprocess, on the
session's seeded PostgreSQL (``tests/conftest.py``). The ASGI entry runs under uvicorn, the
WSGI entry (FastAPI mounted through a2wsgi) under gunicorn's gthread and gevent workers.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi_edges import HostileClientChecks  # tests/apps is on sys.path (no __init__.py)

from shared_fixtures.db import Database
from stackbench.apps import get_app
from stackbench.server_process import Served

APP = get_app("django_fastapi")
ENTRIES = {"uvicorn": "ASGI", "gunicorn-gthread": "WSGI"}  # server -> the entry it serves
PREFIXES = ("", "/fastapi")
HTTPS_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def _serve(app_servers, server_id: str) -> Served:  # type: ignore[no-untyped-def]
    return app_servers.get(APP.id, server_id)


@pytest.fixture(params=list(ENTRIES), ids=[f"{s}-{e}" for s, e in ENTRIES.items()])
def served(request: pytest.FixtureRequest, app_servers) -> Served:  # type: ignore[no-untyped-def]
    return _serve(app_servers, request.param)


def _manage(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in the app's directory with a clean, explicit environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PSYCOGREEN"))}
    base.pop("SECRET_KEY", None)
    base.update(DATABASE_URL=db.url, DJANGO_SETTINGS_MODULE="project.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=APP.directory,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---------------------------------------------------------------- the k6 login flow


def test_admin_login_flow_then_api(served: Served) -> None:
    """benchmark-django-fastapi's k6 script: login page, csrftoken, POST the form, the API."""
    username, password = served.admin_credentials
    with httpx.Client(base_url=served.base_url, timeout=30, follow_redirects=False) as client:
        login = client.get("/admin/login/", params={"next": "/admin/"})
        assert login.status_code == 200, login.text[:300]
        assert 'name="csrfmiddlewaretoken"' in login.text
        token = client.cookies.get("csrftoken")
        assert token, dict(login.headers)

        posted = client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            },
            headers={"Referer": f"{served.base_url}/admin/login/"},
        )
        assert posted.status_code == 302, posted.text[:500]
        assert posted.headers["location"] == "/admin/"
        assert client.cookies.get("sessionid")

        index = client.get("/admin/")
        assert index.status_code == 200 and "Site administration" in index.text
        for path in ("/api/colleges", "/api/troupes", "/fastapi/api/colleges"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert response.json()["count"] > 0


def test_admin_login_rejects_a_wrong_password(served: Served) -> None:
    username, _ = served.admin_credentials
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        client.get("/admin/login/")
        response = client.post(
            "/admin/login/",
            data={
                "username": username,
                "password": "not-the-password",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 200  # the form again, with its error
        assert "sessionid" not in client.cookies


def test_admin_login_without_csrf_token_is_refused(served: Served) -> None:
    username, password = served.admin_credentials
    response = httpx.post(
        served.base_url + "/admin/login/",
        data={"username": username, "password": password},
        timeout=30,
    )
    assert response.status_code == 403


# ---------------------------------------------------------------- settings and commands


def test_check_deploy_leaves_only_the_https_warnings(db: Database) -> None:
    """Plain HTTP on loopback: what is left are the HTTPS settings (README explains each)."""
    result = _manage(db, "check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    found = {word.strip("():") for word in output.split() if word.startswith("(security.")}
    assert found == HTTPS_WARNINGS, output


def test_check_deploy_is_clean_behind_https(db: Database) -> None:
    result = _manage(
        db, "check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), DJANGO_HTTPS="1"
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout + result.stderr, result.stdout + result.stderr


def test_secret_key_is_required(db: Database) -> None:
    result = _manage(db, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


def test_unknown_driver_is_refused(db: Database) -> None:
    result = _manage(db, "check", SECRET_KEY="x" * 60, DJANGO_DB_DRIVER="sqlite")
    assert result.returncode != 0 and "DJANGO_DB_DRIVER" in result.stderr


def test_ensure_admin_needs_credentials_and_is_idempotent(db: Database) -> None:
    key = secrets.token_urlsafe(50)
    missing = _manage(db, "ensure_admin", SECRET_KEY=key, DJANGO_SUPERUSER_USERNAME="x")
    assert missing.returncode != 0
    assert "DJANGO_SUPERUSER_PASSWORD" in missing.stderr and "no default" in missing.stderr
    credentials = {
        "SECRET_KEY": key,
        "DJANGO_SUPERUSER_USERNAME": "ensure-admin-test",
        "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
    }
    first = _manage(db, "ensure_admin", **credentials)
    second = _manage(db, "ensure_admin", **credentials)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "updated" in second.stdout
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*), bool_and(is_staff AND is_superuser) FROM auth_user "
            "WHERE username = 'ensure-admin-test'"
        ).fetchone()
        conn.execute("DELETE FROM auth_user WHERE username = 'ensure-admin-test'")
    assert row == (1, True)


# ---------------------------------------------------------------- bad input, both halves


def _troupe_rows(db: Database) -> tuple[int, int]:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM troupe), (SELECT count(*) FROM troupe_member)"
        ).fetchone()
    assert row
    return int(row[0]), int(row[1])


def _raw_get(base_url: str, target: bytes) -> tuple[int, bytes]:
    """A GET whose target holds raw bytes no HTTP client library would send."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), data


@pytest.mark.parametrize("prefix", PREFIXES, ids=["django", "fastapi"])
def test_bad_post_bodies_write_nothing(served: Served, db: Database, prefix: str) -> None:
    url = served.base_url + prefix + "/api/troupes"
    json_type = {"content-type": "application/json"}
    bodies = {
        # over the 64 KiB cap: refused before parsing
        b'{"name": "' + b"x" * 200_000 + b'", "member_ids": []}': (413,),
        b"[" * 50_000: (413, 422),
        b"[" * 5_000: (422,),
        b'{"name": "a\\u0000b", "member_ids": []}': (422,),
        b'{"name": "a\\ud800b", "member_ids": []}': (422,),
        b'{"name": "Bools", "member_ids": [true]}': (422,),
        b'{"name": "Floats", "member_ids": [1.0]}': (422,),
        b'{"name": "Huge ids", "member_ids": [99999999999999999999999]}': (422,),
        b'{"name": "Negative ids", "member_ids": [-1]}': (422,),
        b"\xff\xfe\x00{": (422,),
        b"": (422,),
        b"null": (422,),
    }
    before = _troupe_rows(db)
    with httpx.Client(timeout=30) as client:
        for body, statuses in bodies.items():
            # A fresh connection each: a server may close one whose body it did not read.
            response = client.post(url, content=body, headers={**json_type, "connection": "close"})
            assert response.status_code in statuses, (body[:60], response.text[:200])
            assert "detail" in response.json()
    assert _troupe_rows(db) == before


@pytest.mark.parametrize("prefix", PREFIXES, ids=["django", "fastapi"])
def test_duplicate_member_ids_count_once_and_409_writes_nothing(
    served: Served, db: Database, prefix: str
) -> None:
    url = served.base_url + prefix + "/api/troupes"
    name = f"Django-FastAPI {secrets.token_hex(6)}"
    try:
        created = httpx.post(url, json={"name": name, "member_ids": [4, 4, 1]}, timeout=30)
        assert created.status_code == 201, created.text
        assert [m["id"] for m in created.json()["members"]] == [1, 4]
        before = _troupe_rows(db)
        taken = httpx.post(url, json={"name": name, "member_ids": [2, 3]}, timeout=30)
        assert taken.status_code == 409 and "detail" in taken.json()
        assert _troupe_rows(db) == before
    finally:
        with db.connect() as conn:
            conn.execute("DELETE FROM troupe WHERE name = %s", [name])


@pytest.mark.parametrize("prefix", PREFIXES, ids=["django", "fastapi"])
def test_odd_paths_and_query_strings_are_never_500(served: Served, prefix: str) -> None:
    p = prefix.encode()
    cases = {
        p + b"/api/colleges/%FF": (404,),
        p + b"/api/colleges/\xff\xfe": (400, 404),
        p + b"/api/troupes/99999999999999999999999": (404,),
        p + b"/api/colleges?page=\xff&page_size=\xfe": (400, 404),
        p + b"/api/colleges?page_size=" + b"9" * 3000: (200,),
        p + b"/api/troupes?page=" + b"9" * 3000: (404,),
        p + b"/queries?queries=" + b"9" * 3000: (200,),
        p + b"/queries?queries=%FF%FE": (200,),
        p + b"/updates?queries=\xff": (200, 400),
        p + b"/slow/db?seconds=1e999": (422,),
        p + b"/slow/db?seconds=%00": (422,),
        p + b"/slow/fanout?n=99999999999999999999999": (422,),
    }
    for target, statuses in cases.items():
        status, data = _raw_get(served.base_url, target)
        assert status in statuses, (target[:80], data[-300:])


@pytest.mark.parametrize("prefix", PREFIXES, ids=["django", "fastapi"])
def test_queries_clamp_to_500_rows(served: Served, prefix: str) -> None:
    rows = httpx.get(f"{served.base_url}{prefix}/queries?queries=100000", timeout=60).json()
    assert len(rows) == 500


# ---------------------------------------------------------------- gevent: the WSGI entry


@pytest.mark.serial  # concurrent or serial, told by the time taken
@pytest.mark.skipif(importlib.util.find_spec("gevent") is None, reason="gevent not installed")
@pytest.mark.parametrize("prefix", PREFIXES, ids=["django", "fastapi"])
def test_slow_db_is_concurrent_under_gevent_wsgi(app_servers, prefix: str) -> None:  # type: ignore[no-untyped-def]
    """10 x pg_sleep(1) at once through the WSGI entry on one gevent worker.

    Served one at a time that is 10 s; with psycopg 3 cooperative under gevent it is
    bounded by the pool (4 connections in the test session: three rounds, about 3 s).
    """
    served = _serve(app_servers, "gunicorn-gevent")
    url = f"{served.base_url}{prefix}/slow/db?seconds=1"
    httpx.get(f"{served.base_url}{prefix}/slow/db?seconds=0", timeout=30)  # warm the pool

    def one(_: int) -> int:
        return httpx.get(url, timeout=60).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(one, range(10)))
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 10
    assert elapsed < 6.0, f"10 concurrent 1 s sleeps took {elapsed:.1f} s: serialized?"


@pytest.mark.skipif(importlib.util.find_spec("gevent") is None, reason="gevent not installed")
def test_fanout_says_greenlets_under_gevent(app_servers) -> None:  # type: ignore[no-untyped-def]
    served = _serve(app_servers, "gunicorn-gevent")
    response = httpx.get(f"{served.base_url}/slow/fanout?n=5&seconds=0", timeout=30)
    assert response.status_code == 200
    assert response.headers["x-fanout-concurrency"] == "greenlets (gevent)"
    fastapi = httpx.get(f"{served.base_url}/fastapi/slow/fanout?n=5&seconds=0", timeout=30)
    assert fastapi.headers["x-fanout-concurrency"] == "asyncio tasks"


def test_readme_commands_name_the_entries() -> None:
    readme = (APP.directory / "README.md").read_text(encoding="utf-8")
    for needle in ("project.asgi:application", "project.wsgi:application", "127.0.0.1"):
        assert needle in readme
    assert Path(APP.directory / "requirements.txt").is_file()


# ---------------------------------------------------------------- the FastAPI half, hostile


class TestFastAPIHalfHostile(HostileClientChecks):
    """Issue 26's findings at /fastapi (api/main.py), under the ASGI entry."""

    APP = APP.id
    PREFIX = "/fastapi"

    @pytest.fixture(scope="class")
    @classmethod
    def db_url(cls, db: Database) -> str:
        return db.url
