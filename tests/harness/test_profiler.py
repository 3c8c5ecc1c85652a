"""bench --profile: py-spy's collapsed stacks read and summarized, and a real profile of a
served pair written beside its results (or the reason there is none)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from stackbench import bench, profiler
from stackbench.options import BENCH_LOAD, BenchOptions
from tests.harness.runs import ROOT, result_documents
from tests.harness.serving import target_argv

MASTER, WORKER = 'process 10:"gunicorn"', 'process 11:"gunicorn worker"'
HANDLE = "handle (gunicorn/workers/gthread.py:553)"
VIEW = "view (circus/views.py:40)"
COLLAPSED = "\n".join(
    [
        f"{MASTER};{WORKER};{HANDLE};{VIEW};execute (psycopg/cursor.py:97) 6",
        f"{MASTER};{WORKER};{HANDLE};{VIEW} 2",
        f"{MASTER};{HANDLE};dumps (json/__init__.py:231) 2",
        "a line that is not a stack",
        f"{MASTER} 7",
    ]
)


def test_collapsed_stacks_are_read_without_process_frames() -> None:
    stacks = profiler.read_collapsed(COLLAPSED)
    assert sum(stacks.values()) == 10  # the malformed line and the process-only line: none
    assert all(not frame.startswith("process ") for stack in stacks for frame in stack)


@pytest.mark.parametrize(
    ("frame", "owner"),
    [
        ("view (circus/views.py:40)", "app"),
        ("single_query (main.py:136)", "app"),
        ("root (fortunes.html:5)", "app"),
        ("execute (psycopg/cursor.py:97)", "psycopg"),
        ("dumps (json/__init__.py:231)", "stdlib"),
        ("Runner.run (asyncio/runners.py:118)", "stdlib"),
        ("<module> (<string>:1)", "stdlib"),
    ],
)
def test_each_frame_belongs_to_its_package(frame: str, owner: str) -> None:
    assert profiler.package(frame, {"circus", "project", "main", "db"}) == owner


def test_summary_gives_each_package_its_share() -> None:
    summary = profiler.summarize(profiler.read_collapsed(COLLAPSED), {"circus"})
    assert "10 on-CPU samples" in summary
    assert " 60.0 %  psycopg" in summary  # the frame on top of the stack is where the CPU was
    assert " 20.0 %  app" in summary and " 20.0 %  stdlib" in summary
    assert " 80.0 %  view (circus/views.py:40)" in summary  # inclusive: with what it calls
    assert "no on-CPU samples" in profiler.summarize(Counter(), {"circus"})


def _options(tmp_path: Path) -> BenchOptions:
    return BenchOptions(
        scenarios=("db",),
        load=BENCH_LOAD.replace(duration=3, warmup=1),
        workers=1,
        output=tmp_path,
        profile=True,
    )


def test_a_profiled_run_keeps_py_spys_stacks_and_summary(tmp_path: Path) -> None:
    report = bench.single_pair("gino_style", "uvicorn", _options(tmp_path))
    assert report.status == "ok"
    (document,) = result_documents(report.run_dir)
    profile = document["repeats"][0]["profile"]
    assert profile["error"] is None and profile["samples"] > 50, profile
    profiles = report.run_dir / "profiles"
    assert (profiles / str(profile["raw"])).read_text().count("asyncpg") > 0
    summary = (profiles / str(profile["summary"])).read_text()
    assert "by package" in summary and "app" in summary
    assert document["flags"]["profiled"] is True  # its figures carry py-spy's pauses


def test_no_py_spy_is_a_reason_not_a_failed_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(profiler, "py_spy", lambda bin_dir: None)
    report = bench.single_pair("gino_style", "uvicorn", _options(tmp_path))
    assert report.status == "ok"  # the measurement stands; only the profile is missing
    (document,) = result_documents(report.run_dir)
    assert document["repeats"][0]["profile"] == {
        "raw": None,
        "summary": None,
        "samples": 0,
        "error": "py-spy is not installed: pip install py-spy",
    }


def test_a_py_spy_that_cannot_attach_says_why(tmp_path: Path, monkeypatch) -> None:
    refusing = tmp_path / "py-spy"
    refusing.write_text("#!/bin/sh\necho 'Permission denied (os error 13)'\nexit 1\n")
    refusing.chmod(0o755)
    monkeypatch.setattr(profiler, "py_spy", lambda bin_dir: str(refusing))
    report = bench.single_pair("gino_style", "uvicorn", _options(tmp_path / "out"))
    (document,) = result_documents(report.run_dir)
    profile = document["repeats"][0]["profile"]
    assert profile["raw"] is None and "Permission denied" in str(profile["error"])


def test_profile_is_refused_beside_target() -> None:
    argv = target_argv("http://h:1", "http://h:2", "--profile")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--profile is serve's option" in done.stderr
