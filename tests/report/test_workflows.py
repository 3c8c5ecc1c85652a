"""The GitHub workflows: valid against the workflow JSON Schema, and the bench jobs
together run exactly the valid pairs (``stackbench.matrix.pairs()``), one app per job, each
job with the reference pair (docs/ci.md)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stackbench import matrix
from stackbench.matrix import REFERENCE_APP, REFERENCE_SERVER
from stackbench.servers import SERVERS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPTS = ROOT / ".github" / "scripts"
SCRIPT = SCRIPTS / "bench_matrix.py"
REFERENCE = (REFERENCE_APP, REFERENCE_SERVER)


def _script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _workflow(name: str) -> dict[str, Any]:
    return dict(YAML(typ="safe").load((WORKFLOWS / name).read_text()))


def _expected() -> set[tuple[str, str]]:
    return {(p.app, p.server) for p in matrix.pairs()}


def _job_pairs(job: dict[str, str]) -> list[tuple[str, str]]:
    return [tuple(item.split("@")) for item in job["pairs"].split(",")]  # type: ignore[misc]


def _check_sharding(include: list[dict[str, str]]) -> None:
    """What the report relies on: every valid pair in exactly one job, each job one app's
    servers side by side plus the reference, an exact pin alone with the reference."""
    union: list[tuple[str, str]] = []
    for job in include:
        pairs = _job_pairs(job)
        assert pairs[0] == REFERENCE and pairs.count(REFERENCE) == 1, job
        own = pairs[1:] if job["name"] != REFERENCE_APP else pairs
        assert len({app for app, _ in own}) == 1, f"one app per job: {job}"
        pinned = [s for _, s in own if any("==" in r for r in SERVERS[s].requirements)]
        assert not pinned or len(own) == 1, f"a pinned server shares its venv: {job}"
        union += own
    assert sorted(union) == sorted(_expected()), "each valid pair in exactly one job"


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


def test_ci_runs_every_default_session_through_nox() -> None:
    """One job per session that `nox` runs by default and `.ci/run` runs (the noxfile's
    nox.options.sessions), each through nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    (defaults,) = [
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions"
    ]
    assert defaults == ["lint", "tests", "tests_slow", "conformance"]
    jobs = _workflow("ci.yml")["jobs"]
    commands = {name: " ".join(s.get("run", "") for s in j["steps"]) for name, j in jobs.items()}
    assert sorted(commands) == sorted(defaults)
    for session in defaults:
        assert f"nox --non-interactive -s {session}" in commands[session]
    assert all("pip install" in c and "nox" in c and "uv" in c for c in commands.values())


def test_bench_jobs_use_the_matrix_the_pairs_job_builds() -> None:
    jobs = _workflow("bench.yml")["jobs"]
    assert jobs["pairs"]["outputs"]["matrix"] == "${{ steps.pairs.outputs.matrix }}"
    assert jobs["bench"]["strategy"]["matrix"] == "${{ fromJSON(needs.pairs.outputs.matrix) }}"
    assert jobs["bench"]["env"]["PAIRS"] == "${{ matrix.pairs }}"
    steps = {s.get("name"): s.get("run", "") for s in jobs["bench"]["steps"]}
    bench_run = steps["Bench the job's pairs side by side"]
    assert bench_run.startswith(
        'python -m nox --non-interactive -s bench_pairs -- --pairs "$PAIRS"'
    )
    assert "--output results/ci" in bench_run
    assert '--duration "$DURATION" --warmup "$WARMUP"' in bench_run
    assert jobs["bench"]["env"]["DURATION"].endswith("'5s' }}")
    report = " ".join(s.get("run", "") for s in jobs["report"]["steps"])
    assert "-s report --" in report and "GITHUB_STEP_SUMMARY" in report
    assert jobs["report"]["needs"] == "bench"


def test_the_matrix_script_shards_the_pairs_by_app_with_the_reference() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=matrix.as_json(),
        capture_output=True,
        text=True,
        check=True,
    )
    outputs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    include = json.loads(outputs["matrix"])["include"]
    _check_sharding(include)
    assert outputs["count"] == str(len(include)) != "0"
    names = [job["name"] for job in include]
    assert len(set(names)) == len(names), "names are artifact names: unique"
    # gunicorn-eventlet's gunicorn==25.3.0 would downgrade the app's other gunicorn servers.
    eventlet = [job for job in include if "@gunicorn-eventlet" in job["pairs"]]
    assert eventlet and all(len(_job_pairs(job)) == 2 for job in eventlet)


def test_the_matrix_script_runs_before_anything_is_installed() -> None:
    """CI runs it before any install: under ``python -S`` (no site-packages, so no
    matplotlib) it gives the same jobs as with everything installed."""
    listing = matrix.as_json()
    bare = subprocess.run(
        [sys.executable, "-S", str(SCRIPT)], input=listing, capture_output=True, text=True
    )
    assert bare.returncode == 0, bare.stderr
    full = subprocess.run(
        [sys.executable, str(SCRIPT)], input=listing, capture_output=True, text=True, check=True
    )
    assert bare.stdout == full.stdout != ""
    # ... and ``-S`` does hide what the report needs, installed here as the tests run.
    for flags, found in (([], 0), (["-S"], 1)):
        probe = [sys.executable, *flags, "-c", "import matplotlib"]
        assert subprocess.run(probe, capture_output=True).returncode == found, flags


def test_the_sharding_check_rejects_bad_job_lists() -> None:
    """The check above fails on each way a job list could go wrong."""
    good = _script("bench_matrix").jobs(sorted(_expected()))
    _check_sharding(good)
    no_reference = [dict(job, pairs=job["pairs"].split(",", 1)[-1]) for job in good]
    one_lost = [dict(job, pairs=job["pairs"].rsplit(",", 1)[0]) for job in good]
    mixed = [
        {"name": "mixed", "pairs": f"{REFERENCE_APP}@{REFERENCE_SERVER},{p}"}
        for p in ["django_sync@granian,tortoise@granian"]
    ] + good
    pinned_shared = [
        {
            "name": "django_sync",
            "pairs": f"{REFERENCE_APP}@{REFERENCE_SERVER},django_sync@gunicorn-sync,"
            "django_sync@gunicorn-eventlet",
        }
    ]
    for bad in (no_reference, one_lost, mixed, pinned_shared):
        with pytest.raises(AssertionError):
            _check_sharding(bad)


def test_a_matrix_without_the_reference_pair_is_refused() -> None:
    listing = json.loads(matrix.as_json())
    listing["pairs"] = [p for p in listing["pairs"] if (p["app"], p["server"]) != REFERENCE]
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], input=json.dumps(listing), capture_output=True, text=True
    )
    assert done.returncode != 0 and "reference pair" in done.stderr and done.stdout == ""


def test_a_job_venv_never_mixes_a_pin_with_another_spec_of_it() -> None:
    """The bench_pairs session's installs: gunicorn==25.3.0 never beside gunicorn>=23."""
    for job in _script("bench_matrix").jobs(sorted(_expected())):
        chosen = matrix.parse_pairs(job["pairs"])
        requirements = [r for r in matrix.requirements(chosen) if not r.startswith("-r")]
        requirements = [r for r in requirements if not r.endswith(".txt")]
        specs: dict[str, set[str]] = {}
        for requirement in requirements:
            name = requirement.split("[")[0].split("=")[0].split(">")[0].split("<")[0]
            specs.setdefault(name, set()).add(requirement)
        for found in specs.values():
            if any("==" in spec for spec in found):
                assert len(found) == 1, f"{job['name']}: {sorted(found)}"
    mixed = matrix.requirements(
        [
            matrix.Pair("django_sync", "gunicorn-sync"),
            matrix.Pair("django_sync", "gunicorn-eventlet"),
        ]
    )
    # the check has teeth: the two gunicorn specs side by side
    assert "gunicorn==25.3.0" in mixed and any(r.startswith("gunicorn>=") for r in mixed)


def test_pairs_are_read_only_as_valid_app_at_server_lists() -> None:
    assert matrix.parse_pairs("gino_style@uvicorn,tortoise@granian") == [
        matrix.Pair("gino_style", "uvicorn"),
        matrix.Pair("tortoise", "granian"),
    ]
    for bad in ("gino_style", "gino_style@", "@uvicorn", "gino_style@uvicorn,"):
        with pytest.raises(matrix.PairError, match="not app@server"):
            matrix.parse_pairs(bad)
    with pytest.raises(matrix.PairError, match="gunicorn-sync"):
        matrix.parse_pairs("gino_style@gunicorn-sync")  # an invalid pair: a WSGI server


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
    include = json.loads(outputs["matrix"])["include"]
    _check_sharding(include)
    assert int(outputs["count"]) == len(include)
