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

A variant may also be an app directory (``--variants ../fastapi_sqla_timed``): a copy of
the pair's app with one change of your own (a middleware added), served under the pair's
server in the app's place and priced the same way, named by its id.

``--instructions`` prices the same features by count instead (``run_instructions``): the
baseline and every variant are served under valgrind's callgrind once per round (the order
reversing each round), and each variant's instructions per request on each scenario's path
is tabled against the baseline's, round by round (stackbench/callgrind.py).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from stackbench.apps import App, get_app
from stackbench.documents import ResultRow
from stackbench.experiments import EXPERIMENTS
from stackbench.experiments.duets import (
    Measured,
    Ratio,
    append_round,
    count_job,
    median,
    paired_ratio,
)
from stackbench.experiments.report import markdown_table, terminal_table
from stackbench.matrix import Pair, PairError, get_pair
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.results import write_atomic
from stackbench.run import BenchRun
from stackbench.variants import VARIANTS, get_variant

NAME = "django-features"  # the default; fastapi-features runs the same way
BASELINE = "baseline"


@dataclass
class FeaturesOutcome:
    run_dir: Path
    variants: list[str]  # BASELINE first
    # (app, server, scenario) → variant → per round; a variant's own baselines are kept
    # under "baseline:<variant>", round by round beside it.
    measured: dict[tuple[str, str, str], dict[str, Measured]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    experiment: str = NAME
    copies: dict[str, App] = field(default_factory=dict)  # the variants that are apps


def is_directory(name: str) -> bool:
    """A --variants item that names an app directory, not a bench variant."""
    return name not in VARIANTS and ("/" in name or name.startswith((".", "~")))


def app_variants(names: list[str], pairs: list[Pair]) -> dict[str, App]:
    """The variants that are app directories, by their ids, each checked: its declaration,
    and a server of every pair that speaks one of its interfaces (one line when not)."""
    copies = {}
    for name in names:
        if not is_directory(name):
            continue
        app = get_app(name)
        if app.id in VARIANTS or app.id == BASELINE or app.id in {p.app for p in pairs}:
            raise PairError(f"{name}: its id {app.id!r} is already a variant's or an app's name")
        for pair in pairs:
            get_pair(app, pair.server)
        copies[app.id] = app
    return copies


def check_variants(names: list[str], pairs: list[Pair]) -> list[str]:
    """Each named variant, checked against every pair's app (one line when not); an app
    directory by ``app_variants``. Returns the names, an app directory's as its id."""
    app_variants(names, pairs)  # each app directory checked
    for name in names:
        if not is_directory(name):
            get_variant(name, [pair.app for pair in pairs])
    return [get_app(name).id if is_directory(name) else name for name in names]


def run_features(
    *,
    pairs: list[Pair],
    variants: list[str],
    options: BenchOptions,
    rounds: int,
    progress: Progress | None = None,
    experiment: str = NAME,
) -> FeaturesOutcome:
    """Every variant as a duet with the baseline, ``rounds`` times (see the module).
    ``variants``: names of bench variants, or app directories (copies of the pairs' app)."""
    copies = app_variants(variants, pairs)
    variants = check_variants(variants, pairs)
    with BenchRun(
        experiment, output=options.output, experiment=experiment, progress=progress
    ) as run:
        outcome = FeaturesOutcome(
            run.run_dir, [BASELINE, *variants], experiment=experiment, copies=copies
        )
        for round_ in range(rounds):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for index, name in enumerate(order):
                duet = [BASELINE, name] if (round_ + index) % 2 == 0 else [name, BASELINE]
                for served_name in duet:
                    served, app = _served(options, served_name, copies)
                    key = name if served_name == name else f"{BASELINE}:{name}"
                    label = f"{key.replace(':', '-for-')}-r{round_ + 1}"
                    for pair in pairs:
                        for row in run.job(pair, served, label=label, app=app):
                            _record(outcome, key, row, round_)
    return outcome


def _served(
    options: BenchOptions, name: str, copies: dict[str, App]
) -> tuple[BenchOptions, App | None]:
    """The options (and, for a copy, the app) one job of ``name`` is served with."""
    variant = None if name == BASELINE or name in copies else name
    return replace(options, variant=variant, repeats=1), copies.get(name)


def _record(outcome: FeaturesOutcome, name: str, row: ResultRow, round_: int) -> None:
    key = (row["app"], row["server"], row["scenario"])
    measured = outcome.measured.setdefault(key, {}).setdefault(name, Measured())
    summary = row["summary"] if row["status"] == "ok" else None  # a degraded round: none
    measured.record(summary, round_)
    if summary is None:
        outcome.failures.append(
            f"{row['app']} @ {row['server']} {row['scenario']} {name}, round {round_ + 1}: "
            f"{row['status']}: {row['reason']}"
        )


def price(ratio: Ratio, form: str = "{:+.0%}", added: bool = False) -> str:
    """What the feature costs of the server CPU per request: 1 - 1/ratio. ``added``: a
    copy that adds its change (an app directory): what it adds, 1/ratio - 1, of the
    baseline's (the same figure with the sign a reader expects)."""
    if ratio.median is None:
        return "–"
    return form.format(1 / ratio.median - 1 if added else 1 - 1 / ratio.median)


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
                    median(m.rps),
                    median(m.p99_ms, "{:.1f}"),
                    median(m.per_server_cpu),
                    server_ratio.text(),
                    "" if name == BASELINE else price(server_ratio, added=name in outcome.copies),
                    median(m.per_stack_cpu),
                    stack_ratio.text(),
                ]
            )
    return out


def _all_baselines(by_variant: dict[str, Measured]) -> Measured:
    merged = Measured()
    for key, m in by_variant.items():
        if key.startswith(f"{BASELINE}:"):
            for series in ("rps", "per_server_cpu", "per_stack_cpu", "per_total_cpu", "p99_ms"):
                getattr(merged, series).extend(getattr(m, series))
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
    failed = "Not measured cleanly"
    lines += legend(outcome.variants, baseline, failed, outcome.failures, outcome.copies)
    return "\n".join(lines) + "\n"


def legend(
    variants: list[str],
    baseline: str,
    failed: str,
    failures: list[str],
    copies: dict[str, App] | None = None,
) -> list[str]:
    """What each variant changes, then what failed (if anything), as markdown lines."""
    copies = copies or {}
    lines = ["", "Variants:", f"- {BASELINE}: {baseline}"]
    lines += [
        f"- {name}: the app in `{copies[name].directory}`, served in its place (its share "
        "is what its change adds, of the baseline's)"
        if name in copies
        else f"- {name}: {VARIANTS[name].changes}"
        for name in variants[1:]
    ]
    if failures:
        lines += ["", f"{failed}:", *(f"- {f}" for f in failures)]
    return lines


# ------------------------------------------------------------------ --instructions
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
    copies: dict[str, App] = field(default_factory=dict)  # the variants that are apps

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
    instructions per request counted on each scenario's path; rounds reverse the order.
    ``variants``: names of bench variants, or app directories (copies of the pairs' app)."""
    copies = app_variants(variants, pairs)
    names = [BASELINE, *check_variants(variants, pairs)]
    with BenchRun(
        experiment, output=options.output, experiment=experiment, progress=progress
    ) as run:
        outcome = InstructionsOutcome(
            run.run_dir, names, requests, warmup, experiment=experiment, copies=copies
        )
        try:
            for round_ in range(rounds):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    served, app = _served(options, name, copies)
                    for pair in pairs:
                        _count_job(run, outcome, pair, served, name, round_, app)
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
    app: App | None = None,
) -> None:
    label = f"{name}-r{round_ + 1}"
    counts, failure = count_job(run, pair, options, label, outcome.requests, outcome.warmup, app)
    if failure is not None:
        outcome.failures.append(failure)
    for scenario, per_request in counts.items():
        by_name = outcome.counted.setdefault((pair.app, pair.server, scenario), {})
        append_round(by_name.setdefault(name, []), round_, per_request)


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
            added = name in outcome.copies
            share = "" if name == BASELINE else price(ratio, "{:+.1%}", added)
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
    lines += legend(
        outcome.variants, "the app as shipped", "Not counted", outcome.failures, outcome.copies
    )
    return "\n".join(lines) + "\n"
