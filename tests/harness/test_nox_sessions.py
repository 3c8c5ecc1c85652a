"""What the noxfile's sessions run: the test lanes, their parallel part and their serial
part, and the units of work pytest-xdist hands a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import nox_sessions
from stackbench.apps import APPS
from stackbench.nox_sessions import lane_runs, xdist_workers
from tests.conftest import work_unit
from tests.test_conformance import TARGETS


def test_each_lane_runs_in_parallel_then_its_serial_tests() -> None:
    workers = str(xdist_workers())
    (parallel, serial) = lane_runs("tests", [])
    assert parallel.argv[:3] == ["pytest", "-m", "not slow and not serial"]
    assert parallel.argv[3:5] == ["-n", workers] and "loadfile" in parallel.argv
    assert serial.argv[:3] == ["pytest", "-m", "not slow and serial"]
    assert "--durations=15" in serial.argv and 5 in serial.success_codes
    assert parallel.success_codes == [0]  # a parallel part that selects nothing fails
    (parallel, serial) = lane_runs("tests_slow", ["-k", "features"])
    assert parallel.argv[:3] == ["pytest", "-m", "slow and not serial"]
    assert parallel.argv[-2:] == serial.argv[-2:] == ["-k", "features"]
    (conformance,) = lane_runs("conformance", ["-x"])
    assert conformance.argv[:2] == ["pytest", nox_sessions.CONFORMANCE]
    assert conformance.argv[-1] == "-x" and "-n" in conformance.argv


def test_arguments_to_tests_run_exactly_what_they_name() -> None:
    """A developer's targeted run: slow and serial tests included, in one process."""
    (run,) = lane_runs("tests", ["tests/harness/test_bench.py", "-x"])
    assert run.argv == ["pytest", "tests/harness/test_bench.py", "-x"]


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 4), (3, 6), (64, 8)])
def test_two_workers_per_core_within_bounds(cpus: int, workers: int) -> None:
    assert xdist_workers(cpus) == workers


def test_a_file_is_one_unit_and_the_conformance_suite_one_per_target() -> None:
    assert work_unit("tests/harness/test_serve.py::test_x[SIGINT]") == "tests/harness/test_serve.py"
    assert work_unit("tests/apps/test_tortoise.py::TestTortoise::test_y") == (
        "tests/apps/test_tortoise.py"
    )
    ids = [f"{app}@{server}{prefix or '/'}" for app, server, prefix in TARGETS]
    nodeids = [
        f"tests/test_conformance.py::test_list_page_size_clamped[{target}-1-1-troupes]"
        for target in ids
    ] + [f"tests/test_conformance.py::test_health[{target}]" for target in ids]
    units = {work_unit(nodeid) for nodeid in nodeids}
    assert units == {f"tests/test_conformance.py[{target}]" for target in ids}
    # a test of the file that serves no target is a unit of its own
    plain = "tests/test_conformance.py::test_statement_count_fails_without_pg_stat_statements"
    assert work_unit(plain) == "tests/test_conformance.py"


def test_the_protocol_rows_are_one_unit_per_pair_and_protocol() -> None:
    from tests.test_conformance_protocols import TARGETS as PROTOCOL_TARGETS

    path = "tests/test_conformance_protocols.py"
    ids = [f"{app}@{server}~{protocol}" for app, server, protocol in PROTOCOL_TARGETS]
    nodeids = [f"{path}::test_health[{target}]" for target in ids]
    # a row's own parameters after the target stay in its unit (h1-tls-2 is not a protocol)
    nodeids += [f"{path}::test_queries_lengths[{target}-2-2]" for target in ids]
    nodeids += [f"{path}::test_framing_and_date[{target}-/db]" for target in ids]
    units = {work_unit(nodeid) for nodeid in nodeids}
    assert units == {f"{path}[{target}]" for target in ids}
    assert len(units) == len(set(PROTOCOL_TARGETS)) > 1
    plain = f"{path}::test_a_connection_specific_header_on_http2[hypercorn]"
    assert work_unit(plain) == path


def test_a_capacity_session_installs_the_servers_it_searches() -> None:
    from stackbench.nox_command import SessionArgs
    from stackbench.servers import SERVERS

    default = nox_sessions.capacity_requirements("django_sync", SessionArgs())
    pinned = [r for r in SERVERS["gunicorn-eventlet"].requirements if "==" in r]
    assert pinned and not set(pinned) & set(default)  # a pinned server only when named
    assert set(SERVERS["granian"].requirements) <= set(default)
    assert "reference_apps/django_sync/requirements.txt" in " ".join(default)
    named = nox_sessions.capacity_requirements(
        "django_sync", SessionArgs(servers="gunicorn-eventlet")
    )
    assert set(pinned) <= set(named) and not set(SERVERS["granian"].requirements) & set(named)
    with pytest.raises(ValueError, match=r"no pair \(django_sync, uvicorn\)"):
        nox_sessions.capacity_requirements("django_sync", SessionArgs(servers="uvicorn"))
    assert nox_sessions.capacity_apps() == list(APPS) and "django_sync" in APPS


@pytest.mark.parametrize("value", ["every", "ALL", ""])
def test_the_protocol_rows_refuse_an_unknown_pair_choice(value: str) -> None:
    """STACKBENCH_PROTOCOL_PAIRS other than all or families stops collection with one line
    naming it, instead of running the families quietly (an empty value too)."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly",
         "tests/test_conformance_protocols.py"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "STACKBENCH_PROTOCOL_PAIRS": value},
    )  # fmt: skip
    assert result.returncode != 0
    assert f"STACKBENCH_PROTOCOL_PAIRS={value!r}: say all or families" in result.stdout
