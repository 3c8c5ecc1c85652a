"""Bad input about an app, before anything starts (issue 21, deliverable 6): a directory
with no declaration, an entry module that does not exist or does not import (imported once
in a child process, as its server would), a missing requirement file, an
interface no chosen server speaks, a scenario file with an unknown key, a contract claimed
by an app that fails the smoke check. Each is one line naming the file and the key, exit
2, no run directory, and no process left.

The first five run with DATABASE_URL at a port where nothing listens: a command that
started anything would fail on the database with exit 1 and leave a run directory. The
contract's smoke check has to serve the app, so it runs on the embedded PostgreSQL, and
the processes tagged with the command's owner prove everything was stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from tests.your_app.made_here import notes_app

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
SHORT = ["--duration", "1s", "--warmup", "0s", "--workers", "1"]


def _no_declaration(app: Path) -> tuple[str, str]:
    (app / "stackbench.toml").unlink()
    return str(app), "no stackbench.toml"


def _no_module(app: Path) -> tuple[str, str]:
    _edit(app / "stackbench.toml", 'asgi = "main:app"', 'asgi = "server:app"')
    return "stackbench.toml: interfaces: ", "module server does not exist"


def _module_does_not_import(app: Path) -> tuple[str, str]:
    _edit(app / "main.py", "import asyncpg\n", "import asyncpg\nimport not_installed_here\n")
    return (
        "stackbench.toml: interfaces: asgi = 'main:app' does not import in ",
        "ModuleNotFoundError: No module named 'not_installed_here'",
    )


def _no_requirements(app: Path) -> tuple[str, str]:
    (app / "requirements.txt").unlink()
    return "stackbench.toml: requirements: ", "requirements.txt does not exist"


def _no_interface(app: Path) -> tuple[str, str]:
    return "stackbench.toml)", "gunicorn-sync serves WSGI; notes is ASGI (interfaces in"


def _unknown_scenario_key(app: Path) -> tuple[str, str]:
    _edit(app / "scenarios.toml", 'path = "/notes/{id}"', 'pth = "/notes/{id}"')
    return "scenarios.toml: scenario 'note', request 1 ('note'): ", "unknown key 'pth'"


CASES: dict[str, tuple[Callable[[Path], tuple[str, str]], str]] = {
    "no declaration": (_no_declaration, "uvicorn"),
    "an entry module that does not exist": (_no_module, "uvicorn"),
    "an entry module that does not import": (_module_does_not_import, "uvicorn"),
    "a missing requirement file": (_no_requirements, "uvicorn"),
    "an interface no chosen server speaks": (_no_interface, "gunicorn-sync"),
    "a scenario file with an unknown key": (_unknown_scenario_key, "uvicorn"),
}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer has {old!r}: update this test"
    path.write_text(text.replace(old, new))


def _bench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


# serve loads nothing, so it reads no scenario file.
RUNS = [("bench", case) for case in CASES] + [
    ("serve", case) for case in CASES if "scenario" not in case
]


@pytest.mark.parametrize(("command", "case"), RUNS, ids=[f"{c}: {case}" for c, case in RUNS])
def test_bad_app_input_starts_nothing(tmp_path: Path, command: str, case: str) -> None:
    plant, server = CASES[case]
    app = notes_app(tmp_path / "apps")
    where, says = plant(app)
    output = tmp_path / "out"
    args = [command, "--app", str(app), "--server", server]
    if command == "bench":
        args += ["--output", str(output), *SHORT]
    done = _bench(*args, env={**os.environ, "DATABASE_URL": UNREACHABLE})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and where in lines[0] and says in lines[0], done.stderr
    assert not output.exists() or not any(output.iterdir())  # no run directory


def test_the_same_app_without_the_planted_mistakes_gets_past_them(tmp_path: Path) -> None:
    """The control: unplanted, the same command gets to the database (exit 1, its line)."""
    app = notes_app(tmp_path / "apps")
    done = _bench(
        "bench", "--app", str(app), "--server", "uvicorn", "--output", str(tmp_path / "out"),
        *SHORT, env={**os.environ, "DATABASE_URL": UNREACHABLE},
    )  # fmt: skip
    assert done.returncode == 1 and "cannot connect to DATABASE_URL" in done.stderr


@pytest.mark.slow
def test_a_contract_claimed_but_not_served_is_refused_before_the_run(tmp_path: Path) -> None:
    """The notes app claims the contract: it is served once, smoke-checked, stopped, and
    refused in one line naming its declaration's `contract`; no run directory is made."""
    app = notes_app(tmp_path / "apps")
    declaration = app / "stackbench.toml"
    declaration.write_text("contract = true\n" + declaration.read_text())
    owner = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    output = tmp_path / "out"
    done = _bench(
        "bench", "--app", str(app), "--server", "uvicorn", "--output", str(output), *SHORT,
        env={**env, OWNER_VAR: owner},
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {declaration}: contract: notes declares the contract")
    assert "fails its smoke check under uvicorn: /json: expected 200" in lines[0]
    assert not output.exists() or not any(output.iterdir())
    assert processes_owned_by(owner) == []
