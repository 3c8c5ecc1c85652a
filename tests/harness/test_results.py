"""Result files: validated against the schemas, atomic, never overwritten."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from stackbench import results


def _manifest(run_id: str = "r1") -> dict:
    return {
        "schema_version": 1,
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
