"""``serve --app PATH``: an app of its own served for load from elsewhere, measured by
``bench --target`` with its scenario file (issue 21, deliverable 2).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from shared_fixtures.processes import processes_owned_by
from tests.harness.runs import result_documents
from tests.harness.serving import bench_target, serving
from tests.your_app.commands import the_run_dir
from tests.your_app.made_here import notes_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


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
    (document,) = result_documents(the_run_dir(tmp_path / "out"))
    assert document["status"] == "ok" and document["app_source"]["path"] == str(app)
    assert processes_owned_by(owner) == []
