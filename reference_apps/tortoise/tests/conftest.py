"""What the tests run on: an empty PostgreSQL, its tables made by Tortoise's migrations, a
few rows of their own, and a stand-in for the slow upstream service.

DATABASE_URL must name an empty database. The tests run ``tortoise -c db.TORTOISE_ORM
migrate`` on it, load their rows, and empty the tables again when they end; they refuse a
database whose tables already hold rows, so they never mix with (or delete) anyone's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from fastapi.testclient import TestClient

APP_DIR = Path(__file__).resolve().parent.parent
TABLES = "world, fortune, location, performer, troupe, troupe_member, college"
ROWS = """
INSERT INTO world (id, randomnumber) SELECT i, i FROM generate_series(1, 10000) AS i;
INSERT INTO fortune (id, message) VALUES
    (1, 'fortune: No such file or directory'),
    (2, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (3, 'フレームワークのベンチマーク');
INSERT INTO location (line_1, line_2, line_3, zipcode) VALUES
    ('1 Ring Road', '', 'Sarasota', '34236');
INSERT INTO performer (stage_name, kind, concentration) VALUES
    ('Bozo', 'clown', 'juggling'), ('Pogo', 'clown', 'pratfalls'), ('Flyer', 'acrobat', 'trapeze');
INSERT INTO troupe (name) VALUES ('Red Noses'), ('High Wire');
INSERT INTO troupe_member (troupe_id, performer_id) VALUES (1, 1), (1, 2), (2, 3);
INSERT INTO college (name, location_id, troupe_id) VALUES
    ('Clown College', 1, 1), ('Trapeze School', 1, 2), ('Mime Academy', 1, 1);
"""


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DATABASE_URL"):
        raise pytest.UsageError("set DATABASE_URL to an empty PostgreSQL database (README.md)")


async def _on_database(work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        return await work(conn)
    finally:
        await conn.close()


def execute(script: str) -> None:
    asyncio.run(_on_database(lambda conn: conn.execute(script)))


def fetch(query: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one query on DATABASE_URL, read on a connection of its own."""
    return asyncio.run(_on_database(lambda conn: conn.fetch(query, *args)))


# The README's "Create the schema": tortoise -c db.TORTOISE_ORM migrate
MIGRATE = [sys.executable, "-m", "tortoise", "-c", "db.TORTOISE_ORM", "migrate"]


@pytest.fixture(scope="session")
def database() -> Iterator[None]:
    for table in TABLES.split(", "):
        exists = fetch("SELECT to_regclass($1) IS NOT NULL", table)[0][0]
        if exists and fetch(f"SELECT 1 FROM {table} LIMIT 1"):
            pytest.exit(f"DATABASE_URL's {table} holds rows: the tests need an empty database")
    subprocess.run(MIGRATE, cwd=APP_DIR, check=True)
    execute(ROWS)
    yield
    execute(f"TRUNCATE {TABLES} RESTART IDENTITY")


class Upstream(BaseHTTPRequestHandler):
    """The slow upstream service: GET /delay?seconds=S sleeps S, answers {"delay": S}."""

    def do_GET(self) -> None:
        seconds = float(parse_qs(urlsplit(self.path).query)["seconds"][0])
        time.sleep(seconds)
        body = json.dumps({"delay": seconds, "served_at": time.time()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def client(database: None, upstream_url: str) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("UPSTREAM_URL", upstream_url)
        from main import app  # reads DATABASE_URL and UPSTREAM_URL

    with TestClient(app) as client:  # runs the lifespan
        yield client


@pytest.fixture
def db() -> Callable[..., list[asyncpg.Record]]:
    """``db(query, *args)``: rows read back from the database, to check what was written."""
    return fetch
