"""A run directory written by an older schema version is reported as if written today:
the same report, word for word, and no warning (docs/bench.md lists the versions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackbench.report import make_report
from stackbench.report.load import load_run
from tests.report.synthetic import result, write_run


def _as_version_1(path: Path) -> None:
    """Rewrite a current result or manifest in version 1's words (a test's forgery: the
    harness itself never rewrites a file)."""
    document: dict[str, Any] = json.loads(path.read_text())
    document["schema_version"] = 1
    if document["kind"] == "stackbench.result":
        document["variant"] = document.pop("label")
        if document["summary"] is not None:
            document["summary"]["requests"] = document["summary"].pop("responses")
    for job in document.get("options", {}).get("jobs", []):
        job["served_variant"] = job.pop("variant")
        job["variant"] = job.pop("label")
    path.write_text(json.dumps(document))


def _run(base: Path) -> Path:
    documents = [
        {**result("run", "gino_style", "uvicorn", 5_000), "label": "r200"},
        {**result("run", "tortoise", "uvicorn", None, status="failed"), "label": None},
    ]
    return write_run(base, "run", documents)


def test_a_version_1_run_reads_and_reports_as_a_current_one(tmp_path: Path) -> None:
    current, old = _run(tmp_path / "current"), _run(tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["options"] = {
        "jobs": [{"app": "gino_style", "server": "uvicorn", "label": "r200", "variant": None}]
    }
    (old / "manifest.json").write_text(json.dumps(manifest))
    for path in old.glob("*.json"):
        _as_version_1(path)
    assert '"requests"' in (old / "gino_style--uvicorn--db.json").read_text()

    loaded = load_run(old)
    assert loaded.warnings == []
    assert [r.doc.get("label") for r in loaded.results] == ["r200", None]
    summary = loaded.results[0].summary
    assert summary is not None and summary["responses"] == 30_000
    assert loaded.manifest is not None
    assert loaded.manifest["options"].get("jobs") == [
        {"app": "gino_style", "server": "uvicorn", "label": "r200", "variant": None}
    ]

    reports = [
        make_report([run], output=tmp_path / f"out-{run.parent.name}") for run in (current, old)
    ]
    assert reports[0].warnings == reports[1].warnings == []
    assert reports[0].markdown.read_text() == reports[1].markdown.read_text()
