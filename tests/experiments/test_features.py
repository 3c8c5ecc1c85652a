"""django-features: the baseline and each variant paired round by round, and one short
run end to end (its documents name the variant and the round)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stackbench import callgrind, results
from stackbench.experiments import features
from stackbench.experiments.features import BASELINE, FeaturesOutcome, InstructionsOutcome
from stackbench.matrix import Pair
from stackbench.options import BENCH_LOAD, BenchOptions


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
        scenarios=("json",),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=4),
        workers=1,
        output=tmp_path,
    )
    outcome = features.run_features(
        pairs=[Pair("django_sync", "gunicorn-gthread")],
        variants=["no-xframe-mw"],
        options=options,
        rounds=2,
    )
    assert outcome.failures == []
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    jobs = [(job["label"], job["variant"]) for job in manifest["options"]["jobs"]]
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
        scenarios=("fortunes",),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=4),
        workers=1,
        output=tmp_path,
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


# ------------------------------------------------------------------ --instructions


def test_instruction_rows_pair_each_round_with_its_baseline(tmp_path: Path) -> None:
    outcome = InstructionsOutcome(tmp_path, [BASELINE, "no-templates"], requests=20, warmup=5)
    # Round 1: 1,200,000 over 1,000,000 (1.20). Round 2: the variant failed. Round 3:
    # 1,300,000 over 1,000,000 (1.30): paired with its own round, not with round 2's.
    outcome.counted[("fastapi_sqla", "uvicorn", "fortunes")] = {
        BASELINE: [1_200_000.0, 1_250_000.0, 1_300_000.0],
        "no-templates": [1_000_000.0, None, 1_000_000.0],
    }
    outcome.failures.append("fastapi_sqla @ uvicorn no-templates-r2: GET /fortunes answered 500")
    baseline, variant = features.instruction_rows(outcome)
    assert baseline[:4] == ["fastapi_sqla @ uvicorn", "fortunes", BASELINE, "1,250,000"]
    assert baseline[4] == "8.00%"  # (1.3M - 1.2M) / 1.25M, the median
    assert baseline[5:] == ["1.000 (1.000–1.000)", ""]
    assert variant[2:4] == ["no-templates", "1,000,000"]
    assert variant[4] == "0.00%"  # the failed round is not a count of 0
    assert variant[5] == "1.250 (1.200–1.300)"  # baseline / variant: >1, the feature costs
    assert variant[6] == "+20.0%"  # 1 - 1/1.25 of the instructions are the feature's
    markdown = features.instruction_markdown(outcome, "python -m stackbench experiment x")
    assert "| fastapi_sqla @ uvicorn | fortunes | no-templates | 1,000,000 | 0.00% |" in markdown
    assert "Not counted:\n- fastapi_sqla @ uvicorn no-templates-r2: GET /fortunes" in markdown


def test_instruction_rows_of_one_round_have_no_spread(tmp_path: Path) -> None:
    outcome = InstructionsOutcome(tmp_path, [BASELINE, "no-templates"], requests=20, warmup=5)
    outcome.counted[("fastapi_sqla", "uvicorn", "db")] = {
        BASELINE: [None, 900_000.0],  # round 1 of the baseline failed
        "no-templates": [1_000_000.0, 1_000_000.0],
    }
    _, variant = features.instruction_rows(outcome)
    assert variant[4] == "0.00%" and variant[5] == "0.900 (0.900–0.900)"  # round 2 only
    assert variant[6] == "-11.1%"  # the variant costs more: a negative share
    (only,) = [row for row in features.instruction_rows(outcome) if row[2] == BASELINE]
    assert only[4] == "–"  # one count: no spread to show
    assert "Not counted" not in features.instruction_markdown(outcome, "x")


@pytest.mark.slow
@pytest.mark.serial  # under callgrind: a server's start takes a core for seconds
@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_instructions_see_the_removed_templates_and_not_elsewhere(tmp_path: Path) -> None:
    outcome = features.run_instructions(
        pairs=[Pair("fastapi_sqla", "uvicorn")],
        variants=["no-templates"],
        options=BenchOptions(scenarios=("db", "fortunes"), workers=1, output=tmp_path),
        rounds=1,
        requests=100,
        warmup=callgrind.WARMUP_REQUESTS,
        experiment="fastapi-features",
    )
    assert outcome.failures == []
    fortunes = outcome.counted[("fastapi_sqla", "uvicorn", "fortunes")]
    db = outcome.counted[("fastapi_sqla", "uvicorn", "db")]
    (base_fortunes,), (variant_fortunes,) = fortunes[BASELINE], fortunes["no-templates"]
    (base_db,), (variant_db,) = db[BASELINE], db["no-templates"]
    assert base_fortunes and variant_fortunes and base_db and variant_db
    # Jinja2 is 7-8 % of a /fortunes request, in every checkout measured. /db, which the
    # variant does not touch, is the control: it is not level, since where the interpreter's
    # strings land moves the type-attribute cache's misses in each server process (-0.1 % to
    # +2.8 % between three checkouts, +5.6 % in CI; docs/feature-prices.md), so the verdict
    # is that the removed templates count where they are and more than the control moves.
    counts = (base_fortunes, variant_fortunes, base_db, variant_db)
    templates = base_fortunes - variant_fortunes
    assert templates > 0.05 * base_fortunes, counts
    assert templates > abs(variant_db - base_db), counts
    document = json.loads((outcome.run_dir / "instructions.json").read_text())
    assert document["variants"] == [BASELINE, "no-templates"] and document["failures"] == []
    assert {
        (e["scenario"], e["by_round"]["no-templates"][0])
        for e in document["instructions_per_request"]
    } == {("db", variant_db), ("fortunes", variant_fortunes)}
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    jobs = [job["label"] for job in manifest["options"]["jobs"]]
    assert jobs == ["baseline-r1", "no-templates-r1"]
    assert (manifest["status"], manifest["reason"]) == ("ok", None)  # no result documents


@pytest.mark.slow
@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_a_count_that_fails_fails_the_run(tmp_path: Path) -> None:
    """Planted: the contract mounted where it is not, so /db answers 404 to every count."""
    outcome = features.run_instructions(
        pairs=[Pair("fastapi_sqla", "uvicorn")],
        variants=[],
        options=BenchOptions(scenarios=("db",), workers=1, output=tmp_path, prefix="/nowhere"),
        rounds=1,
        requests=5,
        warmup=1,
        experiment="fastapi-features",
    )
    (failure,) = outcome.failures
    assert failure == "fastapi_sqla @ uvicorn baseline-r1: GET /nowhere/db answered 404, not 200"
    assert outcome.counted[("fastapi_sqla", "uvicorn", "db")][BASELINE] == [None]
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    assert (manifest["status"], manifest["reason"]) == ("failed", failure)


@pytest.mark.slow
@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_an_interrupted_instructions_run_keeps_what_it_counted(tmp_path: Path) -> None:
    """SIGTERM (as Ctrl-C) while the variant's server starts, after the baseline was
    counted: the run stops, the baseline's count is in instructions.json, the variant's
    slot is empty, and the manifest says interrupted."""

    def interrupt_after_the_first_count() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if any(tmp_path.glob("*/callgrind/*-no-templates-r1")):  # the second job began
                os.kill(os.getpid(), signal.SIGTERM)  # BenchRun turns it into Ctrl-C
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=interrupt_after_the_first_count, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        features.run_instructions(
            pairs=[Pair("fastapi_sqla", "uvicorn")],
            variants=["no-templates"],
            options=BenchOptions(scenarios=("db",), workers=1, output=tmp_path),
            rounds=1,
            requests=10,
            warmup=5,
            experiment="fastapi-features",
        )
    watcher.join(timeout=5)
    (run_dir,) = tmp_path.iterdir()
    document = json.loads((run_dir / "instructions.json").read_text())
    (entry,) = document["instructions_per_request"]
    assert entry["by_round"][BASELINE][0] > 0
    assert "no-templates" not in entry["by_round"]
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    assert manifest["status"] == "interrupted"
