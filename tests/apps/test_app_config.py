"""Each app configured the way managed databases hand it out, and told so when it is not.

- ``DATABASE_URL`` carries libpq query options (``?sslmode=require``,
  ``?application_name=...``). Every app, on every driver it runs (psycopg 3, psycopg2,
  asyncpg, SQLAlchemy's asyncpg dialect, Tortoise's asyncpg backend), is served with
  ``?application_name=<probe>&sslmode=disable``, and the connection that runs its
  ``/slow/db`` sleep shows that name in ``pg_stat_activity``. With ``?sslmode=require``
  the app's own connect code must ask the server for TLS: the embedded PostgreSQL has
  none, so the error is the server refusing TLS, never an unknown keyword.
- A missing ``DATABASE_URL`` (or Django's ``SECRET_KEY``) stops every entry with one line
  naming the variable and an example value. It is an exception at import, so what a
  command prints is the framework's normal startup error ending in that line: a server
  then stops (gunicorn: "Worker failed to boot") instead of respawning workers forever,
  which is what ``sys.exit()`` at import would make gunicorn do.
- Each ``requirements.txt`` bounds every package above, and the installed versions fit.
- Each app ignores what it creates (``.gitignore``), and no README command leaves the
  app's directory.

Planted faults (each seen to fail): ``os.environ["DATABASE_URL"]`` restored in
gino_style; the ``sslmode`` translation removed from tortoise; SQLAlchemy's URL instead of
asyncpg's own parsing in fastapi_sqla; ``sys.exit`` instead of the exception in django_sync.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from packaging.requirements import Requirement

from shared_fixtures.db import Database
from shared_fixtures.processes import ManagedProcess
from stackbench.apps import APPS, get_app
from stackbench.server_process import Served, serve
from stackbench.servers import Knobs, get_server

BIN_DIR = Path(sys.executable).parent
PSYCOPG2 = importlib.util.find_spec("psycopg2") is not None


def with_query(url: str, query: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="&".join(q for q in (parts.query, query) if q)))


# ---------------------------------------------------------------- libpq query options

# (app, server, driver environment): every driver each app can run on.
SERVED = [
    ("django_sync", "gunicorn-gthread", {}),
    ("django_sync", "gunicorn-gthread", {"DJANGO_DB_DRIVER": "psycopg2"}),
    ("django_async", "uvicorn", {}),
    ("django_fastapi", "uvicorn", {}),
    ("django_fastapi", "gunicorn-gthread", {"DJANGO_DB_DRIVER": "psycopg2"}),
    ("fastapi_sqla", "uvicorn", {}),
    ("gino_style", "uvicorn", {}),
    ("tortoise", "uvicorn", {}),
]


@pytest.fixture
def served_with(db: Database, upstream_url: str, work_dir: Path) -> Iterator[object]:
    """Serve one app on ``db.url`` plus a query string (and a driver environment)."""
    contexts: list = []

    def start(app_id: str, server_id: str, query: str, env: dict[str, str]) -> Served:
        server = get_server(server_id)
        if env:
            server = dataclasses.replace(server, env=env)
        context = serve(
            get_app(app_id),
            server,
            database_url=with_query(db.url, query),
            upstream_url=upstream_url,
            bin_dir=BIN_DIR,
            log_dir=work_dir / "logs" / "config",
            knobs=Knobs(workers=1, pool_size=2),
            cpus=1,
        )
        contexts.append(context)
        return context.__enter__()

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def sleeping_backends(db: Database, name: str) -> int:
    """Backends named ``name`` running a pg_sleep right now."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query ILIKE %s",
            [name, "%pg_sleep%"],
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize(
    ("app_id", "server_id", "env"),
    SERVED,
    ids=[f"{a}-{e.get('DJANGO_DB_DRIVER', 'default')}" for a, _, e in SERVED],
)
def test_application_name_reaches_postgresql(  # type: ignore[no-untyped-def]
    served_with, db: Database, app_id: str, server_id: str, env: dict[str, str]
) -> None:
    if env.get("DJANGO_DB_DRIVER") == "psycopg2" and not PSYCOPG2:
        pytest.skip("psycopg2 not installed")
    probe = f"stackbench-probe-{secrets.token_hex(4)}"
    served = served_with(app_id, server_id, f"application_name={probe}&sslmode=disable", env)
    for prefix in get_app(app_id).prefixes:
        url = f"{served.base_url}{prefix}/slow/db?seconds=1.5"
        answer: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda u=url, a=answer: a.append(httpx.get(u, timeout=30))
        )
        request.start()
        seen = 0
        while request.is_alive() and not seen:
            seen = sleeping_backends(db, probe)
            time.sleep(0.05)
        request.join()
        assert answer and answer[0].status_code == 200, (
            f"{prefix}/slow/db: {answer[0].status_code if answer else 'no answer'}\n"
            f"{answer[0].text[:300] if answer else ''}\n{served.process.log_tail()}"
        )
        assert seen, f"{app_id}{prefix}: no backend named {probe} ran the sleep"


# One connection made by each app's own connect code, from its directory.
CONNECT = {
    "django": (
        "import os, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'project.settings')\n"
        "django.setup()\n"
        "from django.db import connection\n"
        # What Django hands the driver (its pool gets the same keyword arguments).
        "connection.Database.connect(**connection.get_connection_params())\n"
    ),
    "fastapi_sqla": (
        "import asyncio, db\n"
        "async def main():\n"
        "    async with db.engine.connect():\n"
        "        pass\n"
        "asyncio.run(main())\n"
    ),
    "gino_style": "import asyncio, main\nasyncio.run(main.open_resources(main.app))\n",
    "tortoise": (
        "import asyncio, db\n"
        "from tortoise import connections\n"
        "async def main():\n"
        "    await db.init_orm()\n"
        "    await connections.get('default').execute_query('SELECT 1')\n"
        "asyncio.run(main())\n"
    ),
}
# libpq (psycopg 3, psycopg2) and asyncpg, when the server answers "no TLS here".
TLS_REFUSED = re.compile(r"server does not support SSL|rejected SSL upgrade")
CONNECT_CASES = [
    (app_id, driver)
    for app_id in APPS
    for driver in (("psycopg", "psycopg2") if get_app(app_id).driver_switch else ("",))
]


@pytest.mark.parametrize(("app_id", "driver"), CONNECT_CASES)
def test_sslmode_require_asks_for_tls(db: Database, app_id: str, driver: str) -> None:
    if driver == "psycopg2" and not PSYCOPG2:
        pytest.skip("psycopg2 not installed")
    url = with_query(db.url, "sslmode=require&application_name=stackbench-tls")
    if not urlsplit(url).hostname:
        pytest.skip("a Unix socket never uses TLS")
    env = {**_base_env(), "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(50)}
    if driver:
        env["DJANGO_DB_DRIVER"] = driver
    app = get_app(app_id)
    code = CONNECT["django" if _django(app_id) else app_id]
    result = _run([sys.executable, "-c", code], app.directory, env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{app_id} connected without TLS:\n{output}"
    assert TLS_REFUSED.search(output), f"{app_id} did not ask for TLS:\n{output[-2000:]}"


# ---------------------------------------------------------------- a missing variable

DJANGO_ENTRIES = {
    "django_sync": ["project.wsgi"],
    "django_async": ["project.asgi"],
    "django_fastapi": ["project.asgi", "project.wsgi"],
}


def _django(app_id: str) -> bool:
    """A Django project: its declaration sets DJANGO_SETTINGS_MODULE."""
    return "DJANGO_SETTINGS_MODULE" in get_app(app_id).fixed_environment()


def _entries(app_id: str) -> list[list[str]]:
    """The commands that start the app or act on its database: its README's, the schema
    command as its declaration gives it."""
    schema = get_app(app_id).schema
    assert schema is not None, f"{app_id} declares no schema command"
    migrate = [sys.executable if schema[0] == "python" else str(BIN_DIR / schema[0]), *schema[1:]]
    if _django(app_id):
        return [
            [sys.executable, "manage.py", "check"],
            migrate,
            *([sys.executable, "-c", f"import {module}"] for module in DJANGO_ENTRIES[app_id]),
        ]
    return [[sys.executable, "-c", "import main"], migrate]


MISSING_CASES = [
    (app_id, variable)
    for app_id in APPS
    for variable in ("DATABASE_URL", "SECRET_KEY")
    if _django(app_id) or variable == "DATABASE_URL"
]


def _base_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _one_line(variable: str) -> re.Pattern[str]:
    """The error's line: the variable and an example value, after the exception's type or
    the tool's own prefix ("Error importing module 'db': RuntimeError: ")."""
    return re.compile(rf"^(.*: )?Set the {variable} environment variable, e\.g\. {variable}=\S+")


@pytest.mark.parametrize(("app_id", "variable"), MISSING_CASES)
def test_a_missing_variable_is_one_line(db: Database, app_id: str, variable: str) -> None:
    app = get_app(app_id)
    present = {"DATABASE_URL": db.url, "SECRET_KEY": secrets.token_urlsafe(50)}
    env = {**_base_env(), **{k: v for k, v in present.items() if k != variable}}
    for argv in _entries(app_id):
        for value in (None, "  "):  # unset, and set to blanks
            run_env = env if value is None else {**env, variable: value}
            result = _run(argv, app.directory, run_env)
            output = result.stdout + result.stderr
            shown = " ".join(Path(a).name for a in argv)
            assert result.returncode != 0, f"{app_id}: `{shown}` succeeded:\n{output}"
            assert "KeyError" not in output, f"{app_id}: `{shown}`:\n{output}"
            last = output.strip().splitlines()[-1]
            assert _one_line(variable).match(last), (
                f"{app_id}: `{shown}` ends with {last!r}, not the one line about {variable}"
            )


# Under a server: the same line, and the server stops instead of restarting workers.
# (uvicorn --workers N restarts a child that fails at import whatever it raises: uvicorn
# 0.54 stops only on its own startup-failure exit code. One uvicorn process stops.)
HALTS = {
    "django_sync": ["gunicorn", "-k", "sync", "-w", "2", "--no-control-socket", "-b"],
    "gino_style": ["gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", "2", "-b"],
    "fastapi_sqla": ["uvicorn", "--host"],
}


@pytest.mark.parametrize("app_id", list(HALTS))
def test_a_server_stops_on_a_missing_variable(app_id: str, work_dir: Path) -> None:
    app = get_app(app_id)
    (entry,) = [app.entries[i] for i in app.entries]
    tool, *args = HALTS[app_id]
    bind = ["127.0.0.1", "--port", "0"] if tool == "uvicorn" else ["127.0.0.1:0"]
    argv = [str(BIN_DIR / tool), *args, *bind, entry]
    env = {**_base_env(), "SECRET_KEY": secrets.token_urlsafe(50), **app.fixed_environment()}
    log = work_dir / "logs" / f"config-halts-{app_id}.log"
    process = ManagedProcess(argv, name=app_id, log_path=log, env=env, cwd=app.directory)
    with process:
        deadline = time.monotonic() + 30
        while process.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process.running(), f"still running after 30 s:\n{process.log_tail()}"
    assert process.popen.returncode != 0
    assert "Set the DATABASE_URL environment variable, e.g. DATABASE_URL=" in log.read_text()


# ---------------------------------------------------------------- files of each app


def _requirements(app_id: str) -> list[Requirement]:
    (requirements,) = get_app(app_id).requirements
    lines = requirements.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("app_id", list(APPS))
def test_requirements_have_upper_bounds_that_fit_this_venv(app_id: str) -> None:
    for requirement in _requirements(app_id):
        operators = {spec.operator for spec in requirement.specifier}
        assert operators & {"<", "<=", "==", "~="}, f"{app_id}: {requirement} has no upper bound"
        if requirement.marker is None or requirement.marker.evaluate():
            installed = metadata.version(requirement.name)
            assert requirement.specifier.contains(installed, prereleases=True), (
                f"{app_id}: {requirement.name} {installed} is installed, outside {requirement}"
            )


@pytest.mark.parametrize("app_id", list(APPS))
def test_each_app_ignores_what_it_creates(app_id: str) -> None:
    app = get_app(app_id)
    ignored = (app.directory / ".gitignore").read_text(encoding="utf-8").split()
    expected = {"__pycache__/", ".venv/", ".pytest_cache/"}
    if _django(app_id):
        expected |= {"staticfiles/"}
    assert expected <= set(ignored), f"{app_id}/.gitignore lacks {expected - set(ignored)}"


FENCE = re.compile(r"^(```|~~~)")
# In a command block: the repository's other directories, a parent, any `cd`. In prose,
# `python -m shared_fixtures ...` may be named as where to get a database: only `cd` and
# paths into the repository count there.
OUTSIDE_IN_CODE = re.compile(r"reference_apps|shared_fixtures|\.\./|\bcd\s")
OUTSIDE_INLINE = re.compile(r"reference_apps/|\.\./|\bcd\s")


@pytest.mark.parametrize("app_id", list(APPS))
def test_readme_commands_stay_in_the_app_directory(app_id: str) -> None:
    """A copy of the directory alone has no reference_apps/, shared_fixtures/ or parent:
    no command block names them, and no inline command changes directory."""
    readme = (get_app(app_id).directory / "README.md").read_text(encoding="utf-8")
    in_code, outside = False, []
    for number, line in enumerate(readme.splitlines(), 1):
        if FENCE.match(line.strip()):
            in_code = not in_code
            continue
        command = line if in_code else " ".join(re.findall(r"`([^`]*)`", line))
        pattern = OUTSIDE_IN_CODE if in_code else OUTSIDE_INLINE
        if pattern.search(command):
            outside.append(f"line {number}: {line.strip()}")
    assert not outside, f"{app_id}/README.md leaves the app's directory:\n" + "\n".join(outside)
