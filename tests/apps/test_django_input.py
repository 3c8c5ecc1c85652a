"""django_sync and django_async: bad input beyond the conformance suite never yields a 500.

Oversized and chunked bodies, deep nesting, huge numbers, text PostgreSQL cannot store,
huge query-string values: each gets a 4xx (or the contract's clamp) and writes nothing.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from shared_fixtures.db import Database
from stackbench.server_process import Served

SERVERS = {"django_sync": "gunicorn-gthread", "django_async": "uvicorn"}
HUGE = "9" * 3000  # far past any integer column, short enough for a request line


@pytest.fixture(params=list(SERVERS))
def served(request: pytest.FixtureRequest, app_servers) -> Served:  # type: ignore[no-untyped-def]
    return app_servers.get(request.param, SERVERS[request.param])


def written(db: Database) -> tuple[int, int]:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM troupe), (SELECT count(*) FROM troupe_member)"
        ).fetchone()
    assert row
    return int(row[0]), int(row[1])


def name() -> str:
    return f"Input test {uuid.uuid4().hex[:12]}"


BAD_BODIES = {
    "over 64 KiB": (413, json.dumps({"name": "x" * 70_000, "member_ids": []}).encode()),
    "nested 30000 deep": (422, b"[" * 30_000),
    "nested objects": (422, b'{"name":' * 5000 + b"1" + b"}" * 5000),
    "5000-digit member id": (422, b'{"name": "Big", "member_ids": [' + b"9" * 5000 + b"]}"),
    "member id past int32": (422, b'{"name": "Big", "member_ids": [2147483648]}'),
    "member id zero": (422, b'{"name": "Zero", "member_ids": [0]}'),
    "boolean member id": (422, b'{"name": "Bool", "member_ids": [true]}'),
    "float member id": (422, b'{"name": "Float", "member_ids": [1.0]}'),
    "NUL in name": (422, b'{"name": "a\\u0000b", "member_ids": []}'),
    "lone surrogate in name": (422, b'{"name": "a\\ud800b", "member_ids": []}'),
    "latin-1 body": (422, '{"name": "Café", "member_ids": []}'.encode("latin-1")),
    "UTF-16 body": (422, '{"name": "x", "member_ids": []}'.encode("utf-16")),
    "NaN": (422, b"NaN"),
    "empty body": (422, b""),
    "null name": (422, b'{"name": null, "member_ids": []}'),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_post_bodies_write_nothing(served: Served, db: Database, case: str) -> None:
    status, body = BAD_BODIES[case]
    before = written(db)
    response = httpx.post(
        f"{served.base_url}/api/troupes",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status, response.text[:300]
    assert "detail" in response.json()
    assert written(db) == before


def test_oversized_chunked_body_writes_nothing(served: Served, db: Database) -> None:
    """No Content-Length: the servers differ in what they pass on; any 4xx, nothing written."""
    before = written(db)

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 10_000
        yield b'", "member_ids": []}'

    response = httpx.post(f"{served.base_url}/api/troupes", content=chunks(), timeout=30)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert written(db) == before


def test_name_of_100_multibyte_characters_is_stored(served: Served, db: Database) -> None:
    """varchar(100) counts characters, not bytes: 100 × 'ü' (200 bytes) is a valid name."""
    troupe_name = "ü" * 100
    try:
        response = httpx.post(
            f"{served.base_url}/api/troupes", json={"name": troupe_name, "member_ids": [1, 1, 2]}
        )
        assert response.status_code == 201, response.text[:300]
        body = response.json()
        assert body["name"] == troupe_name
        assert [m["id"] for m in body["members"]] == [1, 2]  # duplicates count once
        assert response.headers["location"] == f"/api/troupes/{body['id']}"
        conflict = httpx.post(
            f"{served.base_url}/api/troupes", json={"name": troupe_name, "member_ids": []}
        )
        assert conflict.status_code == 409
    finally:
        with db.connect() as conn:
            conn.execute("DELETE FROM troupe WHERE name = %s", [troupe_name])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/api/colleges?page_size={HUGE}", 200),
        (f"/api/troupes?page={HUGE}", 404),
        (f"/api/colleges/{HUGE}", 404),
        ("/api/troupes/2147483648", 404),
        ("/api/colleges/%00", 404),
        (f"/queries?queries={HUGE}", 200),
        (f"/updates?queries=-{HUGE}", 200),
        ("/slow/db?seconds=1e400", 422),
        ("/slow/db?seconds=-0.0001", 422),
        (f"/slow/fanout?n={HUGE}&seconds=0", 422),
        ("/api/colleges?page=%ff%fe", 404),
        ("/db?x=%ff", 200),
    ],
)
def test_huge_and_odd_query_values(served: Served, path: str, status: int) -> None:
    response = httpx.get(served.base_url + path, timeout=30)
    assert response.status_code == status, (path, response.text[:300])
    if path.startswith("/api/colleges?page_size"):
        assert len(response.json()["results"]) == 100
    if path.startswith("/queries"):
        assert len(response.json()) == 500


def test_wrong_methods_are_4xx(served: Served) -> None:
    for method, path in [("PUT", "/api/troupes"), ("DELETE", "/api/troupes/1"), ("POST", "/db")]:
        response = httpx.request(method, served.base_url + path, timeout=30)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
