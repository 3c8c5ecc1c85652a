"""bench --scenario-file FILE --scenarios NAME,...: the file checked before anything
starts, handed to loadgen with the load, and its checks judged as the contract's are (a
wrong body makes the result degraded), end to end against a real served app."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from loadgen import cli as loadgen_cli
from shared_fixtures.processes import processes_owned_by
from stackbench import results
from stackbench.cli import build_parser
from stackbench.loadrun import aimed, loadgen_argv
from stackbench.options import OptionError, options_from, with_scenario_file
from tests.harness.runs import bench_process, only_run_dir, result_documents

ROOT = Path(__file__).resolve().parents[2]

# gino_style's /json answers {"message": "Hello, World!"}: "right" expects that, "wrong"
# expects what it never says, so each of its sampled checks fails.
FILE = """\
[scenarios.right]
description = "the greeting"
[[scenarios.right.requests]]
name = "json"
path = "/json"
check.json = {path = "message", equals = "Hello, World!"}

[scenarios.wrong]
[[scenarios.wrong.requests]]
name = "json"
path = "/json"
check.json = {path = "message", equals = "Hello, World?"}
"""


@pytest.fixture()
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.toml"
    path.write_text(FILE)
    return path


def _args(*typed: str) -> argparse.Namespace:
    return build_parser().parse_args(
        ["bench", "--app", "gino_style", "--server", "uvicorn", *typed]
    )


def test_the_file_is_handed_to_loadgen_with_the_load(scenario_file: Path, tmp_path: Path) -> None:
    given = ["--scenario-file", str(scenario_file), "--output", str(tmp_path)]
    every = options_from(_args(*given))
    assert every.scenarios == ("right", "wrong")  # none named: all of the file's, in order
    named = options_from(_args(*given, "--scenarios", "wrong"))
    assert named.scenarios == ("wrong",)
    assert named.load.scenario_file == str(scenario_file)
    assert named.as_dict()["scenario_file"] == str(scenario_file)  # the manifest's job
    load = aimed(named.load, "wrong", "http://127.0.0.1:9/")
    argv = loadgen_argv(load, tmp_path / "r.json", None)
    back = loadgen_cli.config_from_args(loadgen_cli.build_parser().parse_args(argv[3:]))
    assert back == load and back.scenario_file == str(scenario_file)


def test_the_hook_for_a_declared_file(scenario_file: Path, tmp_path: Path, monkeypatch) -> None:
    """An app's declared scenario file: relative paths made absolute, its scenarios all or
    those named, --scenario-file given on the command line first."""
    monkeypatch.chdir(tmp_path)
    plain = options_from(_args("--output", str(tmp_path)))
    assert plain.load.scenario_file is None and plain.scenarios[0] == "json"
    declared = options_from(_args("--output", "o"), scenario_file="scenarios.toml")
    assert declared.scenarios == ("right", "wrong")
    assert declared.load.scenario_file == str(scenario_file)
    one = with_scenario_file(plain, "scenarios.toml", ["right"])
    assert (one.scenarios, one.load.scenario_file) == (("right",), str(scenario_file))
    with pytest.raises(OptionError, match=r"has no scenario 'db' \(it has: right, wrong\)"):
        with_scenario_file(plain, scenario_file, ["db"])
    other = tmp_path / "other.toml"
    other.write_text(FILE.replace("scenarios.right", "scenarios.chosen"))
    chosen = options_from(
        _args("--scenario-file", str(other), "--output", "o"), scenario_file=scenario_file
    )
    assert chosen.scenarios == ("chosen", "wrong") and chosen.load.scenario_file == str(other)


def _stackbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        # nothing listens there: a command that started anything would fail on it (exit 1)
        env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )


REFUSED = [
    (FILE, ["--scenarios", "right,nope"], "has no scenario 'nope' (it has: right, wrong)"),
    (FILE + "wieght = 2\n", [], "scenario 'wrong', request 1 ('json'): unknown key 'wieght'"),
    ("[scenarios.x\n", [], "not valid TOML"),
    (FILE, ["--scenario-option", "seconds=1"], "scenario option 'seconds'"),
    (None, [], "cannot read scenario file"),
]


@pytest.mark.parametrize(("text", "extra", "says"), REFUSED, ids=[s for _, _, s in REFUSED])
def test_a_bad_scenario_file_is_one_line_and_exit_2(
    tmp_path: Path, text: str | None, extra: list[str], says: str
) -> None:
    path = tmp_path / "scenarios.toml"
    if text is not None:
        path.write_text(text)
    output = tmp_path / "results"
    result = _stackbench(
        "bench", "--app", "gino_style", "--server", "uvicorn", "--output", str(output),
        "--scenario-file", str(path), *extra,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not output.exists()


@pytest.mark.slow
def test_a_wrong_body_in_a_file_scenario_is_degraded(scenario_file: Path, tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        "gino_style", "uvicorn", tmp_path / "out", "--scenario-file", str(scenario_file),
        owner=owner,
    )  # fmt: skip
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 1, stderr + stdout  # a degraded run
    run_dir = only_run_dir(tmp_path / "out")
    right, wrong = result_documents(run_dir)
    assert (right["scenario"], wrong["scenario"]) == ("right", "wrong")
    assert right["status"] == "ok", right["reason"]
    assert right["flags"]["checks_failed"] is False
    assert wrong["status"] == "degraded" and wrong["flags"]["checks_failed"] is True
    assert 'wrong responses: json: body at message is "Hello, World?"' in wrong["reason"]
    for document, expected, counted in ((right, "!", "passes"), (wrong, "?", "fails")):
        assert document["scenario_file"] == str(scenario_file)
        (repeat,) = document["repeats"]
        checked = {c["name"]: c for c in repeat["loadgen"]["checks"]}
        body = checked[f'json: body at message is "Hello, World{expected}"']
        assert body[counted] > 10 and body[counted] == body["passes"] + body["fails"]
        assert checked["json: status is 200"]["fails"] == 0
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    assert manifest["status"] == "degraded"
    assert manifest["options"]["jobs"][0]["scenario_file"] == str(scenario_file)
    assert processes_owned_by(owner) == []
