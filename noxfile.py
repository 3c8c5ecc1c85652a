"""stackbench's sessions. Thin on purpose: what they run lives in the `stackbench` package.

Sessions:
    nox -s tests                                  the whole suite on a real PostgreSQL
    nox -s lint                                   ruff and mypy
    nox -s conformance                            every app's conformance suite on Python 3.13
    nox -s freethreaded                           the free-threaded lane (needs python3.13t/3.14t)
    nox -s "bench(app='fastapi_sqla', server='uvicorn')" -- --duration 10s
    nox -s bench_pairs -- --pairs a@s,b@s         exact pairs side by side (CI's jobs)
    nox -s bench_app -- PATH --server S           your app (a directory with a stackbench.toml)
    nox -s "serve(app='gino_style', server='uvicorn')" [-- --bind ADDRESS]
                                                  one pair served for load from other hosts
    nox -s matrix [-- --json]                     the pairs, and why others are missing
    nox -s "experiment(name='gevent-patching')"   one experiment, its answer as a table
    nox -s report -- RUN_DIR [RUN_DIR...] [--baseline RUN_DIR] [--output DIR]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from stackbench import experiments, interpreters, matrix, variants  # noqa: E402  (stdlib-only)
from stackbench.apps import APPS  # noqa: E402
from stackbench.servers import SERVERS  # noqa: E402

# nox alone would say "Sessions not found"; say which pairs exist instead.
for _check in (matrix.check_requested_sessions, experiments.check_requested_sessions):
    if (_error := _check(sys.argv)) is not None:
        sys.exit(f"nox: error: {_error}")

nox.options.default_venv_backend = "uv|venv"  # uv builds a venv in seconds; venv otherwise
nox.options.sessions = ["lint", "tests", "conformance"]
nox.options.error_on_missing_interpreters = True
if hasattr(nox.options, "download_python"):  # nox 2025.02+
    nox.options.download_python = "never"  # uv's downloads fail offline, in many lines

# Installed CPython 3.11+ (version, free-threading), found once. A pyenv shim named
# python3.13 hides an installed 3.13 from nox whenever pyenv has not selected it: a
# directory of python3.N[t] links to each installation, first on PATH, lets nox find it.
INSTALLED = interpreters.find_interpreters(interpreters.default_search_path())
_LINKS = interpreters.link_directory(INSTALLED, ROOT / ".nox" / ".python")
os.environ["PATH"] = os.pathsep.join([str(_LINKS), os.environ.get("PATH", "")])
CONFORMANCE_PYTHON = "3.13"  # the tests session runs the conformance suite on 3.11
FREE_THREADED = interpreters.free_threaded(INSTALLED)
# A missing interpreter is one line and exit 2, naming what is installed (nox would try a
# download, then say "Python interpreter 3.14 not found" among other lines).
if (
    _error := interpreters.check_requested(
        sys.argv,
        INSTALLED,
        {"conformance": CONFORMANCE_PYTHON, "freethreaded": interpreters.FREE_THREADED_LANE},
        nox.options.sessions or [],
    )
) is not None:
    print(f"nox: error: {_error}", file=sys.stderr)
    sys.exit(2)

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


def _app_requirements() -> list[str]:
    """``-r`` for each requirement file of every reference app; a declaration that is missing
    or wrong raises, naming its file (no app is dropped)."""
    matrix.check_apps()
    return [arg for app in APPS.values() for path in app.requirements for arg in ("-r", str(path))]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on a real PostgreSQL: fixtures, loadgen, every app, the harness."""
    server_requirements = sorted({req for s in TEST_SERVERS for req in SERVERS[s].requirements})
    # psycogreen: the tests also run psycopg2 patched under gevent (eventlet's gunicorn pin
    # keeps gunicorn-eventlet out of this shared venv).
    session.install(
        "-e",
        ".[harness,test,fast,profile]",
        *_app_requirements(),
        *server_requirements,
        "psycogreen",
    )
    session.run("pytest", *session.posargs)


@nox.session(python=[CONFORMANCE_PYTHON])
def conformance(session: nox.Session) -> None:
    """Every app's conformance suite on Python 3.13 (Django 6.1), ASGI also under gunicorn-asgi.

    WSGI apps under gunicorn gthread, ASGI apps under uvicorn and gunicorn's own ASGI worker;
    the tests session runs the same suite on 3.11 (Django 5.2)."""
    servers = ("uvicorn", "gunicorn-gthread", "gunicorn-asgi")
    requirements = sorted({req for s in servers for req in SERVERS[s].requirements})
    session.install("-e", ".[harness,test,fast]", *_app_requirements(), *requirements)
    session.run(
        "pytest",
        "tests/test_conformance.py",
        *session.posargs,
        env={"STACKBENCH_CONFORMANCE_SERVERS": "gunicorn-asgi"},
    )


def freethreaded(session: nox.Session) -> None:
    """(replaced below: the description says whether the lane can run here)"""
    default = [p for p in matrix.pairs() if SERVERS[p.server].free_threading]
    wanted = _option_value(session.posargs, "--pairs", default="")
    try:
        chosen = matrix.parse_pairs(wanted) if wanted else default
    except ValueError as exc:
        session.error(str(exc))
    if not all(SERVERS[p.server].free_threading for p in chosen):
        session.error("the free-threaded lane runs gunicorn-gthread and granian pairs only")
    session.install("-e", ".[harness]", *matrix.requirements(chosen))
    pairs = [] if wanted else ["--pairs", ",".join(f"{p.app}@{p.server}" for p in chosen)]
    # The servers (and the harness) run with the GIL off; each result records the GIL of
    # the server's Python as it ran (stackbench.results.interpreter).
    gil_off = {k: v for p in chosen for k, v in SERVERS[p.server].gil_env(True).items()}
    session.run("python", "-m", "stackbench", "bench", *pairs, *session.posargs, env=gil_off)


if FREE_THREADED is None:
    freethreaded.__doc__ = (
        f"Free-threaded lane: MISSING here, {interpreters.free_threaded_lane_missing(INSTALLED)}"
    )
else:
    freethreaded.__doc__ = (
        f"Free-threaded lane on {FREE_THREADED.describe}: gunicorn-gthread and granian "
        "pairs with PYTHON_GIL=0 (-- --pairs a@s,... to choose)"
    )
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
@nox.parametrize(
    ["app", "server"],
    [(pair.app, pair.server) for pair in matrix.pairs()],
)
def bench(session: nox.Session, app: str, server: str) -> None:
    """One (app, server) pair end to end; options after -- (see `python -m stackbench bench -h`)."""
    extras = "harness,fast,profile" if "--profile" in session.posargs else "harness,fast"
    session.install(
        "-e",
        f".[{extras}]",
        *matrix.requirements([matrix.Pair(app, server)]),
        *variants.requirements_for(session.posargs),
    )
    session.run(
        "python", "-m", "stackbench", "bench", "--app", app, "--server", server, *session.posargs
    )


@nox.session(python=PYTHON)
@nox.parametrize(
    ["app", "server"],
    [(pair.app, pair.server) for pair in matrix.pairs()],
)
def serve(session: nox.Session, app: str, server: str) -> None:
    """One pair served until Ctrl-C, for `bench --target` from other hosts (docs/distributed.md)."""
    session.install(
        "-e",
        ".[harness,fast]",
        *matrix.requirements([matrix.Pair(app, server)]),
        *variants.requirements_for(session.posargs),
    )
    session.run(
        "python", "-m", "stackbench", "serve", "--app", app, "--server", server, *session.posargs
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


@nox.session(python=PYTHON)
def bench_app(session: nox.Session) -> None:
    """Your app: a directory with a stackbench.toml, under one server or several, in a venv
    of its own requirement files and the servers' packages (docs/your-app.md).

    nox -s bench_app -- ../mysite --server gunicorn-gthread,uvicorn --scenarios home --duration 5s
    """
    try:
        path, chosen = matrix.app_pairs(session.posargs, Path(session.invoked_from))
    except ValueError as exc:
        session.error(str(exc))
    session.install("-e", ".[harness,fast]", *matrix.requirements(chosen))
    rest = session.posargs[1:]
    session.run("python", "-m", "stackbench", "bench", "--app", str(path), *rest)


def _option_value(args: list[str], name: str, default: str | None = None) -> str:
    """The value of ``name VALUE`` or ``name=VALUE`` among the arguments after ``--``."""
    for flag, value in zip(args, [*args[1:], ""], strict=True):
        if flag == name:
            return value
        if flag.startswith(f"{name}="):
            return flag.split("=", 1)[1]
    if default is not None:
        return default
    raise ValueError(f"{name} is required: {name} app@server,app@server")


@nox.session(name="matrix", python=PYTHON)
def matrix_session(session: nox.Session) -> None:
    """Print the valid pairs and why each missing one is missing (`-- --json` for CI)."""
    session.install("-e", ".[harness]")
    session.run("python", "-m", "stackbench", "matrix", *session.posargs)
    if "--json" not in session.posargs:  # CI parses the JSON: nothing after it
        session.run("python", "-m", "stackbench.interpreters")  # the lanes, and why missing


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
    app_requirements = sorted({str(path) for app, _ in pairs for path in APPS[app].requirements})
    # One venv for all the experiment's servers: eventlet's gunicorn pin (25.3) wins.
    server_requirements = sorted(
        {req for _, server in pairs for req in SERVERS[server].requirements}
        | {  # what the bench variants of the experiment's apps need (features experiments)
            req
            for variant in variants.VARIANTS.values()
            if name in experiments.FEATURES_PAIRS and set(variant.apps) & {a for a, _ in pairs}
            for req in variant.requirements
        }
    )
    session.install(
        "-e",
        ".[harness,fast]",
        *(arg for path in app_requirements for arg in ("-r", path)),
        *server_requirements,
    )
    lanes = _interpreter_lanes(session) if name == "python-versions" else []
    session.run("python", "-m", "stackbench", "experiment", name, *lanes, *session.posargs)


def _interpreter_lanes(session: nox.Session) -> list[str]:
    """python-versions: one virtualenv per installed CPython 3.11+ (the default build of each
    minor version), holding the compared pairs' apps and servers as that Python resolves
    them; passed to the experiment as --interpreter LABEL=VENV_BIN, oldest first."""
    wanted = _option_value(session.posargs, "--pairs", default="")
    chosen = matrix.parse_pairs(wanted) if wanted else list(experiments.VERSIONS_PAIRS)
    found = interpreters.find_interpreters(interpreters.default_search_path())
    minors = sorted({i.minor for i in found if not i.free_threaded}, key=_version_key)
    if len(minors) < 2:
        session.error(f"python-versions needs two Pythons; installed: {minors}")
    lanes = []
    for minor in minors:
        lane = interpreters.find(found, minor)
        assert lane is not None
        venv = ROOT / ".nox" / f"lane-{minor}"
        python = venv / "bin" / "python"
        session.run(
            "uv", "venv", "-q", "--allow-existing", "--python", str(lane.path), str(venv),
            external=True,
        )  # fmt: skip
        session.run(
            "uv", "pip", "install", "-q", "--python", str(python), *matrix.requirements(chosen),
            external=True,
        )  # fmt: skip
        lanes += ["--interpreter", f"{minor}={venv / 'bin'}"]
    return lanes


def _version_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))
