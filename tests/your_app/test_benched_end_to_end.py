"""Apps nobody here wrote for the harness, benched end to end (issue 21, deliverable 5):
made outside the repository (tests/your_app/made_here.py), each with a declaration and a
scenario file, each under three servers on the embedded PostgreSQL, as a user runs
``python -m stackbench bench --app PATH``. A planted wrong body is ``degraded``.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import pytest

from stackbench import results
from tests.harness.runs import result_documents
from tests.your_app.commands import SHORT, checked, stackbench, the_run_dir
from tests.your_app.made_here import django_project, notes_app

# Three servers on a busy 2-core machine: a test may take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _benched_under_three_servers(app: Path, servers: list[str], output: Path) -> None:
    owner = uuid.uuid4().hex
    done = stackbench(
        "bench", "--app", str(app), "--server", ",".join(servers), "--output", str(output),
        *SHORT, owner=owner,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = the_run_dir(output)
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
        passes, fails = checked(document)
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
    done = stackbench(
        "bench", "--app", str(app), "--server", "uvicorn", "--scenarios", "note",
        "--scenario-option", "sample=1", "--output", str(output), *SHORT,
        owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (document,) = result_documents(the_run_dir(output))
    assert document["status"] == "degraded", document["reason"]
    assert document["flags"]["checks_failed"] is True
    assert "note: body is valid against its JSON Schema" in document["reason"]
    passes, fails = checked(document)
    assert fails > 0 and passes > 2 * fails  # one in four wrong, and only those
