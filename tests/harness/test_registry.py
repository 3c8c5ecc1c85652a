"""The server registry: every pair's command line, and the matrix built from it."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from loadgen.config import Config
from stackbench import matrix
from stackbench.apps import APPS, ASGI, WSGI, get_app
from stackbench.servers import SERVERS, Knobs, get_server

ROOT = Path(__file__).resolve().parents[2]
ALL_PAIRS = matrix.pairs(check_files=False)


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=[p.session for p in ALL_PAIRS])
def test_every_pair_has_a_loopback_command_line(pair: matrix.Pair) -> None:
    app, server = get_app(pair.app), get_server(pair.server)
    argv = server.argv(app, 8123, Knobs(), cpus=2)
    line = " ".join(argv)
    interface = server.interface_for(app)
    assert interface is not None
    assert argv[-1] == app.entries[interface]
    assert "127.0.0.1" in line and "8123" in line and "0.0.0.0" not in line
    if argv[0] == "gunicorn":
        assert "--no-control-socket" in argv  # several gunicorns run side by side
    settings = server.resolve(Knobs(), cpus=2)
    if pair.server != "daphne":
        assert str(settings["workers"]) in argv


@pytest.mark.parametrize(
    ("server_id", "expected"),
    [
        ("gunicorn-sync", ["-k", "sync", "-w", "5"]),
        ("gunicorn-gthread", ["-k", "gthread", "--threads", "10", "-w", "2"]),
        ("gunicorn-gevent", ["-k", "gevent", "--worker-connections", "100"]),
        ("gunicorn-gevent-blocking", ["-k", "gevent"]),
        ("gunicorn-eventlet", ["-k", "eventlet"]),
    ],
)
def test_gunicorn_worker_classes_and_defaults(server_id: str, expected: list[str]) -> None:
    argv = get_server(server_id).argv(get_app("django_sync"), 8000, Knobs(), cpus=2)
    for flag, value in zip(expected[::2], expected[1::2], strict=True):
        assert argv[argv.index(flag) + 1] == value, argv


def test_knobs_override_defaults() -> None:
    argv = get_server("gunicorn-gthread").argv(
        get_app("django_sync"), 8000, Knobs(workers=3, threads=7, pool_size=7), cpus=2
    )
    assert argv[argv.index("-w") + 1] == "3" and argv[argv.index("--threads") + 1] == "7"


def test_django_asgi_runs_without_lifespan() -> None:
    uvicorn = get_server("uvicorn").argv(get_app("django_async"), 8000, Knobs(), cpus=1)
    assert uvicorn[uvicorn.index("--lifespan") + 1] == "off"
    granian = get_server("granian").argv(get_app("django_async"), 8000, Knobs(), cpus=1)
    assert granian[granian.index("--interface") + 1] == "asginl"
    starlette = get_server("uvicorn").argv(get_app("gino_style"), 8000, Knobs(), cpus=1)
    assert starlette[starlette.index("--lifespan") + 1] == "auto"


def test_eventlet_is_pinned_to_the_last_gunicorn_with_its_worker() -> None:
    assert "gunicorn==25.3.0" in get_server("gunicorn-eventlet").requirements


def test_matrix_pairs_follow_interfaces() -> None:
    for pair in ALL_PAIRS:
        app, server = get_app(pair.app), get_server(pair.server)
        assert set(app.interfaces) & set(server.interfaces)
    wsgi_only = [s.id for s in SERVERS.values() if s.interfaces == (WSGI,)]
    asgi_only_apps = [a.id for a in APPS.values() if a.interfaces == (ASGI,)]
    for app_id in asgi_only_apps:
        for server_id in wsgi_only:
            assert matrix.Pair(app_id, server_id) not in ALL_PAIRS
    # psycopg2-under-green-threads servers only pair with apps that switch drivers
    eventlet = {p.app for p in ALL_PAIRS if p.server == "gunicorn-eventlet"}
    assert eventlet == {"django_sync", "django_fastapi"}


def test_every_missing_pair_says_why() -> None:
    listed = {(p.app, p.server) for p in ALL_PAIRS}
    missing = {(app, server): reason for app, server, reason in matrix.missing()}
    for app in APPS:
        for server in SERVERS:
            landed = get_app(app).exists()
            assert ((app, server) in listed and landed) != ((app, server) in missing)
    assert all(reason for reason in missing.values())


@pytest.mark.parametrize(
    ("app", "server", "message"),
    [
        ("gino_style", "gunicorn-sync", "gunicorn-sync serves WSGI; gino_style is ASGI"),
        ("nope", "uvicorn", "unknown app 'nope'; valid apps: django_sync"),
        ("gino_style", "nope", "unknown server 'nope'; valid servers: gunicorn-sync"),
        ("fastapi_sqla", "gunicorn-eventlet", "servers for fastapi_sqla: uvicorn"),
    ],
)
def test_invalid_pair_is_one_clear_line(app: str, server: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        matrix.get_pair(app, server)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bench_cli_rejects_invalid_pair_and_options() -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "stackbench", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    for args, message in [
        (["bench", "--app", "gino_style", "--server", "daphnex"], "valid servers:"),
        (
            ["bench", "--app", "gino_style", "--server", "uvicorn", "--duration", "soon"],
            "invalid duration",
        ),
        (["bench", "--app", "gino_style", "--server", "uvicorn", "-c", "0"], "must be positive"),
        (
            ["bench", "--app", "gino_style", "--server", "uvicorn", "--server-cpus", "x"],
            "not a CPU list",
        ),
        (["bench", "--app", "gino_style", "--server", "uvicorn", "--scale", "0"], "unknown scale"),
    ]:
        result = run(*args)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr


def test_noxfile_parametrization_equals_the_matrix() -> None:
    listed = subprocess.run(
        # -k: the default selection (lint, tests) would hide the other sessions
        [
            sys.executable,
            "-m",
            "nox",
            "--list",
            "--json",
            "-k",
            "bench or serve or tests or lint or matrix",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if listed.returncode != 0 and "No module named nox" in listed.stderr:
        pytest.skip("nox is not installed in this environment")
    sessions = {s["session"] for s in json.loads(listed.stdout)}
    bench = {name for name in sessions if name.startswith("bench(")}
    assert bench == {p.session for p in matrix.pairs()}
    serve = {name.replace("serve", "bench", 1) for name in sessions if name.startswith("serve(")}
    assert serve == bench  # a served pair is exactly a benched pair
    assert {"tests", "lint", "matrix"} <= sessions


def test_noxfile_names_an_invalid_bench_session_clearly() -> None:
    error = matrix.check_requested_sessions(["bench(app='gino_style', server='x')"])
    assert error is not None and "valid servers" in error
    error = matrix.check_requested_sessions(["serve(app='nope', server='uvicorn')"])
    assert error is not None and "nope" in error
    error = matrix.check_requested_sessions(["serve(gino_style)"])
    assert error is not None and "serve(app='APP', server='SERVER')" in error
    valid = "serve(app='gino_style', server='uvicorn')"
    assert matrix.check_requested_sessions([valid]) is None
    assert matrix.check_requested_sessions(["tests"]) is None


def test_loadgen_command_line_follows_the_load() -> None:
    from stackbench.loadrun import aimed, loadgen_argv
    from stackbench.options import BENCH_LOAD

    def argv(load: Config, url: str, cpus: str | None = None) -> list[str]:
        return loadgen_argv(aimed(load, "db", url), Path("r"), cpus)

    count = argv(BENCH_LOAD.replace(requests=10, duration=None), "http://x", "1")
    assert count[:3] == ["taskset", "-c", "1"] and count[count.index("-n") + 1] == "10"
    assert "-z" not in count
    timed = argv(BENCH_LOAD.replace(duration=3, rate=50), "http://x")
    assert (
        timed[timed.index("-z") + 1] in ("3s", "3.0s") and float(timed[timed.index("-R") + 1]) == 50
    )
    assert "-n" not in timed and timed[-1] == "http://x"
    # Only a target on another host (bench --target) lifts loadgen's loopback guard.
    local = argv(BENCH_LOAD, "http://127.0.0.1:8000")
    remote = argv(BENCH_LOAD, "http://10.213.77.1:8000")
    assert "--allow-remote" not in local and "--allow-remote" in remote


@pytest.mark.parametrize("server_id", sorted(SERVERS))
def test_every_server_listens_where_serve_binds_it(server_id: str) -> None:
    server = get_server(server_id)
    app = next(a for a in APPS.values() if server.interface_for(a))
    loopback = " ".join(server.argv(app, 8000, Knobs(), cpus=1))
    bound = " ".join(server.argv(app, 8000, Knobs(), cpus=1, host="10.213.77.1"))
    assert "127.0.0.1" in loopback and "10.213.77.1" not in loopback
    assert "10.213.77.1" in bound and "127.0.0.1" not in bound


# ------------------------------------------------------ gunicorn's own ASGI worker (-k asgi)


def test_gunicorn_asgi_command_line() -> None:
    server = get_server("gunicorn-asgi")
    argv = server.argv(get_app("gino_style"), 8000, Knobs(), cpus=2)
    assert argv[:3] == ["gunicorn", "-k", "asgi"]
    assert argv[argv.index("--asgi-loop") + 1] == "uvloop"
    assert argv[argv.index("--asgi-lifespan") + 1] == "auto"  # Starlette has a lifespan
    assert argv[argv.index("-w") + 1] == "2" and "--no-control-socket" in argv
    assert argv[-1] == "main:app"
    django = server.argv(get_app("django_async"), 8000, Knobs(workers=3), cpus=2)
    assert django[django.index("--asgi-lifespan") + 1] == "off"  # Django has none
    assert django[django.index("-w") + 1] == "3" and django[-1] == "project.asgi:application"


def test_gunicorn_requirements_floors() -> None:
    requirements = get_server("gunicorn-asgi").requirements
    assert "gunicorn>=27" in requirements  # tested on 27; -k asgi is beta (docs/servers.md)
    assert any(r.startswith("uvloop") for r in requirements)  # --asgi-loop uvloop
    # Every gunicorn command line passes --no-control-socket, new in 25.1: no floor below
    # it. The others' floors stay below 27, so eventlet's pin (25.3) can share a venv.
    for server in SERVERS.values():
        for requirement in server.requirements:
            if requirement.startswith("gunicorn") and server.id != "gunicorn-asgi":
                floor = requirement.split(">=")[-1].split("==")[-1]
                assert tuple(map(int, floor.split("."))) >= (25, 1), (server.id, requirement)


def test_gunicorn_asgi_pairs_and_why_the_others_are_missing() -> None:
    added = {p.app for p in ALL_PAIRS if p.server == "gunicorn-asgi"}
    assert added == {"django_async", "fastapi_sqla", "tortoise", "gino_style", "django_fastapi"}
    missing = {(app, server): reason for app, server, reason in matrix.missing()}
    assert missing[("django_sync", "gunicorn-asgi")] == (
        "gunicorn-asgi serves ASGI; django_sync is WSGI"
    )
    assert matrix.requirements([matrix.Pair("gino_style", "gunicorn-asgi")])[-2:] == list(
        get_server("gunicorn-asgi").requirements
    )


# ------------------------------------------------------------- the free-threaded lane's servers


def test_free_threaded_lane_servers_run_with_the_gil_off() -> None:
    lane = {s.id for s in SERVERS.values() if s.free_threading}
    assert lane == {"gunicorn-gthread", "granian"}
    assert get_server("granian").gil_env(True) == {"PYTHON_GIL": "0"}
    assert get_server("gunicorn-gthread").gil_env(True) == {"PYTHON_GIL": "0"}
    assert get_server("granian").gil_env(False) == {}  # a default build: nothing to turn off
    assert get_server("uvicorn").gil_env(True) == {}  # one event loop per process: not in the lane


def test_the_gil_setting_reaches_only_the_lanes_servers(monkeypatch) -> None:
    """Per server, from the serving interpreter: never inherited from the harness's shell."""
    from stackbench.apps import get_app
    from stackbench.server_process import app_env, is_free_threaded

    monkeypatch.setenv("PYTHON_GIL", "0")  # a shell that turned it off for everything
    app = get_app("django_sync")
    args = ("postgresql://x", "http://127.0.0.1:9", Knobs())
    gthread = app_env(app, get_server("gunicorn-gthread"), *args, free_threaded=True)
    assert gthread["PYTHON_GIL"] == "0"
    sync = app_env(app, get_server("gunicorn-sync"), *args, free_threaded=True)
    assert "PYTHON_GIL" not in sync
    default_build = app_env(app, get_server("gunicorn-gthread"), *args, free_threaded=False)
    assert "PYTHON_GIL" not in default_build
    running = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert is_free_threaded(Path(sys.executable)) is running
