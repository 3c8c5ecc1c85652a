"""The features and techempower experiments' --instructions mode: each job served under
valgrind's callgrind and priced by the instructions its server executes per request
(stackbench/callgrind.py), which do not move with the machine's load as CPU seconds do.

django-features and fastapi-features serve the baseline and every variant once per round
(the order reversing each round) and table each variant's count against the baseline's,
round by round; techempower counts ours and theirs the same way (``count_job``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from shared_fixtures.processes import ProcessError
from stackbench import callgrind
from stackbench.apps import App
from stackbench.experiments import EXPERIMENTS
from stackbench.experiments.features import BASELINE, NAME, check_variants, legend, price
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.experiments.versions import paired_ratio
from stackbench.matrix import Pair
from stackbench.measure import Progress
from stackbench.options import BenchOptions
from stackbench.results import write_atomic
from stackbench.run import BenchRun


@dataclass
class InstructionsOutcome:
    run_dir: Path
    variants: list[str]  # BASELINE first
    requests: int  # counted per path, per served job
    warmup: int
    # (app, server, scenario) → variant → instructions per request, per round (None: failed)
    counted: dict[tuple[str, str, str], dict[str, list[float | None]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    experiment: str = NAME

    def as_dict(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "requests": self.requests,
            "warmup_requests": self.warmup,
            "variants": self.variants,
            "instructions_per_request": [
                {"app": app, "server": server, "scenario": scenario, "by_round": by_variant}
                for (app, server, scenario), by_variant in sorted(self.counted.items())
            ],
            "failures": self.failures,
        }


def run_instructions(
    *,
    pairs: list[Pair],
    variants: list[str],
    options: BenchOptions,
    rounds: int,
    requests: int,
    warmup: int,
    progress: Progress | None = None,
    experiment: str = NAME,
) -> InstructionsOutcome:
    """The baseline and every variant, each served under callgrind once per round, its
    instructions per request counted on each scenario's path; rounds reverse the order."""
    check_variants(variants, pairs)
    names = [BASELINE, *variants]
    with BenchRun(
        experiment, output=options.output, experiment=experiment, progress=progress
    ) as run:
        outcome = InstructionsOutcome(run.run_dir, names, requests, warmup, experiment=experiment)
        try:
            for round_ in range(rounds):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    served = replace(options, variant=None if name == BASELINE else name, repeats=1)
                    for pair in pairs:
                        _count_job(run, outcome, pair, served, name, round_)
            run.judge_by(outcome.failures)
        finally:  # Ctrl-C or SIGTERM: what was counted is kept
            write_atomic(
                run.run_dir / "instructions.json",
                (json.dumps(outcome.as_dict(), indent=2) + "\n").encode(),
            )
    return outcome


def _count_job(
    run: BenchRun,
    outcome: InstructionsOutcome,
    pair: Pair,
    options: BenchOptions,
    name: str,
    round_: int,
) -> None:
    label = f"{name}-r{round_ + 1}"
    counts, failure = count_job(run, pair, options, label, outcome.requests, outcome.warmup)
    if failure is not None:
        outcome.failures.append(failure)
    for scenario, per_request in counts.items():
        by_name = outcome.counted.setdefault((pair.app, pair.server, scenario), {})
        append_round(by_name.setdefault(name, []), round_, per_request)


def append_round(series: list[float | None], round_: int, value: float | None) -> None:
    """``value`` as round ``round_`` of ``series``; a round missed before it stays a None."""
    series.extend([None] * (round_ - len(series)))
    series.append(value)


def count_job(
    run: BenchRun,
    pair: Pair,
    options: BenchOptions,
    label: str,
    requests: int,
    warmup: int,
    app: App | None = None,
) -> tuple[dict[str, float | None], str | None]:
    """Serve ``pair`` under callgrind (its dumps kept in the run directory) and count each
    scenario's instructions per request: {scenario: count, None if not counted}, and why
    not, in one line, when some were not."""
    dumps = run.run_dir / "callgrind" / f"{app.id if app else pair.app}-{pair.server}-{label}"
    dumps.mkdir(parents=True)
    options = replace(options, ready_timeout=max(options.ready_timeout, 300.0))  # valgrind
    counts: dict[str, float | None] = dict.fromkeys(options.scenarios)
    wrap = callgrind.wrap(dumps)
    try:
        with run.serving(pair, options, wrap=wrap, label=label, app=app) as served:
            for scenario in options.scenarios:
                path = options.prefix + callgrind.PATHS[scenario]
                taken = callgrind.count(served.process.pid, served.base_url, path, warmup, requests)
                counts[scenario] = round(taken.per_request)
    except (ProcessError, callgrind.CallgrindError) as exc:
        return counts, f"{pair.app} @ {pair.server} {label}: {str(exc).splitlines()[0]}"
    return counts, None


INSTRUCTION_HEADERS = [
    "pair",
    "scenario",
    "variant",
    "instructions/request",
    "spread over rounds",
    "× baseline (range)",
    "feature's share of the instructions",
]


def instruction_rows(outcome: InstructionsOutcome) -> list[list[str]]:
    """Per (pair, scenario, variant): the median count, how far the rounds spread around it,
    and the baseline's count over the variant's, round by round (>1: the feature costs)."""
    out = []
    for (app, server, scenario), by_variant in sorted(outcome.counted.items()):
        base = by_variant.get(BASELINE, [])
        for name in outcome.variants:
            counts = by_variant.get(name, [])
            present = [c for c in counts if c]
            ratio = paired_ratio(base, counts)
            share = "" if name == BASELINE or ratio.median is None else price(ratio, "{:+.1%}")
            out.append(
                [
                    f"{app} @ {server}",
                    scenario,
                    name,
                    f"{statistics.median(present):,.0f}" if present else "–",
                    _spread(present),
                    ratio.text(digits=3),  # counts repeat to ~0.5 %: a third digit means something
                    share,
                ]
            )
    return out


def _spread(counts: list[float]) -> str:
    """(max - min) / median of the rounds' counts: how repeatable the count was."""
    if len(counts) < 2:
        return "–"
    return f"{(max(counts) - min(counts)) / statistics.median(counts):.2%}"


def instruction_table(outcome: InstructionsOutcome) -> Table:
    title = EXPERIMENTS[outcome.experiment].question + " (instructions per request)"
    return terminal_table(title, INSTRUCTION_HEADERS, instruction_rows(outcome), labels=3)


def instruction_markdown(outcome: InstructionsOutcome, command: str) -> str:
    lines = [
        f"# {EXPERIMENTS[outcome.experiment].question} (instructions per request)",
        "",
        f"`{command}`",
        "",
        f"Each served job counted {outcome.requests} requests per path, one at a time, after "
        f"{outcome.warmup} uncounted ones (stackbench/callgrind.py).",
        "",
        *markdown_table(INSTRUCTION_HEADERS, instruction_rows(outcome), labels=3),
    ]
    lines += legend(outcome.variants, "the app as shipped", "Not counted", outcome.failures)
    return "\n".join(lines) + "\n"
