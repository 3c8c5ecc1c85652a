"""The commands the end-to-end tests of tests/your_app run, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared_fixtures.processes import OWNER_VAR, processes_owned_by

ROOT = Path(__file__).resolve().parents[2]
# One short measured window per scenario: each test proves a path, not a figure.
SHORT = ["--duration", "1s", "--warmup", "0.5s", "--workers", "1", "--connections", "8"]


def stackbench(*args: str, owner: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, on the embedded PostgreSQL (DATABASE_URL unset); no
    process tagged with ``owner`` outlives it."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, OWNER_VAR: owner},
    )
    assert processes_owned_by(owner) == [], "a process outlived the command"
    return done


def the_run_dir(output: Path) -> Path:
    """The one run directory a command wrote under ``output``."""
    (found,) = output.iterdir()
    return found


def checked(document: dict[str, Any]) -> tuple[int, int]:
    """(passes, fails) of the scenario's body checks over the repeats."""
    checks = [
        c
        for repeat in document["repeats"]
        for c in repeat["loadgen"]["checks"]
        if not c["name"].endswith("status is 200")
    ]
    return sum(c["passes"] for c in checks), sum(c["fails"] for c in checks)
