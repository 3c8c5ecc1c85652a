"""``python -m stackbench capacity``: bad input is one line and exit 2 before anything
starts (DATABASE_URL points where nothing listens, so a command that started anything
would fail with exit 1 and leave a run directory); a budget the lowest rate already fails
is one line and exit 1, with the run's answer written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import capacity, matrix, results
from stackbench.apps import APPS, get_app
from stackbench.capacity_cli import CAPACITY, _warned, plan_from
from stackbench.cli import build_parser, main
from stackbench.matrix import shared_venv_servers
from stackbench.servers import SERVERS

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
STACKBENCH = (sys.executable, "-m", "stackbench")


def _capacity(output: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """main() in this process: its exit code and its lines on stderr."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["capacity", "--output", str(output), *args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, err.getvalue().strip().splitlines()


TARGET = ["--target", "http://h:8000", "--target-stats", "http://h:8001"]
USAGE_ERRORS = [
    (["--app", "gino_style", "--budget", "p99<<100ms"], "not a budget 'p99<<100ms'"),
    (["--app", "gino_style", "--budget", "rps>100"], "a budget is an upper bound"),
    (["--app", "gino_style", "--budget", "p97<10ms"], "loadgen reports p10"),
    (["--app", "gino_style", "--budget", "p99<1s", "--budget", "p99<2s"], "p99 given twice"),
    (["--app", "gino_style", "--precision", "0"], "argument --precision: must be above 0"),
    (["--app", "gino_style", "--precision", "1"], "argument --precision: must be above 0"),
    (["--app", "gino_style", "--precision", "100%"], "argument --precision: must be above 0"),
    (["--app", "gino_style", "--precision", "150%"], "argument --precision: must be above 0"),
    (["--app", "gino_style", "--step", "1"], "must be above 1 for the rate to climb"),
    (["--app", "gino_style", "--start-rate", "900", "--max-rate", "100"], "at most --max-rate"),
    (["--app", "gino_style", "--probe-duration", "0"], "--probe-duration"),
    (["--app", "gino_style", "--scenarios", "db,json"], "loads one scenario"),
    (["--app", "gino_style", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["--app", "gino_style", "--repeats", "0"], "--repeats"),
    (["--app", "nope"], "unknown app 'nope'"),
    (["--app", "gino_style", "--servers", "nope"], "unknown server 'nope'"),
    (["--app", "django_sync", "--servers", "uvicorn"], "no pair (django_sync, uvicorn)"),
    (["--app", "gino_style", "--target-stats", "http://h:1"], "--target-stats goes with"),
    (["--target", "http://10.0.0.5:8000"], "--target needs --target-stats"),
    (
        ["--target", "http://h:8000", "--target-stats", "http://h:8001", "--workers", "2"],
        "--workers is serve's option",
    ),
    (
        ["--target", "http://h:8000", "--target-stats", "http://h:8001", "--servers", "uvicorn"],
        "drop --servers",
    ),
    (["--target", "ftp://h:8000", "--target-stats", "http://h:8001"], "--target: expected"),
    (["--app", "gino_style", "--target", "http://h:1"], "not allowed with argument"),
    # several load agents per probe: --target's, each option with the other
    (["--app", "gino_style", "--agents", "2"], "--agents and --agent-via go with --target"),
    (
        ["--app", "gino_style", "--agent-via", "ssh l{i} -- python"],
        "--agents and --agent-via go with --target",
    ),
    ([*TARGET, "--agents", "0"], "argument --agents: must be positive, got '0'"),
    ([*TARGET, "--agents", "2"], "--agents 2 needs --agent-via TEMPLATE"),
    ([*TARGET, "--agent-via", "ssh l{i} -- python"], "give --agents N > 1"),
    ([*TARGET, "--agents", "1", "--agent-via", "ssh l{i} -- python"], "give --agents N > 1"),
    ([*TARGET, "--agents", "2", "--agent-via", "ssh load -- python"], "needs {i} for it"),
    ([*TARGET, "--agents", "2", "--agent-via", "ssh 'l{i} python"], "No closing quotation"),
    (
        [*TARGET, "--agents", "3", "--agent-via", "ssh l{i} -- python", "-c", "2"],
        "--agents 3: agents x processes (3) cannot exceed -c (2)",
    ),
    ([], "one of the arguments --app --target is required"),
]


@pytest.mark.parametrize(
    ("extra", "says"), USAGE_ERRORS, ids=[" ".join(e) or "nothing" for e, _ in USAGE_ERRORS]
)
def test_bad_input_is_one_line_and_exit_2_before_anything_starts(
    extra: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "results"
    code, lines = _capacity(output, *extra, monkeypatch=monkeypatch)
    assert code == 2, lines
    assert len(lines) == 1 and says in lines[0], lines
    assert not output.exists()  # refused before the results folder was made


def test_the_real_command_line_refuses_a_budget_that_does_not_parse(tmp_path: Path) -> None:
    output = tmp_path / "results"
    argv = [*STACKBENCH, "capacity", "--app", "gino_style", "--budget", "p99 under 100ms"]
    done = subprocess.run(
        [*argv, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": UNREACHABLE},
    )
    assert done.returncode == 2 and not output.exists()
    assert done.stderr.strip().splitlines() == [
        "python -m stackbench capacity: error: argument --budget: not a budget "
        "'p99 under 100ms' (e.g. 'p99<100ms', 'p99.9<250ms', 'errors<1%') (see --help)"
    ]


def test_the_default_servers_leave_a_pinned_server_out_unless_named() -> None:
    django_sync = shared_venv_servers(get_app("django_sync"))
    assert "gunicorn-eventlet" not in django_sync and SERVERS["gunicorn-eventlet"].pins
    assert {"gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent", "granian"} <= set(django_sync)
    assert not any(SERVERS[s].pins for s in django_sync)
    assert shared_venv_servers(get_app("gino_style"))[0] == "uvicorn"
    django_fastapi = shared_venv_servers(get_app("django_fastapi"))  # both interfaces
    assert "gunicorn-asgi" in django_fastapi and "gunicorn-eventlet" not in django_fastapi


def test_a_probe_too_short_for_the_precision_is_warned_about(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "capacity",
            "--app",
            "gino_style",
            "--probe-duration",
            "1s",
            "--warmup",
            "0s",
            "--precision",
            "2%",
            "--output",
            str(tmp_path),
        ]
    )
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        planned = _warned(plan_from(args))
    assert planned.unseen_overload == pytest.approx(0.1)  # 100 ms over 1 s
    assert err.getvalue() == (
        "warning: a probe of 1 s (warm-up + --probe-duration) may pass a rate up to 10.0% "
        "above capacity (100 ms of queue over 1 s), more than --precision 2.0%: give longer "
        "probes\n"
    )
    quiet = io.StringIO()
    with contextlib.redirect_stderr(quiet):
        _warned(plan_from(build_parser().parse_args(["capacity", "--app", "gino_style"])))
    assert quiet.getvalue() == ""  # the defaults: 7 s see 1.4 %, inside 5 %


def test_the_plan_is_the_benchs_options_with_the_capacity_defaults(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "capacity",
            "--app",
            "gino_style",
            "--workers",
            "2",
            "--scenario-option",
            "queries=5",
            "--scenario",
            "queries",
            "--output",
            str(tmp_path),
        ]
    )
    planned = plan_from(args)
    load = planned.options.load
    assert planned.scenario == "queries" and planned.options.workers == 2
    assert (load.duration, load.warmup, load.concurrency, load.timeout) == (5.0, 2.0, 256, 10.0)
    assert load.warmup == CAPACITY.load.warmup and planned.options.repeats == 3
    assert dict(load.scenario_options) == {"queries": "5"} and load.rate is None
    assert planned.slo.rules == ["p99<100ms", "errors<1%"] and planned.spec.precision == 0.05
    probe = capacity.probe_options(planned.options, 141.4)
    assert probe.load.rate == 141.4 and probe.load.duration == 5.0


@pytest.mark.slow
def test_a_budget_the_lowest_rate_fails_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A real run: the first probe cannot hold p99 under a microsecond. The search stops
    there, says so in one line, and still writes its answer."""
    output = tmp_path / "results"
    done = subprocess.run(
        [
            *STACKBENCH,
            "capacity",
            "--app",
            "gino_style",
            "--servers",
            "uvicorn",
            "--workers",
            "1",
            "--budget",
            "p99<0.001ms",
            "--start-rate",
            "20",
            "--probe-duration",
            "1s",
            "--warmup",
            "0s",
            "--repeats",
            "1",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: gino_style @ uvicorn: fails at the lowest rate 20 req/s: p99 ")
    assert last.endswith(" ms > 0.001 ms"), last
    (run_dir,) = output.iterdir()
    answer = results.read_capacity(run_dir / "capacity.json")
    (pair,) = answer["pairs"]
    assert (pair["status"], pair["bracket"], pair["verdict"]) == (
        "below_lowest",
        [None, 20.0],
        "unranked",
    )
    assert [p["rate"] for p in pair["probes"]] == [20.0]
    assert (run_dir / "capacity.png").stat().st_size > 0
    assert "| uvicorn | fails at 20 |" in (run_dir / "capacity.md").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "fails at the lowest rate" in manifest["reason"]


def test_one_nox_session_per_app_and_an_unknown_app_named() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", "-k", "capacity"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    sessions = {s["session"] for s in json.loads(listed.stdout)}
    assert sessions == {f"capacity(app='{app}')" for app in APPS} | {"capacity_app"}
    error = matrix.check_requested_sessions(["capacity(app='nope')"])
    assert error is not None and error.startswith("unknown app 'nope' in capacity(app='nope')")
    error = matrix.check_requested_sessions(["capacity(gino_style)"])
    assert error == "capacity session 'capacity(gino_style)' is not of the form capacity(app='APP')"
    assert matrix.check_requested_sessions(["capacity(app='gino_style')", "capacity"]) is None


def test_a_scenario_file_loads_the_one_scenario_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any bench scenario: a scenario file's too, one of its scenarios by name."""
    from tests.harness.test_bench_scenario_files import FILE

    path = tmp_path / "scenarios.toml"
    path.write_text(FILE)
    output = tmp_path / "results"
    code, lines = _capacity(
        output, "--app", "gino_style", "--scenario-file", str(path), monkeypatch=monkeypatch
    )
    assert (code, lines) == (
        2,
        ["error: a capacity search loads one scenario: name the file's (--scenario)"],
    )
    assert not output.exists()
    args = build_parser().parse_args(
        [
            "capacity",
            "--app",
            "gino_style",
            "--scenario-file",
            str(path),
            "--scenario",
            "right",
            "--output",
            str(output),
        ]
    )
    planned = plan_from(args)
    assert planned.scenario == "right" and planned.options.load.scenario_file == str(path)


# -- an app's directory, read as the bench reads it (issue 21) -------------------------------
PACED_SCENARIOS = """\
# What stackbench sends to this app (its own scenarios: it does not serve the contract).
[scenarios.hello]
description = "the paced answer"

[[scenarios.hello.requests]]
name = "hello"
path = "/hello"
check.regex = "^Hello, World!$"

[scenarios.health]
description = "the health path, unpaced"

[[scenarios.health.requests]]
name = "health"
path = "/health"
"""


def paced_copy(where: Path) -> Path:
    """The paced app copied outside the repository, with a scenario file of its own beside
    its declaration (as docs/your-app.md tells an app's author to write one)."""
    from tests.capacity.known_capacity import APP_DIR

    app = where / "paced"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "scenarios.toml").write_text(PACED_SCENARIOS)
    return app


def test_an_app_directory_loads_its_declared_scenario(tmp_path: Path) -> None:
    """capacity --app PATH plans the app's declared scenario, from its own file, as
    bench --app PATH does (options_for_pairs): nothing is started to plan it."""
    app = paced_copy(tmp_path)
    argv = ["capacity", "--app", str(app), "--servers", "gunicorn-sync", "--scenario", "hello"]
    args = build_parser().parse_args([*argv, "--output", str(tmp_path / "results")])
    pairs = [matrix.pair_of(get_app(args.app), "gunicorn-sync")]
    planned = plan_from(args, pairs)
    assert planned.scenario == "hello"
    assert planned.options.load.scenario_file == str(app / "scenarios.toml")
    assert pairs[0].home == app and pairs[0].app == "paced"


def _break_import(app: Path) -> str:
    (app / "app.py").write_text("import not_installed_here\n" + (app / "app.py").read_text())
    return "ModuleNotFoundError: No module named 'not_installed_here'"


def _unlinked(path: Path, says: str) -> str:
    path.unlink()
    return says


APP_DIRECTORY_ERRORS = {
    "a scenario the declaration lacks": (
        ["--scenario", "nope"],
        lambda app: f"{app / 'scenarios.toml'} has no scenario 'nope' (it has: hello, health)",
    ),
    "no scenario named, the file declaring two": ([], lambda app: "name the file's (--scenario)"),
    "an entry that does not import": (["--scenario", "hello"], _break_import),
    "no scenario file declared": (
        ["--scenario", "hello"],
        lambda app: _unlinked(app / "scenarios.toml", "declares no scenario file"),
    ),
}


@pytest.mark.parametrize("case", list(APP_DIRECTORY_ERRORS))
def test_a_planted_fault_in_an_app_directory_is_refused_before_anything_starts(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra, plant = APP_DIRECTORY_ERRORS[case]
    app = paced_copy(tmp_path)
    says = plant(app)
    output = tmp_path / "results"
    args = ["--app", str(app), "--servers", "gunicorn-sync", *extra]
    code, lines = _capacity(output, *args, monkeypatch=monkeypatch)
    assert code == 2, lines
    assert len(lines) == 1 and says in lines[0], lines
    assert not output.exists() or not any(output.iterdir())  # no run directory


def test_the_same_app_directory_unplanted_gets_past_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same command, nothing planted, gets to the database (exit 1)."""
    app = paced_copy(tmp_path)
    args = ["--app", str(app), "--servers", "gunicorn-sync", "--scenario", "hello"]
    code, lines = _capacity(tmp_path / "results", *args, monkeypatch=monkeypatch)
    assert code == 1 and "cannot connect to DATABASE_URL" in lines[-1], lines


@pytest.mark.slow
@pytest.mark.serial  # a rate at a latency: busy neighbours would lower it
def test_an_app_directory_outside_the_repository_is_searched_on_its_scenario(
    tmp_path: Path,
) -> None:
    """A real, short search of the paced app (100 req/s by construction), copied outside
    the repository, on the scenario its own file declares."""
    app = paced_copy(tmp_path)
    output = tmp_path / "results"
    done = subprocess.run(
        [
            *STACKBENCH, "capacity", "--app", str(app), "--servers", "gunicorn-sync",
            "--scenario", "hello", "--workers", "1", "--start-rate", "60", "--precision", "10%",
            "--probe-duration", "2s", "--warmup", "1s", "--repeats", "1", "--timeout", "1s",
            "--output", str(output),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    (run_dir,) = output.iterdir()
    answer = results.read_capacity(run_dir / "capacity.json")
    (pair,) = answer["pairs"]
    probes = [(p["rate"], p["outcome"], p["reason"]) for p in pair["probes"]]
    assert (pair["app"], pair["status"], answer["search"]["scenario"]) == (
        "paced",
        "resolved",
        "hello",
    ), probes
    low, high = pair["bracket"]
    assert low is not None and high is not None and high <= low * 1.10, probes
    assert low <= 100 * (1 + answer["search"]["unseen_overload"] + 0.10), probes
    document = results.read_result(run_dir / pair["probes"][0]["result"])
    assert document["scenario"] == "hello"
    assert document.get("scenario_file") == str(app / "scenarios.toml")
    assert document["app_source"]["path"] == str(app)
