"""Interrupting nox mid-run leaves nothing behind (issue 25): no process, no
``stackbench-pg-*`` directory, and a manifest that says ``interrupted``.

Three ways a bench session is interrupted, each on a real run (nox, the harness, the
embedded PostgreSQL, uvicorn and loadgen under load):

* Ctrl-C in a terminal: ^C typed into a pseudo-terminal, so that the terminal sends SIGINT
  to its whole foreground process group (nox and the harness);
* SIGINT to the nox process alone (a CI runner, ``timeout --signal=INT``);
* SIGTERM to the nox process alone (a supervisor).

nox runs with ``--no-venv --no-install`` on this test environment's Python (it holds the
harness, the app and the server). A background job of a non-interactive shell starts with
SIGINT ignored, and nox would keep that: nox is started through a launcher that sets
SIGINT back to its default first, or the test would prove nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared_fixtures.processes import processes_owned_by
from stackbench import results

ROOT = Path(__file__).resolve().parents[2]
SESSION = "bench(app='gino_style', server='uvicorn')"
# SIGINT at its default (the process may have inherited it ignored), then, for a terminal,
# a session of its own whose controlling terminal is stdin; then nox.
LAUNCH = """\
import fcntl, os, signal, sys, termios
signal.signal(signal.SIGINT, signal.SIG_DFL)
if sys.argv[1] == "terminal":
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
os.execvp(sys.argv[2], sys.argv[2:])
"""
STARTUP_TIMEOUT = 240.0  # a shared 2-core machine: venv imports, database, seed, server
STOP_TIMEOUT = 120.0  # nox gives the harness 90 s (HARNESS_STOP) after its own wait


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    owner: str
    output: Path
    terminal: int | None  # the pseudo-terminal's master side
    transcript: bytearray  # what the terminal showed; without one, nox's log file's
    log: Path | None = None

    def text(self) -> str:
        """What nox and the harness printed so far, and each result's status and reason."""
        printed = self.log.read_bytes() if self.log is not None else self.transcript
        statuses = [
            f"{path.parent.name}: {doc.get('status')}: {doc.get('reason')}"
            for path in sorted(self.output.glob("*/manifest.json"))
            for doc in [json.loads(path.read_text())]
        ]
        return "\n".join([printed.decode(errors="replace"), *statuses])


def _drain(fd: int, into: bytearray) -> None:
    """Read the terminal until it closes: a full pty buffer would block the run."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every process holding the terminal is gone
            return
        if not chunk:
            return
        into.extend(chunk)


@contextlib.contextmanager
def bench_under_nox(tmp_path: Path, *, terminal: bool) -> Iterator[Run]:
    owner = f"interrupt-{uuid.uuid4().hex}"
    output = tmp_path / "results"
    env = dict(os.environ)
    env.update(
        STACKBENCH_OWNER=owner,  # tags nox, the harness and everything it starts
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        TERM="xterm",
        COLUMNS="120",
    )
    env.pop("NOXSESSION", None)
    nox = [sys.executable, "-m", "nox", "--no-venv", "--no-install", "-s", SESSION, "--"]
    options = ["--scenarios", "db", "--duration", "120s", "--warmup", "1s", "--output", str(output)]
    argv = [sys.executable, "-c", LAUNCH, "terminal" if terminal else "alone", *nox, *options]
    transcript = bytearray()
    master = log = None
    if terminal:
        master, slave = pty.openpty()
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        threading.Thread(target=_drain, args=(master, transcript), daemon=True).start()
    else:
        log = tmp_path / "nox.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # only the signals the test sends
            )
    run = Run(process, owner, output, master, transcript, log)
    try:
        yield run
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pid, _ in processes_owned_by(owner):  # a failed test leaves nothing either
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if master is not None:
            time.sleep(0.2)  # the reader takes the last output
            os.close(master)


def _under_load(run: Run) -> Path:
    """Wait until loadgen loads the server; the embedded PostgreSQL's directory."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"nox ended before the load started:\n{run.text()[-3000:]}")
        commands = [command for _, command in processes_owned_by(run.owner)]
        loading = any(" -m loadgen " in command for command in commands)
        data = [c.split(" -D ", 1)[1].split()[0] for c in commands if "postgres -D " in c]
        if loading and data:
            return Path(data[0]).parent
        time.sleep(0.2)
    pytest.fail(f"no load after {STARTUP_TIMEOUT:g} s:\n{run.text()[-3000:]}")


def _left_nothing(run: Run, database_dir: Path) -> None:
    try:
        code = run.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nox did not exit {STOP_TIMEOUT:g} s after the interrupt")
    assert code != 0, run.text()[-3000:]
    assert processes_owned_by(run.owner) == [], run.text()[-3000:]
    assert not database_dir.exists(), f"{database_dir} was left behind"
    manifests = list(run.output.glob("*/manifest.json"))
    assert len(manifests) == 1, (manifests, run.text()[-3000:])
    manifest = results.read_json(manifests[0], "manifest")
    assert manifest["status"] == "interrupted", manifest["reason"]


def test_ctrl_c_in_a_terminal_leaves_nothing(tmp_path: Path) -> None:
    with bench_under_nox(tmp_path, terminal=True) as run:
        database_dir = _under_load(run)
        assert run.terminal is not None
        attributes = termios.tcgetattr(run.terminal)
        assert attributes[3] & termios.ISIG  # ^C is a signal to the foreground group
        os.write(run.terminal, b"\x03")
        _left_nothing(run, database_dir)
        assert "interrupted: everything started was stopped" in run.text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_nox_alone_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    with bench_under_nox(tmp_path, terminal=False) as run:
        database_dir = _under_load(run)
        os.kill(run.process.pid, sig)  # nox only: the harness hears of it from nox
        _left_nothing(run, database_dir)


def test_the_launcher_gives_nox_sigint_even_when_started_ignoring_it(tmp_path: Path) -> None:
    """The premise: a child started with SIGINT ignored keeps it ignored through exec
    unless the launcher restores it."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    shown = subprocess.run(
        [sys.executable, "-c", LAUNCH, "alone", sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert shown.stdout.strip() == "False", shown
    ignored = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert ignored.stdout.strip() == "True", ignored
