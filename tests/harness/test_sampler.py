"""CPU accounting of process groups and trees, on real processes that burn real CPU.

A master whose worker dies and is reaped now carries the worker's CPU in its own times
(cutime/cstime): the sampler must count that second once, keeping the dead worker's last
reading and adding from the master's cutime only what exceeds it. Own times are read to
the nanosecond from each
process's CPU-time clock; /proc/PID/stat's clock ticks (10 ms) cannot resolve a short
window, and the figures say which they were read with.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from stackbench import sampler
from stackbench.sampler import (
    CPU_CLOCK,
    PROC_STAT,
    TICK_NS,
    GroupCPU,
    Sampler,
    ServerFigures,
    cpu_window,
    group_usage,
    host_cpu_source,
    tree_usage,
)

TICK_S = TICK_NS / 1e9
NS = 1e-9  # the CPU-time clock's resolution, as a figure records it
needs_clock = pytest.mark.skipif(
    host_cpu_source() != CPU_CLOCK,
    reason="this kernel does not let a process's CPU-time clock be read by its pid",
)

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


@needs_clock
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
        cpu = GroupCPU(partial(group_usage, master.pid), CPU_CLOCK)
        time.sleep(0.5)  # the worker burns CPU the window will not count
        start, members = cpu.read()
        assert worker in members and members[worker].source == CPU_CLOCK
        worker_at_start = members[worker].own_cpu_ns
        assert worker_at_start > 0
        time.sleep(0.7)  # ... and CPU it will
        cpu.read()  # the sampler's last look at the live worker
        time.sleep(0.3)
        master.send_signal(signal.SIGUSR1)  # kill and reap the worker
        worker_total = float(master.stdout.readline())
        end, members = cpu.read()
        assert worker not in members and cpu.exited == [worker]
        counted, read = cpu_window(start, end, CPU_CLOCK)
        # Exactly what the worker spent inside the window (the idle master adds ~0): a sum
        # of last readings would count it twice (≈ 2 × total − start). What it spent after
        # the last reading comes from the master's cutime + cstime, each whole ticks: the
        # window says it is no finer than that.
        assert counted == pytest.approx(worker_total - worker_at_start / 1e9, abs=2 * TICK_S)
        assert read == {"source": CPU_CLOCK, "resolution_s": TICK_S}
    finally:
        os.killpg(master.pid, signal.SIGKILL)  # the worker too, if the test failed early
        master.wait(10)


@needs_clock
def test_a_process_reaped_from_outside_keeps_its_last_reading() -> None:
    # A master that burns CPU itself and is reaped by us, not by a member: its last
    # reading is all there is, so it must stay in the total after it is gone.
    burner = subprocess.Popen([sys.executable, "-c", BURN_FOR_A_WHILE], start_new_session=True)
    cpu = GroupCPU(partial(group_usage, burner.pid), CPU_CLOCK)
    start, _ = cpu.read()
    time.sleep(0.4)
    middle, _ = cpu.read()
    burner.wait(10)
    end, members = cpu.read()
    assert members == {} and cpu.exited == [burner.pid]
    assert middle.ns > start.ns and end.ns == middle.ns
    # Nothing was reaped inside the group: the figure is the clock's, to the nanosecond.
    assert cpu_window(start, end, CPU_CLOCK)[1] == {"source": CPU_CLOCK, "resolution_s": NS}


# A master that forks children one after another: each burns 4 ms, prints its pid, waits
# for a line on stdin, exits, and is reaped; the master then prints what its children cost.
SHORT_LIVED_CHILDREN = r"""
import os, resource, sys, time
for _ in range(int(sys.argv[1])):
    child = os.fork()
    if child == 0:
        end = time.thread_time() + 0.004
        while time.thread_time() < end:
            pass
        print(os.getpid(), flush=True)
        sys.stdin.readline()
        os._exit(0)
    os.waitpid(child, 0)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(round((reaped.ru_utime + reaped.ru_stime) * 1e9), flush=True)
time.sleep(60)
"""


@needs_clock
def test_a_child_reaped_by_a_member_never_lowers_the_total() -> None:
    # Its last reading (ns) stays; the master's cutime, whole ticks, adds only what exceeds
    # it. Dropping the reading for the cutime instead lowers the total by up to two ticks
    # whenever the ticks fall short: with 24 children, almost surely once.
    children = 24
    master = subprocess.Popen(
        [sys.executable, "-c", SHORT_LIVED_CHILDREN, str(children)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert master.stdin is not None and master.stdout is not None
    try:
        cpu = GroupCPU(partial(group_usage, master.pid), CPU_CLOCK)
        start, members = cpu.read()
        master_at_start = members[master.pid].own_cpu_ns
        totals, reaped_ns = [start.ns], 0
        for _ in range(children):
            child = int(master.stdout.readline())
            alive, members = cpu.read()
            assert child in members  # read while alive, after its burn
            master.stdin.write("exit\n")
            master.stdin.flush()
            reaped_ns = int(master.stdout.readline())
            after, members = cpu.read()
            assert child not in members and child in cpu.exited
            totals += [alive.ns, after.ns]
        assert totals == sorted(totals)  # never down
        counted, read = cpu_window(start, after, CPU_CLOCK)
        # Counted once: what the children cost (the master's getrusage, to the µs) and the
        # master's own forking and waiting, give or take its cutime's ticks.
        master_own = members[master.pid].own_cpu_ns - master_at_start
        assert counted == pytest.approx((reaped_ns + master_own) / 1e9, abs=2 * TICK_S)
        assert read["resolution_s"] == TICK_S
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait(10)


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
        assert backend in members and during.ns - start.ns > 50_000_000
    _wait_for(lambda: backend in (cpu.read(), cpu.exited)[1])
    end, _ = cpu.read()
    # The backend was reaped by the postmaster: its last reading stays, the postmaster's
    # reaped-children time adds only what it spent after it. Counted once, never less.
    assert during.ns <= end.ns and end.ns - start.ns < 2 * (during.ns - start.ns)
    assert end.tick_moves > during.tick_moves  # ... and that part in whole ticks


# Burns what it is told on stdin ("SECONDS THREADS": the main thread and THREADS threads
# each burn SECONDS of their own CPU time; the threads then exit), prints the process's
# CPU time (ns) before and after, and waits for the next line; at "exit", prints its CPU
# time and exits on the spot.
BUSY = r"""
import os, sys, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
for line in sys.stdin:
    if line == "exit\n":
        print(time.process_time_ns(), flush=True)
        os._exit(0)
    seconds, threads = float(line.split()[0]), int(line.split()[1])
    before = time.process_time_ns()
    workers = [threading.Thread(target=burn, args=(seconds,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    burn(seconds)
    for worker in workers:
        worker.join()
    print(before, time.process_time_ns(), flush=True)
"""


class Busy:
    """A process that burns CPU on request and says exactly how much it burned."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", BUSY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.burn(0)  # started: blocked on its input from now on

    def burn(self, seconds: float, threads: int = 0) -> int:
        """CPU ns the process spent, by its own clock, from reading the request to replying."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{seconds} {threads}\n")
        self.process.stdin.flush()
        before, after = map(int, self.process.stdout.readline().split())
        return after - before

    def exit(self) -> int:
        """Its CPU ns as it exits (it is left unreaped: a zombie)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def busy() -> Iterator[Busy]:
    burner = Busy()
    yield burner
    burner.close()


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


@needs_clock
def test_the_sum_matches_a_busy_loop_to_a_millisecond_threads_and_all(busy: Busy) -> None:
    cpu = GroupCPU(partial(group_usage, busy.process.pid), CPU_CLOCK)
    start, _ = cpu.read()
    # The main thread and three threads burn 60 ms each; the threads have exited by the
    # time the window closes, and only the kernel's sum over every thread still has them.
    burned = busy.burn(0.06, threads=3)
    end, _ = cpu.read()
    counted, read = cpu_window(start, end, CPU_CLOCK)
    assert burned >= 240_000_000
    assert counted == pytest.approx(burned / 1e9, abs=0.001)
    assert read == {"source": CPU_CLOCK, "resolution_s": NS}
    # It exits, unreaped: a zombie's clock still holds every thread, so its last reading
    # (the one kept once we reap it from outside the group) misses nothing.
    last_words = busy.exit()
    _wait_for(lambda: _zombie(busy.process.pid))
    as_zombie, members = cpu.read()
    # Exiting itself costs about a millisecond here (the kernel unmaps the process).
    assert 0 <= members[busy.process.pid].own_cpu_ns - last_words < 5_000_000
    busy.process.wait(10)
    reaped, members = cpu.read()
    assert members == {} and reaped.ns == as_zombie.ns


def _live_threads_schedstat_ns(pid: int) -> int:
    """The sum of the first field of /proc/PID/task/TID/schedstat over the live threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


@needs_clock
def test_a_sum_of_the_live_threads_schedstat_loses_threads_that_exited(busy: Busy) -> None:
    # Why the CPU-time clock and not a sum of /proc/PID/task/*/schedstat: the kernel folds
    # an exited thread's runtime into its process, where only the clock (and ticks) see it.
    if not Path(f"/proc/{busy.process.pid}/task/{busy.process.pid}/schedstat").exists():
        pytest.skip("this kernel has no schedstat files (CONFIG_SCHED_INFO off)")
    busy.burn(0.05, threads=3)
    _wait_for(lambda: len(list(Path(f"/proc/{busy.process.pid}/task").iterdir())) == 1)
    clock_ns = sampler.process_cpu_ns(busy.process.pid)
    schedstat_ns = _live_threads_schedstat_ns(busy.process.pid)
    assert clock_ns >= 200_000_000 and clock_ns - schedstat_ns >= 140_000_000


def _sampled_window(busy: Busy, db, seconds: float) -> tuple[int, dict[str, ServerFigures]]:
    """One window of ``busy`` burning ``seconds``, read both ways by two real samplers."""
    samplers = {
        source: Sampler(busy.process.pid, db.url, cpu_source=source).start()
        for source in (CPU_CLOCK, PROC_STAT)
    }
    for each in samplers.values():
        each.mark()
    burned = busy.burn(seconds)
    return burned, {source: each.stop() for source, each in samplers.items()}


@needs_clock
def test_ticks_cannot_resolve_a_short_window_so_they_are_not_the_source(busy: Busy, db) -> None:
    # The tick source planted beside the clock on the same 5 ms window: whole ticks can only
    # say 0, 10 or 20 ms, at least 4.9 ms off; the clock is within a millisecond.
    burned, figures = _sampled_window(busy, db, 0.005)
    clock, ticks = figures[CPU_CLOCK], figures[PROC_STAT]
    assert 5_000_000 <= burned < 5_100_000
    assert clock.cpu_s == pytest.approx(burned / 1e9, abs=0.001)
    assert clock.cpu_read == {"source": CPU_CLOCK, "resolution_s": NS}
    assert ticks.cpu_s is not None and round(ticks.cpu_s / TICK_S, 6) % 1 == 0
    assert abs(ticks.cpu_s - burned / 1e9) >= 0.0049
    assert ticks.cpu_read == {"source": PROC_STAT, "resolution_s": TICK_S}
    assert Sampler(busy.process.pid, db.url).cpu_source == CPU_CLOCK  # what bench uses


@needs_clock
def test_a_process_whose_clock_cannot_be_read_falls_back_to_ticks_and_says_so(
    busy: Busy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kernel that refuses this process's clock (planted): its ticks are read instead, and
    # a window over it is no finer than a tick, whatever the other processes were read with.
    def refused(pid: int) -> int:
        raise PermissionError(1, "planted: the clock of this process cannot be read")

    cpu = GroupCPU(partial(group_usage, busy.process.pid), CPU_CLOCK)
    start, _ = cpu.read()
    monkeypatch.setattr(sampler, "process_cpu_ns", refused)
    busy.burn(0.03)
    end, members = cpu.read()
    assert members[busy.process.pid].source == PROC_STAT
    assert cpu_window(start, end, CPU_CLOCK)[1] == {"source": CPU_CLOCK, "resolution_s": TICK_S}


@needs_clock
@pytest.mark.serial  # its verdict counts readings 50 ms apart: tests beside it delay them
def test_the_readings_over_the_window_are_kept_for_the_report(busy: Busy, db) -> None:
    """Each reading after the mark is a sample: seconds since the mark, CPU since the mark
    (it rises while the process burns, and never goes down), RSS and connections."""
    sampling = Sampler(busy.process.pid, db.url, interval=0.05).start()
    time.sleep(0.2)  # readings before the mark are not the window's
    sampling.mark()
    time.sleep(0.2)
    burned = busy.burn(0.4)
    time.sleep(0.2)
    figures = sampling.stop()
    samples = figures.samples
    assert len(samples) >= 10, samples
    times = [s["t_s"] for s in samples]
    cpu = [s["cpu_s"] for s in samples]
    assert times == sorted(times) and 0 <= times[0] < 0.2 and times[-1] <= figures.window_s
    assert cpu == sorted(cpu) and cpu[0] is not None and cpu[0] < 0.05  # idle at first
    assert cpu[-1] == pytest.approx(burned / 1e9, abs=0.06)
    assert cpu[-1] <= figures.cpu_s + 1e-6  # samples are to the µs
    # The burn rises over several readings (a curve over time, not one step at the end),
    # and the readings after it stay flat: idle again.
    steps = [b["cpu_s"] - a["cpu_s"] for a, b in itertools.pairwise(samples)]
    assert sum(step > 0.01 for step in steps) >= 3, steps
    assert steps[-1] < 0.01, steps
    assert all(s["rss_mb"] and s["rss_mb"] > 1 for s in samples)
    assert all(s["db_connections"] is not None for s in samples)
