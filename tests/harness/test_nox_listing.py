"""`nox -l` as a page a person scans in one screen (stackbench/nox_listing.py; issue 25)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from stackbench import experiments, matrix, nox_listing
from stackbench.apps import ROOT
from stackbench.nox_command import CONFIRM_VAR, NoxCommand


def _listed(columns: int, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (CONFIRM_VAR, "NOXSESSION")}
    run = subprocess.run(
        [sys.executable, "-m", "nox", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": str(columns)},
    )
    if run.returncode != 0 and "No module named nox" in run.stderr:
        pytest.skip("nox is not installed in this environment")
    return run


@pytest.mark.parametrize("columns", [80, 100])
def test_nox_l_fits_one_screen_and_names_every_pair(columns: int) -> None:
    run = _listed(columns, "-l")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns, run.stdout
    assert len(lines) <= 50, run.stdout  # nox's own list was 120 lines
    # Each session once: bench's description is not repeated per pair.
    assert run.stdout.count("One (app, server) pair end to end") == 1
    for name in ("tests", "tests_slow", "lint", "matrix", "report", "bench_pairs"):
        assert any(line.split()[1:2] == [name] for line in lines), name
    words = set(run.stdout.replace(",", " ").replace(":", " ").split())
    for pair in matrix.pairs():
        assert {pair.app, pair.server} <= words, pair
    assert set(experiments.EXPERIMENTS) <= words


def test_a_filtered_or_json_list_stays_noxs_own() -> None:
    listed = _listed(80, "-l", "--json")
    assert listed.returncode == 0, listed.stderr
    # nox's JSON (of the sessions a bare `nox` runs), for machines: untouched.
    assert {s["name"] for s in json.loads(listed.stdout)} == {
        "tests",
        "tests_slow",
        "conformance",
        "lint",
    }
    assert not NoxCommand.parse(["nox", "-l", "-s", "bench"]).lists_sessions
    assert not NoxCommand.parse(["nox", "-l", "-k", "lint"]).lists_sessions
    assert NoxCommand.parse(["nox", "--list"]).lists_sessions


def _session(doc: str, python: Any = "3.11", params: list[tuple[Any, ...]] | None = None) -> Any:
    func = SimpleNamespace(__doc__=doc, python=python)
    if params:
        names = ("app", "server")[: len(params[0])]
        func.parametrize = [SimpleNamespace(arg_names=names, args=p) for p in params]
    return func


def test_sessions_are_grouped_only_when_their_values_are_the_same() -> None:
    pairs = [("a", "s1"), ("a", "s2"), ("b", "s1"), ("b", "s2"), ("c", "s3")]
    registry = {
        "lint": _session("Lint.\n\nMore."),
        "conformance": _session("Conformance.", python=["3.13"]),
        "bench": _session("Bench a pair.", params=pairs),
        "serve": _session("Serve a pair.", params=pairs),
        # A planted difference: one pair fewer, so serve2 may not share bench's list.
        "serve2": _session("Serve other pairs.", params=pairs[:-1]),
    }
    text = nox_listing.page(registry, ["lint"], 80)
    lines = text.splitlines()
    assert "* lint" in text and "- conformance-3.13" in text and "More." not in text
    assert text.count("a, b:") == 2  # apps sharing their servers share a line, per group
    assert "(5 in all" in text and "(4 in all" in text
    bench_at = next(i for i, line in enumerate(lines) if "bench(app=…, server=…)" in line)
    assert "serve(app=…, server=…)" in lines[bench_at + 1]  # same values: one list
    assert "c:" in lines[bench_at + 4] and "s3" in lines[bench_at + 5]


def test_a_name_with_hyphens_is_never_cut() -> None:
    servers = [("app", f"gunicorn-gevent-blocking-{i}") for i in range(6)]
    text = nox_listing.page({"bench": _session("Bench.", params=servers)}, [], 60)
    for _, server in servers:
        assert server in text.split(), text
