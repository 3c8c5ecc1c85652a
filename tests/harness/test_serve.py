"""``serve`` and ``bench --target`` on loopback: the stats endpoint's figures, a remote
bench's documents and verdicts, bad input, and everything stopped (docs/distributed.md).
The same commands across network namespaces: tests/distributed/."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared_fixtures.processes import processes_owned_by
from stackbench import results
from stackbench.documents import ResultDocument
from stackbench.sampler import CPU_CLOCK, TICK_NS, host_cpu_source, process_cpu_ns
from tests.harness.runs import ROOT, bench_process, only_run_dir, result_documents, wait_for
from tests.harness.serving import Serving, bench_target, serve_argv, serving, target_argv

OWNER = uuid.uuid4().hex  # the module's serve and everything it starts


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    work = tmp_path_factory.mktemp("serve")
    with serving("gino_style", "uvicorn", work, "--workers", "2", owner=OWNER) as target:
        yield target


def _world_selects(target: Serving) -> int:
    """Calls of /db's statement, counted by the database on the serving side."""
    status, document = target.get("/statements")
    assert status == 200, document
    return sum(
        s["calls"]
        for s in document["statements"]
        if "world" in s["query"].lower()
        and s["query"].lstrip().lower().startswith("select")
        and "$1" in s["query"]
    )


def _burn_a_backend(conn: psycopg.Connection) -> float:
    """CPU seconds the connection's backend spends on a query we know (read from its own
    CPU-time clock: this test runs on the serving host)."""
    before = process_cpu_ns(conn.info.backend_pid)
    conn.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
    return (process_cpu_ns(conn.info.backend_pid) - before) / 1e9


@pytest.mark.skipif(host_cpu_source() != CPU_CLOCK, reason="no CPU-time clock to check against")
def test_stats_window_counts_what_the_serving_host_did(served: Serving, tmp_path: Path) -> None:
    _, before = served.get("/stats")
    selects_before = _world_selects(served)
    report = tmp_path / "load.json"
    load = ["--scenario", "db", "-n", "1000", "-c", "4", "--json", str(report), "-q"]
    subprocess.run(
        [sys.executable, "-m", "loadgen", *load, served.app_url],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    # A window that cannot read 0 under either source: a whole-tick count (10 ms) moves once
    # a process gains 20 ms, and here one backend gains ≈ 0.1 s on a query we measure. 1000
    # /db requests cost the server's two workers ≈ 0.25 s (≥ 70 µs each: ≥ 20 ms on one).
    # Open until the window is read: the backend's burn stays its own, to the nanosecond.
    with psycopg.connect(served.info["database"]["url"], autocommit=True) as conn:
        burned = _burn_a_backend(conn)
        status, after = served.get(f"/stats?since={before['reading']['seq']}")
    assert status == 200
    window = after["window"]
    sent = json.loads(report.read_text())["summary"]
    assert sent["requests"] == sent["ok"] == 1000
    # Counted on the serving side: one SELECT of a world row per /db request, no more.
    assert _world_selects(served) - selects_before == 1000
    assert window["since"] == before["reading"]["seq"]
    assert 0 < window["server_cpu_s"] <= window["window_s"] * os.cpu_count()
    assert window["server_cpu_read"]["source"] == CPU_CLOCK
    # All of the backend's burn is in the window (to the window's resolution), and more:
    # the backends that served /db.
    resolution = window["database_cpu_read"]["resolution_s"]
    assert burned > 3 * TICK_NS / 1e9
    assert (
        burned - 2 * resolution <= window["database_cpu_s"] <= window["window_s"] * os.cpu_count()
    )
    assert window["peak_rss_mb"] > 10 and window["peak_db_connections"] >= 1
    assert window["exited_pids"] == []
    # The readings in between, as bench's own sampler gives them: CPU since the window began.
    samples = window["samples"]
    assert samples and samples[-1]["t_s"] == window["window_s"]
    assert samples[-1]["cpu_s"] == pytest.approx(window["server_cpu_s"], abs=1e-6)
    assert [s["t_s"] for s in samples] == sorted(s["t_s"] for s in samples)
    assert after["server"] == {"running": True, "exit_code": None}


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/stats", "POST", 405),
        ("/info", "DELETE", 405),
        ("/stats", "PUT", 405),
        ("/nope", "GET", 404),
        ("/stats?since=abc", "GET", 400),
        ("/stats?since=-1", "GET", 400),
        ("/stats?since=1&since=2", "GET", 400),
        ("/stats?since=99999999", "GET", 410),
    ],
)
def test_stats_endpoint_is_read_only_and_refuses_bad_input(
    served: Serving, path: str, method: str, status: int
) -> None:
    got, document = served.get(path, method)
    assert got == status and document["error"]


def test_info_describes_the_pair_as_a_result_does(served: Serving) -> None:
    status, info = served.get("/info")
    assert status == 200 and info == {**served.info}
    assert (info["app"], info["server"], info["interface"]) == ("gino_style", "uvicorn", "asgi")
    assert info["server_settings"]["workers"] == 2
    assert "--workers" in info["server_command"] and "127.0.0.1" in info["server_command"]
    assert info["seed"]["checksum"] and info["database"]["embedded"] is True


# Maps whose keys are data (an error's kind, a status code, a check's name), not format.
DATA_KEYED = ("errors", "status_codes", "flow_errors", "checks")


def format_differences(one: Any, other: Any, where: str = "") -> list[str]:
    """Where two documents' formats differ (their values dropped): a key in one record and
    not the other's, a record or a list where the other has a value. A list's format is its
    first item's; an empty list has none, so it differs from no list: a window in which a
    starved serving host took one reading has no samples (CI, under load). A map keyed by
    data (``DATA_KEYED``) is a value."""
    if isinstance(one, dict) and isinstance(other, dict):
        if where.rpartition(".")[2] in DATA_KEYED:
            return []
        found = [f"{where}.{key}" for key in sorted(one.keys() ^ other.keys())]
        for key in sorted(one.keys() & other.keys()):
            found += format_differences(one[key], other[key], f"{where}.{key}")
        return found
    if isinstance(one, list) and isinstance(other, list):
        return format_differences(one[0], other[0], f"{where}[0]") if one and other else []
    if isinstance(one, dict | list) or isinstance(other, dict | list):
        return [where]
    return []


def test_format_differences_name_where_two_documents_differ() -> None:
    document = {"summary": {"rps": 1.0, "errors": {}}, "repeats": [{"samples": [{"t_s": 0}]}]}
    assert format_differences(document, document) == []
    starved = {"summary": {"rps": 2.0, "errors": {"timeout": 1}}, "repeats": [{"samples": []}]}
    assert format_differences(document, starved) == []
    renamed = {"summary": {"rate": 1.0, "errors": {}}, "repeats": [{"samples": [{"t": 0}]}]}
    assert format_differences(document, renamed) == [
        ".repeats[0].samples[0].t",
        ".repeats[0].samples[0].t_s",
        ".summary.rate",
        ".summary.rps",
    ]
    flattened = {"summary": 1.0, "repeats": [{"samples": [0.0]}]}
    assert format_differences(document, flattened) == [".repeats[0].samples[0]", ".summary"]


@pytest.mark.slow  # two whole bench runs, one remote and one local, and their reports
@pytest.mark.timeout(600)
def test_bench_target_writes_a_local_runs_documents(served: Serving, tmp_path: Path) -> None:
    remote = bench_target(served, tmp_path / "remote", "--scenarios", "json,db", owner=OWNER)
    assert remote.returncode == 0, remote.stderr
    local = bench_process(
        "gino_style", "uvicorn", tmp_path / "local", "--scenarios", "json,db", owner=OWNER
    )
    local.communicate(timeout=300)
    assert local.returncode == 0
    remote_dir, local_dir = only_run_dir(tmp_path / "remote"), only_run_dir(tmp_path / "local")
    remote_docs, local_docs = result_documents(remote_dir), result_documents(local_dir)
    assert [d["scenario"] for d in remote_docs] == [d["scenario"] for d in local_docs]
    for remote_doc, local_doc in zip(remote_docs, local_docs, strict=True):
        assert remote_doc["status"] == "ok", remote_doc["reason"]
        assert (remote_doc["app"], remote_doc["server"]) == ("gino_style", "uvicorn")
        assert format_differences(remote_doc, local_doc) == []
        # 2 s windows at 8 connections: thousands of requests, ≥ 0.3 s of server CPU over
        # 3 processes and of database CPU over the ≤ 8 backends in use: one of them gains
        # ≥ 20 ms, so not even whole ticks could read 0.
        summary = remote_doc["summary"]
        assert summary is not None and summary["server_cpu_s"] > 0
        assert summary["database_cpu_s"] is not None and summary["database_cpu_s"] >= 0
        if remote_doc["scenario"] == "db":  # /json does not touch the database
            assert summary["database_cpu_s"] > 0
        # The serving host says how it read them, as a local run does.
        local_summary = local_doc["summary"]
        assert local_summary is not None
        for key in ("server_cpu_read", "database_cpu_read"):
            assert summary[key]["source"] == local_summary[key]["source"] == host_cpu_source()
        assert remote_doc["server_command"] == served.info["server_command"]
    manifest = results.read_manifest(remote_dir / "manifest.json")
    assert manifest["status"] == "ok" and manifest["target"]["app_url"] == served.app_url
    assert manifest["seed"] == served.info["seed"]
    # The report reads both runs alike: the same sections, the pair in both.
    reports = {}
    for name, run_dir in (("remote", remote_dir), ("local", local_dir)):
        out = tmp_path / f"report-{name}"
        done = subprocess.run(
            [sys.executable, "-m", "stackbench", "report", str(run_dir), "--output", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        reports[name] = (out / "report.md").read_text().replace(run_dir.name, "RUN")
    headings = {n: [ln for ln in r.splitlines() if ln.startswith("#")] for n, r in reports.items()}
    assert headings["remote"] == headings["local"]
    assert "gino_style" in reports["remote"]


def test_a_worker_killed_on_the_serving_host_is_degraded(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    with serving("gino_style", "uvicorn", tmp_path, "--workers", "2", owner=owner) as target:
        master = target.info["server_pid"]
        # No warm-up: the window opens as loadgen starts, so 4 s after its process appears
        # the kill lands inside the 8 s window unless loadgen took 4 s to start. (With a 2 s
        # warm-up, a slow start beside other tests put the kill in it: CI, exit 0.)
        load = ["--output", str(tmp_path / "out"), "--scenarios", "db", "--duration", "8s"]
        bench = subprocess.Popen(
            target_argv(target.app_url, target.stats_url, *load, "--warmup", "0s", "-c", "8"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "STACKBENCH_OWNER": owner},
        )
        try:
            wait_for(lambda: any("loadgen" in cmd for _, cmd in processes_owned_by(owner)))
            time.sleep(4.0)
            workers = _workers(master)
            assert len(workers) == 2
            os.kill(workers[0], signal.SIGKILL)
            bench.communicate(timeout=120)
        finally:
            bench.kill()
        assert bench.returncode == 1
        (document,) = result_documents(only_run_dir(tmp_path / "out"))
        assert document["status"] == "degraded", document["reason"]
        assert "1 server process exited" in (document["reason"] or "")
        assert document["flags"]["worker_restarted"] is True
        assert workers[0] in document["repeats"][0]["server"]["exited_pids"]
        # Reaped in the window by its master: the serving host says a tick, not a ns.
        assert document["repeats"][0]["server"]["cpu_read"]["resolution_s"] == TICK_NS / 1e9


# Serial: the kill must land in the measured window; beside other tests the bench started
# late and finished its 6 s before the kill (CI's parallel lane: exit 0).
@pytest.mark.serial
def test_the_server_dying_on_the_serving_host_fails_the_run_and_serve(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    with serving("gino_style", "uvicorn", tmp_path, "--workers", "1", owner=owner) as target:
        load = ["--output", str(tmp_path / "out"), "--scenarios", "db,json", "--duration", "6s"]
        bench = subprocess.Popen(
            target_argv(target.app_url, target.stats_url, *load, "--warmup", "1s", "-c", "8"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Killed under load: loadgen runs against it, past its 1 s warm-up (a fixed
            # sleep was too short on a busy machine: killed before the run began).
            wait_for(lambda: _loading(target.app_url) or bench.poll() is not None, timeout=180)
            time.sleep(1.5)
            os.kill(target.info["server_pid"], signal.SIGKILL)
            _, stderr = bench.communicate(timeout=120)
            _, serve_stderr = target.process.communicate(timeout=60)
        finally:
            bench.kill()
        assert bench.returncode == 1, stderr
        assert target.process.returncode == 1
        assert "server exited with code -9" in serve_stderr
        assert not target.ready_file.exists()
    document = result_documents(only_run_dir(tmp_path / "out"))[0]
    assert document["status"] == "failed"
    reason = document["reason"] or ""
    assert "on the serving host" in reason or "stopped answering" in reason, reason
    assert processes_owned_by(owner) == []


def _loading(app_url: str) -> bool:
    """True while a loadgen of this test session loads ``app_url``."""
    return any(" -m loadgen " in cmd and app_url in cmd for _, cmd in processes_owned_by())


def _workers(master: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing's resource tracker is a child too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == master and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("sig", "code", "sigint"),
    [
        (signal.SIGTERM, 143, signal.SIG_DFL),
        (signal.SIGINT, 130, signal.SIG_DFL),
        # A non-interactive shell starts `serve &` with SIGINT ignored: Ctrl-C still stops it.
        (signal.SIGINT, 130, signal.SIG_IGN),
    ],
    ids=["SIGTERM", "SIGINT", "SIGINT-ignored-by-the-shell"],
)
def test_serve_stops_everything_on_a_signal(
    tmp_path: Path, sig: int, code: int, sigint: signal.Handlers
) -> None:
    owner = uuid.uuid4().hex
    with serving(
        "gino_style", "uvicorn", tmp_path, "--workers", "1", owner=owner, sigint=sigint
    ) as target:
        assert processes_owned_by(owner)  # database, upstream, server: all tagged
        target.process.send_signal(sig)
        _, stderr = target.process.communicate(timeout=60)
        assert target.process.returncode == code, stderr
        assert "stopped" in stderr and "Traceback" not in stderr
        assert not target.ready_file.exists()
    assert processes_owned_by(owner) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bind", "nope"], "--bind"),
        (["--bind", "999.1.1.1"], "--bind"),
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--port", "8123", "--stats-port", "8123"], "must differ"),
        (["--workers", "0"], "--workers"),
        (["--scale", "0"], "--scale"),
    ],
)
def test_serve_refuses_bad_input_in_one_line(extra: list[str], message: str) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    done = subprocess.run(
        serve_argv("gino_style", "uvicorn", *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_serve_refuses_an_invalid_pair_and_a_taken_port(tmp_path: Path) -> None:
    done = subprocess.run(
        serve_argv("gino_style", "gunicorn-sync"), cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    owner = uuid.uuid4().hex
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            serve_argv("gino_style", "uvicorn", "--workers", "1", "--port", port),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "STACKBENCH_OWNER": owner},
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert processes_owned_by(owner) == []


TARGET = ["--target", "http://h:1", "--target-stats", "http://h:2", "--scenarios", "db"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--target", "ftp://host/x", "--target-stats", "http://127.0.0.1:9"], 2, "--target"),
        (["--target", "http://127.0.0.1:9"], 2, "--target-stats"),
        (["--target", "http://h:1", "--target-stats", "http://h:notaport"], 2, "--target-stats"),
        (["--target", "http://h:1", "--target-stats", "http://h:2", "--workers", "2"], 2, "serve"),
        (["--target", "http://h:1", "--target-stats", "http://h:2", "--server", "uvicorn"], 2, ""),
        (["--app", "gino_style", "--server", "uvicorn", "--target-stats", "http://h:2"], 2, ""),
        (["--target", "http://127.0.0.1:9", "--target-stats", "FREE"], 1, "does not answer"),
        (["--app", "gino_style", "--server", "uvicorn", "--agent", "0/2"], 2, "with --target"),
        ([*TARGET, "--agent", "0/2", "--agent-reports", "r"], 2, "--start-at"),
        ([*TARGET, "--agent", "0/2", "--start-at", "+5s"], 2, "--agent-reports"),
        ([*TARGET, "--agent-reports", "r"], 2, "--agent I/N"),
        ([*TARGET, "--agent", "0/1", "--start-at", "+5s", "--scenarios", "db,json"], 2, "one"),
        ([*TARGET, "--agent", "0/1", "--start-at", "+5s", "--repeats", "2"], 2, "once"),
        ([*TARGET, "--agent", "2/2", "--start-at", "+5s"], 2, "--agent"),
        ([*TARGET, "--agent", "0/2", "--start-at", "soon"], 2, "--start-at"),
        ([*TARGET, "--requests", "0"], 2, "--requests"),
    ],
)
def test_bench_target_refuses_bad_input_in_one_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    args = [f"http://127.0.0.1:{_free_port()}" if a == "FREE" else a for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "stackbench", "bench", *args, "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no run directory for a run that cannot start


def test_bench_target_refuses_a_stats_url_that_is_not_serve(served: Serving, tmp_path) -> None:
    done = subprocess.run(
        target_argv(served.app_url, served.app_url, "--output", str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "stats endpoint" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def _agent_run(served: Serving, tmp_path: Path, reports: Path) -> list[ResultDocument]:
    done = bench_target(
        served,
        tmp_path / "out",
        "--scenarios", "db", "--requests", "60", "--warmup", "0s",
        # +4s: the harness reads the target and starts loadgen after parsing it; loadgen
        # refuses a start more than 1 s past (on a busy machine +1s was).
        "--agent", "0/2", "--start-at", "+4s",
        "--agent-reports", str(reports), "--agent-wait", "2s",
        owner=OWNER,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("python -m loadgen") == 1  # the other agent's command, printed
    return result_documents(only_run_dir(tmp_path / "out"))


def test_an_agent_that_never_reports_fails_the_run(served: Serving, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "half-written.json").write_text('{"tool": ')  # not a report: ignored
    (document,) = _agent_run(served, tmp_path, reports)
    assert document["status"] == "failed"
    assert document["reason"] == f"agents 1/2: no report in {reports} within 2 s"


def test_an_agent_of_another_run_is_refused(served: Serving, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    other = [sys.executable, "-m", "loadgen", "--scenario", "db", "-n", "60", "-c", "3"]
    other += ["--agent", "1/2", "--json", str(reports / "agent-1.json"), "-q", served.app_url]
    subprocess.run(other, cwd=ROOT, check=True, timeout=120)  # -c 3: not this run's load
    (document,) = _agent_run(served, tmp_path, reports)
    assert document["status"] == "failed"
    assert "do not merge" in (document["reason"] or ""), document["reason"]


def test_module_serve_leaves_nothing(served: Serving) -> None:
    """Last in the module: stopping the shared serve stops all it started."""
    served.process.terminate()
    served.process.communicate(timeout=60)
    assert served.process.returncode == 143
    wait_for(lambda: processes_owned_by(OWNER) == [] or None, timeout=30)
