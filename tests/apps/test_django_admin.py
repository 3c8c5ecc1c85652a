"""django_sync and django_async: the admin login flow, deploy checks, required settings.

Each app is served by a real server as a subprocess on the session's seeded PostgreSQL
(``tests/conftest.py``): django_sync under gunicorn's gthread worker, django_async under
uvicorn, the same processes the conformance suite judges.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import httpx
import pytest

from shared_fixtures.db import Database
from stackbench.apps import get_app
from stackbench.server_process import Served

SERVERS = {"django_sync": "gunicorn-gthread", "django_async": "uvicorn"}
HTTPS_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.fixture(params=list(SERVERS))
def served(request: pytest.FixtureRequest, app_servers) -> Served:  # type: ignore[no-untyped-def]
    served = app_servers.get(request.param, SERVERS[request.param])
    # The Django apps share one auth_user table and one admin username, and every serve()
    # makes a new password: re-assert this app's own before logging in with it.
    subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"],
        cwd=served.app.directory,
        env=served.env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return served


def manage(app_id: str, db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py`` in the app's directory, with only the variables given (no DJANGO_*)."""
    app = get_app(app_id)  # a declaration that is wrong (a lost file) fails, naming it
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PSYCOGREEN"))}
    base.pop("SECRET_KEY", None)
    base.update(DATABASE_URL=db.url, DJANGO_SETTINGS_MODULE="project.settings")
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=app.directory,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/admin/login/", params={"next": "/admin/"})
    assert page.status_code == 200, page.text[:300]
    assert 'name="csrfmiddlewaretoken"' in page.text
    token = client.cookies.get("csrftoken")
    assert token, dict(page.headers)
    return client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token,
            "next": "/admin/",
        },
        headers={"Referer": f"{client.base_url}/admin/login/"},
    )


# ---------------------------------------------------------------- the k6 login flow


def test_admin_login_flow_then_api(served: Served) -> None:
    """benchmark-django-fastapi's k6 script: login page, csrftoken, POST the form, the API."""
    with httpx.Client(base_url=served.base_url, timeout=30, follow_redirects=False) as client:
        posted = login(client, *served.admin_credentials)
        assert posted.status_code == 302, posted.text[:300]
        assert posted.headers["location"] == "/admin/"
        assert "sessionid" in client.cookies

        index = client.get("/admin/")
        assert index.status_code == 200 and "Site administration" in index.text
        for path in ("/api/colleges", "/api/troupes"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert response.json()["count"] > 0


def test_admin_login_rejects_a_wrong_password(served: Served) -> None:
    username, _ = served.admin_credentials
    with httpx.Client(base_url=served.base_url, timeout=30, follow_redirects=False) as client:
        posted = login(client, username, "not-the-password")
        assert posted.status_code == 200  # the form again, with an error
        assert "sessionid" not in client.cookies
        assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_admin_keeps_csrf(served: Served) -> None:
    """Only the JSON API is csrf_exempt: the admin's form refuses a POST without a token."""
    username, password = served.admin_credentials
    response = httpx.post(
        f"{served.base_url}/admin/login/",
        data={"username": username, "password": password},
        timeout=30,
    )
    assert response.status_code == 403


# ---------------------------------------------------------------- settings and manage.py


@pytest.mark.parametrize("app_id", list(SERVERS))
def test_check_deploy_leaves_only_the_https_warnings(app_id: str, db: Database) -> None:
    """Plain HTTP on loopback: SSL redirect, HSTS and secure cookies stay off (README)."""
    result = manage(app_id, db, "check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    assert set(re.findall(r"security\.W\d+", result.stderr)) == HTTPS_WARNINGS, result.stderr


@pytest.mark.parametrize("app_id", list(SERVERS))
def test_check_deploy_behind_https_leaves_only_preload(app_id: str, db: Database) -> None:
    result = manage(
        app_id, db, "check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), DJANGO_HTTPS="1"
    )
    assert result.returncode == 0, result.stderr
    # HSTS preload is a commitment browsers bake in: left to whoever owns the domain.
    assert set(re.findall(r"security\.W\d+", result.stderr)) == {"security.W021"}


@pytest.mark.parametrize("app_id", list(SERVERS))
@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL"])
def test_required_settings(app_id: str, db: Database, variable: str) -> None:
    env = {"SECRET_KEY": secrets.token_urlsafe(50), variable: ""}
    result = manage(app_id, db, "check", **env)
    assert result.returncode != 0
    assert f"Set the {variable} environment variable" in result.stderr


def test_unknown_driver_is_refused(db: Database) -> None:
    result = manage(
        "django_sync", db, "check", SECRET_KEY=secrets.token_urlsafe(50), DJANGO_DB_DRIVER="x"
    )
    assert result.returncode != 0 and "DJANGO_DB_DRIVER" in result.stderr


@pytest.mark.parametrize("app_id", list(SERVERS))
def test_ensure_admin_needs_credentials_and_is_idempotent(app_id: str, db: Database) -> None:
    key = secrets.token_urlsafe(50)
    missing = manage(app_id, db, "ensure_admin", SECRET_KEY=key)
    assert missing.returncode != 0
    assert "DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD" in missing.stderr

    weak = manage(
        app_id,
        db,
        "ensure_admin",
        SECRET_KEY=key,
        DJANGO_SUPERUSER_USERNAME="weak-admin",
        DJANGO_SUPERUSER_PASSWORD="password",
    )
    assert weak.returncode != 0 and "DJANGO_SUPERUSER_PASSWORD" in weak.stderr

    credentials = {
        "DJANGO_SUPERUSER_USERNAME": f"test-admin-{app_id}",
        "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
    }
    first = manage(app_id, db, "migrate", "--noinput", SECRET_KEY=key)
    assert first.returncode == 0, first.stderr
    for _ in range(2):
        result = manage(app_id, db, "ensure_admin", SECRET_KEY=key, **credentials)
        assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT is_staff, is_superuser FROM auth_user WHERE username = %s",
            [credentials["DJANGO_SUPERUSER_USERNAME"]],
        ).fetchall()
        conn.execute(
            "DELETE FROM auth_user WHERE username = %s", [credentials["DJANGO_SUPERUSER_USERNAME"]]
        )
    assert rows == [(True, True)]
