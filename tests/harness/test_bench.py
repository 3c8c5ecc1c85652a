"""Bench runs end to end: real database, real servers, real load; and their failures.

Each run is short (1 s warm-up, 2 s measured) and bounded; afterwards no process the run
started may be alive and no port it used may be held.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shared_fixtures.processes import processes_owned_by
from stackbench import apps, bench, results
from stackbench.options import BENCH_LOAD
from stackbench.sampler import host_cpu_source
from tests.harness.runs import (
    SHORT,
    bench_process,
    only_run_dir,
    result_documents,
    server_pids,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("app", "server"), [("gino_style", "uvicorn"), ("django_sync", "gunicorn-gthread")]
)
def test_bench_runs_to_a_valid_result(app: str, server: str, tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        app, server, tmp_path, "--scenarios", "json,db", "--repeats", "2", owner=owner
    )
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr + stdout
    run_dir = only_run_dir(tmp_path)
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    assert manifest["status"] == "ok" and manifest["git"]["commit"]
    assert manifest["database"]["settings"]["fsync"] == "off"
    documents = result_documents(run_dir)
    assert [d["scenario"] for d in documents] == ["db", "json"]
    for document in documents:
        assert document["status"] == "ok", document["reason"]
        assert document["server_command"][-1] == apps.get_app(app).entries[document["interface"]]
        # The server ran on this venv's Python, and the result says which.
        assert document["interpreter"]["version"] == platform.python_version()
        assert document["interpreter"]["executable"].startswith(sys.prefix)
        assert len(document["repeats"]) == 2
        summary = document["summary"]
        assert summary["rps"] > 0 and summary["p99_ms"] >= summary["p50_ms"] > 0
        # 2 s windows at 8 connections: ≈ 1 s of server CPU, which not even ticks read as 0.
        assert summary["server_cpu_s"] > 0 and summary["peak_rss_mb"] > 0
        assert summary["server_cpu_read"]["source"] == host_cpu_source()
    assert "req/s" in stdout and "results:" in stdout
    assert "CPU time read from" in stdout  # and how, under the table
    assert processes_owned_by(owner) == []


def test_killed_server_is_a_failed_result_and_nothing_is_left(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        "gino_style", "uvicorn", tmp_path, "--scenarios", "db,json", "--duration", "6s", owner=owner
    )
    try:
        wait_for(lambda: any("loadgen" in cmd for _, cmd in processes_owned_by(owner)))
        time.sleep(2)
        pids = server_pids(owner, "uvicorn")
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1
    run_dir = only_run_dir(tmp_path)
    (document,) = result_documents(run_dir)  # the server is gone: "json" never ran
    assert document["status"] == "failed"
    assert "server exited" in document["reason"] or "stopped answering" in document["reason"]
    assert results.read_json(run_dir / "manifest.json", "manifest")["status"] == "failed"
    assert processes_owned_by(owner) == []


def test_sigint_stops_everything_and_keeps_completedresult_documents(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        "gino_style",
        "uvicorn",
        tmp_path,
        "--scenarios",
        "json,db",
        "--duration",
        "30s",
        owner=owner,
    )
    try:
        wait_for(lambda: any("loadgen" in cmd for _, cmd in processes_owned_by(owner)))
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    manifest = json.loads((only_run_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert processes_owned_by(owner) == []


def test_server_that_cannot_start_is_failed_with_its_log(tmp_path: Path, monkeypatch) -> None:
    broken = dataclasses.replace(apps.APPS["gino_style"], entries={"asgi": "main:nowhere"})
    monkeypatch.setitem(apps.APPS, "gino_style", broken)
    options = bench.BenchOptions(
        scenarios=("json",),
        load=BENCH_LOAD.replace(duration=1, warmup=0),
        output=tmp_path,
        workers=1,
        ready_timeout=20,
    )
    report = bench.single_pair("gino_style", "uvicorn", options)
    assert report.status == "failed"
    (document,) = result_documents(report.run_dir)
    assert document["status"] == "failed" and "exited with code" in document["reason"]
    assert "nowhere" in (document["log_tail"] or "")


def test_unreachable_database_is_one_line_and_writes_no_result(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackbench",
            "bench",
            "--app",
            "gino_style",
            "--server",
            "uvicorn",
            "--output",
            str(tmp_path),
            *SHORT,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to DATABASE_URL" in lines[0], result.stderr
    # Nothing ran: the error line says all a manifest would (issue 25), so no run directory.
    assert list(tmp_path.iterdir()) == []
