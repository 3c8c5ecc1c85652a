"""django-features: the baseline and each variant paired round by round, and one short
run end to end (its documents name the variant and the round)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackbench import results
from stackbench.experiments import features
from stackbench.experiments.features import BASELINE, FeaturesOutcome
from stackbench.matrix import Pair
from stackbench.options import BenchOptions


def _row(scenario: str, per_cpu: float | None, server_us: float = 500.0) -> Any:
    ok = per_cpu is not None
    summary = {
        "rps": 100.0,
        "p99_ms": 10.0,
        "requests_per_server_cpu_s": per_cpu,
        "cpu_us_per_request": {"server": server_us, "database": 500.0, "client": 1.0},
    }
    return {
        "app": "django_sync",
        "server": "gunicorn-gthread",
        "scenario": scenario,
        "status": "ok" if ok else "failed",
        "reason": None if ok else "boom",
        "summary": summary if ok else None,
    }


def test_ratios_pair_each_duet_with_its_own_baseline(tmp_path: Path) -> None:
    outcome = FeaturesOutcome(tmp_path, [BASELINE, "no-xframe-mw", "no-csrf-mw"])
    for round_ in range(3):  # another variant's duets, at another level: not these baselines
        features._record(outcome, "baseline:no-xframe-mw", _row("db", 4000.0), round_)
        features._record(outcome, "no-xframe-mw", _row("db", 4000.0), round_)
    # Round 1: baseline 1000, variant 1100 (1.10). Round 2: the machine got slower for
    # both, 500 and 600 (1.20). Round 3: the variant failed and is left out.
    for round_, (base, variant) in enumerate([(1000.0, 1100.0), (500.0, 600.0), (800.0, None)]):
        features._record(outcome, "baseline:no-csrf-mw", _row("db", base), round_)
        features._record(outcome, "no-csrf-mw", _row("db", variant, 250.0), round_)
    table = {row[2]: row for row in features.rows(outcome)}
    assert table["no-csrf-mw"][6] == "1.15 (1.10–1.20)"  # medians of paired ratios
    assert table["no-csrf-mw"][7] == "+13%"  # 1 - 1/1.15: the feature's share
    assert table["no-csrf-mw"][9] == "1.33 (1.33–1.33)"  # (500+500) / (250+500) µs
    assert table[BASELINE][6] == "1.00 (1.00–1.00)"
    assert len(outcome.failures) == 1 and "round 3" in outcome.failures[0]


def test_a_round_missed_keeps_the_later_rounds_aligned(tmp_path: Path) -> None:
    outcome = FeaturesOutcome(tmp_path, [BASELINE, "no-csrf-mw"])
    features._record(outcome, "baseline:no-csrf-mw", _row("db", 1000.0), 0)
    features._record(outcome, "baseline:no-csrf-mw", _row("db", 500.0), 1)
    features._record(outcome, "no-csrf-mw", _row("db", 550.0), 1)  # round 1 never ran
    (_, variant) = features.rows(outcome)
    assert variant[6] == "1.10 (1.10–1.10)"  # paired with round 2's 500, not round 1's


@pytest.mark.slow
def test_a_short_run_serves_each_variant_in_alternating_rounds(tmp_path: Path) -> None:
    options = BenchOptions(
        scenarios=("json",), duration=1.0, warmup=0.5, connections=4, workers=1, output=tmp_path
    )
    outcome = features.run_features(
        pairs=[Pair("django_sync", "gunicorn-gthread")],
        variants=["no-xframe-mw"],
        options=options,
        rounds=2,
    )
    assert outcome.failures == []
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    jobs = [(job["variant"], job["served_variant"]) for job in manifest["options"]["jobs"]]
    assert jobs == [  # a duet per round, the order inside it alternating
        ("baseline-for-no-xframe-mw-r1", None),
        ("no-xframe-mw-r1", "no-xframe-mw"),
        ("no-xframe-mw-r2", "no-xframe-mw"),
        ("baseline-for-no-xframe-mw-r2", None),
    ]
    served = results.read_result(
        outcome.run_dir / "django_sync--gunicorn-gthread--json--no-xframe-mw-r2.json"
    )
    assert served["server_env"]["DJANGO_SETTINGS_MODULE"] == "sb_no_xframe"
    markdown = features.markdown(outcome, "python -m stackbench experiment django-features")
    assert "no-xframe-mw: without XFrameOptionsMiddleware" in markdown


def test_fastapi_features_names_its_question_and_variants(tmp_path: Path) -> None:
    outcome = FeaturesOutcome(tmp_path, [BASELINE, "no-templates"], experiment="fastapi-features")
    markdown = features.markdown(outcome, "python -m stackbench experiment fastapi-features")
    assert markdown.startswith("# What does each production feature of fastapi_sqla cost")
    assert "- no-templates: /fortunes rendered by str.join" in markdown


@pytest.mark.slow
def test_a_short_fastapi_features_run_serves_the_variants_module(tmp_path: Path) -> None:
    options = BenchOptions(
        scenarios=("fortunes",), duration=1.0, warmup=0.5, connections=4, workers=1, output=tmp_path
    )
    outcome = features.run_features(
        pairs=[Pair("fastapi_sqla", "uvicorn")],
        variants=["no-templates"],
        options=options,
        rounds=1,
        experiment="fastapi-features",
    )
    assert outcome.failures == []
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    assert manifest["experiment"] == "fastapi-features"
    served = results.read_result(
        outcome.run_dir / "fastapi_sqla--uvicorn--fortunes--no-templates-r1.json"
    )
    shipped = results.read_result(
        outcome.run_dir / "fastapi_sqla--uvicorn--fortunes--baseline-for-no-templates-r1.json"
    )
    assert served["server_command"][-1] == "sb_no_templates:app"
    assert shipped["server_command"][-1] == "main:app"
