"""What the noxfile's sessions install and run, and the units of work pytest-xdist hands
a worker (the lanes themselves: test_suite_lanes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import nox_sessions
from stackbench.apps import APPS
from tests.conftest import work_unit
from tests.test_conformance import TARGETS


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
