"""Rows of several runs in one scenario: ratios to the reference measured in the same run.

Two runs are two machines, or one machine at two times: their raw req/s differ by the
machine as much as by the stack, so raw numbers are never ranked across runs. Each row is
divided by the reference pair (``stackbench.matrix.REFERENCE_PAIR``) measured in its own run and
scenario, and those ratios are ranked. A run whose reference is missing or did not end
``ok`` has nothing to divide by: its rows stay in its own section, unranked.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackbench.report.load import LoadedResult, LoadedRun


@dataclass(frozen=True)
class Ratio:
    """One row of one run, against the reference of the same run and scenario."""

    result: LoadedResult
    run: LoadedRun
    reference: LoadedResult

    @property
    def rps(self) -> float | None:
        """req/s ÷ the reference's req/s: higher is better, 1.00 is as fast as the reference."""
        own, ref = self.result.summary, self.reference.summary
        if not own or not ref or not ref["rps"]:
            return None
        return float(own["rps"]) / float(ref["rps"])

    @property
    def p99(self) -> float | None:
        """p99 ÷ the reference's p99: lower is better."""
        own, ref = self.result.summary, self.reference.summary
        if not own or not ref or not ref["p99_ms"]:
            return None
        return float(own["p99_ms"]) / float(ref["p99_ms"])


@dataclass(frozen=True)
class RunReference:
    """What a run offers to divide by in one scenario, and why not when it offers nothing."""

    run: LoadedRun
    reference: LoadedResult | None
    why_not: str = ""


def reference_in(run: LoadedRun, scenario: str) -> RunReference:
    found = [r for r in run.results if r.scenario == scenario and r.is_reference]
    if not found:
        return RunReference(run, None, "the reference was not measured in this run")
    (reference,) = found  # load.merge refuses a pair twice in one run
    if reference.status != "ok" or not reference.rps:
        # A degraded reference (errors, failed checks) did not do the work it is a yardstick for.
        return RunReference(run, None, f"the reference is {reference.status}")
    return RunReference(run, reference)


def ratios(runs: list[LoadedRun], scenario: str) -> tuple[list[Ratio], list[RunReference]]:
    """The ranked rows (best req/s ratio first; rows without numbers last) of every run
    with a usable reference, and every run's reference (or why it has none)."""
    references = [reference_in(run, scenario) for run in runs if _measured(run, scenario)]
    rows = [
        Ratio(result, ref.run, ref.reference)
        for ref in references
        if ref.reference is not None
        for result in ref.run.results
        if result.scenario == scenario and not result.is_reference
    ]
    rows.sort(key=lambda row: (row.rps is None, -(row.rps or 0.0), row.result.pair))
    return rows, references


def _measured(run: LoadedRun, scenario: str) -> bool:
    return any(r.scenario == scenario for r in run.results)
