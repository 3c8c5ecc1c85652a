"""A lane of the suite (stackbench/suite_lanes.py): its commands, and its parallel part
run at idle priority with its serial tests beside it, each verdict planted."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stackbench import suite_lanes
from stackbench.suite_lanes import PytestRun, lane_runs, run, xdist_workers

ROOT = Path(__file__).resolve().parents[2]


def test_each_lane_runs_its_parallel_part_idle_beside_its_serial_tests() -> None:
    workers = str(xdist_workers())
    (parallel, serial) = lane_runs("tests", [])
    assert parallel.argv[:3] == ["pytest", "-m", "not slow and not serial"]
    assert parallel.argv[3:5] == ["-n", workers] and "loadfile" in parallel.argv
    assert parallel.idle and not serial.idle
    assert serial.argv[:3] == ["pytest", "-m", "not slow and serial"]
    assert "--durations=15" in serial.argv and 5 in serial.success_codes
    assert parallel.success_codes == [0]  # a parallel part that selects nothing fails
    (parallel, serial) = lane_runs("tests_slow", ["-k", "features"])
    assert parallel.argv[:3] == ["pytest", "-m", "slow and not serial"]
    assert parallel.argv[-2:] == serial.argv[-2:] == ["-k", "features"]
    (conformance,) = lane_runs("conformance", ["-x"])
    assert conformance.argv[:2] == ["pytest", suite_lanes.CONFORMANCE]
    assert conformance.argv[-1] == "-x" and "-n" in conformance.argv


def test_arguments_to_tests_run_exactly_what_they_name() -> None:
    """A developer's targeted run: slow and serial tests included, in one process."""
    (one,) = lane_runs("tests", ["tests/harness/test_bench.py", "-x"])
    assert one.argv == ["pytest", "tests/harness/test_bench.py", "-x"] and not one.idle


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 4), (3, 6), (64, 8)])
def test_two_workers_per_core_within_bounds(cpus: int, workers: int) -> None:
    assert xdist_workers(cpus) == workers


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


POLICY = (
    "import os, sys; print('policy', os.sched_getscheduler(0), 'group', os.getpgrp() == "
    "os.getpid(), 'bytecode', sys.flags.dont_write_bytecode, sys.pycache_prefix); "
    "print('owner', os.environ['STACKBENCH_OWNER'])"
)


# The lane, run from a process at normal priority (this test may itself run in an idle
# lane, whose policy every child inherits): its first run's output, then the rest.
LANE_AT_NORMAL_PRIORITY = """
import os, sys
from stackbench.suite_lanes import PytestRun, run
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
py, policy = sys.executable, sys.argv[1]
sys.exit(run([PytestRun([py, "-c", policy + "; print('first')"], [0], idle=True),
              PytestRun([py, "-c", policy + "; print('second')"], [0])]))
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_idle_run_yields_and_the_other_prints_after_it() -> None:
    """The parallel part at idle priority, the serial one at the lane's own; each in a
    process group of its own, with an owner tag of its own (not the one the lane got),
    writing its bytecode to the cache even where PYTHONDONTWRITEBYTECODE is set; the
    second's output after the first's."""
    cache = suite_lanes.BYTECODE["PYTHONPYCACHEPREFIX"]
    assert cache == str(ROOT / ".nox" / ".pycache")
    done = subprocess.run(
        [sys.executable, "-c", LANE_AT_NORMAL_PRIORITY, POLICY],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "STACKBENCH_OWNER": "planted"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, _, second = done.stdout.partition("(beside the run above)")
    assert f"policy {os.SCHED_IDLE} group True bytecode 0 {cache}\nowner " in first
    assert f"policy {os.SCHED_OTHER} group True bytecode 0 {cache}\nowner " in second
    assert "\nfirst\n" in first and second.endswith("\nsecond\n")
    # Each a leak check of its own: neither sees the other (nor the lane) as its leftover.
    owners = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("owner")}
    assert len(owners) == 2 and "planted" not in owners


def test_a_refused_sched_idle_falls_back_to_the_lowest_niceness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child is forked from here, so the refusal planted here is what it meets."""

    def refuse(*args: object) -> None:
        raise PermissionError("planted: sched_setscheduler refused")

    monkeypatch.setattr(os, "sched_setscheduler", refuse, raising=False)
    lowest = min(19, os.nice(0) + 19)
    # The run's exit code is its niceness, and its only success code the lowest one.
    niceness = [sys.executable, "-c", "import os; raise SystemExit(os.nice(0))"]
    assert run([PytestRun(niceness, [lowest], idle=True)], out=io.StringIO()) == 0


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((0, 0), 0),
        ((0, 5), 0),  # the serial part selected nothing: its success code
        ((1, 0), 1),  # planted: the parallel part failed
        ((0, 1), 1),  # planted: the serial part failed while the parallel one passed
        ((5, 0), 5),  # the parallel part selecting nothing is a failure
        ((0, 3), 3),
    ],
)
def test_the_lane_fails_when_either_run_fails(codes: tuple[int, int], expected: int) -> None:
    runs = [
        PytestRun(_python(f"raise SystemExit({codes[0]})"), [0], idle=True),
        PytestRun(_python(f"raise SystemExit({codes[1]})"), [0, 5]),
    ]
    assert run(runs, out=io.StringIO()) == expected


# Each run: a process group with a child of its own; each process notes the SIGINT it gets
# and exits, as pytest tears its fixtures down on one.
INTERRUPTIBLE = """
import signal, subprocess, sys, time
mark, role = sys.argv[1], sys.argv[2]
child = None
if role == "run":
    child = subprocess.Popen([sys.executable, __file__, mark + ".child", "child"])
def stop(*_):
    with open(mark, "a") as noted:
        noted.write("int\\n")
    if child is not None:
        child.wait()
    sys.exit(2)
signal.signal(signal.SIGINT, stop)
open(mark + ".ready", "w").close()
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_reaches_each_run_once_and_nothing_is_left(tmp_path: Path, sig: int) -> None:
    """SIGINT or SIGTERM to the lane (then the other, as nox sends them): each run's
    process group gets one SIGINT, the lane waits for them and says it was interrupted."""
    script = tmp_path / "interruptible.py"
    script.write_text(INTERRUPTIBLE)
    marks = [str(tmp_path / "parallel"), str(tmp_path / "serial")]
    runner = textwrap.dedent(f"""
        import sys
        from stackbench.suite_lanes import PytestRun, run
        py, script, marks = sys.executable, {str(script)!r}, {marks!r}
        sys.exit(run([PytestRun([py, script, marks[0], "run"], [0], idle=True),
                      PytestRun([py, script, marks[1], "run"], [0, 5])]))
    """)
    lane = subprocess.Popen([sys.executable, "-c", runner], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    ready = [Path(m + suffix + ".ready") for m in marks for suffix in ("", ".child")]
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in ready):
            assert time.monotonic() < deadline and lane.poll() is None, "not started"
            time.sleep(0.05)
        lane.send_signal(sig)
        lane.send_signal(signal.SIGTERM if sig == signal.SIGINT else signal.SIGINT)
        out, _ = lane.communicate(timeout=60)
    finally:
        lane.kill()
    assert lane.returncode == 130, out
    for mark in marks:  # once each, though the lane got two signals; the whole group
        assert Path(mark).read_text() == Path(mark + ".child").read_text() == "int\n"


@pytest.mark.parametrize(("argv", "given"), [(["test"], "'test'"), ([], "nothing")])
def test_an_unknown_lane_is_one_line(argv: list[str], given: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stackbench.suite_lanes", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and not done.stdout
    line = f"suite_lanes: {given} is not a lane: tests, tests_slow or conformance"
    assert done.stderr.splitlines() == [line] and len(line) <= 80
