"""``python -m stackbench.cpu_sources``: one pair's CPU per request read both ways, the
measurement docs/bench.md quotes; bad input refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from tests.harness.runs import ROOT


def _run(*args: str, owner: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench.cpu_sources", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, OWNER_VAR: owner},
    )


@pytest.mark.parametrize(
    "args",
    [("--requests", "0"), ("--requests", "10,x"), ("--app", "nope"), ("--rounds", "-1")],
)
def test_bad_input_is_one_line_and_starts_nothing(args: tuple[str, ...]) -> None:
    owner = uuid.uuid4().hex
    done = _run(*args, owner=owner, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert processes_owned_by(owner) == []


@pytest.mark.slow
def test_one_window_read_both_ways_and_everything_stopped() -> None:
    owner = uuid.uuid4().hex
    done = _run("--requests", "300", "--rounds", "1", owner=owner)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (row,) = [line for line in lines if line.startswith("| 300 |")]
    cells = [cell.strip().rstrip("*") for cell in row.strip("|").split("|")]
    server_clock, server_ticks, database_clock, database_ticks = (
        float(cells[i]) for i in (2, 4, 6, 8)
    )
    # 300 /db requests: tens of ms of server CPU. The clock reads fractions of a ms; the
    # ticks, summed over the processes, read whole 10 ms.
    assert server_clock > 20 and database_clock > 1
    assert server_ticks % 10 == 0 and database_ticks % 10 == 0
    assert server_clock != server_ticks
    assert any(line.startswith("  300 requests: off by up to server") for line in lines)
    assert processes_owned_by(owner) == []
