"""With DATABASE_URL, the user's database as it is (docs/your-app.md, "The database"): the
harness runs the app's setup commands there but never its schema command, and creates,
drops or truncates nothing, unless asked with --reseed (the contract's seed, for an app
that declares the contract). Planted: databases whose contents a change would show."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from shared_fixtures.db import Database
from tests.your_app.made_here import notes_app

ROOT = Path(__file__).resolve().parents[2]
LOAD = ["--requests", "20", "--warmup", "0s", "--workers", "1", "--connections", "2"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def new_database(db: Database) -> Iterator[Callable[[], str]]:
    """Empty databases on the test PostgreSQL, dropped when the test ends."""
    made: list[str] = []

    def make() -> str:
        name = f"yours_{uuid.uuid4().hex[:8]}"
        with db.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return urlunsplit(urlsplit(db.url)._replace(path=f"/{name}"))

    yield make
    with db.connect() as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bench(url: str, output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "bench", *args, "--output", str(output), *LOAD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DATABASE_URL": url},
    )


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}


def test_an_apps_own_database_is_used_as_it_is(tmp_path: Path, new_database) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id int PRIMARY KEY, title text)")
        conn.execute("INSERT INTO note VALUES (1, 'note 1'), (2, 'mine'), (3, 'note 3')")
    app = notes_app(tmp_path / "apps")
    done = _bench(url, tmp_path / "out", "--app", str(app), "--server", "uvicorn")
    assert done.returncode in (0, 1), done.stderr  # answered: ok, or degraded by the 404s
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, title FROM note ORDER BY id").fetchall()
    # schema.py (the app's schema command) would have inserted notes 4..100
    assert rows == [(1, "note 1"), (2, "mine"), (3, "note 3")]
    assert _tables(url) == {"note"}


def test_the_contracts_seed_is_loaded_only_when_asked(tmp_path: Path, new_database) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE mine (id int PRIMARY KEY)")
        conn.execute("INSERT INTO mine VALUES (42)")
    args = ["--app", "gino_style", "--server", "uvicorn", "--scenarios", "json"]
    refused = _bench(url, tmp_path / "refused", *args)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr
    assert "does not hold the contract's seed at scale 1: --reseed lets stackbench" in lines[0]
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())
    assert _tables(url) == {"mine"}  # nothing made there
    loaded = _bench(url, tmp_path / "loaded", *args, "--reseed")
    assert loaded.returncode == 0, loaded.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM world").fetchone() == (10_000,)
        assert conn.execute("SELECT * FROM mine").fetchall() == [(42,)]  # never dropped
