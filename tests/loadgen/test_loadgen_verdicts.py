"""Every verdict loadgen prints or writes, fed a known-bad input: self-checks (client
CPU, achieved rate, Little's law), thresholds and the exit code, response checks.

A verdict with nothing to check must fail or say it was not evaluated; it is never ✓.
Each bad case has a good twin, so that a verdict stuck at ✗ fails too.
"""

from __future__ import annotations

import pytest

import loadgen
from loadgen import Config
from loadgen.report import Result
from loadgen.scenario import load_scenario
from loadgen.stats import Stats

MS = 1_000_000
URL = "http://127.0.0.1:9/x"


def result(
    lat_ms: list[float] | tuple[float, ...] = (),
    *,
    status: int = 200,
    errors: dict[str, int] | None = None,
    error_ms: float = 0.0,  # time in flight of each errored request
    elapsed_s: float = 1.0,
    inflight_mean: float = 0.0,
    inflight_samples: int = 10,
    cpu_s: float = 0.1,
    wall_s: float = 1.0,
    processes: int = 1,
    rate: float | None = None,
    sent: int = 0,
    thresholds: tuple[str, ...] = (),
    scenario: str | None = None,
    expect: frozenset[int] | None = None,
) -> Result:
    """A Result built from known numbers, as the workers would have measured them."""
    st = Stats(open_model=rate is not None)
    sink = st.sink("GET /x", expect)
    lat = [int(v * MS) for v in lat_ms]
    sink.raw = [x for v in lat for x in (v, 0, 0, 0)]  # latency, write, wait, read
    if rate is not None:
        sink.clat = list(lat)
    if lat_ms:
        sink.statuses = {status: len(lat_ms)}
        bad = not 200 <= status < 400 if expect is None else status not in expect
        sink.failed = len(lat_ms) if bad else 0
    sink.errors = dict(errors or {})
    sink.error_ns = int(sum(sink.errors.values()) * error_ms * MS)
    st.fold(0)
    st.start_ns = 1
    st.last_done_ns = 1 + int(elapsed_s * 1e9)
    st.inflight_mean, st.inflight_samples = inflight_mean, inflight_samples
    st.cpu_user, st.wall, st.processes = cpu_s, wall_s, processes
    if sent:
        st.sent = sent
        st.first_send_ns = 1
        st.last_send_ns = 1 + int(elapsed_s * 1e9)
    cfg = Config(url=URL, rate=rate, thresholds=thresholds, scenario=scenario)
    sc = load_scenario(scenario, {}) if scenario else None
    return Result(cfg, st, sc)


def line(r: Result, needle: str) -> str:
    (found,) = [ln for ln in r.text().splitlines() if needle in ln]
    return found.strip()


# -- Little's law ------------------------------------------------------------------------
def test_littles_law_is_not_evaluated_when_every_request_failed() -> None:
    # the reported case: "✓ mean concurrency 2.0 vs throughput × mean latency 0.0"
    r = result(errors={"aborted": 2, "read_timeout": 6}, error_ms=250, inflight_mean=2.0)
    ll = r.to_dict()["self_checks"]["littles_law"]
    assert ll["ok"] is False and ll["evaluated"] is False
    assert line(r, "Little's law").startswith("– ")
    assert "not evaluated: no response completed" in line(r, "Little's law")


def test_littles_law_passes_when_consistent() -> None:
    # 100 responses of 20 ms in 1 s: λW = 2.0, the measured mean in flight
    r = result([20] * 100, inflight_mean=2.0)
    ll = r.to_dict()["self_checks"]["littles_law"]
    assert (ll["ok"], ll["evaluated"], ll["throughput_x_mean_latency"]) == (True, True, 2.0)
    assert line(r, "Little's law").startswith("✓ ")


def test_littles_law_fails_when_inconsistent() -> None:
    r = result([20] * 100, inflight_mean=4.0)  # twice what the latencies allow
    ll = r.to_dict()["self_checks"]["littles_law"]
    assert (ll["ok"], ll["evaluated"], ll["ratio"]) == (False, True, 2.0)
    assert line(r, "Little's law").startswith("✗ ")


def test_littles_law_counts_the_time_of_failed_requests() -> None:
    # 50 responses and 50 timeouts, 20 ms each, 2.0 in flight: consistent only if the
    # timeouts' time in flight counts
    r = result([20] * 50, errors={"read_timeout": 50}, error_ms=20, inflight_mean=2.0)
    assert r.to_dict()["self_checks"]["littles_law"]["ok"] is True
    r = result([20] * 50, errors={"read_timeout": 50}, error_ms=0, inflight_mean=2.0)
    assert r.to_dict()["self_checks"]["littles_law"]["ok"] is False


def test_littles_law_is_not_evaluated_on_too_few_samples() -> None:
    r = result([20] * 100, inflight_mean=2.0, inflight_samples=2)
    ll = r.to_dict()["self_checks"]["littles_law"]
    assert (ll["ok"], ll["evaluated"]) == (False, False)
    assert "run too short" in ll["reason"] and line(r, "Little's law").startswith("– ")


@pytest.mark.parametrize(
    ("limits", "kind"), [({"timeout": 0.3}, "read_timeout"), ({"deadline": 0.3}, "aborted")]
)
def test_all_timeouts_end_to_end(server, engine, limits, kind) -> None:
    r = loadgen.run_sync(
        Config(url=server.url("/hang"), requests=4, concurrency=2, **limits, **engine)
    )
    n = r.errors[kind]
    assert r.errors == {kind: n} and n >= 2
    # each was in flight for about 0.3 s (from just after the start, for the deadline):
    # that time is what Little's law counts for them
    assert sum(s.error_ns for s in r.stats.sinks.values()) >= n * 0.25e9
    sc = r.to_dict()["self_checks"]
    assert sc["littles_law"]["ok"] is False and sc["littles_law"]["evaluated"] is False
    assert "✓ Little" not in r.text()


# -- client CPU ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpu_s", "processes", "per_process", "ok"),
    [(0.95, 1, 0.95, False), (0.85, 1, 0.85, True), (1.9, 2, 0.95, False), (1.6, 2, 0.8, True)],
)
def test_client_cpu_flags_a_busy_client(cpu_s, processes, per_process, ok) -> None:
    r = result([1] * 10, cpu_s=cpu_s, wall_s=1.0, processes=processes)
    cpu = r.to_dict()["self_checks"]["client_cpu"]
    assert cpu["cpu_per_wall_s_per_process"] == per_process and cpu["ok"] is ok
    assert line(r, "client CPU").startswith("✓ " if ok else "✗ ")
    assert ("bottleneck" in line(r, "client CPU")) is not ok


def test_client_cpu_without_wall_time_is_not_a_pass() -> None:
    r = result([1] * 10, cpu_s=0.0, wall_s=0.0)
    cpu = r.to_dict()["self_checks"]["client_cpu"]
    assert (cpu["ok"], cpu["evaluated"]) == (False, False)
    assert line(r, "client CPU").startswith("– ")


# -- achieved rate (open model) -------------------------------------------------------------
@pytest.mark.parametrize(("sent", "ok"), [(90, False), (95, False), (97, True), (101, True)])
def test_rate_check_against_the_target(sent, ok) -> None:
    # sent over 1 s: achieved = (sent - 1) / 1 s against a target of 100/s
    r = result([1] * sent, rate=100, sent=sent)
    rt = r.to_dict()["self_checks"]["rate"]
    assert rt["achieved_rate"] == sent - 1 and rt["ok"] is ok and rt["evaluated"] is True
    assert line(r, "achieved rate").startswith("✓ " if ok else "✗ ")


def test_rate_check_with_one_send_is_not_evaluated() -> None:
    r = result([1], rate=100, sent=1)
    rt = r.to_dict()["self_checks"]["rate"]
    assert (rt["ok"], rt["evaluated"], rt["achieved_rate"]) == (False, False, None)
    assert line(r, "achieved rate").startswith("– ")


# -- thresholds and the exit code ------------------------------------------------------------
NOTHING = ("mean<1s", "max<1s", "min<1s", "p50<1s", "uncorrected.p99<1s", "rps>0", "errors<1%")


@pytest.mark.parametrize("threshold", NOTHING)
def test_threshold_with_no_response_fails(threshold) -> None:
    r = result(errors={"reset": 5}, thresholds=(threshold,))
    (t,) = r.thresholds
    if threshold.startswith("errors"):
        assert t["actual"] == 1.0  # every request failed: evaluated, and failed
    else:
        assert t["actual"] is None
    assert t["ok"] is False and r.exit_code == 99 and r.to_dict()["passed"] is False
    assert line(r, threshold).startswith("✗ ")


@pytest.mark.parametrize("threshold", (*NOTHING, "errors<5", "checks>1%"))
def test_threshold_on_an_empty_run_fails(threshold) -> None:
    r = result(thresholds=(threshold,))  # not a single request
    assert r.requests == 0
    assert r.thresholds[0]["ok"] is False and r.exit_code == 99


@pytest.mark.parametrize(
    ("threshold", "ok"),
    [
        ("p99<25ms", True),
        ("p99<15ms", False),
        ("mean<25ms", True),
        ("mean<15ms", False),
        ("max<=20ms", True),  # max is exact, not a bucket edge
        ("max<20ms", False),
        ("rps>99", True),
        ("rps>101", False),
        ("errors<1%", True),
        ("errors<1", True),
    ],
)
def test_threshold_verdicts_on_a_known_run(threshold, ok) -> None:
    r = result([20] * 100, thresholds=(threshold,))  # 100 responses of 20 ms in 1 s
    assert r.thresholds[0]["ok"] is ok
    assert r.exit_code == (0 if ok else 99)


def test_rps_threshold_counts_responses_not_errors() -> None:
    r = result([20] * 10, errors={"reset": 90}, thresholds=("rps>50",))
    assert r.rps == 100  # the summary counts every request ...
    assert r.thresholds[0]["actual"] == 10 and r.exit_code == 99  # ... the threshold not


def test_error_thresholds_count_bad_statuses() -> None:
    r = result([20] * 100, status=500, thresholds=("errors<1%", "errors<5"))
    assert [t["actual"] for t in r.thresholds] == [1.0, 100.0]
    assert r.exit_code == 99


def test_cli_exits_99_when_every_request_failed(cli, server) -> None:
    p = cli("-n", "6", "-c", "2", "--threshold", "mean<1s", server.url("/reset"))
    assert p.returncode == 99, p.stdout
    assert "✗ mean<1s (actual n/a: nothing to evaluate)" in p.stdout


# -- response checks ------------------------------------------------------------------------------
def test_status_check_counts_errors_and_bad_statuses_as_fails() -> None:
    r = result([5] * 3, errors={"reset": 2}, scenario="json", expect=frozenset({201}))
    (status,) = [c for c in r.checks if "status is" in c["name"]]
    assert (status["passes"], status["fails"]) == (0, 5)
    r = result([5] * 3, errors={"reset": 2}, scenario="json", expect=frozenset({200}))
    (status,) = [c for c in r.checks if "status is" in c["name"]]
    assert (status["passes"], status["fails"]) == (3, 2)
    assert line(r, "status is").startswith("✗ ")
    assert "60.00% — ✓ 3 / ✗ 2" in r.text()


def test_a_check_never_evaluated_is_not_a_pass() -> None:
    # no request at all: the derived status check has 0 passes and 0 fails
    r = result(scenario="json", expect=frozenset({200}), thresholds=("checks>1%",))
    (status,) = r.checks
    assert (status["passes"], status["fails"]) == (0, 0)
    text = r.text()
    assert f"– {status['name']} (not evaluated: no sample)" in text
    assert "✓" not in text.split("Checks:")[1].split("Self-checks:")[0]
    assert r.thresholds[0]["ok"] is False and r.exit_code == 99


def test_body_checks_count_passes_and_fails(server) -> None:
    opts = {"sample": "1"}  # every body checked (which ones a sample draws: test_sampling)
    good = loadgen.run_sync(
        Config(url=server.base, scenario="json", requests=8, concurrency=1, scenario_options=opts)
    )
    bad = loadgen.run_sync(
        Config(
            url=server.url("/wrong"),
            scenario="json",
            requests=8,
            concurrency=1,
            scenario_options=opts,
            thresholds=("checks>99%",),
        )
    )
    body = [c for c in bad.checks if "status is" not in c["name"]]
    assert [(c["passes"], c["fails"]) for c in body] == [(0, 8)]
    assert bad.exit_code == 99
    body = [c for c in good.checks if "status is" not in c["name"]]
    assert [(c["passes"], c["fails"]) for c in body] == [(8, 0)]
