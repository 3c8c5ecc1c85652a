"""A copy of each app directory, alone, is a working starting point (issue 11).

For every app: its directory is copied alone to a temporary directory outside the
repository, and a new virtualenv is made for it. There, on databases created empty on the
test PostgreSQL:

1. its README's "Run the tests" block (install `requirements-dev.txt`, then `pytest`) runs
   on one empty database: the app's own tests, which make their own tables;
2. its README's "Create the schema" block runs on another, which must then hold every
   contract table;
3. that database gets shared_fixtures' seed, the copy is served from its own venv (uvicorn,
   or gunicorn gthread for WSGI-only apps) and the conformance suite is run against it
   (django_fastapi at / and at /fastapi).

The commands are the README's own fenced blocks, run by bash in the copy, so README and
test cannot drift; `pip` in them is uv's when uv is installed (same requirement files,
seconds instead of a minute). The copies are prepared in parallel threads; the conformance
suites run one at a time, because each resets pg_stat_statements, which is server-wide.
Every step is a process group of its own (shared_fixtures.processes), stopped when it ends.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from shared_fixtures.db import Database
from shared_fixtures.net import LOOPBACK, free_port
from shared_fixtures.processes import ManagedProcess
from shared_fixtures.seed import seed
from stackbench.apps import APPS, ASGI, App, get_app
from stackbench.server_process import answers_health
from stackbench.servers import SERVERS, Knobs

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")
# Copies prepared at once (installs and the apps' own tests) while the conformance suites
# run one by one; 2 to 6 measured alike on two busy cores.
PARALLEL = int(os.environ.get("STACKBENCH_COPIES_PARALLEL", "3"))
STEP_TIMEOUT = 600.0
TABLES = ("world", "fortune", "location", "performer", "troupe", "troupe_member", "college")
# What a copy's commands see of this environment: no PYTHONPATH, no VIRTUAL_ENV of ours.
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR")
PASSED_ON_PREFIXES = ("UV_", "PIP_")
# Set by nox for its own session's venv: a copy's uv must not install there.
NOT_PASSED_ON = ("UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "UV_SYSTEM_PYTHON")
# `pip` in a README block is uv's pip where uv is installed, into the copy's own venv.
UV_PIP = 'pip() { uv pip "$@" --python "$VIRTUAL_ENV/bin/python"; }\n'


class StepFailed(AssertionError):
    """One step of a copy failed; the message names the app, the step and its output."""


def readme_block(app_dir: Path, heading: str) -> str:
    """The first fenced block in the README section ``heading``: the commands it gives."""
    level = 0  # the heading's level, once found
    block: list[str] | None = None
    fenced = False
    for line in (app_dir / "README.md").read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            if level and block is not None:
                return "\n".join(block) + "\n"
            if level:
                block = []
            continue
        if fenced:
            if block is not None:
                block.append(line)
            continue
        if found := re.match(r"(#+) (.*)", line):
            if level and len(found.group(1)) <= level:
                break
            if found.group(2).strip() == heading:
                level = len(found.group(1))
    raise StepFailed(f"{app_dir.name}/README.md: no command block under '{heading}'")


@dataclass
class Copy:
    """One app directory copied alone, its venv, its logs and how long each step took."""

    app: App
    directory: Path
    logs: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def venv(self) -> Path:
        return self.directory.parent / f"{self.app.id}-venv"

    def env(self, **variables: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if (k in PASSED_ON or k.startswith(PASSED_ON_PREFIXES) or k.lower().endswith("_proxy"))
            and k not in NOT_PASSED_ON
        }
        # Not this test's own venv: a tool missing from the copy's venv must not be found
        # there instead (uv stays reachable where it is).
        ours = Path(sys.executable).parent
        outside = [p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p) != ours]
        tools = [str(Path(UV).parent)] if UV else []
        env.update(PATH=os.pathsep.join([str(self.venv / "bin"), *outside, *tools]))
        env.update(VIRTUAL_ENV=str(self.venv), **variables)
        return env

    def run(self, step: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
        """``argv`` as a process group of its own; its output, or StepFailed with its tail."""
        started = time.monotonic()
        slug = re.sub(r"\W+", "-", step).strip("-")
        log = self.logs / f"{self.app.id}-{len(self.timings):02d}-{slug}.log"
        process = ManagedProcess(argv, name=step, log_path=log, env=env, cwd=cwd or self.directory)
        try:
            code: int | None = process.popen.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            process.stop()  # whatever the step started is stopped with it
            self.timings[step] = time.monotonic() - started
        if code != 0:
            why = "timed out" if code is None else f"exit code {code}"
            raise StepFailed(
                f"{self.app.id}, {step}: {why} (whole output: {log})\n"
                f"$ {' '.join(argv)}\n{process.log_tail(40)}"
            )
        return log.read_text(errors="replace")

    def script(self, step: str, commands: str, **variables: str) -> str:
        """A README block, run by bash in the copy with the copy's venv first on PATH."""
        preamble = "set -euo pipefail\n" + (UV_PIP if UV else "")
        return self.run(step, ["bash", "-c", preamble + commands], self.env(**variables))

    def make_venv(self) -> None:
        if UV:
            argv = [UV, "venv", "--quiet", "--python", sys.executable, str(self.venv)]
        else:
            argv = [sys.executable, "-m", "venv", str(self.venv)]
        self.run("make the venv", argv, self.env())

    def install(self, *requirements: str) -> None:
        pip = [UV, "pip", "install", "--quiet"] if UV else [str(self.venv / "bin/pip"), "install"]
        self.run("install a server", [*pip, *requirements], self.env())

    def secret_key(self) -> dict[str, str]:
        """Django's SECRET_KEY, one per step, as a deployment would have its own."""
        return {"SECRET_KEY": secrets.token_urlsafe(50)} if self.app.django else {}


class Databases:
    """Empty databases made on the test PostgreSQL, dropped by ``drop_all``."""

    def __init__(self, db: Database) -> None:
        self.db, self.made = db, list[str]()

    def new(self, role: str) -> str:
        name = f"copy_{role}_{uuid.uuid4().hex[:10]}"
        with self.db.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return urlunsplit(urlsplit(self.db.url)._replace(path=f"/{name}"))

    def drop_all(self) -> None:
        with self.db.connect() as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(
    app: App, root: Path, databases: Databases, plant: Callable[[Path], None] | None = None
) -> tuple[Copy, str]:
    """The copy and its venv; its own tests run, its schema made by its README on a new
    database, which is then seeded. Returns the copy and that database's URL.
    ``plant`` may damage the copy first (how the planted-fault test breaks one)."""
    copy = Copy(app, root / app.id / app.id, root / "logs")
    shutil.copytree(
        app.directory,
        copy.directory,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".venv", "staticfiles"),
    )
    if plant:
        plant(copy.directory)
    copy.make_venv()
    tests = readme_block(copy.directory, "Run the tests")
    copy.script("Run the tests", tests, DATABASE_URL=databases.new("tests"), **copy.secret_key())

    url = databases.new("served")
    schema = readme_block(copy.directory, "Create the schema")
    copy.script("Create the schema", schema, DATABASE_URL=url, **copy.secret_key())
    with psycopg.connect(url, autocommit=True) as conn:
        missing = [
            table
            for table in TABLES
            if conn.execute("SELECT to_regclass(%s)", [table]).fetchone() == (None,)
        ]
        if missing:
            raise StepFailed(f"{app.id}: the README's schema step made no table {missing}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        seed(conn, scale=1)
    copy.install(*SERVERS[server_for(app)].requirements)
    return copy, url


def server_for(app: App) -> str:
    return "uvicorn" if ASGI in app.interfaces else "gunicorn-gthread"


@pytest.fixture(scope="module")
def copies(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, db: Database
) -> Iterator[dict[str, Future]]:
    """The copy of every app whose test was selected, prepared in parallel threads."""
    wanted = {
        item.callspec.params["app_id"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_a_copy_stands_alone"
    }
    root = tmp_path_factory.mktemp("copies")
    assert ROOT not in root.parents, f"{root} is inside the repository"
    databases = Databases(db)
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="copy") as pool:
            futures = {
                a: pool.submit(prepare, APPS[a], root, databases) for a in APPS if a in wanted
            }
            try:
                yield futures
            finally:
                for future in futures.values():
                    future.cancel()  # those not started; the pool waits for the others
    finally:
        databases.drop_all()
        for venv in root.glob("*/*-venv"):
            shutil.rmtree(venv, ignore_errors=True)  # hundreds of MB each; the logs stay


def serve_and_judge(copy: Copy, database_url: str, upstream_url: str) -> None:
    """The copy served from its own venv; the conformance suite at each of its prefixes."""
    app, server = copy.app, SERVERS[server_for(copy.app)]
    port = free_port()
    argv = server.argv(app, port, Knobs(workers=1, pool_size=4), 1, LOOPBACK)
    argv[0] = str(copy.venv / "bin" / argv[0])
    env = copy.env(DATABASE_URL=database_url, UPSTREAM_URL=upstream_url, DB_POOL_SIZE="4")
    env.update(**copy.secret_key(), **dict(app.env), **(server.env if app.driver_switch else {}))
    base_url = f"http://{LOOPBACK}:{port}"
    log = copy.logs / f"{app.id}-served.log"
    name = f"{server.id} ({app.id} copy)"
    with ManagedProcess(argv, name=name, log_path=log, env=env, cwd=copy.directory) as served:
        served.wait_until(lambda: answers_health(base_url), 60, "answering /health")
        for prefix in app.prefixes:
            argv = [sys.executable, "-m", "pytest", "shared_fixtures/conformance", "-q", "-rs"]
            argv += ["-p", "no:cacheprovider", "--base-url", base_url + prefix]
            argv += ["--database-url", database_url, "--app-log", str(log)]
            output = copy.run(f"conformance at {prefix or '/'}", argv, dict(os.environ), cwd=ROOT)
            summary = output.strip().splitlines()[-1]
            passed = r"\d+ passed(, \d+ skipped)?(, \d+ warnings?)? in [\d.]+s.*"
            assert re.fullmatch(passed, summary), output
            # Only the pool-exhaustion tests wait for a second, strained instance of the app
            # (tests/conftest.py serves one for the six); every other test ran on the copy.
            skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
            assert all("--strained-base-url" in line for line in skipped), output


@pytest.mark.parametrize("app_id", list(APPS))
def test_a_copy_stands_alone(app_id: str, copies: dict[str, Future], upstream_url: str) -> None:
    copy, database_url = copies[app_id].result()  # a failed step fails here, naming it
    serve_and_judge(copy, database_url, upstream_url)
    print(app_id, ", ".join(f"{step} {took:.1f} s" for step, took in copy.timings.items()))


def test_a_planted_fault_fails_the_copy(tmp_path: Path, db: Database) -> None:
    """gino_style copied without its migrations: the copy fails at its own tests, and the
    failure names the app, the step and what went wrong."""
    databases = Databases(db)
    try:
        with pytest.raises(StepFailed) as failed:
            prepare(get_app("gino_style"), tmp_path, databases, plant=remove_migrations)
    finally:
        databases.drop_all()
    message = str(failed.value)
    assert message.startswith("gino_style, Run the tests: exit code 1 (whole output: "), message
    assert "'alembic', 'upgrade', 'head']' returned non-zero exit status" in message, message
    assert "14 errors in" in message.splitlines()[-1], message


def remove_migrations(directory: Path) -> None:
    shutil.rmtree(directory / "migrations")
