"""stackbench's sessions. Thin on purpose: what they run lives in the `stackbench` package.

    nox -s tests                                          # the whole suite, real PostgreSQL
    nox -s lint                                           # ruff + mypy
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from stackbench.apps import APPS  # noqa: E402  (stdlib-only registries)
from stackbench.servers import SERVERS  # noqa: E402

nox.options.default_venv_backend = "uv|venv"  # uv builds a venv in seconds; venv otherwise
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# Servers the test suite serves apps with, plus gevent for the green-thread tests.
TEST_SERVERS = ("uvicorn", "gunicorn-gthread", "gunicorn-gevent-blocking")


def _app_requirements() -> list[str]:
    args = []
    for app in APPS.values():
        if app.exists():
            args += ["-r", str(app.requirements)]
    return args


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on a real PostgreSQL: fixtures, loadgen, every app, the harness."""
    server_requirements = sorted({req for s in TEST_SERVERS for req in SERVERS[s].requirements})
    session.install("-e", ".[harness,test,fast]", *_app_requirements(), *server_requirements)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy on the harness, the fixtures and the load generator."""
    session.install("ruff", "mypy", "-e", ".[harness,test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "stackbench", "shared_fixtures", "loadgen")
