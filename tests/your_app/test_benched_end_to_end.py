"""Apps nobody here wrote for the harness, benched end to end (issue 21, deliverable 5):
made outside the repository (tests/your_app/made_here.py), each with a declaration and a
scenario file, each under three servers on the embedded PostgreSQL, as a user runs
``python -m stackbench bench --app PATH``. A planted wrong body is ``degraded``; a copy of
fastapi_sqla with one middleware, benched beside the original in one run, is priced in the
report (``--against``) and, with callgrind, in instructions per request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from stackbench import callgrind, results
from stackbench.experiments import features
from stackbench.experiments.features import BASELINE
from stackbench.matrix import Pair
from stackbench.options import BenchOptions
from tests.harness.runs import result_documents
from tests.harness.serving import bench_target, serving
from tests.your_app.made_here import django_project, middleware_copy, notes_app

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--duration", "1s", "--warmup", "0.5s", "--workers", "1", "--connections", "8"]
# Under callgrind, or three servers on a busy 2-core machine, a test takes minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _stackbench(*args: str, owner: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, on the embedded PostgreSQL (DATABASE_URL unset)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, OWNER_VAR: owner},
    )
    assert processes_owned_by(owner) == [], "a process outlived the command"
    return done


def _run_dir(output: Path) -> Path:
    (run_dir,) = output.iterdir()
    return run_dir


def _checked(document: dict) -> tuple[int, int]:
    """(passes, fails) of the scenario's body checks over the repeats."""
    checks = [
        c
        for repeat in document["repeats"]
        for c in repeat["loadgen"]["checks"]
        if not c["name"].endswith("status is 200")
    ]
    return sum(c["passes"] for c in checks), sum(c["fails"] for c in checks)


def _benched_under_three_servers(app: Path, servers: list[str], output: Path) -> None:
    owner = uuid.uuid4().hex
    done = _stackbench(
        "bench", "--app", str(app), "--server", ",".join(servers), "--output", str(output),
        *SHORT, owner=owner,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = _run_dir(output)
    documents = result_documents(run_dir)
    declared = tomllib.loads((app / "scenarios.toml").read_text())["scenarios"]
    measured = sorted((d["server"], d["scenario"]) for d in documents)
    assert measured == sorted((s, name) for s in servers for name in declared)
    for document in documents:
        assert document["status"] == "ok", document["reason"]
        assert document["app"] == app.name
        assert document["scenario_file"] == str(app / "scenarios.toml")
        source = document["app_source"]
        assert source["path"] == str(app) and source["declaration"] == str(app / "stackbench.toml")
        assert source["git"] == {"commit": None, "dirty": None}  # not in a repository
        passes, fails = _checked(document)
        assert passes > 0 and fails == 0, document["repeats"][0]["loadgen"]["checks"]
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    assert manifest["seed"]["checksum"] == ""  # the contract's seed was never loaded


def test_a_startproject_django_app_under_three_servers(tmp_path: Path) -> None:
    project = django_project(tmp_path)
    _benched_under_three_servers(
        project, ["gunicorn-gthread", "uvicorn", "granian"], tmp_path / "out"
    )


def test_a_starlette_app_under_three_servers(tmp_path: Path) -> None:
    app = notes_app(tmp_path)
    _benched_under_three_servers(app, ["uvicorn", "hypercorn", "granian"], tmp_path / "out")


def test_a_planted_wrong_body_is_degraded(tmp_path: Path) -> None:
    """Every fourth note has the wrong title; every response is checked (sample=1)."""
    app = notes_app(tmp_path, "notes_planted")
    main = app / "main.py"
    old = 'return JSONResponse({"id": row["id"], "title": row["title"]})'
    assert old in main.read_text(), "notes/main.py has changed: update this test"
    main.write_text(
        main.read_text().replace(
            old, 'return JSONResponse({"id": row["id"], "title": _title(row["title"])})'
        )
        + "\n\nimport itertools  # noqa: E402\n\n_answers = itertools.count()\n\n\n"
        "def _title(title):  # planted: every fourth answer is wrong\n"
        "    return 'wrong' if next(_answers) % 4 == 3 else title\n"
    )
    output = tmp_path / "out"
    done = _stackbench(
        "bench", "--app", str(app), "--server", "uvicorn", "--scenarios", "note",
        "--scenario-option", "sample=1", "--output", str(output), *SHORT,
        owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (document,) = result_documents(_run_dir(output))
    assert document["status"] == "degraded", document["reason"]
    assert document["flags"]["checks_failed"] is True
    assert "note: body is valid against its JSON Schema" in document["reason"]
    passes, fails = _checked(document)
    assert fails > 0 and passes > 2 * fails  # one in four wrong, and only those


def test_a_copy_with_one_middleware_is_priced_beside_the_original(tmp_path: Path) -> None:
    copy = middleware_copy(tmp_path)
    output = tmp_path / "out"
    done = _stackbench(
        "bench", "--pairs", f"fastapi_sqla@uvicorn,{copy}@uvicorn", "--scenarios", "json",
        "--output", str(output), *SHORT, owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = _run_dir(output)
    by_app = {d["app"]: d for d in result_documents(run_dir)}
    assert set(by_app) == {"fastapi_sqla", "fastapi_timed"}
    assert by_app["fastapi_timed"]["app_source"]["path"] == str(copy)
    assert by_app["fastapi_sqla"]["app_source"]["git"]["commit"]  # the repository's
    report = _stackbench(
        "report", str(run_dir), "--against", "fastapi_sqla", "--output", str(tmp_path / "r"),
        owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    markdown = (tmp_path / "r" / "report.md").read_text()
    priced = markdown[markdown.index("Against `fastapi_sqla`") :]
    row = re.findall(r"^\| fastapi_timed @ uvicorn \| .*$", priced, re.M)[0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    own, base = (
        by_app[a]["summary"]["cpu_us_per_request"]["server"]
        for a in ("fastapi_timed", "fastapi_sqla")
    )
    assert cells[3:6] == [f"{own:,.0f}", f"{base:,.0f}", f"{own - base:+,.0f}"]


@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_the_middleware_in_instructions_per_request(tmp_path: Path) -> None:
    """The same copy as a variant of the features experiment's --instructions: counted,
    it runs more instructions per /json request than the original."""
    copy = middleware_copy(tmp_path)
    outcome = features.run_instructions(
        pairs=[Pair("fastapi_sqla", "uvicorn")],
        variants=[str(copy)],
        options=BenchOptions(scenarios=("json",), workers=1, output=tmp_path / "out"),
        rounds=1,
        requests=100,
        warmup=50,
        experiment="fastapi-features",
    )
    assert outcome.failures == []
    counted = outcome.counted[("fastapi_sqla", "uvicorn", "json")]
    (base,), (timed,) = counted[BASELINE], counted["fastapi_timed"]
    assert base and timed and timed > base, (base, timed)
    markdown = features.instruction_markdown(outcome, "x")
    assert f"- fastapi_timed: the app in `{copy}`, served in its place" in markdown
    (row,) = [line for line in markdown.splitlines() if "| fastapi_timed |" in line]
    assert row.split("|")[-2].strip().startswith("+")  # what the middleware adds


def test_served_for_load_from_elsewhere(tmp_path: Path) -> None:
    """serve --app PATH: the app on a database of its own, its source in /info; bench
    --target needs its scenario file (one line without it), then measures it."""
    app = notes_app(tmp_path / "apps")
    owner = uuid.uuid4().hex
    env_without_url = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    with serving(
        str(app), "uvicorn", tmp_path, "--workers", "1", owner=owner, env=env_without_url
    ) as target:
        assert target.info["app"] == "notes" and target.info["contract"] is False
        assert target.info["app_source"]["path"] == str(app)
        assert target.info["seed"]["checksum"] == ""  # the contract's seed not loaded
        refused = bench_target(target, tmp_path / "refused", owner=owner)
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            "error: notes does not serve the contract: give its scenario file "
            "(--scenario-file FILE, a copy of the one beside its stackbench.toml)"
        )
        assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())
        measured = bench_target(
            target, tmp_path / "out", "--scenario-file", str(app / "scenarios.toml"),
            "--scenarios", "note", owner=owner,
        )  # fmt: skip
        assert measured.returncode == 0, measured.stderr
    (document,) = result_documents(_run_dir(tmp_path / "out"))
    assert document["status"] == "ok" and document["app_source"]["path"] == str(app)
    assert processes_owned_by(owner) == []
