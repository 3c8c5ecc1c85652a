"""What the noxfile's sessions run: the test lanes, their parallel part and their serial
part, and the units of work pytest-xdist hands a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stackbench import nox_sessions
from stackbench.apps import APPS
from stackbench.nox_sessions import lane_runs, xdist_workers
from tests.apps.test_openapi import TARGETS as OPENAPI_TARGETS
from tests.conftest import LONGEST_FIRST, SPLIT, first_rank, work_unit
from tests.test_conformance import TARGETS
from tests.test_conformance_protocols import H2_FAMILIES
from tests.test_conformance_protocols import TARGETS as PROTOCOL_TARGETS

ROOT = Path(__file__).resolve().parents[2]


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


def test_independent_long_tests_are_units_of_their_own() -> None:
    """test_openapi one unit per app, the protocol suite one per target (with the HTTP/2
    header test of that target); each file's other tests, its own unit. test_copies stays
    whole: its module fixture prepares every selected app's copy, side by side."""
    openapi = "tests/apps/test_openapi.py"
    for app, _ in OPENAPI_TARGETS:
        nodeid = f"{openapi}::test_schemathesis_finds_nothing[{app}]"
        assert work_unit(nodeid) == f"{openapi}[{app}]"
    assert work_unit(f"{openapi}::test_a_schema_that_lies_fails_the_run") == openapi
    copies = "tests/apps/test_copies.py"
    assert {work_unit(f"{copies}::test_a_copy_stands_alone[{app}]") for app in APPS} == {copies}
    protocols = "tests/test_conformance_protocols.py"
    for app, server, protocol in PROTOCOL_TARGETS:
        target = f"{app}@{server}~{protocol}"
        for test in (f"test_json[{target}]", f"test_framing_and_date[{target}-/db]"):
            assert work_unit(f"{protocols}::{test}") == f"{protocols}[{target}]"
    for app, server in H2_FAMILIES:
        target = f"{app}@{server}~h2"
        nodeid = f"{protocols}::test_a_connection_specific_header_on_http2[{target}]"
        assert work_unit(nodeid) == f"{protocols}[{target}]"
    plain = f"{protocols}::test_the_suite_refuses_to_pass_http1_for_http2"
    assert work_unit(plain) == protocols


def test_the_long_units_go_first_and_each_name_is_a_file() -> None:
    for name in [*LONGEST_FIRST, *SPLIT]:
        assert (ROOT / name).is_file(), f"{name}: renamed? tests/conftest.py names it"
    units = [
        "tests/harness/test_judge.py",
        "tests/test_conformance.py[gino_style@uvicorn/]",
        "tests/apps/test_openapi.py[tortoise]",
        "tests/experiments/test_features.py",
    ]
    assert sorted(units, key=first_rank) == [units[3], units[2], units[0], units[1]]


PLANTED_CONFTEST = """
import re

import tests.conftest as ours

# The repository's scheduler, with the planted files in its tables.
ours.SPLIT["test_split.py"] = re.compile(r"(?<=^test_part\\[)\\w+(?=\\]$)")
ours.LONGEST_FIRST = ("test_split.py",)
from tests.conftest import pytest_xdist_make_scheduler  # noqa: E402,F401
"""

PLANTED_TESTS = {
    # A file that SPLIT does not name: one unit, one worker.
    "test_file.py": """
        import pytest
        from record import record

        @pytest.mark.parametrize("n", range(3))
        def test_in_the_file(n):
            record(f"file-{n}")

        def test_another_in_the_file():
            record("file-other")
        """,
    # Named: each part a unit of its own; the two parts must run at once, each waiting for
    # the other to start (one worker running both would wait in vain). Its other test is
    # the file's unit.
    "test_split.py": """
        import pytest
        from record import record, started

        @pytest.mark.parametrize("part", ["a", "b"])
        def test_part(part):
            record(f"part-{part}")
            started(part, "b" if part == "a" else "a")

        def test_not_a_part():
            record("split-other")
        """,
    "record.py": """
        import os
        import time
        from pathlib import Path

        HERE = Path(__file__).parent

        def record(name):
            with open(HERE / "ran.txt", "a") as out:
                out.write(f"{os.environ['PYTEST_XDIST_WORKER']} {name}\\n")

        def started(mine, other):
            (HERE / f"started-{mine}").touch()
            deadline = time.monotonic() + 30
            while not (HERE / f"started-{other}").exists():
                assert time.monotonic() < deadline, f"part {other} never ran beside {mine}"
                time.sleep(0.05)
        """,
}


def test_the_scheduler_keeps_a_file_together_and_splits_what_split_names(
    tmp_path: Path,
) -> None:
    """A planted suite run as the lanes run it (-n 2 --dist loadfile): the plain file's
    tests on one worker, the named parts at once on both, and those (ranked first) each
    worker's first test although their file comes second."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(PLANTED_CONFTEST)
    for name, text in PLANTED_TESTS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"]
    argv += ["--dist", "loadfile", "--no-loadscope-reorder", "-q", "test_file.py"]
    done = subprocess.run(
        [*argv, "test_split.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    ran = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    workers = {test: worker for worker, test in ran}
    assert len(workers) == 7
    assert len({workers[t] for t in workers if t.startswith("file-")}) == 1
    assert workers["part-a"] != workers["part-b"]
    firsts = {}
    for worker, test in ran:
        firsts.setdefault(worker, test)
    assert sorted(firsts.values()) == ["part-a", "part-b"]


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
