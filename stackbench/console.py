"""What the harness shows a person as a run goes: each setup step as it begins, the load's
progress (a bar in a terminal, plain lines in a log or a file), the summary table, where
the results are and the command to type next (rich, in a terminal or a CI log)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from stackbench import matrix, results
from stackbench.documents import Manifest, ResultRow
from stackbench.progress import Progress
from stackbench.terminal_tables import changes_table, matrix_grid, summary_table

# A terminal's own width (or COLUMNS); a log or a file without COLUMNS: 150 columns.
_SIZED = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
console = Console(highlight=False, width=None if _SIZED else 150)

PLAIN_EVERY_S = 5.0  # a plain progress line at most this often while a load runs


class _Steps(Progress):
    """Setup steps as lines, each with the seconds since the run's first one."""

    def __init__(self) -> None:
        super().__init__()
        self._began: float | None = None

    def _elapsed(self) -> str:
        if self._began is None:
            self._began = time.monotonic()
        return f"{time.monotonic() - self._began:5.1f}s"

    def step(self, text: str) -> None:
        console.print(Text.assemble((self._elapsed(), "dim"), " ", text, overflow="fold"))


class LiveProgress(_Steps):
    """A terminal: a bar per measured repeat, moving with time (runs are bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def start(self, label: str, seconds: float) -> Callable[[float], None]:
        self.step(label)
        self._progress.start()
        self._task = self._progress.add_task(label.split(": ", 1)[-1], total=seconds)
        return lambda elapsed: self._progress.update(self._task, completed=min(elapsed, seconds))

    def done(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()


class PlainProgress(_Steps):
    """A log, CI or a file: a line as each repeat starts, then one every few seconds."""

    def __init__(self, every: float = PLAIN_EVERY_S) -> None:
        super().__init__()
        self.every = every

    def start(self, label: str, seconds: float) -> Callable[[float], None]:
        self.step(f"{label} ({seconds:g} s)")
        said = [0.0]

        def tick(elapsed: float) -> None:
            if elapsed - said[0] >= self.every and elapsed < seconds:
                said[0] = elapsed
                console.print(f"{'':6} … {elapsed:.0f} of {seconds:g} s")

        return tick


def progress_display() -> Progress:
    """A bar where a person watches a terminal; plain lines where output is kept."""
    return LiveProgress() if console.is_terminal else PlainProgress()


def shown(path: Path) -> str:
    """``path`` as a person types it: relative to the working directory when under it."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_whole(text: str) -> None:
    """A line that must copy and paste whole (a path, a command): never wrapped by rich."""
    console.print(Text(text), soft_wrap=True)


def print_results(run_dir: Path) -> None:
    """Where a run's files are and, when it wrote result documents, what to type next."""
    console.print("results:")
    print_whole(shown(run_dir))
    if any(run_dir.glob("*--*.json")):
        console.print("next, its report (Markdown, charts, one HTML page):")
        print_whole(f"nox -s report -- {shown(run_dir)}")


def print_run_end(run_dir: Path, rows: list[ResultRow], status: str) -> None:
    """The run's table, where its files are, and what to type next."""
    console.print(summary_table(rows, f"run {run_dir.name}: {status}", console.width))
    print_results(run_dir)


def print_report(outcome: Any) -> None:
    """A report's changes against its baseline, if any, and where its files are."""
    if outcome.changes:
        console.print(changes_table(outcome.changes, console.width))
    console.print("report (Markdown), then the same as one HTML page to open in a browser:")
    print_whole(shown(outcome.markdown))
    print_whole(shown(outcome.html))
    console.print(f"charts: {len(outcome.images)} PNGs beside them")


def print_matrix(as_json: bool) -> None:
    if as_json:
        print(matrix.as_json())
        return
    console.print(matrix_grid(console.width))


def show_run(run_dir: Path) -> int:
    """``python -m stackbench show RUN_DIR``: a run's table again, from its files. A file
    that cannot be read is a warning naming it; no run at all is one line and exit 2."""
    manifest: Manifest | None = None
    try:
        manifest = results.read_manifest(run_dir / "manifest.json")
    except results.ResultsError as exc:
        if run_dir.is_dir():
            print(f"warning: {exc}", file=sys.stderr)
    names = list(manifest["results"]) if manifest else []
    names = list(dict.fromkeys([*names, *sorted(p.name for p in run_dir.glob("*--*.json"))]))
    rows = []
    for name in names:
        try:
            rows.append(results.row_of(results.read_result(run_dir / name), name))
        except results.ResultsError as exc:
            print(f"warning: {exc}", file=sys.stderr)
    if not run_dir.is_dir() or (not rows and manifest is None):
        why = "no such directory" if not run_dir.is_dir() else "no readable manifest or result"
        print(f"error: {run_dir}: not a run directory ({why})", file=sys.stderr)
        return 2
    status: str = manifest["status"] if manifest else "status unknown (no manifest)"
    if manifest and manifest.get("reason"):
        status += f" ({manifest['reason']})"
    print_run_end(run_dir, rows, status)
    return 0
