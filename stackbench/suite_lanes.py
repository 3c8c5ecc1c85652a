"""The test suite's lanes (docs/testing.md): what each runs, and running a lane.

A lane spreads its tests over pytest-xdist workers, each a test session of its own (its
own database, upstream and app servers), a test file (a conformance target) on one
worker. Its tests marked serial, whose verdict is a time or a count that tests beside
them would disturb, run one at a time in a pytest of their own, beside the parallel part
rather than after it: the parallel part runs at idle priority (SCHED_IDLE), so it takes
only the CPU the serial test leaves, and the serial part's minutes of waiting on one core
no longer add to the lane's time.

    python -m stackbench.suite_lanes tests [PYTEST_ARGS]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from shared_fixtures.processes import OWNER_VAR, stopped_by_signals

# `tests` runs every test not marked slow, `tests_slow` the slow ones (whole experiment
# runs, end-to-end runs of the CLI); .ci/run runs both, then the conformance suite.
LANES = {"tests": "not slow", "tests_slow": "slow"}
# The conformance suite alone, as the conformance session runs it on Python 3.13.
CONFORMANCE = "tests/test_conformance.py"
LANE_NAMES = (*LANES, "conformance")
# Units of work in test-file order: test_conformance.py, split by target, comes last and
# fills the workers' tails (tests/conftest.py, work_unit). --durations names the slowest
# tests in CI's log, where the 15-minute budget is kept, for the serial part too.
DURATIONS = "--durations=15"
PARALLEL = ("--dist", "loadfile", "--no-loadscope-reorder", DURATIONS)
# Bytecode compiled once and kept here for every process a lane starts (pytest's workers,
# servers, the harness, loadgen), out of the source tree. With PYTHONDONTWRITEBYTECODE set,
# as it is on the machines this is developed on, each of them compiled every module it
# imported from source, the venvs' packages included: 12 CPU-s of each pytest's collection
# became 5, 4 of a 3.13 server's imports 1.4 (docs/testing.md).
BYTECODE = {
    "PYTHONDONTWRITEBYTECODE": "",
    "PYTHONPYCACHEPREFIX": str(Path(__file__).resolve().parents[1] / ".nox" / ".pycache"),
}
# Once interrupted, how long the runs get to tear their fixtures down before SIGKILL
# (within the terminate_timeout nox gives the lane: HARNESS_STOP in nox_sessions).
STOP_TIMEOUT = 60.0


class PytestRun(NamedTuple):
    argv: list[str]
    success_codes: list[int]
    # Runs at idle priority, yielding the CPU to the run beside it.
    idle: bool = False


def xdist_workers(cpus: int | None = None) -> int:
    """pytest-xdist workers: two per core, at least 2, at most 8 (each runs a database).
    The tests wait (for servers to start, loads to end, statements to settle) as much as
    they compute."""
    return max(2, min(8, 2 * (cpus if cpus is not None else os.cpu_count() or 1)))


def lane_runs(lane: str, args: Iterable[str]) -> list[PytestRun]:
    """The lane's pytest commands: its parallel part (idle priority) and its serial tests,
    run side by side. Arguments to `tests` run exactly what they name in one process,
    slow and serial tests included (`nox -s tests -- tests/harness/test_bench.py -x`); to
    `tests_slow` (or `conformance`) they are added to each command."""
    args = list(args)
    if lane == "tests" and args:
        return [PytestRun(["pytest", *args], [0])]
    workers = ["-n", str(xdist_workers()), *PARALLEL]
    if lane == "conformance":
        return [PytestRun(["pytest", CONFORMANCE, *workers, *args], [0])]
    marker = LANES[lane]
    return [
        PytestRun(["pytest", "-m", f"{marker} and not serial", *workers, *args], [0], idle=True),
        # 5: nothing selected (arguments after -- may select no serial test)
        PytestRun(["pytest", "-m", f"{marker} and serial", DURATIONS, *args], [0, 5]),
    ]


def _idle() -> None:
    """In the child, before pytest starts: idle priority for it and all it starts; the
    lowest niceness where there is no SCHED_IDLE (not Linux) or it is refused (a seccomp
    profile may refuse sched_setscheduler: the lane still runs)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def run(runs: Sequence[PytestRun], out: IO[str] = sys.stdout) -> int:
    """Every run at once, each in a process group of its own; the first prints as it goes,
    the others' output follows when they end. The exit code: 0 when each ended with one of
    its success codes, else the first that did not (130 once interrupted).

    Each run is a test session with a leak check of its own (tests/conftest.py), so each
    gets an owner tag of its own: with the tag they inherit (this process sets one when
    it imports shared_fixtures.processes), the serial run's check, at its end, killed the
    parallel run as its leftover.

    SIGINT or SIGTERM (the first of them; later ones are only noted) reaches each run's
    whole group as one SIGINT: pytest tears its fixtures down (servers, databases,
    temporary directories), and a run still up STOP_TIMEOUT later is killed."""
    children: list[subprocess.Popen[bytes]] = []
    codes: list[int] | None = None
    with contextlib.ExitStack() as stack:
        # The first run's output as it goes; each other's kept until the end.
        logs = [None, *(stack.enter_context(tempfile.TemporaryFile()) for _ in runs[1:])]
        with stopped_by_signals():
            try:
                for pytest_run, log in zip(runs, logs, strict=True):
                    children.append(
                        subprocess.Popen(
                            pytest_run.argv,
                            stdout=log,
                            stderr=subprocess.STDOUT if log else None,
                            env={**os.environ, **BYTECODE, OWNER_VAR: uuid.uuid4().hex},
                            process_group=0,
                            preexec_fn=_idle if pytest_run.idle else None,
                        )
                    )
                codes = [child.wait() for child in children]
            except KeyboardInterrupt:
                _stop(children, signal.SIGINT, STOP_TIMEOUT)
            finally:  # whatever else went wrong: nothing left up
                _stop(children, signal.SIGKILL, 5.0)
        for pytest_run, log in zip(runs, logs, strict=True):
            if log is not None:
                out.write(f"\n{' '.join(pytest_run.argv)} (beside the run above):\n")
                log.seek(0)
                out.write(log.read().decode(errors="replace"))
    out.flush()
    if codes is None:
        return 130
    failed = [code for code, r in zip(codes, runs, strict=True) if code not in r.success_codes]
    return failed[0] if failed else 0


def _stop(children: Sequence[subprocess.Popen[bytes]], sig: int, timeout: float) -> None:
    """``sig`` to the group of each child still up; SIGKILL to what is up ``timeout`` later."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in LANE_NAMES:
        given = repr(args[0]) if args else "nothing"
        lanes = f"{', '.join(LANE_NAMES[:-1])} or {LANE_NAMES[-1]}"
        print(f"suite_lanes: {given} is not a lane: {lanes}", file=sys.stderr)
        return 2
    return run(lane_runs(args[0], args[1:]))


if __name__ == "__main__":
    sys.exit(main())
