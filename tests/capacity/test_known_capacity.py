"""The capacity search against a real server whose capacity is known by construction:
one gunicorn sync worker answering at most one request per service time (paced_app/,
defined in known_capacity.py), loaded by loadgen over loopback, every probe a bench job.

The search must land on 1 / service time within its precision; doubling the service time
must halve the answer; a client that cannot offer more than 40 req/s must bring the
answer down to its cap and be named as the limit, never pass above it.

A probe of W s warm-up + D s measured cannot see an overload below limit / (W + D) (the
queue it builds stays under the limit): 100 ms over 4 s is 2.5 %, inside the 5 % asked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stackbench import capacity, results
from stackbench.capacity_cli import CAPACITY
from stackbench.capacity_search import SearchSpec
from stackbench.slo import slo_from
from tests.capacity.known_capacity import APP_DIR, CAPPED_CLIENT, SERVER, paced_app

PRECISION = 0.05


def plan(
    output: Path, start_rate: float, scenario: str = "plaintext", budget: str = "p99<100ms"
) -> capacity.CapacityPlan:
    load = CAPACITY.load.replace(duration=3.0, warmup=1.0, timeout=1.0)
    options = replace(
        CAPACITY, scenarios=(scenario,), repeats=1, workers=1, load=load, output=output
    )
    spec = SearchSpec(start_rate=start_rate, precision=PRECISION)
    return capacity.CapacityPlan(slo_from([budget]), spec, options)


@pytest.mark.slow
@pytest.mark.serial  # a rate at a latency: busy neighbours would lower it
@pytest.mark.parametrize(
    ("service_time_s", "known"), [(0.010, 100.0), (0.020, 50.0)], ids=["as-built", "doubled"]
)
def test_the_search_lands_on_a_known_capacity(
    service_time_s: float, known: float, tmp_path: Path
) -> None:
    planned = plan(tmp_path, start_rate=0.6 * known)
    assert planned.unseen_overload <= PRECISION / 2
    outcome = capacity.run_app(paced_app(service_time_s), [SERVER], planned)
    (pair,) = outcome.document["pairs"]
    low, high = pair["bracket"]
    probes = [(p["rate"], p["outcome"], p["reason"]) for p in pair["probes"]]
    assert pair["status"] == "resolved", probes
    assert low is not None and high is not None and high <= low * (1 + PRECISION), probes
    assert known / (1 + PRECISION) <= low <= known * (1 + PRECISION), probes
    assert pair["verdict"] == "best" and pair["sustainable_rate"] == low
    at = pair["at_sustainable"]
    assert at is not None and at["workers"] == 1 and at["server_cpu_us_per_request"]
    # every probe is a result document of the run, and the run's answer is on disk
    assert {p["result"] for p in pair["probes"]} == {
        path.name for path in outcome.run_dir.glob(f"{APP_DIR.name}--{SERVER}--plaintext--r*.json")
    }
    assert results.read_capacity(outcome.run_dir / "capacity.json") == outcome.document
    manifest = results.read_manifest(outcome.run_dir / "manifest.json")
    assert manifest["status"] == "ok", manifest.get("reason")


@pytest.mark.slow
@pytest.mark.serial  # the client's own ceiling is CPU: busy neighbours lower it mid-search
def test_a_capped_client_brings_the_answer_down_and_is_named(tmp_path: Path) -> None:
    """The same server (100 req/s) loaded by a client that holds its event loop 25 ms per
    request: it cannot offer more than 40 req/s, so no rate it cannot see as an overload
    may pass, and the probe that bounds the answer failed on the client's side. (At these
    rates a probe has ~100 samples, its p99 is nearly its slowest: the budget leaves room
    for a loaded machine's stalls, which widens what a probe cannot see to 6 %.)"""
    planned = plan(tmp_path, 24.0, scenario=str(CAPPED_CLIENT), budget="p99<250ms")
    outcome = capacity.run_app(paced_app(0.010), [SERVER], planned)
    (pair,) = outcome.document["pairs"]
    low, high = pair["bracket"]
    probes = [(p["rate"], p["outcome"], p["reason"]) for p in pair["probes"]]
    unseen = 40.0 * (1 + planned.unseen_overload)
    assert pair["status"] == "client_limited", probes
    assert low is not None and high is not None and low <= unseen, probes
    assert low < 100.0 / (1 + PRECISION)  # the server's own capacity is not the answer
    bounding = next(p for p in pair["probes"] if p["rate"] == high)
    assert bounding["outcome"] == "client_saturated", probes
    assert not any(p["outcome"] == "pass" for p in pair["probes"] if p["rate"] > unseen), probes
    assert "the client could not offer" in (pair["reason"] or "")
