"""slow-clients (stackbench/experiments/slow_clients.py): the concurrency model's predictions
from each server's settings, each measured verdict from planted figures, the cells and the
table, bad input in one line, and one short real run (slow): sync workers stall behind idle
connections held directly, and do not behind nginx."""

from __future__ import annotations

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
    Outcome,
    Row,
    cell_options,
    cells,
    markdown,
    predict,
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


def _summary(rps: float, p99_ms: float, responses: int = 1000, **more: Any) -> dict[str, Any]:
    return {"rps": rps, "p99_ms": p99_ms, "responses": responses, "error_rate": 0.0, **more}


BASE = _summary(1000.0, 10.0)


@pytest.mark.parametrize(
    ("summary", "verdict"),
    [
        (None, STALLED),  # no summary: nothing answered (the judge's failed)
        (_summary(0.0, 0.0, responses=0), STALLED),
        (_summary(400.0, 12.0), STALLED),  # under half the throughput
        (_summary(900.0, 2500.0), STALLED),  # p99 over 10x and over 1 s
        (_summary(950.0, 12.0), UNAFFECTED),
        (_summary(850.0, 29.0), UNAFFECTED),  # within 20 ms of the baseline's p99
        (_summary(650.0, 40.0), SLOWED),
        (_summary(950.0, 90.0), SLOWED),
    ],
)
def test_each_verdict_from_planted_figures(summary: dict[str, Any] | None, verdict: str) -> None:
    result: Any = None if summary is None else {"summary": summary, "status": "ok"}
    row = Row(
        _cell(GTHREAD, 25),
        predict(_cell(GTHREAD, 25), {"workers": 2, "threads": 10}, 32),
        result,
        BASE,
    )  # type: ignore[arg-type]
    assert row.verdict == verdict
    assert row.as_predicted is (verdict == STALLED)


def test_no_verdict_without_a_baseline() -> None:
    row = Row(
        _cell(UVICORN, 25),
        predict(_cell(UVICORN, 25), {"workers": 1, "threads": 1}, 32),
        {"summary": BASE, "status": "ok"},
        None,
    )  # type: ignore[arg-type]
    assert row.verdict is None and not row.as_predicted


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
    held = {"idle": {"asked": 25, "opened": 25, "failed": 0, "closed": 3, "held": 22,
                     "answered": {}, "closed_after_s": None}}  # fmt: skip
    settings = {"workers": 2, "threads": 10}
    outcome = Outcome(tmp_path)
    baseline: Any = {"summary": BASE, "status": "ok", "reason": None}
    surprise: Any = {"summary": _summary(990.0, 11.0, misbehaving=held), "status": "ok"}
    outcome.rows = [
        Row(_cell(GTHREAD, 0), predict(_cell(GTHREAD, 0), settings, 32), baseline, BASE),  # type: ignore[arg-type]
        Row(_cell(GTHREAD, 25), predict(_cell(GTHREAD, 25), settings, 32), surprise, BASE),  # type: ignore[arg-type]
    ]
    text = markdown(outcome, "python -m stackbench experiment slow-clients")
    row = next(line for line in text.splitlines() if "| 25 idle |" in line)
    assert "| stalled | unaffected ⚠ |" in row and "| 0.99 |" in row and "| 22 / 3 |" in row
    assert "1 cell(s) not as predicted." in text


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
         "--duration", "2s", "--warmup", "1s", "--output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = tmp_path.iterdir()
    text = (run_dir / "experiment.md").read_text()
    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|")[1:3]): line
        for line in text.splitlines()
        if line.startswith("| django_sync @ gunicorn-sync")
    }
    assert "| stalled | stalled |" in rows[("direct", "25 idle")]
    assert "| unaffected |" in rows[("nginx", "25 idle")]
    assert "stalled" not in rows[("nginx", "25 idle")].split("|")[5]  # measured: not stalled
