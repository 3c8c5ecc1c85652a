"""What a run shows a person while it measures: the interface a display implements (the
command line's: stackbench/console.py). The run and the measurement call it; by default
it shows nothing."""

from __future__ import annotations

from collections.abc import Callable


class Progress:
    """``jobs``: how many jobs (a pair served with one set of options) the run measures,
    when known beforehand; ``job``: the one being measured, from 1."""

    def __init__(self) -> None:
        self.jobs: int | None = None
        self.job = 0

    def step(self, text: str) -> None:
        """A step before the load (database, seed, server, smoke check), as it begins."""

    def start(self, label: str, seconds: float) -> Callable[[float], None]:
        """A repeat of ``seconds`` begins (warm-up included); returns a tick(elapsed)."""
        return lambda elapsed: None

    def done(self) -> None:
        """The repeat has ended."""

    def where(self) -> str:
        """'pair 2 of 5' ('pair 2' when the run does not know its count beforehand)."""
        return f"pair {self.job}" + (f" of {self.jobs}" if self.jobs else "")
