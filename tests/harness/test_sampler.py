"""CPU accounting of process groups and trees, on real processes that burn real CPU.

A master whose worker dies and is reaped now carries the worker's CPU in its own times
(cutime/cstime): the sampler must count that second once, not once for the dead worker's
last reading and again in the master.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial

import pytest

from stackbench.sampler import GroupCPU, group_usage, tree_usage

# A master that starts a worker burning CPU, waits until told (SIGUSR1) to kill it, reaps
# it, then idles. It prints the worker's pid, and at the end the CPU it reaped.
MASTER = r"""
import os, resource, signal, sys, time
worker = os.fork()
if worker == 0:
    while True:
        pass
print(worker, flush=True)
signal.sigwait([signal.SIGUSR1])
os.kill(worker, signal.SIGKILL)
os.waitpid(worker, 0)
reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
print(reaped.ru_utime + reaped.ru_stime, flush=True)
time.sleep(60)
"""


BURN_FOR_A_WHILE = "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass"


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_dead_worker_is_counted_once() -> None:
    master = subprocess.Popen(
        [sys.executable, "-c", MASTER],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Blocked before exec, so the master's sigwait cannot miss an early signal.
        preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]),
    )
    try:
        assert master.stdout is not None
        worker = int(master.stdout.readline())
        cpu = GroupCPU(partial(group_usage, master.pid))
        time.sleep(0.5)  # the worker burns CPU the window will not count
        start, members = cpu.read()
        assert worker in members
        worker_at_start = members[worker].cpu_s
        assert worker_at_start > 0
        time.sleep(0.7)  # ... and CPU it will
        cpu.read()  # the sampler's last look at the live worker
        time.sleep(0.3)
        master.send_signal(signal.SIGUSR1)  # kill and reap the worker
        worker_total = float(master.stdout.readline())
        end, members = cpu.read()
        assert worker not in members and cpu.exited == [worker]
        counted = end - start
        # Exactly what the worker spent inside the window (the idle master adds ~0):
        # a sum of last readings would count it twice (≈ 2 × total − start).
        assert counted == pytest.approx(worker_total - worker_at_start, abs=0.05)
    finally:
        os.killpg(master.pid, signal.SIGKILL)  # the worker too, if the test failed early
        master.wait(10)


def test_a_process_reaped_from_outside_keeps_its_last_reading() -> None:
    # A master that burns CPU itself and is reaped by us, not by a member: its last
    # reading is all there is, so it must stay in the total after it is gone.
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass",
        ],
        start_new_session=True,
    )
    cpu = GroupCPU(partial(group_usage, burner.pid))
    start, _ = cpu.read()
    time.sleep(0.4)
    middle, _ = cpu.read()
    burner.wait(10)
    end, members = cpu.read()
    assert members == {} and cpu.exited == [burner.pid]
    assert middle > start and end == middle


def test_a_tree_follows_children_in_sessions_of_their_own() -> None:
    # PostgreSQL's backends each call setsid(): a process group misses them, a tree does not.
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert child not in group_usage(parent.pid)
        assert set(tree_usage(parent.pid)) == {parent.pid, child}
    finally:
        for pid in (child, parent.pid):
            os.kill(pid, signal.SIGKILL)
        parent.wait(10)


def test_the_embedded_database_cpu_is_measured(db) -> None:
    if not db.embedded or db.process is None:
        pytest.skip("DATABASE_URL names an external database: its processes are not ours")
    cpu = GroupCPU(partial(tree_usage, db.process.pid))
    start, _ = cpu.read()
    with db.connect() as conn:  # a backend of its own, which exits when closed
        backend = conn.info.backend_pid
        conn.execute("SELECT count(*) FROM generate_series(1, 2000000)").fetchone()
        during, members = cpu.read()
        assert backend in members and during - start > 0.05
    _wait_for(lambda: backend in (cpu.read(), cpu.exited)[1])
    end, _ = cpu.read()
    # The backend's CPU moved into the postmaster's reaped-children time: still counted once.
    assert end >= during and end - start < 2 * (during - start)
