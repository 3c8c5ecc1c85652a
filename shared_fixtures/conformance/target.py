"""What the conformance suite judges: an app at a base URL, and (optionally) its database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psycopg

_STATS_EXCLUDE = "%pg_stat_statements%"


@dataclass
class Target:
    base_url: str  # e.g. http://127.0.0.1:8000 or http://127.0.0.1:8000/fastapi
    database_url: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.client = httpx.Client(timeout=30.0, follow_redirects=False)

    @property
    def prefix(self) -> str:
        """The path the contract is mounted at ('' or e.g. '/fastapi')."""
        return urlsplit(self.base_url).path

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.get(self.base_url + path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.post(self.base_url + path, **kwargs)  # type: ignore[arg-type]

    def db(self) -> psycopg.Connection:
        if not self.database_url:
            import pytest

            pytest.skip("needs --database-url to read the app's data back")
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def statements(self, path: str, settle: float = 0.3) -> int:
        """SQL statements the database ran while serving one GET, counted server-side.

        pg_stat_statements is reset, the request is made, and every statement executed in
        this database since is summed (the suite's own statements excluded). A short settle
        time lets pools finish their release-time statements, so they are counted too.
        """
        with self.db() as conn:
            try:
                conn.execute("SELECT pg_stat_statements_reset()")
            except psycopg.Error:
                import pytest

                pytest.skip("pg_stat_statements is not available on this database")
            response = self.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)
            time.sleep(settle)
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT ILIKE %s",
                [_STATS_EXCLUDE],
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.client.close()
