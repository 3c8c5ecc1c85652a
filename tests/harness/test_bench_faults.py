"""Planted faults, end to end: each must change the verdict a bench run prints and stores.

- an app that answers a wrong body in 1 of 20 responses → ``degraded``, naming the check;
- a worker killed inside the measured window → flagged, degraded, its CPU counted once;
- the server's master killed → ``failed``, and the manifest says why;
- the contract mounted under a prefix that does not answer → the smoke check fails there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest

from shared_fixtures.processes import processes_owned_by
from stackbench import apps, bench, results
from stackbench.options import BENCH_LOAD
from stackbench.sampler import TICK_NS, host_cpu_source
from tests.harness.runs import bench_process, result_documents, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class _CopiedApp(apps.App):
    """A registered app served from a copy of its directory (where a fault is planted)."""

    copy: Path = Path()

    @property
    def directory(self) -> Path:
        return self.copy


def _planted_copy(app_id: str, tmp_path: Path, old: str, new: str, tail: str = "") -> apps.App:
    copy = tmp_path / app_id
    shutil.copytree(apps.APPS[app_id].directory, copy)
    source = copy / "main.py"
    text = source.read_text()
    assert old in text, f"the fault's anchor is gone from {app_id}/main.py: update this test"
    source.write_text(text.replace(old, new) + tail)
    fields = {f.name: getattr(apps.APPS[app_id], f.name) for f in dataclasses.fields(apps.App)}
    return _CopiedApp(**fields, copy=copy)


def _short(**changes) -> bench.BenchOptions:
    load = BENCH_LOAD.replace(duration=2.0, warmup=1.0, concurrency=8)
    return bench.BenchOptions(**{"load": load, "workers": 1, **changes})


def test_one_wrong_body_in_twenty_is_degraded(tmp_path: Path, monkeypatch) -> None:
    planted = _planted_copy(
        "gino_style",
        tmp_path,
        'return {"id": row["id"], "randomNumber": row["randomnumber"]}',
        'return {"id": row["id"], _key(): row["randomnumber"]}',
        tail=(
            "\n\nimport itertools as _itertools  # noqa: E402\n\n"
            "_answers = _itertools.count()\n\n\n"
            "def _key():  # planted: every 20th /db answer misspells randomNumber\n"
            "    return 'randomnumber' if next(_answers) % 20 == 19 else 'randomNumber'\n"
        ),
    )
    monkeypatch.setitem(apps.APPS, "gino_style", planted)
    report = bench.single_pair(
        "gino_style", "uvicorn", _short(scenarios=("db",), output=tmp_path / "out")
    )
    (document,) = result_documents(report.run_dir)
    assert document["status"] == "degraded", document["reason"]
    assert document["flags"]["checks_failed"] is True
    assert "wrong responses: db: body is a world row" in document["reason"]
    assert report.status == "degraded"
    manifest = results.read_json(report.run_dir / "manifest.json", "manifest")
    assert manifest["status"] == "degraded" and "body is a world row" in manifest["reason"]


def test_the_smoke_check_probes_where_the_load_goes(tmp_path: Path) -> None:
    # gino_style answers at the root, not under /elsewhere: probing the root would pass.
    report = bench.single_pair(
        "gino_style",
        "uvicorn",
        _short(scenarios=("json",), output=tmp_path / "out", prefix="/elsewhere"),
    )
    (document,) = result_documents(report.run_dir)
    assert document["status"] == "failed"
    assert document["reason"].startswith("smoke check failed: /health: expected 200")


def _children_of(owner: str, parent: int, marker: str) -> list[int]:
    pids = []
    for pid, cmd in processes_owned_by(owner):
        if marker not in cmd:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(pid)
    return pids


def _master(owner: str, executable: str) -> int:
    """The server's master: it leads the process group its workers share."""
    (pid,) = [
        pid
        for pid, cmd in processes_owned_by(owner)
        if f"bin/{executable} " in cmd and os.getpgid(pid) == pid
    ]
    return pid


# Serial: the kill is timed to land 1 s into the measured window; beside other tests the
# warm-up starts late and the kill lands in it (CI's parallel lane: "ok", not "degraded").
@pytest.mark.serial
def test_a_worker_killed_mid_window_is_flagged_and_counted_once(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    # A long warm-up gives the doomed worker CPU from before the window: counted twice, it
    # would push the figure past what two workers can spend in the window.
    process = bench_process(
        "gino_style", "uvicorn", tmp_path, "--scenarios", "db", "--workers", "2",
        "--warmup", "4s", "--duration", "3s", owner=owner,
    )  # fmt: skip
    try:
        wait_for(lambda: any("loadgen" in cmd for _, cmd in processes_owned_by(owner)))
        master = _master(owner, "uvicorn")
        # uvicorn's workers are multiprocessing children (beside its resource tracker).
        workers = wait_for(lambda: _children_of(owner, master, "spawn_main")[1:])
        time.sleep(5.0)  # 1 s into the measured window
        os.kill(workers[0], signal.SIGKILL)
        stdout, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    (run_dir,) = tmp_path.iterdir()
    (document,) = result_documents(run_dir)
    assert document["status"] == "degraded", document["reason"]
    assert document["flags"]["worker_restarted"] is True
    assert document["summary"]["worker_exits"] == 1
    assert workers[0] in document["repeats"][0]["server"]["exited_pids"]
    assert "1 server process exited during the measured window" in document["reason"]
    assert "worker_restarted" in stdout  # the table shows it too
    # Server, database and client share this machine's CPUs: together they cannot have
    # spent more than the window's CPU seconds (a tick of slack per figure).
    repeat, summary = document["repeats"][0], document["summary"]
    # The master reaped the worker in the window: what the worker spent after the last
    # reading came through the master's cutime, whole ticks, and the figure says so.
    tick = {"source": host_cpu_source(), "resolution_s": TICK_NS / 1e9}
    assert repeat["server"]["cpu_read"] == summary["server_cpu_read"] == tick
    spent = repeat["server"]["cpu_s"] + summary["database_cpu_s"] + summary["client_cpu_s"]
    assert 0 < spent <= repeat["server"]["window_s"] * len(os.sched_getaffinity(0)) + 0.03
    assert process.returncode == 1
    assert processes_owned_by(owner) == []


def test_a_killed_master_is_failed_with_a_reason(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        "gino_style", "gunicorn-uvicorn", tmp_path, "--scenarios", "db", "--duration", "4s",
        owner=owner,
    )  # fmt: skip
    try:
        wait_for(lambda: any("loadgen" in cmd for _, cmd in processes_owned_by(owner)))
        time.sleep(2.0)
        os.kill(_master(owner, "gunicorn"), signal.SIGKILL)  # the master only
        process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1
    (run_dir,) = tmp_path.iterdir()
    (document,) = result_documents(run_dir)
    assert document["status"] == "failed"
    assert document["reason"] == "server exited with code -9 during the run"
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    assert manifest["status"] == "failed"
    assert manifest["reason"] == (
        "gino_style @ gunicorn-uvicorn: db: server exited with code -9 during the run"
    )
    assert processes_owned_by(owner) == []
