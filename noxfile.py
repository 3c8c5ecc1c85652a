"""stackbench's sessions. Thin on purpose: what they install and run lives in the
`stackbench` package (stackbench/nox_sessions.py); nox's command line and each session's
arguments are read once, in stackbench/nox_command.py.

Sessions:
    nox -s tests                                  the suite but its slow lane, in parallel
    nox -s tests_slow                             the slow lane (docs/testing.md)
    nox -s lint                                   ruff and mypy
    nox -s conformance                            every app's conformance suite on Python 3.13
    nox -s freethreaded                           the free-threaded lane (needs python3.13t/3.14t)
    nox -s "bench(app='fastapi_sqla', server='uvicorn')" -- --duration 10s
    nox -s bench_pairs -- --pairs a@s,b@s         exact pairs side by side (CI's jobs)
    nox -s bench_app -- PATH --server S           your app (a directory with a stackbench.toml)
    nox -s "serve(app='gino_style', server='uvicorn')" [-- --bind ADDRESS]
                                                  one pair served for load from other hosts
    nox -s matrix [-- --json]                     the pairs, and why others are missing
    nox -s "capacity(app='django_sync')"          each server's sustainable rate at an SLO
    nox -s capacity_app -- PATH [--servers A,B]   your app's servers, the same search
    nox -s "experiment(name='gevent-patching')"   one experiment, its answer as a table
    nox -s report -- RUN_DIR [RUN_DIR...] [--baseline RUN_DIR] [--output DIR]
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

# Standard library only: these run before any virtualenv exists.
from stackbench import experiments, interpreters, matrix, nox_command, nox_listing  # noqa: E402
from stackbench import nox_sessions as sessions  # noqa: E402
from stackbench.nox_command import SessionArgs  # noqa: E402
from stackbench.nox_sessions import HARNESS_STOP  # noqa: E402

nox.options.default_venv_backend = "uv|venv"  # uv builds a venv in seconds; venv otherwise
nox.options.sessions = ["lint", "tests", "tests_slow", "conformance"]
nox.options.error_on_missing_interpreters = True
if hasattr(nox.options, "download_python"):  # nox 2025.02+
    nox.options.download_python = "never"  # uv's downloads fail offline, in many lines

# Installed CPython 3.11+ (version, free-threading), each asked once per installation
# (.nox/.python/probed.json). A pyenv shim named python3.13 hides an installed 3.13 from
# nox whenever pyenv has not selected it: a directory of python3.N[t] links to each
# installation, first on PATH, lets nox find it.
_PYTHONS = ROOT / ".nox" / ".python"
INSTALLED = interpreters.installed(interpreters.default_search_path(), _PYTHONS / "probed.json")
os.environ["PATH"] = os.pathsep.join(
    [str(interpreters.link_directory(INSTALLED, _PYTHONS)), os.environ.get("PATH", "")]
)
FREE_THREADED = interpreters.free_threaded(INSTALLED)

# Refused in one line before anything starts: a session nox would not find, a missing
# interpreter, options after -- that contradict a session's own pair, and a bare
# `nox -s bench` (every pair) unless confirmed.
COMMAND = nox_command.NoxCommand.parse(sys.argv)
nox_command.enforce(COMMAND, INSTALLED, nox.options.sessions)
# SIGTERM to nox stops a session as Ctrl-C does: nox passes it on and waits (HARNESS_STOP).
signal.signal(signal.SIGTERM, signal.default_int_handler)

PYTHON = "3.11"
# Servers the test suite serves apps with, plus gevent for the green-thread tests.
TEST_SERVERS = (
    "uvicorn",
    "gunicorn-uvicorn",
    "gunicorn-gthread",
    "gunicorn-gevent-blocking",
    "daphne",
    "hypercorn",
    "granian",
)
# psycogreen: the tests also run psycopg2 patched under gevent (eventlet's gunicorn pin
# keeps gunicorn-eventlet out of this shared venv).
TEST_INSTALL = ["-e", ".[harness,test,fast,profile]", "psycogreen"]
TEST_SERVER_REQUIREMENTS = sessions.server_requirements(TEST_SERVERS)
# A lane of the suite: its parallel part with its serial tests beside it (docs/testing.md).
LANE = ("python", "-m", "stackbench.suite_lanes")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The suite on a real PostgreSQL in parallel, its serial tests beside it, without the
    slow lane (-- PYTEST_ARGS: exactly those, slow tests included)."""
    session.install(*TEST_INSTALL, *sessions.app_requirements(), *TEST_SERVER_REQUIREMENTS)
    session.run(*LANE, "tests", *session.posargs, **HARNESS_STOP)


@nox.session(python=PYTHON)
def tests_slow(session: nox.Session) -> None:
    """The suite's slow lane, in parallel: whole experiment runs (CI runs it after tests)."""
    session.install(*TEST_INSTALL, *sessions.app_requirements(), *TEST_SERVER_REQUIREMENTS)
    session.run(*LANE, "tests_slow", *session.posargs, **HARNESS_STOP)


@nox.session(python=[nox_command.CONFORMANCE_PYTHON])
def conformance(session: nox.Session) -> None:
    """Every app's conformance suite on Python 3.13 (Django 6.1), ASGI also under gunicorn-asgi.

    WSGI apps under gunicorn gthread, ASGI apps under uvicorn and gunicorn's own ASGI worker;
    the tests session runs the same suite on 3.11 (Django 5.2)."""
    servers = ("uvicorn", "gunicorn-gthread", "gunicorn-asgi")
    session.install(
        "-e",
        ".[harness,test,fast]",
        *sessions.app_requirements(),
        *sessions.server_requirements(servers),
    )
    session.run(
        *LANE,
        "conformance",
        *session.posargs,
        env={"STACKBENCH_CONFORMANCE_SERVERS": "gunicorn-asgi"},
        **HARNESS_STOP,
    )


def freethreaded(session: nox.Session) -> None:
    """(replaced below: the description says whether the lane can run here)"""
    args = SessionArgs.parse(session.posargs)
    try:
        chosen = sessions.free_threaded_pairs(args)
    except ValueError as exc:
        session.error(str(exc))
    session.install("-e", ".[harness]", *matrix.requirements(chosen))
    pairs = [] if args.pairs else ["--pairs", ",".join(f"{p.app}@{p.server}" for p in chosen)]
    # The servers (and the harness) run with the GIL off; each result records the GIL of
    # the server's Python as it ran (stackbench.results.interpreter).
    session.run(
        *sessions.HARNESS,
        "bench",
        *pairs,
        *session.posargs,
        env=sessions.gil_off(chosen),
        **HARNESS_STOP,
    )


freethreaded.__doc__ = sessions.free_threaded_description(INSTALLED)
nox.session(python=FREE_THREADED.tag if FREE_THREADED else "3.14t")(freethreaded)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything; mypy on the harness, the fixtures, loadgen and its benchmark."""
    # With the fast extra, mypy sees loadgen's optional imports as the tests run them.
    session.install("ruff", "mypy", "-e", ".[harness,test,fast]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "stackbench", "shared_fixtures", "loadgen", "benchmarks")


@nox.session(python=PYTHON)
@nox.parametrize(["app", "server"], [(pair.app, pair.server) for pair in matrix.pairs()])
def bench(session: nox.Session, app: str, server: str) -> None:
    """One (app, server) pair end to end; options after -- (see `python -m stackbench bench -h`)."""
    args = SessionArgs.parse(session.posargs)
    extras = "harness,fast,profile" if args.profile else "harness,fast"
    session.install("-e", f".[{extras}]", *sessions.pair_requirements(app, server, args))
    session.run(
        *sessions.HARNESS,
        "bench",
        "--app",
        app,
        "--server",
        server,
        *session.posargs,
        **HARNESS_STOP,
    )


@nox.session(python=PYTHON)
@nox.parametrize(["app", "server"], [(pair.app, pair.server) for pair in matrix.pairs()])
def serve(session: nox.Session, app: str, server: str) -> None:
    """One pair served until Ctrl-C, for `bench --target` from other hosts (docs/distributed.md)."""
    args = SessionArgs.parse(session.posargs)
    session.install("-e", ".[harness,fast]", *sessions.pair_requirements(app, server, args))
    session.run(
        *sessions.HARNESS,
        "serve",
        "--app",
        app,
        "--server",
        server,
        *session.posargs,
        **HARNESS_STOP,
    )


@nox.session(python=PYTHON)
@nox.parametrize("app", sessions.capacity_apps())
def capacity(session: nox.Session, app: str) -> None:
    """Every server of one app searched for its sustainable rate at an SLO (docs/capacity.md).

    One run directory; -- --servers a,b for those servers; -- --help for the options."""
    try:
        requirements = sessions.capacity_requirements(app, SessionArgs.parse(session.posargs))
    except ValueError as exc:  # refused before nox starts (nox_command); here for -k, -t
        session.error(str(exc))
    session.install("-e", ".[harness,fast]", *requirements)
    session.run(*sessions.HARNESS, "capacity", "--app", app, *session.posargs, **HARNESS_STOP)


@nox.session(python=PYTHON)
def bench_pairs(session: nox.Session) -> None:
    """Exact pairs side by side in one run directory, one venv: CI's bench jobs.

    nox -s bench_pairs -- --pairs gino_style@uvicorn,django_sync@gunicorn-sync --duration 5s
    """
    args = SessionArgs.parse(session.posargs)
    try:
        chosen = sessions.required_pairs(args)
    except ValueError as exc:
        session.error(str(exc))
    session.install("-e", ".[harness,fast]", *matrix.requirements(chosen, [args.protocol]))
    session.run(*sessions.HARNESS, "bench", *session.posargs, **HARNESS_STOP)


@nox.session(python=PYTHON)
def bench_app(session: nox.Session) -> None:
    """Your app (a directory with a stackbench.toml) under one server or several, in a
    venv of its own (docs/your-app.md).

    nox -s bench_app -- ../mysite --server gunicorn-gthread,uvicorn --scenarios home --duration 5s
    """
    try:
        path, chosen = sessions.app_pairs(session.posargs, Path(session.invoked_from))
    except ValueError as exc:
        session.error(str(exc))
    extras = (
        "harness,fast,profile" if SessionArgs.parse(session.posargs).profile else "harness,fast"
    )
    session.install("-e", f".[{extras}]", *matrix.requirements(chosen))
    rest = session.posargs[1:]  # the path goes to the harness as --app, absolute
    session.run(*sessions.HARNESS, "bench", "--app", str(path), *rest, **HARNESS_STOP)


@nox.session(python=PYTHON)
def capacity_app(session: nox.Session) -> None:
    """Your app's servers searched for their sustainable rate at an SLO, in a venv of
    its own (docs/capacity.md).

    nox -s capacity_app -- ../mysite --servers gunicorn-gthread,uvicorn --scenario home
    """
    try:
        path, chosen = sessions.capacity_app_pairs(session.posargs, Path(session.invoked_from))
    except ValueError as exc:
        session.error(str(exc))
    session.install("-e", ".[harness,fast]", *matrix.requirements(chosen))
    rest = session.posargs[1:]  # the path goes to the harness as --app, absolute
    session.run(*sessions.HARNESS, "capacity", "--app", str(path), *rest, **HARNESS_STOP)


@nox.session(name="matrix", python=PYTHON)
def matrix_session(session: nox.Session) -> None:
    """Print the valid pairs and why each missing one is missing (`-- --json` for CI)."""
    session.install("-e", ".[harness]")
    session.run(*sessions.HARNESS, "matrix", *session.posargs)
    if not SessionArgs.parse(session.posargs).json:  # CI parses the JSON: nothing after it
        session.run("python", "-m", "stackbench.interpreters")  # the lanes, and why missing


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Run directories → Markdown, PNG charts, one HTML page; two runs → their comparison."""
    session.install("-e", ".[harness]")  # matplotlib is a harness dependency
    session.run(*sessions.HARNESS, "report", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("name", list(experiments.EXPERIMENTS))
def experiment(session: nox.Session, name: str) -> None:
    """One experiment (README, "Experiments"): measured beside predicted, in one run directory."""
    session.install("-e", ".[harness,fast]", *sessions.experiment_requirements(name))
    lanes = []
    if name == "python-versions":
        lanes = _interpreter_lanes(session, SessionArgs.parse(session.posargs))
    session.run(*sessions.HARNESS, "experiment", name, *lanes, *session.posargs, **HARNESS_STOP)


def _interpreter_lanes(session: nox.Session, args: SessionArgs) -> list[str]:
    """python-versions: one virtualenv per installed CPython 3.11+ (the default build of each
    minor version), holding the compared pairs' apps and servers as that Python resolves
    them; passed to the experiment as --interpreter LABEL=VENV_BIN, oldest first."""
    lanes = sessions.interpreter_lanes(INSTALLED, ROOT / ".nox")
    if len(lanes) < 2:
        session.error(
            "python-versions needs two Pythons; installed: "
            + interpreters.installed_summary(INSTALLED)
        )
    requirements = matrix.requirements(sessions.versions_pairs(args))
    for lane, venv in lanes:
        python = str(venv / "bin" / "python")
        session.run(
            "uv", "venv", "-q", "--allow-existing", "--python", str(lane.path), str(venv),
            external=True,
        )  # fmt: skip
        session.run("uv", "pip", "install", "-q", "--python", python, *requirements, external=True)
    return [
        arg for lane, venv in lanes for arg in ("--interpreter", f"{lane.minor}={venv / 'bin'}")
    ]


# A plain `nox -l` prints each session once and the pairs one line per app (nox's own list
# repeats a description 82 times); `nox -l --json` and a filtered list stay nox's.
if COMMAND.lists_sessions:
    _width = shutil.get_terminal_size().columns
    print(nox_listing.page(nox.registry.get(), nox.options.sessions or [], _width))
    sys.exit(0)
