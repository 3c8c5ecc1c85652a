"""Result files: validated against the schemas, atomic, never overwritten."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from stackbench import results
from stackbench.documents import SCHEMA_VERSION
from tests.report.synthetic import result


def _manifest(run_id: str = "r1") -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "stackbench.manifest",
        "run_id": run_id,
        "status": "ok",
        "reason": None,
        "experiment": None,
        "started_at": results.now(),
        "finished_at": results.now(),
        "command": ["x"],
        "git": results.git_state(),
        "python": results.python_info(),
        "packages": results.packages(),
        "machine": results.machine(),
        "pinning": {"server_cpus": None, "client_cpus": None},
        "database": {"embedded": True, "url": "postgresql://x", "settings": {}},
        "seed": {"scale": 1, "checksum": "abc", "reseeded": False},
        "loadgen": {},
        "options": {},
        "pairs": [{"app": "gino_style", "server": "uvicorn"}],
        "results": [],
    }


def test_manifest_provenance_is_filled_in() -> None:
    manifest = _manifest()
    results.validate(manifest, "manifest")
    assert manifest["python"]["version"].startswith("3.")
    assert manifest["machine"]["cpu_count"] >= 1 and manifest["machine"]["cpu_model"]
    assert "psycopg" in manifest["packages"]


def test_invalid_document_names_the_field() -> None:
    manifest = _manifest()
    del manifest["git"]
    with pytest.raises(results.ResultsError, match="'git' is a required property"):
        results.validate(manifest, "manifest")
    manifest = _manifest()
    manifest["status"] = "great"
    with pytest.raises(results.ResultsError, match="invalid at status"):
        results.validate(manifest, "manifest")


def test_write_is_atomic_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    results.write_json(path, _manifest(), "manifest")
    assert json.loads(path.read_text())["run_id"] == "r1"
    with pytest.raises(results.ResultsError, match="refusing to overwrite"):
        results.write_json(path, _manifest("r2"), "manifest")
    assert json.loads(path.read_text())["run_id"] == "r1"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(results.ResultsError, match="No space left on device"):
        results.write_json(tmp_path / "manifest.json", _manifest(), "manifest")
    assert list(tmp_path.iterdir()) == []


def test_run_directories_are_new_every_time(tmp_path: Path) -> None:
    first = results.new_run_dir(tmp_path, "a-b")
    second = results.new_run_dir(tmp_path, "a-b")
    assert first != second and first.is_dir() and second.is_dir()


def test_read_names_a_missing_or_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(results.ResultsError, match=r"manifest\.json: missing"):
        results.read_json(tmp_path / "manifest.json", "manifest")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(results.ResultsError, match=r"bad\.json: unreadable"):
        results.read_json(tmp_path / "bad.json", "manifest")


# -- files of older versions: read in this version's words, never rewritten --------------
PUBLISHED = sorted((results.ROOT / "results" / "published").glob("*/manifest.json"))
VERSION_1 = [p for p in PUBLISHED if json.loads(p.read_text())["schema_version"] == 1]


@pytest.mark.parametrize("path", PUBLISHED, ids=[p.parent.name for p in PUBLISHED])
def test_every_published_manifest_reads_in_this_version(path: Path) -> None:
    manifest = results.read_manifest(path)
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["status"] == "ok"
    assert VERSION_1, "the version-1 runs the next test reads are published"


@pytest.mark.parametrize("path", VERSION_1, ids=[p.parent.name for p in VERSION_1])
def test_a_version_1_manifest_reads_with_its_jobs_keys_renamed(path: Path) -> None:
    """Version 1 named a job's label "variant" and the bench variant it served
    "served_variant" (the published runs were written so)."""
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1
    manifest = results.read_manifest(path)
    assert manifest["schema_version"] == SCHEMA_VERSION
    jobs = manifest["options"].get("jobs", [])
    assert len(jobs) == len(raw["options"]["jobs"]) > 0
    for old, new in zip(raw["options"]["jobs"], jobs, strict=True):
        assert new["label"] == old["variant"]
        assert new.get("variant") == old.get("served_variant")
        assert "served_variant" not in new
    assert json.loads(path.read_text()) == raw  # the file is as it was


def _result(**changes: object) -> dict:
    document = result("r1", "gino_style", "uvicorn", 1000.0)
    document.update(label="r200", **changes)
    return document


def test_a_version_1_result_reads_with_its_label_and_responses_renamed(tmp_path: Path) -> None:
    current = _result()
    results.validate(current, "result")
    old = {k: v for k, v in current.items() if k != "label"}
    old.update(schema_version=1, variant="r200")
    old["summary"] = {
        ("requests" if k == "responses" else k): v for k, v in current["summary"].items()
    }
    path = tmp_path / "gino_style--uvicorn--db--r200.json"
    path.write_text(json.dumps(old))
    read = results.read_result(path)
    assert read == current
    assert json.loads(path.read_text()) == old  # the file is as it was


def test_a_current_result_in_the_old_words_is_refused() -> None:
    current = _result()
    current["summary"]["requests"] = current["summary"].pop("responses")
    with pytest.raises(results.ResultsError, match="'responses' is a required property"):
        results.validate(current, "result")
    unknown = _result(schema_version=3)
    with pytest.raises(results.ResultsError, match="invalid at schema_version"):
        results.validate(results.upgraded(unknown, "result"), "result")
