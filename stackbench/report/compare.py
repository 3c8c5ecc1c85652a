"""Comparing a run against a baseline: the change per (scenario, pair), judged against noise.

A change counts only when it exceeds what the two runs themselves measured as noise:
``bound = max(MIN_BOUND, spread_baseline + spread_new)``, where a run's spread is
(max - min) / median over its repeats (``bench``'s noise measure). Tail latency rests on
few samples (p99 of 3,000 responses is the 30 slowest), so its minimum bound is wider.
A single repeat measures no noise: the minimum bound alone applies, and the row says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackbench.judge import NOISE_BOUND
from stackbench.report.load import LoadedResult, LoadedRun
from stackbench.report.tables import Table, ms

RPS_MIN_BOUND = NOISE_BOUND  # 10%: bench's own "noisy" threshold
P99_MIN_BOUND = 0.25


def spread(values: list[float]) -> float:
    """(max - min) / median; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


@dataclass
class Change:
    scenario: str
    pair: str
    base: LoadedResult | None
    new: LoadedResult | None
    rps_change: float | None = None  # new / base - 1
    rps_bound: float = RPS_MIN_BOUND
    p99_change: float | None = None
    p99_bound: float = P99_MIN_BOUND
    settings: list[str] = field(default_factory=list)  # what differs in how it was run
    note: str = ""

    @property
    def rps_significant(self) -> bool:
        return self.rps_change is not None and abs(self.rps_change) > self.rps_bound

    @property
    def p99_significant(self) -> bool:
        return self.p99_change is not None and abs(self.p99_change) > self.p99_bound

    @property
    def flagged(self) -> bool:
        return self.rps_significant or self.p99_significant

    @property
    def verdict(self) -> str:
        if self.note:
            return self.note
        parts = []
        if self.rps_significant:
            parts.append("slower" if (self.rps_change or 0) < 0 else "faster")
        if self.p99_significant:
            parts.append("p99 worse" if (self.p99_change or 0) > 0 else "p99 better")
        return ", ".join(parts) + " (beyond noise)" if parts else "within noise"


def _rps_values(result: LoadedResult) -> list[float]:
    return [float(r["rps"]) for r in result.repeats]


def _p99_values(result: LoadedResult) -> list[float]:
    return [float(r["p99_ms"]) for r in result.repeats]


def _settings_diff(base: LoadedResult, new: LoadedResult) -> list[str]:
    out = []
    for section in ("server_settings", "load"):
        a, b = base.doc[section], new.doc[section]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{key} {a.get(key)}→{b.get(key)}")
    if base.doc["server_command"] and new.doc["server_command"]:
        strip = {"--port", "-b", "--bind"}

        def words(doc: Mapping[str, Any]) -> list[str]:
            command = list(doc["server_command"])
            return [w for i, w in enumerate(command) if i == 0 or command[i - 1] not in strip]

        if words(base.doc) != words(new.doc) and not out:
            out.append("server command differs")
    return out


def compare(
    base: list[LoadedResult], new: list[LoadedResult], *, across_interpreters: bool = False
) -> list[Change]:
    """A row per (scenario, pair) in either run, in the new run's order, then baseline-only.

    A pair measured on two Pythons is two pairs unless ``across_interpreters`` asks to
    compare them (the python-versions question).
    """

    def key(result: LoadedResult) -> tuple[str, ...]:
        return result.key[:3] if across_interpreters else result.key

    base_by_key = {key(r): r for r in base}
    new_by_key = {key(r): r for r in new}
    keys = list(dict.fromkeys([*(key(r) for r in new), *(key(r) for r in base)]))
    elsewhere = {r.key[:3]: r.python for r in base}
    labels = {key(r): r.pair for r in [*base, *new]}
    changes = []
    for k in keys:
        a, b = base_by_key.get(k), new_by_key.get(k)
        scenario, app, server = k[:3]
        change = Change(scenario, labels.get(k, f"{app} @ {server}"), a, b)
        changes.append(change)
        if a is None:
            change.note = "new: not in the baseline"
            other = elsewhere.get((scenario, app, server))
            if other is not None:
                change.note += (
                    f" (the baseline ran it on Python {other or 'unrecorded'}:"
                    " --across-interpreters compares them)"
                )
            continue
        if b is None:
            change.note = "gone: only in the baseline"
            continue
        change.settings = _settings_diff(a, b)
        sa, sb = a.summary, b.summary
        if not sa or not sb:
            change.note = f"cannot compare: baseline {a.status}, new {b.status}"
            continue
        if sa["rps"]:
            change.rps_change = sb["rps"] / sa["rps"] - 1.0
        change.rps_bound = max(RPS_MIN_BOUND, spread(_rps_values(a)) + spread(_rps_values(b)))
        if sa["p99_ms"]:
            change.p99_change = sb["p99_ms"] / sa["p99_ms"] - 1.0
        change.p99_bound = max(P99_MIN_BOUND, spread(_p99_values(a)) + spread(_p99_values(b)))
        if len(a.repeats) < 2 or len(b.repeats) < 2:
            change.settings.append("1 repeat: noise not measured, minimum bound only")
    return changes


def _pct(value: float | None, significant: bool) -> str:
    if value is None:
        return "–"
    text = f"{100 * value:+.1f}%"
    return f"**{text}**" if significant else text


def changes_table(changes: list[Change]) -> Table:
    table = Table(
        [
            "scenario",
            "pair",
            "req/s baseline → new",
            "change",
            "noise bound",
            "p99 ms baseline → new",
            "change",
            "noise bound",
            "verdict",
            "what differs",
        ],
        right={2, 3, 4, 5, 6, 7},
    )
    for c in changes:
        sa = c.base.summary if c.base else None
        sb = c.new.summary if c.new else None
        rps = f"{sa['rps']:,.0f} → {sb['rps']:,.0f}" if sa and sb else "–"
        p99 = f"{ms(sa['p99_ms'])} → {ms(sb['p99_ms'])}" if sa and sb else "–"
        verdict = c.verdict
        table.rows.append(
            [
                c.scenario,
                c.pair,
                rps,
                _pct(c.rps_change, c.rps_significant),
                f"±{100 * c.rps_bound:.0f}%",
                p99,
                _pct(c.p99_change, c.p99_significant),
                f"±{100 * c.p99_bound:.0f}%",
                f"**{verdict}**" if c.flagged else verdict,
                ", ".join(c.settings),
            ]
        )
    return table


def _one_manifest(runs: list[LoadedRun]) -> Mapping[str, Any] | None:
    manifests = [r.manifest for r in runs if r.manifest]
    return manifests[0] if len(manifests) == 1 else None


def provenance_diff(base: list[LoadedRun], new: list[LoadedRun]) -> list[str]:
    """What changed between the runs' environments: Python, commit, machine (packages:
    ``package_diff``)."""
    a, b = _one_manifest(base), _one_manifest(new)
    if a is None or b is None:
        return []
    lines = []
    pa, pb = a["python"], b["python"]
    if (pa["implementation"], pa["version"]) != (pb["implementation"], pb["version"]):
        before, after = (f"{p['implementation']} {p['version']}" for p in (pa, pb))
        lines.append(f"Python {before} → {after}")
    if a["git"]["commit"] != b["git"]["commit"]:
        lines.append(f"commit {str(a['git']['commit'])[:10]} → {str(b['git']['commit'])[:10]}")
    for key in ("cpu_model", "cpu_count"):
        if a["machine"][key] != b["machine"][key]:
            lines.append(f"machine {key} {a['machine'][key]} → {b['machine'][key]}")
    return lines


def package_diff(base: list[LoadedRun], new: list[LoadedRun]) -> list[str]:
    """Each installed package whose version differs between the runs: 'name 1.0 → 1.1'."""
    a, b = _one_manifest(base), _one_manifest(new)
    if a is None or b is None:
        return []
    packages_a, packages_b = a["packages"], b["packages"]
    lines = []
    for name in sorted(set(packages_a) | set(packages_b)):
        va, vb = packages_a.get(name), packages_b.get(name)
        if va != vb:
            lines.append(f"{name} {va or '(absent)'} → {vb or '(absent)'}")
    return lines


def nothing_shared(base: list[LoadedResult], new: list[LoadedResult]) -> str | None:
    """Why ``new`` cannot be compared with ``base``, when they measured nothing alike: the
    pairs in neither's common, and the command that measures them side by side; None when
    some (pair, scenario) is in both."""
    if {r.key[:3] for r in base} & {r.key[:3] for r in new}:
        return None
    pairs_base = list(dict.fromkeys(f"{r.app}@{r.server}" for r in base))
    pairs_new = list(dict.fromkeys(f"{r.app}@{r.server}" for r in new))
    if set(pairs_base) & set(pairs_new):
        scenarios_base = ",".join(dict.fromkeys(r.scenario for r in base))
        scenarios_new = ",".join(dict.fromkeys(r.scenario for r in new))
        return (
            f"nothing to compare: the baseline measured scenarios {scenarios_base}, the run "
            f"{scenarios_new}, none in both; measure the same --scenarios in both runs"
        )
    both = ",".join(dict.fromkeys([*pairs_base, *pairs_new]))
    return (
        f"nothing to compare: the baseline measured {', '.join(pairs_base)}, the run "
        f"{', '.join(pairs_new)}, no pair in both (a comparison is of one pair in two runs); "
        f"to rank these pairs, measure them side by side in one run: "
        f"nox -s bench_pairs -- --pairs {both}"
    )
