"""Session fixtures: one real PostgreSQL, one upstream service, apps served on demand.

Everything here is a real process on loopback, started once and stopped at the end of the
session; after the last teardown the session fails if any process it started is alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_fixtures.conformance.target import Strained
from shared_fixtures.db import Database, database
from shared_fixtures.processes import OWNER, processes_owned_by
from shared_fixtures.seed import seed
from shared_fixtures.upstream import start_upstream
from stackbench.apps import get_app
from stackbench.server_process import Served, serve
from stackbench.servers import Knobs, get_server

BIN_DIR = Path(sys.executable).parent


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stackbench")
    path.chmod(0o755)  # the embedded PostgreSQL may run as an unprivileged user
    return path


@pytest.fixture(scope="session")
def database_fixture(work_dir: Path) -> Iterator[Database]:
    with database(work_dir=work_dir) as db:
        with db.connect() as conn:
            seed(conn, scale=1)
        yield db


@pytest.fixture(scope="session")
def db(database_fixture: Database) -> Database:
    """The seeded session database (embedded, or DATABASE_URL)."""
    return database_fixture


@pytest.fixture(scope="session")
def upstream_url(work_dir: Path) -> Iterator[str]:
    process, url = start_upstream(work_dir)
    with process:
        yield url


# An app served strained on purpose (shared_fixtures/conformance/target.py, Strained): two
# connections that it waits a second for, six threads for a threaded server (more requests
# at once than connections), and an upstream that refuses connections.
STRAINED_KNOBS = Knobs(workers=1, threads=6, pool_size=2)
STRAINED_POOL_TIMEOUT = 1.0


class AppServers:
    """Apps served on first request and kept up until the session ends."""

    def __init__(self, db: Database, upstream_url: str, log_dir: Path) -> None:
        self._db, self._upstream, self._log_dir = db, upstream_url, log_dir
        self._stack = contextlib.ExitStack()
        self._served: dict[tuple[str, str, bool], Served] = {}
        self._refusing: socket.socket | None = None
        self._prepared: set[str] = set()  # apps whose setup commands have run on the database

    def get(self, app_id: str, server_id: str, *, strained: bool = False) -> Served:
        key = (app_id, server_id, strained)
        if key not in self._served:
            app = get_app(app_id)  # a declaration that is wrong (a lost file) fails, naming it
            self._served[key] = self._stack.enter_context(
                serve(
                    app,
                    get_server(server_id),
                    database_url=self._db.url,
                    upstream_url=self._refused_url() if strained else self._upstream,
                    bin_dir=BIN_DIR,
                    log_dir=self._log_dir / "strained" if strained else self._log_dir,
                    knobs=STRAINED_KNOBS if strained else Knobs(workers=1, pool_size=4),
                    cpus=1,
                    settings={"DB_POOL_TIMEOUT": str(STRAINED_POOL_TIMEOUT)} if strained else None,
                    prepared=app_id in self._prepared,
                )
            )
            self._prepared.add(app_id)
        return self._served[key]

    def strained(self, app_id: str, server_id: str, prefix: str) -> Strained:
        """The conformance suite's view of the strained instance (mounted at ``prefix``)."""
        served = self.get(app_id, server_id, strained=True)
        return Strained(
            served.base_url + prefix,
            pool_size=STRAINED_KNOBS.pool_size * (STRAINED_KNOBS.workers or 1),
            pool_timeout=STRAINED_POOL_TIMEOUT,
            log_path=served.process.log_path,
        )

    def _refused_url(self) -> str:
        """A loopback port bound and never listened on: every connection is refused."""
        if self._refusing is None:
            self._refusing = self._stack.enter_context(socket.socket())
            self._refusing.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self._refusing.getsockname()[1]}"

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def app_servers(db: Database, upstream_url: str, work_dir: Path) -> Iterator[AppServers]:
    servers = AppServers(db, upstream_url, work_dir / "logs")
    try:
        yield servers
    finally:
        servers.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is torn down: nothing this session started may still run."""
    leftovers = processes_owned_by(OWNER)
    if not leftovers:
        return
    for pid, _ in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    lines = "\n".join(f"  {pid}: {cmd[:150]}" for pid, cmd in leftovers)
    session.config.pluginmanager.get_plugin("terminalreporter").write_line(  # type: ignore[union-attr]
        f"LEAK: processes started by this test session were still running:\n{lines}", red=True
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
