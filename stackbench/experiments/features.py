"""The features experiments (django-features, fastapi-features): the price of each
production feature of an app.

Each bench variant (stackbench/variants: one feature removed or replaced) is measured as
a duet with the app as shipped (the baseline), the two served one right after the other,
in ONE run directory: the load of a shared machine drifts over minutes, so a variant is
compared with a baseline measured seconds away, never with one from the start of the run.
Rounds repeat every duet, the variants' order reversing and the order inside each duet
alternating. Each duet's requests per server CPU-second (and per server+database
CPU-second) of the variant is divided by its own baseline's; the table gives the median
of those ratios and their range. A ratio of 1.20 means the feature costs 1 - 1/1.20 =
17 % of the server CPU a request takes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from stackbench.documents import ResultRow
from stackbench.experiments import EXPERIMENTS
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.experiments.versions import Ratio, paired_ratio
from stackbench.matrix import Pair
from stackbench.measure import Progress
from stackbench.options import BenchOptions
from stackbench.run import BenchRun
from stackbench.variants import VARIANTS, get_variant

NAME = "django-features"  # the default; fastapi-features runs the same way
BASELINE = "baseline"


@dataclass
class Measured:
    """One (pair, scenario, variant), per round: req/s, req per server CPU-s, req per
    server+database CPU-s and p99 (None where a round was not measured cleanly)."""

    rps: list[float | None] = field(default_factory=list)
    per_server_cpu: list[float | None] = field(default_factory=list)
    per_stack_cpu: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)


@dataclass
class FeaturesOutcome:
    run_dir: Path
    variants: list[str]  # BASELINE first
    # (app, server, scenario) → variant → per round; a variant's own baselines are kept
    # under "baseline:<variant>", round by round beside it.
    measured: dict[tuple[str, str, str], dict[str, Measured]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    experiment: str = NAME


def check_variants(names: list[str], pairs: list[Pair]) -> list[str]:
    """Each named variant, checked against every pair's app (one line when not)."""
    for name in names:
        get_variant(name, [pair.app for pair in pairs])
    return names


def run_features(
    *,
    pairs: list[Pair],
    variants: list[str],
    options: BenchOptions,
    rounds: int,
    progress: Progress | None = None,
    experiment: str = NAME,
) -> FeaturesOutcome:
    """Every variant as a duet with the baseline, ``rounds`` times (see the module)."""
    check_variants(variants, pairs)
    with BenchRun(
        experiment, output=options.output, experiment=experiment, progress=progress
    ) as run:
        outcome = FeaturesOutcome(run.run_dir, [BASELINE, *variants], experiment=experiment)
        for round_ in range(rounds):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for index, name in enumerate(order):
                duet = [BASELINE, name] if (round_ + index) % 2 == 0 else [name, BASELINE]
                for served_name in duet:
                    served = replace(
                        options, variant=None if served_name == BASELINE else name, repeats=1
                    )
                    key = name if served_name == name else f"{BASELINE}:{name}"
                    label = f"{key.replace(':', '-for-')}-r{round_ + 1}"
                    for pair in pairs:
                        for row in run.job(pair, served, label=label):
                            _record(outcome, key, row, round_)
    return outcome


def _record(outcome: FeaturesOutcome, name: str, row: ResultRow, round_: int) -> None:
    key = (row["app"], row["server"], row["scenario"])
    measured = outcome.measured.setdefault(key, {}).setdefault(name, Measured())
    summary = row["summary"] if row["status"] == "ok" else None
    series = (measured.rps, measured.per_server_cpu, measured.per_stack_cpu, measured.p99_ms)
    for values in series:  # a variant that missed a round keeps the slots aligned
        values.extend([None] * (round_ - len(values)))
    split = summary.get("cpu_us_per_request") if summary else None
    stack_us = (split["server"] or 0) + (split["database"] or 0) if split else 0
    measured.rps.append(summary["rps"] if summary else None)
    measured.per_server_cpu.append(summary["requests_per_server_cpu_s"] if summary else None)
    measured.per_stack_cpu.append(round(1e6 / stack_us, 1) if stack_us else None)
    measured.p99_ms.append(summary["p99_ms"] if summary else None)
    if summary is None:
        outcome.failures.append(
            f"{row['app']} @ {row['server']} {row['scenario']} {name}, round {round_ + 1}: "
            f"{row['status']}: {row['reason']}"
        )


def _median(values: list[float | None], form: str = "{:,.0f}") -> str:
    present = [v for v in values if v]
    return form.format(statistics.median(present)) if present else "–"


def price(ratio: Ratio, form: str = "{:+.0%}") -> str:
    """What the feature costs of the server CPU per request: 1 - 1/ratio."""
    return "–" if ratio.median is None else form.format(1 - 1 / ratio.median)


HEADERS = [
    "pair",
    "scenario",
    "variant",
    "req/s",
    "p99 ms",
    "req/server CPU-s",
    "× baseline (range)",
    "feature's share of server CPU",
    "req/(server+DB) CPU-s",
    "× baseline (range)",
]


def rows(outcome: FeaturesOutcome) -> list[list[str]]:
    out = []
    for (app, server, scenario), by_variant in sorted(outcome.measured.items()):
        for name in outcome.variants:
            if name == BASELINE:  # every duet's baseline, and ratios of 1 by definition
                m = _all_baselines(by_variant)
                base = m
            else:
                m = by_variant.get(name, Measured())
                base = by_variant.get(f"{BASELINE}:{name}", Measured())
            server_ratio = paired_ratio(m.per_server_cpu, base.per_server_cpu)
            stack_ratio = paired_ratio(m.per_stack_cpu, base.per_stack_cpu)
            out.append(
                [
                    f"{app} @ {server}",
                    scenario,
                    name,
                    _median(m.rps),
                    _median(m.p99_ms, "{:.1f}"),
                    _median(m.per_server_cpu),
                    server_ratio.text(),
                    "" if name == BASELINE else price(server_ratio),
                    _median(m.per_stack_cpu),
                    stack_ratio.text(),
                ]
            )
    return out


def _all_baselines(by_variant: dict[str, Measured]) -> Measured:
    merged = Measured()
    for key, m in by_variant.items():
        if key.startswith(f"{BASELINE}:"):
            merged.rps += m.rps
            merged.per_server_cpu += m.per_server_cpu
            merged.per_stack_cpu += m.per_stack_cpu
            merged.p99_ms += m.p99_ms
    return merged


def table(outcome: FeaturesOutcome) -> Table:
    return terminal_table(EXPERIMENTS[outcome.experiment].question, HEADERS, rows(outcome), 3)


def markdown(outcome: FeaturesOutcome, command: str) -> str:
    lines = [
        f"# {EXPERIMENTS[outcome.experiment].question}",
        "",
        f"`{command}`",
        "",
        *markdown_table(HEADERS, rows(outcome), labels=3),
    ]
    baseline = "the app as shipped (medians over every duet)"
    lines += legend(outcome.variants, baseline, "Not measured cleanly", outcome.failures)
    return "\n".join(lines) + "\n"


def legend(variants: list[str], baseline: str, failed: str, failures: list[str]) -> list[str]:
    """What each variant changes, then what failed (if anything), as markdown lines."""
    lines = ["", "Variants:", f"- {BASELINE}: {baseline}"]
    lines += [f"- {name}: {VARIANTS[name].changes}" for name in variants[1:]]
    if failures:
        lines += ["", f"{failed}:", *(f"- {f}" for f in failures)]
    return lines
