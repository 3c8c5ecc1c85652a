"""Session fixtures: one real PostgreSQL, one upstream service, apps served on demand.

Everything here is a real process on loopback, started once and stopped at the end of the
session; after the last teardown the session fails if any process it started is alive.
"""

from __future__ import annotations

import os
import uuid

# Under pytest-xdist each worker is a test session of its own, with its own database,
# upstream and app servers. What it starts gets an owner tag of its own, set before
# shared_fixtures.processes reads it at import, so that each worker's leak check (below)
# sees what that worker started, not what a worker still running has up.
if (_worker := os.environ.get("PYTEST_XDIST_WORKER")) is not None:
    os.environ["STACKBENCH_OWNER"] = f"{uuid.uuid4().hex}-{_worker}"

import contextlib
import re
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
from stackbench.certificates import certificates
from stackbench.server_process import Served, serve
from stackbench.servers import H1, TLS, Certificates, Knobs, get_server

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
        self._served: dict[tuple[str, str, bool, str], Served] = {}
        self._refusing: socket.socket | None = None
        self._prepared: set[str] = set()  # apps whose setup commands have run on the database
        self._certificates: Certificates | None = None

    @property
    def certificates(self) -> Certificates:
        """The session's test CA and server certificate (made on first use)."""
        if self._certificates is None:
            self._certificates = self._stack.enter_context(certificates(self._log_dir.parent))
        return self._certificates

    def get(
        self, app_id: str, server_id: str, *, strained: bool = False, protocol: str = H1
    ) -> Served:
        """``app_id`` under ``server_id`` speaking ``protocol`` (served once a session)."""
        key = (app_id, server_id, strained, protocol)
        if key not in self._served:
            app = get_app(app_id)  # a declaration that is wrong (a lost file) fails, naming it
            self._served[key] = self._stack.enter_context(
                serve(
                    app,
                    get_server(server_id),
                    database_url=self._db.url,
                    upstream_url=self._refused_url() if strained else self._upstream,
                    bin_dir=BIN_DIR,
                    log_dir=self._log_dir.joinpath(
                        *(["strained"] if strained else []), *([protocol] if protocol != H1 else [])
                    ),
                    knobs=STRAINED_KNOBS if strained else Knobs(workers=1, pool_size=4),
                    cpus=1,
                    settings={"DB_POOL_TIMEOUT": str(STRAINED_POOL_TIMEOUT)} if strained else None,
                    prepared=app_id in self._prepared,
                    protocol=protocol,
                    certificates=self.certificates if protocol in TLS else None,
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


# A conformance test's target in its id: app@server/prefix ("/" at the root), and in the
# protocol rows app@server~protocol.
_TARGET = re.compile(r"[a-z_]+@[a-z0-9-]+(/[a-z_]*|~(h1-tls|h2c|h2|h1))(?=[-\]])")
_SPLIT_BY_TARGET = ("test_conformance.py", "test_conformance_protocols.py")


def work_unit(nodeid: str) -> str:
    """What one pytest-xdist worker runs together (docs/testing.md): a test file, so that
    its module fixtures start once; in the conformance suite, one target (an app under a
    server at a mount point), so that its ~1,800 tests spread over the workers while each
    target's server and statement counts stay on one. The protocol rows likewise, one
    target (a pair on a protocol) each."""
    path, _, test = nodeid.partition("::")
    if path.endswith(_SPLIT_BY_TARGET) and (target := _TARGET.search(test)):
        return f"{path}[{target.group(0)}]"
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile`` by ``work_unit``. (``--dist loadgroup`` with marks would say the
    same, but with pytest 9.2 it silently stops grouping: pytest-xdist issue #1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ByWorkUnit(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)  # type: ignore[arg-type]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is torn down: nothing this session started may still run.

    Under xdist each worker checks its own; the controller starts nothing (and the idle
    workers carry its tag)."""
    if session.config.pluginmanager.has_plugin("dsession"):
        return
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
