"""``bench --profile``: where the server's CPU time goes, sampled by py-spy in the window.

py-spy attaches to the server's master and its workers (``--subprocesses``) for exactly
the measured window and keeps only samples of threads holding the GIL (``--gil``): the
on-CPU time of the Python code, without the threads waiting for a socket or a lock. It
writes collapsed stacks (``frame;frame;… count``), which speedscope, inferno and
flamegraph.pl read as they are. ``summarize`` turns them into the share of samples per
package (the app's own modules, Django, SQLAlchemy, asyncpg, the server, the standard
library…) and the functions with the most samples at the top of the stack.

Sampling pauses each process for a moment 100 times a second, so a profiled run's figures
are not for comparison: the run says it was profiled.
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.documents import ProfileDoc
from stackbench.sampler import Sampler, ServerFigures

RATE_HZ = 100
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")


def py_spy(bin_dir: Path) -> str | None:
    """py-spy beside the serving Python, or on PATH; None when neither has it."""
    beside = bin_dir / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    """py-spy attached to one server for one measured window."""

    raw: Path
    process: ManagedProcess | None
    error: str | None = None

    def finish(self, app_modules: set[str]) -> ProfileDoc:
        """Stop sampling (py-spy writes its file on SIGINT) and summarize what it wrote."""
        if self.process is not None:
            self.process.stop(timeout=30)
            if not self.raw.exists():
                tail = self.process.log_tail(2).replace("\n", " ")
                self.error = f"py-spy wrote no profile: {tail or 'no output'}"
        if self.error is not None:
            return ProfileDoc(raw=None, summary=None, samples=0, error=self.error)
        stacks = read_collapsed(self.raw.read_text())
        summary = self.raw.with_suffix(".summary.txt")
        summary.write_text(summarize(stacks, app_modules))
        return ProfileDoc(
            raw=self.raw.name, summary=summary.name, samples=sum(stacks.values()), error=None
        )


def record(pid: int, raw: Path, bin_dir: Path) -> Recording:
    """Start sampling ``pid`` and its children into ``raw`` (collapsed stacks)."""
    binary = py_spy(bin_dir)
    if binary is None:
        return Recording(raw, None, "py-spy is not installed: pip install py-spy")
    argv = [binary, "record", "--pid", str(pid), "--subprocesses", "--gil", "--function"]
    argv += ["--rate", str(RATE_HZ), "--format", "raw", "--output", str(raw)]
    try:
        process = ManagedProcess(
            argv, name="py-spy", log_path=raw.with_suffix(".log"), stop_signal=signal.SIGINT
        )
    except ProcessError as exc:
        return Recording(raw, None, str(exc))
    return Recording(raw, process)


def read_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """{stack of frames, outermost first: samples}; py-spy's process frames dropped."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        stack = tuple(f for f in frames.split(";") if not f.startswith("process "))
        if stack:
            stacks[stack] += int(count)
    return stacks


def package(frame: str, app_modules: set[str]) -> str:
    """Who a frame belongs to: 'app', a distribution's top package, or 'stdlib'."""
    match = _FRAME.match(frame)
    path = match.group("path") if match else frame
    top = path.split("/", 1)[0].removesuffix(".py")
    if top in app_modules or path.endswith(".html"):  # jinja2 runs templates as code
        return "app"
    if top in sys.stdlib_module_names or path.startswith("<"):
        return "stdlib"
    return top


def summarize(stacks: Counter[tuple[str, ...]], app_modules: set[str], top: int = 15) -> str:
    """The share of samples per package (of the frame on top of each stack, where the
    CPU was) and per function, as plain text."""
    total = sum(stacks.values())
    if not total:
        return "no on-CPU samples: the server did not run Python code in the window\n"
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive_app: Counter[str] = Counter()
    for stack, count in stacks.items():
        by_package[package(stack[-1], app_modules)] += count
        by_function[stack[-1]] += count
        for frame in set(stack):
            if package(frame, app_modules) == "app":
                inclusive_app[frame] += count
    lines = [f"{total} on-CPU samples at {RATE_HZ} Hz (py-spy --gil), server processes only", ""]
    lines += ["where the CPU was, by package (self):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in by_package.most_common()]
    lines += ["", f"top {top} functions (self):"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in by_function.most_common(top)]
    lines += ["", "the app's own functions, with what they call (inclusive):"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive_app.most_common(top)]
    return "\n".join(lines) + "\n"


@dataclass
class ProfiledSampler:
    """A Sampler that also runs py-spy on the server over the same measured window."""

    sampler: Sampler
    server_pid: int
    raw: Path
    app_modules: set[str]
    recording: Recording | None = None

    def start(self) -> ProfiledSampler:
        self.sampler.start()
        return self

    def mark(self) -> None:
        self.sampler.mark()
        self.raw.parent.mkdir(parents=True, exist_ok=True)
        self.recording = record(self.server_pid, self.raw, Path(sys.executable).parent)

    def stop(self) -> ServerFigures:
        figures = self.sampler.stop()
        if self.recording is None:
            return figures
        return replace(figures, profile=self.recording.finish(self.app_modules))
