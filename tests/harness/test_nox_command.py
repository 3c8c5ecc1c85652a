"""The noxfile's one reading of nox's command line and of a session's arguments, and what
it refuses before any session starts: options after -- that contradict a session's own
pair, and a bare `nox -s bench` (41 sessions) without a confirmation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import experiments, matrix, nox_command
from stackbench.apps import APPS
from stackbench.nox_command import CONFIRM_VAR, NoxCommand, SessionArgs

ROOT = Path(__file__).resolve().parents[2]
PAIR = "bench(app='fastapi_sqla', server='uvicorn')"
CAPACITY = "capacity(app='django_sync')"


def _command(*argv: str, interactive: bool = False) -> NoxCommand:
    return NoxCommand.parse(["nox", *argv], environ={}, stdin_is_terminal=interactive)


def test_nox_command_line_is_read_once_into_its_parts() -> None:
    command = _command("-s", "lint", "tests", "-P", "3.13", "--", "-x", "-s", "bench")
    assert command.sessions == ("lint", "tests")  # -s after -- is pytest's, not nox's
    assert command.pythons == ("3.13",)
    assert command.posargs == ("-x", "-s", "bench")
    assert not command.listing and not command.selecting and not command.interactive
    assert _command("--session=bench", "-l").listing
    assert _command("-k", "lint").requested(["tests"]) == []  # nox selects
    assert _command().requested(["lint", "tests"]) == ["lint", "tests"]
    from_env = NoxCommand.parse(["nox"], environ={"NOXSESSION": "lint,tests"})
    assert from_env.sessions == ("lint", "tests")
    assert _command(interactive=True).interactive
    assert not _command("--non-interactive", interactive=True).interactive


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--app", "a", "--server=s"], SessionArgs(app=("a",), server=("s",))),
        (["--ap", "a", "--app=b"], SessionArgs(app=("a", "b"))),  # argparse's abbreviation
        (["--pairs", "a@s", "--json"], SessionArgs(pairs="a@s", json=True)),
        (
            ["--variant", "v", "--variant=w", "--profile"],
            SessionArgs(variants=("v", "w"), profile=True),
        ),
        (["--server-cpus", "0", "--target-stats", "u"], SessionArgs()),  # other options
        # Ambiguous to argparse (--server, --server-cpus), which refuses it: refused either way.
        (["--se", "x"], SessionArgs(server=("x",))),
        (["--target", "http://h:1"], SessionArgs(target="http://h:1")),
        # capacity's --servers, whole: every shorter spelling is --server or ambiguous
        (["--servers", "a,b", "--server", "s"], SessionArgs(server=("s",), servers="a,b")),
        (["--servers=a"], SessionArgs(servers="a")),
    ],
)
def test_session_arguments_are_read_once(args: list[str], expected: SessionArgs) -> None:
    assert SessionArgs.parse(args) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # The reported case: every bench session, each silently measuring fastapi_sqla.
        (["-s", "bench", "--", "--app", "fastapi_sqla"], "--app fastapi_sqla after --"),
        (["-s", PAIR, "--", "--app", "gino_style"], "--app gino_style after --"),
        (["-s", PAIR, "--", "--app=gino_style"], "--app gino_style after --"),
        (["-s", PAIR, "--", "--ap", "gino_style"], "--app gino_style after --"),
        (["-s", PAIR, "--", "--server", "hypercorn"], "--server hypercorn after --"),
        (["-s", PAIR, "--", "--server", "uvicorn,hypercorn"], "--server uvicorn,hypercorn"),
        (["-s", PAIR, "--", "--pairs", "gino_style@uvicorn"], "nox -s bench_pairs"),
        (["-s", PAIR.replace("bench", "serve"), "--", "--app", "x"], "--app x after --"),
        (["-s", "lint", PAIR, "--", "--target", "http://10.0.0.5:8000"], "--target after --"),
        # a capacity session names its app; its servers are --servers
        (["-s", CAPACITY, "--", "--app", "gino_style"], "capacity(app='gino_style')"),
        (["-s", "capacity", "--", "--app", "gino_style"], "--app gino_style after --"),
        (["-s", CAPACITY, "--", "--server", "uvicorn"], "--server after -- is not capacity's"),
        (["-s", CAPACITY, "--", "--pairs", "a@b"], "--pairs after -- is not capacity's"),
        (["-s", CAPACITY, "--", "--target", "http://h:1"], "python -m stackbench capacity"),
    ],
)
def test_options_that_contradict_the_sessions_pair_are_refused(
    argv: list[str], message: str
) -> None:
    error = nox_command.contradiction(_command(*argv))
    assert error is not None and message in error and "\n" not in error, error


def test_the_refusal_names_the_session_that_measures_what_was_asked() -> None:
    error = nox_command.contradiction(_command("-s", "bench", "--", "--app", "fastapi_sqla"))
    assert error is not None and "nox -s \"bench(app='fastapi_sqla', server=" in error
    error = nox_command.contradiction(
        _command("-s", PAIR, "--", "--app", "gino_style", "--server", "hypercorn")
    )
    assert error is not None and "bench(app='gino_style', server='hypercorn')" in error


@pytest.mark.parametrize(
    "argv",
    [
        ["-s", PAIR, "--", "--app", "fastapi_sqla", "--server", "uvicorn", "--duration", "5s"],
        ["-s", PAIR, "--", "--server-cpus", "0", "--scenarios", "db"],
        ["-s", "bench_pairs", "--", "--pairs", "gino_style@uvicorn"],
        ["-s", "experiment(name='gevent-patching')", "--", "--duration", "5s"],
        ["-s", CAPACITY, "--", "--app", "django_sync", "--servers", "gunicorn-sync"],
        ["-s", CAPACITY, "--", "--server-cpus", "0", "--budget", "p99<50ms"],
        ["-s", "tests", "--", "--app", "x"],  # not a pair session: pytest's to judge
    ],
)
def test_options_that_agree_with_the_session_pass(argv: list[str]) -> None:
    assert nox_command.contradiction(_command(*argv)) is None


def test_a_bare_bench_says_how_many_sessions_and_how_long() -> None:
    pairs = len(matrix.pairs())
    error = nox_command.confirm_many(_command("-s", "bench"), environ={})
    assert error is not None and "\n" not in error
    assert f"selects {pairs} sessions" in error and f"about {pairs} minutes" in error
    assert f"{CONFIRM_VAR}=1" in error
    error = nox_command.confirm_many(_command("-s", "experiment"), environ={})
    assert error is not None and f"selects {len(experiments.EXPERIMENTS)} sessions" in error
    error = nox_command.confirm_many(_command("-e", "serve"), environ={})
    assert error is not None and "each serving until Ctrl-C" in error
    error = nox_command.confirm_many(_command("-s", "capacity"), environ={})
    assert error is not None and f"selects {len(APPS)} sessions, one per app" in error


@pytest.mark.parametrize(
    "argv",
    [
        ["-s", PAIR],
        ["-s", PAIR, "bench(app='gino_style', server='uvicorn')"],  # each named: on purpose
        ["-s", "experiment(name='gevent-patching')"],
        ["-s", "bench", "-l"],  # listing starts nothing
        ["-s", "lint", "tests", "bench_pairs"],
        ["-s", CAPACITY],
    ],
)
def test_sessions_named_one_by_one_need_no_confirmation(argv: list[str]) -> None:
    assert nox_command.confirm_many(_command(*argv), environ={}) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-s", CAPACITY, "--", "--servers", "uvicorn"], "no pair (django_sync, uvicorn)"),
        (["-s", CAPACITY, "--", "--servers=nope"], "unknown server 'nope'"),
        (["-s", CAPACITY, "--", "--servers", ","], "--servers: name at least one server"),
        # a bare `capacity` runs every app's session: each must have the servers named
        (["-s", "capacity", "--", "--servers", "granian"], None),
        (["-s", "capacity", "--", "--servers", "gunicorn-sync"], "no pair (django_async, "),
        (["-s", CAPACITY, "--", "--servers", "gunicorn-sync,granian"], None),
        (["-s", CAPACITY], None),
        (["-s", PAIR, "--", "--servers", "nope"], None),  # not capacity's: the harness refuses
    ],
)
def test_a_capacity_sessions_servers_are_checked_before_it_starts(
    argv: list[str], message: str | None
) -> None:
    error = nox_command.capacity_servers(_command(*argv))
    if message is None:
        assert error is None, error
    else:
        assert error is not None and message in error and "\n" not in error, error


def test_many_sessions_go_on_when_confirmed() -> None:
    command = _command("-s", "bench")
    assert nox_command.confirm_many(command, environ={CONFIRM_VAR: "1"}) is None
    assert nox_command.confirm_many(command, environ={CONFIRM_VAR: "yes please"}) is not None


@pytest.mark.parametrize(("answer", "goes_on"), [("y\n", True), ("\n", False), ("no\n", False)])
def test_at_a_terminal_many_sessions_are_asked_about(
    answer: str, goes_on: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: answer.strip())
    error = nox_command.confirm_many(_command("-s", "bench", interactive=True), environ={})
    assert (error is None) == goes_on
    assert f"selects {len(matrix.pairs())} sessions" in capsys.readouterr().err


def _nox(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (CONFIRM_VAR, "NOXSESSION")}
    run = subprocess.run(
        [sys.executable, "-m", "nox", "--non-interactive", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if run.returncode != 0 and "No module named nox" in run.stderr:
        pytest.skip("nox is not installed in this environment")
    return run


def _venvs() -> set[str]:
    return {path.name for path in (ROOT / ".nox").glob("*")} if (ROOT / ".nox").is_dir() else set()


def test_nox_refuses_the_reported_command_in_one_line_before_anything_starts() -> None:
    before = _venvs()
    run = _nox("-s", "bench", "--", "--app", "fastapi_sqla")
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nox: error: --app fastapi_sqla"), run.stderr
    assert "Running session" not in run.stderr + run.stdout
    assert _venvs() == before  # not one virtualenv made


def test_nox_refuses_a_bare_bench_without_a_confirmation() -> None:
    before = _venvs()
    run = _nox("-s", "bench")
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f"selects {len(matrix.pairs())} sessions" in lines[0], run.stderr
    assert _venvs() == before
    # Listing starts nothing: it lists them all, unasked.
    listed = _nox("-s", "bench", "-l", "--json")
    assert listed.returncode == 0, listed
    assert len(json.loads(listed.stdout)) == len(matrix.pairs())


def test_nox_refuses_a_capacity_session_with_servers_its_app_lacks() -> None:
    before = _venvs()
    run = _nox("-s", CAPACITY, "--", "--servers", "gunicorn-sync,uvicorn")
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nox: error: no pair (django_sync, uvicorn)")
    assert "Running session" not in run.stderr + run.stdout
    assert _venvs() == before
