"""techempower: a missing or wrong checkout is one line and exit 2; their copy changes only
where the database is; ours and theirs paired round by round; and one short run end to end
against a planted TechEmpower-like folder (real servers, real database, no network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackbench import callgrind, results
from stackbench.experiments import techempower, their_venv
from stackbench.experiments.techempower import (
    COUNTERPARTS,
    OURS,
    THEIRS,
    TechEmpowerError,
    TechEmpowerOutcome,
)
from stackbench.options import BENCH_LOAD, BenchOptions

ROOT = Path(__file__).resolve().parents[2]
PLANTED = Path(__file__).resolve().parent / "planted_techempower"
FASTAPI = PLANTED / "frameworks" / "Python" / "fastapi"
URL = "postgresql://postgres@127.0.0.1:6543/stackbench"


def _experiment(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "experiment", "techempower", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--techempower", "/nonexistent"], "error: --techempower /nonexistent: no "),
        # the planted folder has fastapi's apps, not django's
        (["--techempower", str(PLANTED), "--apps", "django_sync"], "hello/hello/wsgi.py"),
        ([], "error: techempower needs --techempower PATH"),
        (["--techempower", str(PLANTED), "--apps", "tortoise"], "no TechEmpower counterpart"),
    ],
)
def test_a_missing_or_wrong_path_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = _experiment(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_locate_takes_a_checkout_or_the_python_folder() -> None:
    assert techempower.locate(PLANTED, ["gino_style"]) == {"fastapi": FASTAPI}
    assert techempower.locate(FASTAPI.parent, ["gino_style"]) == {"fastapi": FASTAPI}


def test_their_copy_changes_only_the_database_location(tmp_path: Path) -> None:
    copy = tmp_path / "fastapi"
    shutil.copytree(FASTAPI, copy)
    changes: list[str] = []
    app = techempower.configure(COUNTERPARTS["gino_style"], copy, URL, changes)
    original, changed = (FASTAPI / "app.py").read_text(), (copy / "app.py").read_text()
    assert changed == (
        original.replace('host="tfb-database"', 'host="127.0.0.1"')
        .replace("port=5432", "port=6543")
        .replace('database="hello_world"', 'database="stackbench"')
    )
    assert app.fixed_environment() == {"PGUSER": "postgres", "PGPASS": ""}
    assert app.directory == copy and app.health == "/db"
    assert len(changes) == 4  # three literals and the environment, each recorded


def test_a_changed_app_is_one_line_naming_what_is_missing(tmp_path: Path) -> None:
    copy = tmp_path / "fastapi"
    shutil.copytree(FASTAPI, copy)
    source = copy / "app.py"
    source.write_text(source.read_text().replace('host="tfb-database"', 'host="db"'))
    with pytest.raises(TechEmpowerError, match="expected 'host=\"tfb-database\"' once, found it 0"):
        techempower.configure(COUNTERPARTS["gino_style"], copy, URL, [])


def test_django_gets_a_settings_overlay_not_an_edit(tmp_path: Path) -> None:
    hello = tmp_path / "hello"
    hello.mkdir()
    changes: list[str] = []
    app = techempower.configure(COUNTERPARTS["django_sync"], hello, URL, changes)
    overlay = (hello / "sb_techempower_settings.py").read_text()
    assert "from hello.settings import *" in overlay
    assert "'HOST': '127.0.0.1', 'PORT': 6543" in overlay
    assert app.fixed_environment()["DJANGO_SETTINGS_MODULE"] == "sb_techempower_settings"
    assert [p.name for p in hello.iterdir()] == ["sb_techempower_settings.py"]


def test_their_requirements_keep_their_pins_but_the_servers_are_ours() -> None:
    changes: list[str] = []
    pins = their_venv.wanted(FASTAPI, "requirements-sqlalchemy.txt", changes)
    gunicorn = their_venv._harness_version("gunicorn")
    assert pins == ["fastapi", "asyncpg", f"gunicorn=={gunicorn}", pins[3], "SQLAlchemy==2.0.45"]
    assert pins[3].startswith("uvicorn==") and pins[3] != "uvicorn==0.40.0"
    assert any(c.startswith("mysqlclient==2.2.7: left out") for c in changes)


def _row(per_cpu: float | None, status: str = "ok") -> Any:
    summary = {
        "rps": 100.0,
        "p99_ms": 10.0,
        "requests_per_server_cpu_s": per_cpu,
        "cpu_us_per_request": {"server": 500.0, "database": 500.0, "client": 1.0},
    }
    return {
        "app": "x",
        "server": "uvicorn",
        "scenario": "db",
        "status": status,
        "reason": None if status == "ok" else "wrong responses",
        "summary": summary if per_cpu else None,
    }


def test_each_round_is_ours_over_its_own_theirs(tmp_path: Path) -> None:
    outcome = TechEmpowerOutcome(tmp_path)
    gino = COUNTERPARTS["gino_style"]
    # Round 1: 900 / 1000 (0.90); round 2, the machine slower for both: 600 / 500 (1.20);
    # round 3: theirs degraded (a check failed) but measured: 800 / 1000 (0.80).
    for round_, (ours, theirs) in enumerate([(900.0, 1000.0), (600.0, 500.0), (800.0, 1000.0)]):
        techempower._record(outcome, gino, OURS, _row(ours), round_)
        status = "degraded" if round_ == 2 else "ok"
        techempower._record(outcome, gino, THEIRS, _row(theirs, status), round_)
    (row,) = techempower.rows(outcome)
    assert row[8] == "0.90 (0.80–1.20)"
    assert len(outcome.notes) == 1 and "degraded" in outcome.notes[0]
    assert not outcome.missing  # degraded keeps its numbers
    techempower._record(outcome, gino, THEIRS, _row(None, "failed"), 3)
    assert outcome.missing  # a failed side leaves a hole: exit 1


@pytest.mark.slow
def test_a_short_run_serves_ours_and_the_planted_app_in_alternating_duets(
    tmp_path: Path,
) -> None:
    options = BenchOptions(
        scenarios=("db", "fortunes"),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=4),
        output=tmp_path,
    )
    outcome = techempower.run_techempower(
        root=PLANTED,
        ours=["gino_style"],
        options=options,
        rounds=2,
        their_bin=Path(sys.executable).parent,  # no network: the harness's venv
    )
    assert outcome.notes == []  # their answers passed the smoke check and loadgen's checks
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    jobs = [(job["app"], job["label"]) for job in manifest["options"]["jobs"]]
    assert jobs == [
        ("gino_style", "ours-r1"),
        ("techempower_fastapi_raw", "theirs-r1"),
        ("techempower_fastapi_raw", "theirs-r2"),
        ("gino_style", "ours-r2"),
    ]
    served = results.read_result(
        outcome.run_dir / "techempower_fastapi_raw--uvicorn--fortunes--theirs-r2.json"
    )
    assert served["server_command"][-1] == "app:app" and served["status"] == "ok"
    assert 'host="tfb-database"' in (FASTAPI / "app.py").read_text()  # the original untouched
    (db, fortunes) = techempower.rows(outcome)
    assert db[1] == "db" and fortunes[1] == "fortunes" and db[8] != "–"
    markdown = techempower.markdown(outcome, "python -m stackbench experiment techempower")
    assert '`host="tfb-database"` → `host="127.0.0.1"`' in markdown


def test_instruction_counts_are_theirs_over_ours_round_by_round(tmp_path: Path) -> None:
    """Read like req/server CPU-s: below 1, ours runs more instructions per request."""
    outcome = TechEmpowerOutcome(tmp_path)
    gino = COUNTERPARTS["gino_style"]
    # Round 1: ours 500k, theirs 400k (0.80); round 2: ours not counted; round 3: 0.90.
    ours = {"db": 500_000.0}, {"db": None}, {"db": 500_000.0}
    theirs = {"db": 400_000.0}, {"db": 400_000.0}, {"db": 450_000.0}
    failure = "gino_style @ uvicorn ours-r2: GET /db answered 500, not 200"
    for round_, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        techempower._record_counts(
            outcome, gino, OURS, mine, failure if round_ == 1 else None, round_
        )
        techempower._record_counts(outcome, gino, THEIRS, other, None, round_)
    (row,) = techempower.instruction_rows(outcome)
    assert row[1:] == ["db", "500,000", "400,000", "0.850 (0.800–0.900)"]
    assert outcome.missing and outcome.notes == [failure]  # a hole: exit 1
    markdown = techempower.markdown(outcome, "python -m stackbench experiment techempower")
    assert "| instructions/request ours |" in markdown and "req/s ours" not in markdown


@pytest.mark.slow
@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_a_short_instructions_run_counts_ours_and_the_planted_app(tmp_path: Path) -> None:
    outcome = techempower.run_techempower(
        root=PLANTED,
        ours=["gino_style"],
        options=BenchOptions(scenarios=("db",), workers=1, output=tmp_path),
        rounds=1,
        their_bin=Path(sys.executable).parent,  # no network: the harness's venv
        instructions=(20, 20),
    )
    assert outcome.notes == [] and not outcome.missing
    sides = outcome.counted[("gino_style", "uvicorn", "db")]
    assert sides[OURS][0] and sides[THEIRS][0]
    assert sides[OURS][0] != sides[THEIRS][0]  # two apps: two counts, not one twice
    manifest = results.read_json(outcome.run_dir / "manifest.json", "manifest")
    assert (manifest["status"], manifest["reason"]) == ("ok", None)  # no result documents
    dumps = sorted(p.name for p in (outcome.run_dir / "callgrind").iterdir())
    assert dumps == ["gino_style-uvicorn-ours-r1", "techempower_fastapi_raw-uvicorn-theirs-r1"]


def test_a_checkout_records_its_commit_and_an_export_nothing(tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(tmp_path)]
    (tmp_path / "frameworks").mkdir()
    (tmp_path / "frameworks" / "x").write_text("x")
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*git, *args], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert techempower._commit(tmp_path) == f" at commit {head.strip()}"
    assert techempower._commit(tmp_path / "frameworks") == ""  # inside one, not its top
