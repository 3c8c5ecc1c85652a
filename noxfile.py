"""stackbench's sessions. Thin on purpose: what they run lives in the `stackbench` package.

Sessions:
    nox -s tests                                  the whole suite on a real PostgreSQL
    nox -s lint                                   ruff and mypy
    nox -s "bench(app='fastapi_sqla', server='uvicorn')" -- --duration 10s
    nox -s bench_pairs -- --pairs a@s,b@s         exact pairs side by side (CI's jobs)
    nox -s matrix [-- --json]                     the pairs, and why others are missing
    nox -s "experiment(name='gevent-patching')"   one experiment, its answer as a table
    nox -s report -- RUN_DIR [RUN_DIR...] [--baseline RUN_DIR] [--output DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from stackbench import experiments, matrix  # noqa: E402  (stdlib-only registries)
from stackbench.apps import APPS  # noqa: E402
from stackbench.servers import SERVERS  # noqa: E402

# nox alone would say "Sessions not found"; say which pairs exist instead.
for _check in (matrix.check_requested_sessions, experiments.check_requested_sessions):
    if (_error := _check(sys.argv)) is not None:
        sys.exit(f"nox: error: {_error}")

nox.options.default_venv_backend = "uv|venv"  # uv builds a venv in seconds; venv otherwise
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# Servers the test suite serves apps with, plus gevent for the green-thread tests.
TEST_SERVERS = (
    "uvicorn",
    "gunicorn-uvicorn",
    "gunicorn-gthread",
    "gunicorn-gevent-blocking",
    "daphne",
)


def _app_requirements() -> list[str]:
    """``-r`` for every registered app; a lost app file raises, naming it (no app is dropped)."""
    matrix.check_apps()
    return [arg for app in APPS.values() for arg in ("-r", str(app.requirements))]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on a real PostgreSQL: fixtures, loadgen, every app, the harness."""
    server_requirements = sorted({req for s in TEST_SERVERS for req in SERVERS[s].requirements})
    # psycogreen: the tests also run psycopg2 patched under gevent (eventlet's gunicorn pin
    # keeps gunicorn-eventlet out of this shared venv).
    session.install(
        "-e", ".[harness,test,fast]", *_app_requirements(), *server_requirements, "psycogreen"
    )
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy on the harness, the fixtures and the load generator."""
    # With the fast extra, mypy sees loadgen's optional imports as the tests run them.
    session.install("ruff", "mypy", "-e", ".[harness,test,fast]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "stackbench", "shared_fixtures", "loadgen")


@nox.session(python=PYTHON)
@nox.parametrize(
    ["app", "server"],
    [(pair.app, pair.server) for pair in matrix.pairs()],
)
def bench(session: nox.Session, app: str, server: str) -> None:
    """One (app, server) pair end to end; options after -- (see `python -m stackbench bench -h`)."""
    session.install(
        "-e", ".[harness,fast]", "-r", str(APPS[app].requirements), *SERVERS[server].requirements
    )
    session.run(
        "python", "-m", "stackbench", "bench", "--app", app, "--server", server, *session.posargs
    )


@nox.session(python=PYTHON)
def bench_pairs(session: nox.Session) -> None:
    """Exact pairs side by side in one run directory, one venv: CI's bench jobs.

    nox -s bench_pairs -- --pairs gino_style@uvicorn,django_sync@gunicorn-sync --duration 5s
    """
    try:
        chosen = matrix.parse_pairs(_option_value(session.posargs, "--pairs"))
    except ValueError as exc:
        session.error(str(exc))
    session.install("-e", ".[harness,fast]", *matrix.requirements(chosen))
    session.run("python", "-m", "stackbench", "bench", *session.posargs)


def _option_value(args: list[str], name: str) -> str:
    """The value of ``name VALUE`` or ``name=VALUE`` among the arguments after ``--``."""
    for flag, value in zip(args, [*args[1:], ""], strict=True):
        if flag == name:
            return value
        if flag.startswith(f"{name}="):
            return flag.split("=", 1)[1]
    raise ValueError(f"{name} is required: {name} app@server,app@server")


@nox.session(name="matrix", python=PYTHON)
def matrix_session(session: nox.Session) -> None:
    """Print the valid pairs and why each missing one is missing (`-- --json` for CI)."""
    session.install("-e", ".[harness]")
    session.run("python", "-m", "stackbench", "matrix", *session.posargs)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Run directories → Markdown, PNG charts, one HTML page; two runs → their comparison."""
    session.install("-e", ".[harness]")  # matplotlib is a harness dependency
    session.run("python", "-m", "stackbench", "report", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("name", list(experiments.EXPERIMENTS))
def experiment(session: nox.Session, name: str) -> None:
    """One experiment (README, "Experiments"): measured beside predicted, in one run directory."""
    pairs = experiments.requirements(experiments.EXPERIMENTS[name])
    app_requirements = sorted({str(APPS[app].requirements) for app, _ in pairs})
    # One venv for all the experiment's servers: eventlet's gunicorn pin (25.3) wins.
    server_requirements = sorted(
        {req for _, server in pairs for req in SERVERS[server].requirements}
    )
    session.install(
        "-e",
        ".[harness,fast]",
        *(arg for path in app_requirements for arg in ("-r", path)),
        *server_requirements,
    )
    session.run("python", "-m", "stackbench", "experiment", name, *session.posargs)
