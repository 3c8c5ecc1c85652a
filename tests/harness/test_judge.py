"""The judge on synthetic repeats: every status and every flag, each from a known-bad input.

The repeats are shaped as bench writes them (loadgen's JSON report and the server figures
beside it), so a renamed key on either side fails here rather than in a production run.
"""

from __future__ import annotations

from typing import Any

import pytest

from stackbench.judge import MAX_ERROR_RATE, NOISE_BOUND, cpu_read_note, judge
from stackbench.run import run_verdict

MS = 1_000_000


def _report(
    *,
    ok: int = 1000,
    failed: int = 0,
    errors: int = 0,
    rps: float = 500.0,
    checks: Any = None,
    client_ok: bool = True,
) -> dict[str, Any]:
    """A loadgen JSON report with the fields the judge reads."""
    responses = ok + failed
    return {
        "version": "test",
        "summary": {
            "requests": responses + errors,
            "responses": responses,
            "ok": ok,
            "failed": failed,
            "errors": errors,
            "elapsed_s": 2.0,
            "rps": rps,
        },
        "latency": {
            "headline": "uncorrected",
            "uncorrected": {
                "percentiles_ns": {
                    "50": 2 * MS,
                    "90": 4 * MS,
                    "99": 9 * MS,
                    "99.9": 12 * MS,
                    "100": 15 * MS,
                }
            },
            "corrected": None,
        },
        "errors": {"timeout": errors} if errors else {},
        "checks": checks
        if checks is not None
        else [
            {"name": "db: status is 200", "passes": ok, "fails": failed},
            {"name": "db: body is a world row", "passes": ok, "fails": 0},
        ],
        "self_checks": {
            "client_cpu": {
                "cpu_per_wall_s": 0.5 if client_ok else 0.98,
                "cpu_per_wall_s_per_process": 0.5 if client_ok else 0.98,
                "ok": client_ok,
            }
        },
    }


def _repeat(
    report: dict[str, Any] | None = None,
    *,
    cpu_s: float | None = 1.0,
    worker_exits: int = 0,
    database_cpu_s: float | None = 0.25,
    resolution_s: float | None = 1e-9,
) -> dict[str, Any]:
    report = report or _report()
    read = None if resolution_s is None else {"source": "cpu-clock", "resolution_s": resolution_s}
    return {
        "rps": report["summary"]["rps"],
        "p99_ms": 9.0,
        "server": {
            "cpu_s": cpu_s,
            "peak_rss_mb": 100.0,
            "peak_db_connections": 4,
            "alive_after": True,
            "worker_exits": worker_exits,
            "exited_pids": list(range(worker_exits)),
            "cpu_read": read,
        },
        "database": {
            "cpu_s": database_cpu_s,
            "source": "proc" if database_cpu_s is not None else None,
            "cpu_read": read if database_cpu_s is not None else None,
        },
        "loadgen": report,
    }


def test_a_clean_run_is_ok_with_no_flag() -> None:
    verdict = judge([_repeat(), _repeat()], None)
    assert verdict["status"] == "ok" and verdict["reason"] is None
    flags = {k: v for k, v in verdict["flags"].items() if k != "noise_bound"}
    assert flags == {
        "noisy": False,
        "client_saturated": False,
        "checks_failed": False,
        "worker_restarted": False,
        "protocol_mismatch": False,
    }


def test_one_wrong_body_in_twenty_is_degraded_naming_the_check() -> None:
    checks = [
        {"name": "db: status is 200", "passes": 872, "fails": 0},
        {"name": "db: body is a world row", "passes": 821, "fails": 51},
    ]
    verdict = judge([_repeat(_report(ok=872, checks=checks))], None)
    assert verdict["status"] == "degraded"
    assert verdict["flags"]["checks_failed"] is True
    assert "db: body is a world row (51 of 872)" in verdict["reason"]


def test_a_single_wrong_body_is_enough() -> None:
    checks = [{"name": "fortunes: page is escaped", "passes": 99_999, "fails": 1}]
    verdict = judge([_repeat(_report(ok=100_000, checks=checks))], None)
    assert verdict["status"] == "degraded" and "fortunes: page is escaped" in verdict["reason"]


def test_wrong_bodies_are_summed_over_repeats() -> None:
    good = [{"name": "db: body is a world row", "passes": 100, "fails": 0}]
    bad = [{"name": "db: body is a world row", "passes": 97, "fails": 3}]
    verdict = judge([_repeat(_report(checks=good)), _repeat(_report(checks=bad))], None)
    assert verdict["status"] == "degraded"
    assert "db: body is a world row (3 of 200)" in verdict["reason"]


def test_checks_in_the_older_dict_shape_are_judged_too() -> None:
    checks = {"db: body is a world row": {"passes": 10, "fails": 2}}
    verdict = judge([_repeat(_report(checks=checks))], None)
    assert verdict["status"] == "degraded" and verdict["flags"]["checks_failed"]


def test_status_checks_are_judged_by_the_error_rate_bound() -> None:
    # 0.5 % non-2xx: within the 1 % bound, and the status check alone does not flag it.
    below = judge([_repeat(_report(ok=995, failed=5))], None)
    assert below["status"] == "ok" and not below["flags"]["checks_failed"]
    assert below["summary"]["error_rate"] == pytest.approx(0.005)
    # 2 % non-2xx: above it.
    above = judge([_repeat(_report(ok=980, failed=20))], None)
    assert above["status"] == "degraded" and "error rate 2.00%" in above["reason"]
    assert MAX_ERROR_RATE == 0.01


def test_transport_errors_count_toward_the_error_rate() -> None:
    verdict = judge([_repeat(_report(ok=950, errors=50))], None)
    assert verdict["status"] == "degraded"
    assert verdict["summary"]["errors"] == {"timeout": 50}
    assert verdict["summary"]["error_rate"] == pytest.approx(0.05)


def test_a_worker_exit_is_flagged_and_degraded() -> None:
    verdict = judge([_repeat(), _repeat(worker_exits=1)], None)
    assert verdict["status"] == "degraded"
    assert verdict["flags"]["worker_restarted"] is True
    assert verdict["summary"]["worker_exits"] == 1
    assert "1 server process exited during the measured window" in verdict["reason"]


def test_every_problem_is_named_in_the_reason() -> None:
    checks = [{"name": "db: body is a world row", "passes": 90, "fails": 10}]
    verdict = judge([_repeat(_report(ok=900, errors=100, checks=checks), worker_exits=2)], None)
    assert verdict["status"] == "degraded"
    for part in ("error rate", "db: body is a world row", "2 server processes exited"):
        assert part in verdict["reason"]


def test_no_successful_response_is_failed() -> None:
    verdict = judge([_repeat(_report(ok=0, failed=50))], None)
    assert verdict["status"] == "failed" and verdict["reason"] == "no successful responses"


def test_a_broken_measurement_is_failed_with_its_reason() -> None:
    verdict = judge([_repeat()], "server exited with code -9 during the run")
    assert verdict["status"] == "failed"
    assert verdict["reason"] == "server exited with code -9 during the run"
    assert verdict["summary"]["rps"] == 500.0  # what completed is still summarised


@pytest.mark.parametrize(
    ("reason", "expected"), [(None, "no measurement"), ("loadgen exited", "loadgen exited")]
)
def test_no_repeat_is_failed(reason: str | None, expected: str) -> None:
    verdict = judge([], reason)
    assert verdict["status"] == "failed" and verdict["reason"] == expected
    assert verdict["summary"] is None


def test_noisy_above_the_bound_only() -> None:
    assert NOISE_BOUND == 0.10
    steady = judge([_repeat(_report(rps=100)), _repeat(_report(rps=105))], None)
    assert not steady["flags"]["noisy"] and steady["status"] == "ok"
    noisy = judge([_repeat(_report(rps=100)), _repeat(_report(rps=150))], None)
    assert noisy["flags"]["noisy"] and noisy["summary"]["spread"] == pytest.approx(0.4, 0.01)
    single = judge([_repeat(_report(rps=100))], None)
    assert not single["flags"]["noisy"]


def test_a_saturated_client_is_flagged() -> None:
    verdict = judge([_repeat(), _repeat(_report(client_ok=False))], None)
    assert verdict["flags"]["client_saturated"] is True
    assert verdict["summary"]["client_cpu_per_wall_s"] == pytest.approx(0.98)


def test_cpu_per_request_is_split_by_who_spent_it() -> None:
    # The median repeat (rps 500, 1000 ok responses) speaks: 2 s server, 0.5 s database,
    # 0.5 CPU per wall second × 2 s elapsed = 1 s client.
    repeats = [
        _repeat(_report(rps=400), cpu_s=9.0),
        _repeat(_report(rps=500), cpu_s=2.0, database_cpu_s=0.5),
        _repeat(_report(rps=600), cpu_s=9.0),
    ]
    summary = judge(repeats, None)["summary"]
    assert summary["cpu_us_per_request"] == {"server": 2000.0, "database": 500.0, "client": 1000.0}
    assert summary["requests_per_server_cpu_s"] == 500.0
    assert summary["database_cpu_source"] == "proc" and summary["client_cpu_s"] == 1.0


def test_an_external_database_is_unknown_not_free() -> None:
    summary = judge([_repeat(database_cpu_s=None)], None)["summary"]
    assert summary["cpu_us_per_request"]["database"] is None
    assert summary["database_cpu_s"] is None and summary["database_cpu_source"] is None
    assert summary["database_cpu_read"] is None


def test_the_summary_says_how_its_cpu_was_read_no_finer_than_its_coarsest_repeat() -> None:
    # The server's figures come from every repeat: one repeat resolved to a tick (a worker
    # was reaped in it) makes the summary's a tick. The database's come from the median.
    repeats = [
        _repeat(_report(rps=400), resolution_s=0.01),
        _repeat(_report(rps=500)),
        _repeat(_report(rps=600), resolution_s=None),  # a serve that did not say
    ]
    summary = judge(repeats, None)["summary"]
    assert summary["server_cpu_read"] == {"source": "cpu-clock", "resolution_s": 0.01}
    assert summary["database_cpu_read"] == {"source": "cpu-clock", "resolution_s": 1e-9}
    unknown = judge([_repeat(resolution_s=None)], None)["summary"]
    assert unknown["server_cpu_read"] is None and unknown["database_cpu_read"] is None


def _row(app: str, scenario: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "app": app,
        "server": "uvicorn",
        "scenario": scenario,
        "status": status,
        "reason": reason,
    }


def test_the_run_verdict_is_its_worst_result_with_a_reason() -> None:
    assert run_verdict([_row("a", "db", "ok")]) == ("ok", None)
    status, reason = run_verdict(
        [
            _row("a", "db", "degraded", "error rate 5.00%"),
            _row("b", "db", "failed", "server exited with code -9 during the run"),
            _row("b", "json", "failed", "server exited with code -9 during the run"),
        ]
    )
    assert status == "failed"
    assert (
        reason == "b @ uvicorn: db: server exited with code -9 during the run (and 1 more failed)"
    )
    status, reason = run_verdict([_row("a", "json", "degraded", "wrong responses: x")])
    assert status == "degraded" and reason == "a @ uvicorn: json: wrong responses: x"
    assert run_verdict([]) == ("failed", "no result was measured")


CLOCK_NS = {"source": "cpu-clock", "resolution_s": 1e-9}
CLOCK_TICK = {"source": "cpu-clock", "resolution_s": 0.01}
TICKS = {"source": "proc-stat", "resolution_s": 0.01}


def test_the_cpu_read_note_names_the_source_and_only_the_coarse_figures() -> None:
    fine = cpu_read_note([("a", CLOCK_NS), ("b", CLOCK_NS)])
    assert fine == "CPU time read from each process's CPU-time clock (cpu-clock) to 1 ns."
    mixed = cpu_read_note([("a", CLOCK_NS), ("b", CLOCK_TICK), ("c", None)])
    assert mixed.startswith(fine[:-1] + "; to 10 ms only for b (a process reaped a child")
    assert "over a short window is no finer than that" in mixed
    assert mixed.endswith(
        "; c: recorded before stackbench said how it read CPU time (whole clock ticks then)."
    )
    ticks = cpu_read_note([("a", TICKS)])
    assert ticks.startswith("CPU time read from /proc/PID/stat's clock ticks (proc-stat) to 10 ms:")
    assert cpu_read_note([]) == ""


# ------------------------------------------------------------ the protocol (bench --protocol)


def _spoke(negotiated: dict[str, int], tls: bool, requested: str = "h2") -> dict[str, Any]:
    """A report whose connections negotiated ``negotiated`` (loadgen's protocol block)."""
    report = _report()
    versions = {"TLSv1.3": sum(negotiated.values())} if tls else {}
    report["protocol"] = {
        "requested": requested,
        "scheme": "https" if tls else "http",
        "negotiated": negotiated,
        "tls": {"versions": versions, "ciphers": {"TLS_AES_256_GCM_SHA384": 1}, "alpn": {}}
        if tls
        else None,
    }
    return report


def test_every_connection_speaking_what_was_asked_is_ok() -> None:
    verdict = judge([_repeat(_spoke({"h2": 8}, tls=True))] * 2, None, "h2")
    assert verdict["status"] == "ok", verdict["reason"]
    assert verdict["flags"]["protocol_mismatch"] is False
    assert verdict["summary"] and verdict["summary"]["negotiated"] == {
        "protocols": {"h2": 16},
        "tls_versions": {"TLSv1.3": 16},
        "ciphers": {"TLS_AES_256_GCM_SHA384": 2},
    }
    assert judge([_repeat(_spoke({"h2c": 4}, tls=False))], None, "h2c")["status"] == "ok"
    assert judge([_repeat(_spoke({"http/1.1": 4}, tls=True))], None, "h1-tls")["status"] == "ok"


@pytest.mark.parametrize(
    ("asked", "negotiated", "tls", "said"),
    [
        ("h2", {"http/1.1": 8}, True, "asked h2 (h2): 8 of 8 connections spoke 8 http/1.1"),
        ("h2", {"h2": 7, "http/1.1": 1}, True, "asked h2 (h2): 1 of 8 connections spoke"),
        ("h2c", {"http/1.1": 4}, False, "asked h2c (h2c): 4 of 4 connections spoke 4 http/1.1"),
        ("h2", {}, True, "asked h2 (h2): no connection spoke it"),
        ("h1-tls", {"http/1.1": 4}, False, "asked h1-tls: no connection negotiated TLS"),
        ("h1", {"http/1.1": 4}, True, "asked h1: 4 connections negotiated TLS"),
    ],
)
def test_a_run_that_spoke_another_protocol_is_not_ok(
    asked: str, negotiated: dict[str, int], tls: bool, said: str
) -> None:
    """The planted fault, as loadgen reports it: asked h2, some connection spoke HTTP/1.1
    (a server started without its HTTP/2 switch), and its kin."""
    verdict = judge([_repeat(_spoke(negotiated, tls))], None, asked)
    assert verdict["status"] == "degraded", verdict
    assert verdict["flags"]["protocol_mismatch"] is True
    assert verdict["reason"] and verdict["reason"].startswith(said), verdict["reason"]


def test_a_protocol_loadgen_did_not_report_is_not_ok_but_h1_is() -> None:
    """A report without its protocol block: unknown for h2 (not ok); for h1 it is what
    every loadgen before TLS and HTTP/2 spoke."""
    verdict = judge([_repeat()], None, "h2")
    assert verdict["status"] == "degraded" and verdict["flags"]["protocol_mismatch"] is True
    assert verdict["reason"] == "asked h2: loadgen did not report what its connections negotiated"
    assert verdict["summary"] and verdict["summary"]["negotiated"] is None
    assert judge([_repeat()], None, "h1")["status"] == "ok"


def test_nothing_answered_in_the_protocol_asked_says_so_first() -> None:
    report = _spoke({}, tls=True)
    report["summary"].update(ok=0, responses=0, requests=8, errors=8)
    report["errors"] = {"h2_refused": 8}
    verdict = judge([_repeat(report)], None, "h2")
    assert verdict["status"] == "failed"
    assert verdict["reason"] == "asked h2 (h2): no connection spoke it; no successful responses"
