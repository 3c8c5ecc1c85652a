"""What the conformance suite judges: an app at a base URL, and (optionally) its database."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

# Statements over PostgreSQL's statistics views are monitoring, never the app's: this
# module's own (each names pg_stat_statements) and a watcher's such as `serve`'s sampler,
# which counts connections in pg_stat_activity four times a second.
_STATS_EXCLUDE = r"%pg\_stat\_%"
STATEMENTS_TIMEOUT = 10.0  # seconds for an app's connections to go quiet after a response
QUIET = 0.1  # seconds the count must stay unchanged (with every connection idle)
POLL = 0.02  # seconds between reads

# One statement (so one excluded text): the count and the rows those statements returned or
# changed, and the connections of this database that changed state since the reset (the
# app's, for this request) and are not yet idle.
_SETTLE_QUERY = """
SELECT
    (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND query NOT ILIKE %(exclude)s AND query ILIKE %(matching)s),
    (SELECT coalesce(sum(rows), 0) FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND query NOT ILIKE %(exclude)s AND query ILIKE %(matching)s),
    (SELECT coalesce(array_agg(pid || ' ' || state || ': ' || left(query, 60)), '{}')
     FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
     AND backend_type = 'client backend' AND state <> 'idle'
     AND state_change >= %(since)s)
"""


class StatementCountError(AssertionError):
    """The statements of a request cannot be counted; the message says why, in one line."""


def _unavailable(exc: psycopg.Error) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"pg_stat_statements is not available on this database ({reason}): the statement "
        "count cannot be verified; load it with shared_preload_libraries = "
        "'pg_stat_statements' and run CREATE EXTENSION pg_stat_statements in this database"
    )


@dataclass(frozen=True)
class Counted:
    """Statements executed (pg_stat_statements' calls) and the rows they read or changed."""

    calls: int
    rows: int


def _settled_count(
    conn: psycopg.Connection, since: datetime, matching: str | None, timeout: float, what: str
) -> Counted:
    """The statement count once it has settled (see AppTarget.statements), polled."""
    params = {"exclude": _STATS_EXCLUDE, "matching": matching or "%", "since": since}
    deadline = time.monotonic() + timeout
    count, rows, busy, stable_since = -1, -1, list[str](), time.monotonic()
    while True:
        row = conn.execute(_SETTLE_QUERY, params).fetchone()
        assert row is not None
        now = time.monotonic()
        if int(row[0]) != count or int(row[1]) != rows or row[2]:
            count, rows, busy, stable_since = int(row[0]), int(row[1]), list(row[2]), now
        elif now - stable_since >= QUIET:
            return Counted(count, rows)
        if now >= deadline:
            raise StatementCountError(
                f"the statements of {what} did not settle within {timeout:g} s "
                f"({count} counted so far; connections still busy: {busy or 'none'})"
            )
        time.sleep(POLL)


@dataclass(frozen=True)
class Strained:
    """The same app served a second time, strained on purpose: at most ``pool_size``
    database connections in all (DB_POOL_SIZE over all its workers), DB_POOL_TIMEOUT set
    to ``pool_timeout`` seconds, a server that hands it more requests at once than that,
    and an UPSTREAM_URL that refuses connections."""

    base_url: str
    pool_size: int
    pool_timeout: float
    log_path: Path | None = None


def _skip(reason: str) -> None:
    import pytest

    pytest.skip(reason)


@dataclass
class AppTarget:
    base_url: str  # e.g. http://127.0.0.1:8000 or http://127.0.0.1:8000/fastapi
    database_url: str | None = None
    name: str = ""
    log_path: Path | None = None  # the served app's output (server and app), when known
    strained_by: Callable[[], Strained] | None = None  # served on first use
    cafile: Path | None = None  # an https:// app's CA (its certificate is checked against it)
    http2: bool = False  # speak HTTP/2: by ALPN for https://, by prior knowledge for http://

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            timeout=30.0,
            follow_redirects=False,
            verify=self.tls_context(),
            http1=not (self.http2 and not self.tls),  # h2c: prior knowledge only
            http2=self.http2,
            # A connection idle longer than this is not reused: a server closes an idle one
            # after its keep-alive (hypercorn's 5 s, httpx's own default), and a request sent
            # as it closes sees "Server disconnected" (seen on HTTP/2 under load).
            limits=httpx.Limits(keepalive_expiry=1.0),
        )

    def async_client(self, **options: object) -> httpx.AsyncClient:
        """An asyncio client speaking what ``client`` speaks (for concurrent requests)."""
        return httpx.AsyncClient(
            verify=self.tls_context(),
            http1=not (self.http2 and not self.tls),
            http2=self.http2,
            **options,  # type: ignore[arg-type]
        )

    @property
    def tls(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    def tls_context(self, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A client's TLS context trusting ``cafile`` (the system's CAs without one)."""
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context

    @property
    def protocol(self) -> str:
        """What the suite speaks to the app: HTTP/1.1 or HTTP/2, cleartext or over TLS."""
        return ("HTTP/2" if self.http2 else "HTTP/1.1") + (" over TLS" if self.tls else "")

    def connect(self, timeout: float = 5.0, alpn: tuple[str, ...] = ()) -> socket.socket:
        """A connection of its own to the app (over TLS for https://): for the requests an
        HTTP client will not send."""
        host, port = self.address
        sock = socket.create_connection((host, port), timeout=timeout)
        if not self.tls:
            return sock
        return self.tls_context(alpn).wrap_socket(sock, server_hostname=host)

    @property
    def prefix(self) -> str:
        """The path the contract is mounted at ('' or e.g. '/fastapi')."""
        return urlsplit(self.base_url).path

    @property
    def netloc(self) -> str:
        """What a client puts in Host: (e.g. 127.0.0.1:8000)."""
        return urlsplit(self.base_url).netloc

    @property
    def address(self) -> tuple[str, int]:
        """Where a raw socket connects."""
        url = urlsplit(self.base_url)
        return url.hostname or "127.0.0.1", url.port or (443 if self.tls else 80)

    def strained(self) -> Strained:
        if self.strained_by is None:
            _skip(
                "needs the app served a second time with a small pool and a refused upstream "
                "(--strained-base-url, --strained-pool-size, --strained-pool-timeout)"
            )
        assert self.strained_by is not None
        return self.strained_by()

    def log_mark(self) -> int:
        """Where the app's log ends now (the size of its file), to read what follows."""
        if self.log_path is None:
            _skip("needs the served app's log (--app-log) to read what a request left in it")
        assert self.log_path is not None
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        assert self.log_path is not None
        with open(self.log_path, "rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.get(self.base_url + path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.post(self.base_url + path, **kwargs)  # type: ignore[arg-type]

    def db(self) -> psycopg.Connection:
        if not self.database_url:
            import pytest

            pytest.skip("needs --database-url to read the app's data back")
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def statements(
        self,
        path: str,
        *,
        matching: str | None = None,
        timeout: float = STATEMENTS_TIMEOUT,
    ) -> int:
        """SQL statements the database ran while serving one GET, counted server-side.

        pg_stat_statements is reset, the request is made, and every statement executed in
        this database since is summed (the suite's own statements excluded; with
        ``matching``, only statements whose text is ILIKE it). The response can come back
        before the app's connection is done (a pool's release-time ROLLBACK or reset), so
        the count is read until it has settled: no connection to this database that
        changed state since the reset is still busy, and the count has not moved for
        QUIET seconds. Not settled within ``timeout`` seconds: StatementCountError.
        A database without pg_stat_statements: StatementCountError, never a skip.
        """

        def one_get() -> None:
            response = self.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)

        return self.counted(one_get, f"GET {path}", matching=matching, timeout=timeout).calls

    def counted(
        self,
        requests: Callable[[], None],
        what: str,
        *,
        matching: str | None = None,
        timeout: float = STATEMENTS_TIMEOUT,
    ) -> Counted:
        """What ``statements`` counts, for any requests: statements and their rows."""
        with self.db() as conn:
            try:
                row = conn.execute(
                    "SELECT clock_timestamp() FROM (SELECT pg_stat_statements_reset()) AS reset"
                ).fetchone()
            except psycopg.Error as exc:
                raise StatementCountError(_unavailable(exc)) from None
            assert row is not None
            since = row[0]
            requests()
            return _settled_count(conn, since, matching, timeout, what)

    def counts_now(self, matching: str) -> Counted:
        """Statements ILIKE ``matching`` since the last reset, as they stand (no settling):
        read right after ``counted``, the same window split another way."""
        with self.db() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT ILIKE %(exclude)s AND query ILIKE %(matching)s",
                {"exclude": _STATS_EXCLUDE, "matching": matching},
            ).fetchone()
        assert row is not None
        return Counted(int(row[0]), int(row[1]))

    def new_connections(self) -> None:
        """Requests from here on go over connections of their own, not the pool's."""
        self.client.close()
        self.client = self._new_client()

    def close(self) -> None:
        self.client.close()
