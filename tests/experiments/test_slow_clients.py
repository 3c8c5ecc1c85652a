"""slow-clients (stackbench/experiments/slow_clients.py): the concurrency model's predictions
from each server's settings, each measured verdict from planted figures, the cells and the
table, bad input in one line, and one short real run (slow): sync workers stall behind idle
connections held directly, and do not behind nginx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackbench.experiments.slow_clients import (
    DIRECT,
    SLOWED,
    STALLED,
    UNAFFECTED,
    Cell,
    Figures,
    Outcome,
    Row,
    cell_options,
    cells,
    failures,
    markdown,
    predict,
    unanswered_share,
)
from stackbench.matrix import Pair
from stackbench.options import BenchOptions

ROOT = Path(__file__).resolve().parents[2]
SYNC, GTHREAD, GEVENT = (
    Pair("django_sync", s) for s in ("gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent")
)
UVICORN = Pair("gino_style", "uvicorn")


def _cell(pair: Pair, count: int, front: str = DIRECT, kind: str = "idle") -> Cell:
    return Cell(pair, front, kind if count else "-", count)


@pytest.mark.parametrize(
    ("pair", "settings", "count", "expected"),
    [
        (SYNC, {"workers": 5, "threads": 10}, 25, STALLED),  # 25 held >= 5 workers
        (SYNC, {"workers": 5, "threads": 10}, 4, UNAFFECTED),
        (GTHREAD, {"workers": 2, "threads": 10}, 25, STALLED),  # >= 2 x 10 threads
        (GTHREAD, {"workers": 2, "threads": 10}, 19, UNAFFECTED),
        (GEVENT, {"workers": 2, "threads": 100}, 200, STALLED),  # 200 + 32 > 2 x 100
        (GEVENT, {"workers": 2, "threads": 100}, 25, UNAFFECTED),
        (UVICORN, {"workers": 2, "threads": 10}, 200, UNAFFECTED),  # an event loop
    ],
)
def test_the_model_predicts_from_the_servers_own_settings(
    pair: Pair, settings: dict[str, int], count: int, expected: str
) -> None:
    prediction = predict(_cell(pair, count), {**settings, "pool_size": 10}, connections=32)
    assert prediction.verdict == expected and prediction.why


def test_behind_nginx_nothing_is_predicted_to_stall() -> None:
    for pair in (SYNC, GTHREAD, GEVENT, UVICORN):
        cell = _cell(pair, 200, front="nginx")
        prediction = predict(cell, {"workers": 1, "threads": 1, "pool_size": 10}, 32)
        assert prediction.verdict == UNAFFECTED and "nginx" in prediction.why


def _figures(answered: float, p99_ms: float | None, **more: Any) -> Figures:
    return Figures(answered, p99_ms, unanswered=0.0, misbehaving=more, status="ok")


BASE = _figures(1000.0, 10.0)
GTHREAD_SETTINGS = {"workers": 2, "threads": 10}


def _row(figures: Figures | None, baseline: Figures | None = BASE, pair: Pair = GTHREAD) -> Row:
    cell = _cell(pair, 25)
    return Row(cell, predict(cell, GTHREAD_SETTINGS, 32), figures, baseline)


@pytest.mark.parametrize(
    ("figures", "verdict"),
    [
        (_figures(0.0, None), STALLED),  # nothing answered
        (_figures(400.0, 12.0), STALLED),  # under half the throughput
        (_figures(900.0, 2500.0), STALLED),  # p99 over 10x and over 1 s
        (_figures(950.0, 12.0), UNAFFECTED),
        (_figures(850.0, 29.0), UNAFFECTED),  # within 20 ms of the baseline's p99
        (_figures(650.0, 40.0), SLOWED),
        (_figures(950.0, 90.0), SLOWED),
        (Figures(990.0, 11.0, 0.005, {}, "ok"), SLOWED),  # a few never answered
    ],
)
def test_each_verdict_from_planted_figures(figures: Figures, verdict: str) -> None:
    row = _row(figures)
    assert row.verdict == verdict
    assert row.as_predicted is (verdict == STALLED)  # gthread at 25: predicted stalled


def _report(requests: int, ok: int, dropped: int) -> dict[str, int]:
    return {"requests": requests, "ok": ok, "dropped": dropped}


def test_sends_dropped_behind_held_connections_are_unanswered() -> None:
    # Seen in a real run: gunicorn-sync behind 25 idle clients took the warm-up's requests
    # on every connection and answered none; the window's 1,200 sends were all dropped,
    # and loadgen's error rate (errors over requests) read 0 %.
    assert unanswered_share([_report(0, 0, 1200)]) == 1.0
    assert unanswered_share([_report(1000, 1000, 0), _report(990, 985, 10)]) == 15 / 2000
    assert unanswered_share([_report(0, 0, 0)]) == 0.0  # nothing offered: nothing missed


def test_no_verdict_without_a_baseline_or_a_measurement() -> None:
    assert _row(BASE, baseline=None).verdict is None
    assert _row(BASE, baseline=_figures(0.0, None)).verdict is None  # the baseline answered nothing
    assert _row(None).verdict is None and not _row(None).as_predicted  # not measured


def test_the_cells_put_each_baseline_first() -> None:
    found = cells([SYNC], (200, 0, 25), ("idle", "slow-headers"), (DIRECT, "nginx"))
    assert [c.label for c in found] == [
        "direct-alone", "direct-idle25", "direct-idle200", "direct-slow-headers25",
        "direct-slow-headers200", "nginx-alone", "nginx-idle25", "nginx-idle200",
        "nginx-slow-headers25", "nginx-slow-headers200",
    ]  # fmt: skip


def test_a_cells_options_say_its_front_and_what_it_holds() -> None:
    options = BenchOptions(upstream="unix", prefix="/fastapi")
    behind = cell_options(Cell(SYNC, "nginx", "stalled-body", 25), options)
    assert (behind.proxy, behind.upstream) == ("nginx", "unix")
    assert behind.load.misbehaving == (("stalled-body", 25),)
    assert behind.load.misbehaving_path == "/fastapi/api/troupes"  # where a body is read
    direct = cell_options(Cell(SYNC, DIRECT, "-", 0), options)
    assert (direct.proxy, direct.upstream, direct.load.misbehaving) == (None, None, ())


def test_the_table_marks_a_cell_not_as_predicted(tmp_path: Path) -> None:
    held = {"asked": 25, "opened": 25, "failed": 0, "closed": 3, "held": 22,
            "answered": {}, "closed_after_s": None}  # fmt: skip
    outcome = Outcome(tmp_path)
    baseline, surprise = BASE, _figures(990.0, 11.0, idle=held)
    gone = Cell(GTHREAD, "nginx", "idle", 25)
    outcome.rows = [
        Row(_cell(GTHREAD, 0), predict(_cell(GTHREAD, 0), GTHREAD_SETTINGS, 32), baseline, BASE),
        _row(surprise),
        Row(gone, predict(gone, GTHREAD_SETTINGS, 32), None, BASE),
    ]
    outcome.unmeasured.append("django_sync @ gunicorn-gthread: nginx-idle25")
    text = markdown(outcome, "python -m stackbench experiment slow-clients")
    row = next(line for line in text.splitlines() if "| direct | 25 idle |" in line)
    assert "| stalled | unaffected ⚠ | 990 | 0.99 | 11.0 |" in row and "| 22 / 3 |" in row
    assert "| nginx | 25 idle | unaffected | not measured |" in text
    assert "1 cell(s) not as predicted." in text
    assert failures(outcome) == ["django_sync @ gunicorn-gthread: nginx-idle25: not measured"]


# ---------------------------------------------------------------- the command line


def _experiment(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "experiment", "slow-clients", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--kinds", "rude"], "unknown kind rude; kinds: idle, slow-headers, stalled-body"),
        (["--counts", "0,5000"], "counts from 0 to 1000"),
        (["--fronts", "haproxy"], "unknown front haproxy; fronts: direct, nginx"),
        (["--pairs", "django_sync@nope"], "nope"),
        (["--fronts", "direct", "--upstream", "unix"], "--upstream says how a proxy reaches"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], says: str, tmp_path: Path) -> None:
    done = _experiment(*argv, "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_nginx_missing_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = _experiment("--output", str(tmp_path / "out"), env=env)
    assert done.returncode == 2 and "--fronts nginx: nginx is not installed here" in done.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- one short real run


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_sync_workers_stall_behind_idle_clients_but_not_behind_nginx(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stackbench", "experiment", "slow-clients",
         "--pairs", "django_sync@gunicorn-sync", "--counts", "0,25", "--kinds", "idle",
         "--rate", "50", "--duration", "2s", "--warmup", "1s", "--ready-timeout", "90s",
         "--output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = tmp_path.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # The direct cell answered nothing: a measured stall, so the run is ok (it once said
    # failed, "no successful responses", while the command exited 0).
    assert (manifest["status"], manifest["reason"]) == ("ok", None), manifest["reason"]
    text = (run_dir / "experiment.md").read_text()
    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|")[1:3]): line
        for line in text.splitlines()
        if line.startswith("| django_sync @ gunicorn-sync")
    }
    assert "| stalled | stalled |" in rows[("direct", "25 idle")]
    behind = [cell.strip() for cell in rows[("nginx", "25 idle")].strip("|").split("|")]
    assert behind[3] == "unaffected"  # predicted
    # Measured: nginx kept the load answered. Its throughput and errors, not its p99: in a
    # 2 s window one slow request on a loaded machine is the p99 (seen: 1 s, "stalled").
    answered, ratio, unanswered = behind[5], float(behind[6]), behind[8]
    assert ratio >= 0.8 and unanswered == "0.0%", behind
    direct = [cell.strip() for cell in rows[("direct", "25 idle")].strip("|").split("|")]
    assert direct[5] == "0" and float(direct[8].rstrip("%")) > 90, direct  # dropped, counted
    assert answered != "0"
