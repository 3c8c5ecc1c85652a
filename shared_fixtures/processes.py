"""Child processes that are always stopped: own process group, escalating stop, log tail.

Every process started here carries ``STACKBENCH_OWNER`` in its environment (inherited by
its own children, PostgreSQL backends and server workers included), so a test can prove
that nothing an owner started is still running afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

OWNER_VAR = "STACKBENCH_OWNER"
# One tag per Python process unless the parent already set one (a test run, a bench run).
OWNER = os.environ.setdefault(OWNER_VAR, uuid.uuid4().hex)


class ProcessError(RuntimeError):
    """A child failed to start or to become ready; the message is one line for the user."""


class ManagedProcess:
    """A subprocess in its own process group, its output in a log file (its stdout in
    ``stdout_path`` instead, when given: what it answers, apart from what it says)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        stdout_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        full_env = dict(os.environ if env is None else env)
        full_env[OWNER_VAR] = OWNER
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Kept open only for the child's lifetime; the child owns a dup of it.
        with (
            open(log_path, "ab") as log,
            open(stdout_path, "wb") if stdout_path else contextlib.nullcontext() as out,
        ):
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out if out is not None else log,
                    stderr=log if out is not None else subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    user=user,
                    # Own session: a terminal's Ctrl-C reaches us, and we stop it in order.
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessError(f"cannot start {name}: {exc.strerror or exc}") from None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; raise with the log tail if the child dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited with code {self.popen.returncode} before {what}; "
                    f"last log lines:\n{self.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} not {what} after {timeout:g} s; last log lines:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Signal the whole group, wait, then SIGKILL what is left. Safe to call twice."""
        self._signal_group(self.stop_signal)
        self._signal_group(signal.SIGCONT)  # a stopped (hung) group must run to exit
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(5)
        # Workers that outlived their master (a crashed arbiter) still share the group.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def owner_tag(owner: str = OWNER) -> str:
    """``STACKBENCH_OWNER=<owner>``: what marks a process as started by ``owner``."""
    return f"{OWNER_VAR}={owner}"


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM stop the block: the first raises KeyboardInterrupt, later ones are
    only noted, so that stopping what was started is never itself cut short. (In a
    terminal, Ctrl-C reaches nox and the harness, and nox follows it with a SIGTERM of its
    own; an impatient user presses Ctrl-C twice.) Yields the signals received, in order.
    SIGINT is taken over also when the process started with it ignored (a background job).
    Main thread only."""
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def processes_owned_by(owner: str = OWNER) -> list[tuple[int, str]]:
    """(pid, command line) of every live process tagged with ``owner`` (Linux /proc): in
    its environment, or in its command line (a process that overwrites its environment
    with its title, as nginx does, carries the tag in its arguments), and every process in
    the process group such a process leads (nginx's workers: no tag left anywhere)."""
    marker = owner_tag(owner).encode()
    skip = _self_and_ancestors()
    tagged: list[tuple[int, str]] = []
    groups: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":  # a zombie holds no resources; its parent reaps it
                continue
            environ = (entry / "environ").read_bytes()
            raw = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        process = (int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace").strip())
        if marker in environ.split(b"\0") or marker in raw:
            tagged.append(process)
        else:
            groups.setdefault(int(fields[2]), []).append(process)
    led = [member for pid, _ in tagged for member in groups.get(pid, [])]
    return sorted(tagged + led)


def _self_and_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids
