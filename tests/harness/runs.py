"""Bench runs as a user starts them (``python -m stackbench bench`` in a subprocess, owner
tagged so leaks can be proven), and what they leave in their run directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from stackbench import results
from stackbench.documents import ResultDocument

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

SHORT = ["--duration", "2s", "--warmup", "1s", "--connections", "8", "--workers", "1"]


def bench_process(app: str, server: str, output: Path, *extra: str, owner: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackbench",
            "bench",
            "--app",
            app,
            "--server",
            server,
            "--output",
            str(output),
            *SHORT,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, OWNER_VAR: owner},
        preexec_fn=default_sigint,
    )


def default_sigint() -> None:
    """A child as a terminal starts it: Ctrl-C interrupts. A runner started as a background
    job has SIGINT ignored, which children inherit, and the SIGINT tests would hang."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def only_run_dir(output: Path) -> Path:
    (run_dir,) = output.iterdir()
    return run_dir


def result_documents(run_dir: Path) -> list[ResultDocument]:
    return [results.read_result(path) for path in sorted(run_dir.glob("*--*.json"))]


def wait_for(predicate: Callable[[], T], timeout: float = 90.0) -> T:
    """Poll until ``predicate`` gives something true, and return it."""
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def server_pids(owner: str, executable: str) -> list[int]:
    return [pid for pid, cmd in processes_owned_by(owner) if f"bin/{executable} " in cmd]
