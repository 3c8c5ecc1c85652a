"""The GitHub workflows: valid against the workflow JSON Schema, and the bench job matrix
is exactly the valid pairs (``stackbench.matrix.pairs()``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stackbench import matrix

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPT = ROOT / ".github" / "scripts" / "bench_matrix.py"


def _workflow(name: str) -> dict[str, Any]:
    return dict(YAML(typ="safe").load((WORKFLOWS / name).read_text()))


def _expected() -> list[dict[str, str]]:
    return [{"app": p.app, "server": p.server, "session": p.session} for p in matrix.pairs()]


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_workflows_are_valid_github_workflows() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *(str(p) for p in sorted(WORKFLOWS.glob("*.yml"))),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "No module named check_jsonschema" in done.stderr:
        pytest.fail("check-jsonschema is not installed: it belongs to the test dependencies")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["bench.yml", "ci.yml"]


def test_ci_runs_lint_and_tests_through_nox() -> None:
    jobs = _workflow("ci.yml")["jobs"]
    commands = {name: " ".join(s.get("run", "") for s in j["steps"]) for name, j in jobs.items()}
    assert "nox --non-interactive -s lint" in commands["lint"]
    assert "nox --non-interactive -s tests" in commands["tests"]
    assert all("pip install" in c and "nox" in c and "uv" in c for c in commands.values())


def test_bench_jobs_use_the_matrix_the_pairs_job_builds() -> None:
    jobs = _workflow("bench.yml")["jobs"]
    assert jobs["pairs"]["outputs"]["matrix"] == "${{ steps.pairs.outputs.matrix }}"
    assert jobs["bench"]["strategy"]["matrix"] == "${{ fromJSON(needs.pairs.outputs.matrix) }}"
    assert jobs["bench"]["env"]["SESSION"] == "${{ matrix.session }}"
    bench_run = next(s["run"] for s in jobs["bench"]["steps"] if s.get("name") == "Bench")
    assert '-s "$SESSION"' in bench_run and "--output results/ci" in bench_run
    assert '--duration "$DURATION" --warmup "$WARMUP"' in bench_run
    assert jobs["bench"]["env"]["DURATION"].endswith("'5s' }}")
    report = " ".join(s.get("run", "") for s in jobs["report"]["steps"])
    assert "-s report --" in report and "GITHUB_STEP_SUMMARY" in report
    assert jobs["report"]["needs"] == "bench"


def test_the_matrix_script_turns_the_pair_list_into_the_job_matrix() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=matrix.as_json(),
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert json.loads(outputs["matrix"]) == {"include": _expected()}
    assert outputs["count"] == str(len(_expected())) != "0"


@pytest.mark.slow
def test_the_pairs_step_run_verbatim_builds_exactly_the_valid_pairs(tmp_path: Path) -> None:
    """The workflow's own shell step, with nox building its `matrix` session venv."""
    step = next(s for s in _workflow("bench.yml")["jobs"]["pairs"]["steps"] if s.get("id"))
    assert step["shell"] == "bash"  # GitHub runs it with -e -o pipefail, as here
    output = tmp_path / "github_output"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(output),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = _outputs(output)
    assert json.loads(outputs["matrix"])["include"] == _expected()
    assert int(outputs["count"]) == len(matrix.pairs())
