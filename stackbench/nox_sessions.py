"""What each nox session installs and runs, so that the noxfile only declares them; the
command line is read in ``nox_command``. Standard library only, as the noxfile needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from stackbench import experiments, interpreters, matrix, variants
from stackbench.apps import APPS, App, load_app
from stackbench.nox_command import SessionArgs
from stackbench.servers import SERVERS

# Interrupted (Ctrl-C in a terminal, or SIGINT/SIGTERM to nox alone: the noxfile makes
# SIGTERM interrupt nox as Ctrl-C does), nox waits interrupt_timeout for the harness to exit
# by itself, then sends it SIGTERM: the harness stops on the first of the two signals and
# only notes the second (shared_fixtures.processes.stopped_by_signals). It then has
# terminate_timeout to stop its load, servers and database and write the manifest (each
# process it stops gets 10 s, then SIGKILL) before nox kills it. nox's default of 0.2 s
# there killed the harness mid-way: PostgreSQL orphaned, its directory and no manifest left.
HARNESS_STOP = {"interrupt_timeout": 0.3, "terminate_timeout": 90.0}


def app_requirements() -> list[str]:
    """``-r`` for each requirement file of every reference app; a declaration that is
    missing or wrong raises, naming its file and key (no app is dropped)."""
    matrix.check_apps()
    return [arg for app in APPS.values() for path in app.requirements for arg in ("-r", str(path))]


def server_requirements(servers: Iterable[str]) -> list[str]:
    """What the servers need installed to speak every protocol each speaks (the suite checks
    what each negotiates; protocol-costs measures them all)."""
    return sorted(
        {
            req
            for server in servers
            for protocol in SERVERS[server].protocols()
            for req in SERVERS[server].requirements_for(protocol)
        }
    )


def pair_requirements(app: str, server: str, args: SessionArgs) -> list[str]:
    """What a bench or serve session installs beside the harness: the app, the server (and
    what its --protocol needs) and the bench variant named after --."""
    return [
        *matrix.requirements([matrix.Pair(app, server)], [args.protocol]),
        *variants.requirements_for(args.variants),
    ]


def capacity_apps() -> list[str]:
    """The capacity session's parametrization: one session per app."""
    return list(APPS)


def capacity_requirements(app: str, args: SessionArgs) -> list[str]:
    """What a capacity session installs beside the harness: the app, the servers it
    searches (--servers, else every one that shares a venv) and the bench variant named;
    ValueError (one line) for a server the app does not have."""
    servers = matrix.app_servers(APPS[app], args.servers)
    return [
        *matrix.requirements([matrix.Pair(app, server) for server in servers]),
        *variants.requirements_for(args.variants),
    ]


def experiment_requirements(name: str) -> list[str]:
    """One venv for all the experiment's apps and servers (eventlet's gunicorn pin, 25.3,
    wins), and what the bench variants of the features experiments' apps need."""
    pairs = experiments.requirements(experiments.EXPERIMENTS[name])
    apps = {app for app, _ in pairs}
    app_files = sorted({str(path) for app in apps for path in APPS[app].requirements})
    extra = {
        req
        for variant in variants.VARIANTS.values()
        if name in experiments.FEATURES_PAIRS and set(variant.apps) & apps
        for req in variant.requirements
    }
    servers = sorted(set(server_requirements(server for _, server in pairs)) | extra)
    return [*(arg for path in app_files for arg in ("-r", path)), *servers]


# The harness, as every session that measures or serves runs it.
HARNESS = ("python", "-m", "stackbench")


def required_pairs(args: SessionArgs) -> list[matrix.Pair]:
    """bench_pairs: the pairs of --pairs; ValueError (one line) when missing or invalid."""
    if not args.pairs:
        raise ValueError("--pairs is required: --pairs app@server,app@server")
    return matrix.parse_pairs(args.pairs)


def _app_directory(
    session: str, usage: str, posargs: Sequence[str], invoked_from: Path
) -> tuple[App, SessionArgs]:
    """The app whose directory comes first after -- (relative to where nox was invoked),
    and the options after it; ValueError (one line) when the path is missing, or an option
    would name the app (or a target) beside it."""
    if not posargs or posargs[0].startswith("-"):
        raise ValueError(f"{session} needs the app's directory first: {usage}")
    given = SessionArgs.parse(posargs[1:])
    for option, value in (
        ("--app", given.app),
        ("--pairs", given.pairs),
        ("--target", given.target),
    ):
        if value:  # the harness would take it over the path (or beside it): silently
            raise ValueError(f"{session} names its app by the path first, so no {option}: {usage}")
    return load_app(invoked_from / Path(posargs[0]).expanduser()), given


def app_pairs(posargs: Sequence[str], invoked_from: Path) -> tuple[Path, list[matrix.Pair]]:
    """bench_app (``-- PATH --server S[,S...] [bench options]``): the app's directory,
    relative to where nox was invoked, and its pairs, each checked; ValueError (one line)
    when the path or --server is missing, or a pair does not exist."""
    usage = "nox -s bench_app -- PATH --server SERVER[,SERVER] [bench options]"
    app, given = _app_directory("bench_app", usage, posargs, invoked_from)
    servers = given.server
    if not servers:
        raise ValueError(f"bench_app needs --server: {usage}")
    pairs = [matrix.pair_of(matrix.get_pair(app, s)[0], s) for s in servers[-1].split(",")]
    return app.directory, matrix.distinct(pairs)


def capacity_app_pairs(
    posargs: Sequence[str], invoked_from: Path
) -> tuple[Path, list[matrix.Pair]]:
    """capacity_app (``-- PATH [--servers A,B] [capacity options]``): the app's directory
    and the pairs its search serves (``matrix.app_servers``, as ``capacity --app`` chooses
    them); ValueError (one line) as for bench_app, or for --server (capacity's is
    --servers)."""
    usage = "nox -s capacity_app -- PATH [--servers A,B] [capacity options]"
    app, given = _app_directory("capacity_app", usage, posargs, invoked_from)
    if given.server:
        raise ValueError(f"capacity_app searches --servers A,B (not --server): {usage}")
    return app.directory, [matrix.pair_of(app, s) for s in matrix.app_servers(app, given.servers)]


def free_threaded_pairs(args: SessionArgs) -> list[matrix.Pair]:
    """The free-threaded lane's pairs: --pairs, else every gunicorn-gthread and granian
    pair; ValueError (one line) for a pair whose server cannot run without the GIL."""
    chosen = (
        matrix.parse_pairs(args.pairs)
        if args.pairs
        else [p for p in matrix.pairs() if SERVERS[p.server].free_threading]
    )
    if not all(SERVERS[p.server].free_threading for p in chosen):
        raise ValueError("the free-threaded lane runs gunicorn-gthread and granian pairs only")
    return chosen


def gil_off(pairs: Iterable[matrix.Pair]) -> dict[str, str]:
    """The environment that runs the pairs' servers (and the harness) with the GIL off."""
    return {k: v for p in pairs for k, v in SERVERS[p.server].gil_env(True).items()}


def free_threaded_description(installed: list[interpreters.Interpreter]) -> str:
    """The freethreaded session's line in `nox -l`: whether the lane can run here."""
    lane = interpreters.free_threaded(installed)
    if lane is None:
        missing = interpreters.free_threaded_lane_missing(installed)
        return f"Free-threaded lane: MISSING here, {missing}"
    return (
        f"Free-threaded lane on {lane.describe}: gunicorn-gthread and granian "
        "pairs with PYTHON_GIL=0 (-- --pairs a@s,... to choose)"
    )


def versions_pairs(args: SessionArgs) -> list[matrix.Pair]:
    """python-versions: the pairs of --pairs, else one per kind of stack."""
    return matrix.parse_pairs(args.pairs) if args.pairs else list(experiments.VERSIONS_PAIRS)


def interpreter_lanes(
    installed: list[interpreters.Interpreter], nox_dir: Path
) -> list[tuple[interpreters.Interpreter, Path]]:
    """python-versions: the default build of each installed minor version, oldest first,
    each with the virtualenv the session builds for it under ``nox_dir``."""
    minors = sorted(
        {i.minor for i in installed if not i.free_threaded},
        key=lambda minor: tuple(int(part) for part in minor.split(".")),
    )
    lanes = []
    for minor in minors:
        lane = interpreters.find(installed, minor)
        if lane is not None:
            lanes.append((lane, nox_dir / f"lane-{minor}"))
    return lanes
