"""docs/distributed.md's commands, word for word, on four namespace hosts: ``serve`` on
one, two loadgen agents on two others, their merge, and ``bench --target`` from a fourth.

The merged count must equal what the serving side counted (pg_stat_statements, through
serve's /statements), the merged histogram the union of the agents' histograms, and
everything must stop by itself when serve gets Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path

from loadgen import Histogram
from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from stackbench import results
from tests.distributed.netns import Network, list_namespaces
from tests.harness.runs import default_sigint

DOC = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"
PY = sys.executable
# /db's statement, as the serving host's database counted it
WORLD_SELECTS = """
import json, sys, urllib.request
statements = json.load(urllib.request.urlopen(sys.argv[1] + "/statements", timeout=10))
print(sum(s["calls"] for s in statements["statements"]
          if s["query"].lstrip().lower().startswith("select") and "world" in s["query"].lower()
          and "$1" in s["query"]))
"""


def doc_commands() -> dict[str, str]:
    """The command lines of the first ``sh`` block under "## The commands", by what they
    run: serve, agent, merge, bench."""
    section = DOC.read_text().split("## The commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/distributed.md lost its commands block"
    lines = [ln for ln in block.group(1).splitlines() if ln.startswith("python -m")]
    found = {}
    for line in lines:
        words = shlex.split(line)
        kind = {"serve": "serve", "bench": "bench", "merge": "merge"}.get(words[3], "agent")
        found[kind] = line
    assert set(found) == {"serve", "agent", "merge", "bench"}, found
    return found


def command(line: str, **variables: str) -> list[str]:
    """A documented line with its shell variables set, as argv for this Python."""
    words = shlex.split(string.Template(line).substitute(variables))
    assert words[0] == "python"
    return [PY, *words[1:]]


def _wait_for_file(path: Path, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        assert time.monotonic() < deadline, "serve did not become ready"
        time.sleep(0.2)
    return json.loads(path.read_text())


def _start_serve(net: Network, line: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """The documented serve line on host "server", bound to its address; Ctrl-C stops it."""
    return net.popen(
        "server",
        command(line, SERVER_ADDR=net.address("server")),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def test_the_documented_commands_across_four_hosts(namespaces, tmp_path: Path) -> None:
    lines = doc_commands()
    owner = uuid.uuid4().hex
    env = {**os.environ, OWNER_VAR: owner}
    dirs = {name: tmp_path / name for name in ("server", "agents", "bench")}
    for path in dirs.values():
        path.mkdir()
    with Network(["server", "agent0", "agent1", "bench"]) as net:
        addr = net.address("server")
        serve = _start_serve(net, lines["serve"], dirs["server"], env)
        try:
            info = _wait_for_file(dirs["server"] / "serve.json", serve, timeout=180)
            assert info["app_url"] == f"http://{addr}:8000"
            assert not net.reachable("agent0", "127.0.0.1", 8000)  # the agents' own loopback

            def world_selects() -> int:
                done = net.run(
                    "agent0",
                    [PY, "-c", WORLD_SELECTS, info["stats_url"]],
                    capture_output=True,
                    text=True,
                )
                assert done.returncode == 0, done.stderr
                return int(done.stdout)

            before = world_selects()
            start_at = f"{time.time() + 3:.3f}"
            agents = [
                net.popen(
                    f"agent{i}",
                    command(lines["agent"], I=str(i), N="2", START_AT=start_at, SERVER_ADDR=addr),
                    cwd=dirs["agents"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in range(2)
            ]
            for agent in agents:
                _, err = agent.communicate(timeout=120)
                assert agent.returncode == 0, err
            counted = world_selects() - before

            merge = net.run(
                "bench",
                command(lines["merge"]),
                cwd=dirs["agents"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert merge.returncode == 0, merge.stderr
            bench = net.run(
                "bench",
                command(lines["bench"], SERVER_ADDR=addr),
                cwd=dirs["bench"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert bench.returncode == 0, bench.stdout[-2000:] + bench.stderr
        finally:
            serve.send_signal(signal.SIGINT)  # Ctrl-C: serve stops all it started
            _, serve_err = serve.communicate(timeout=90)
        assert serve.returncode == 130, serve_err
        assert "WARNING: listening on " + addr in serve_err  # not loopback: said loudly
        assert net.leftovers() == {}  # everything stopped by itself
    assert net.killed == {}
    assert not {h.namespace for h in net.hosts.values()} & set(list_namespaces())
    assert processes_owned_by(owner) == []
    assert not (dirs["server"] / "serve.json").exists()

    # The agents, merged: the serving side's count, and the union of their histograms.
    parts = [json.loads((dirs["agents"] / f"agent-{i}.json").read_text()) for i in range(2)]
    merged = json.loads((dirs["agents"] / "merged.json").read_text())
    assert [p["summary"]["requests"] for p in parts] == [200, 200]
    assert merged["summary"]["requests"] == merged["summary"]["ok"] == counted == 400
    union = Histogram()
    for part in parts:
        union.merge(Histogram.from_dict(part["latency"]["uncorrected"]["histogram"]))
    got = Histogram.from_dict(merged["latency"]["uncorrected"]["histogram"])
    assert dict(got.nonzero()) == dict(union.nonzero()) and got.count == 400
    percentiles = merged["latency"]["uncorrected"]["percentiles_ns"]
    want = union.percentiles([float(p) for p in percentiles])
    assert percentiles == {f"{p:g}": v for p, v in want.items()}
    assert {a["host"] for a in merged["agents"]} and merged["agent_windows"]["overlap_s"] > 0

    # bench --target: a run directory like a local run's, with the serving host's figures.
    (run_dir,) = (dirs["bench"] / "results").iterdir()
    manifest = results.read_manifest(run_dir / "manifest.json")
    assert manifest["status"] == "ok" and manifest["target"]["app_url"] == info["app_url"]
    (document,) = [results.read_result(p) for p in run_dir.glob("*--*.json")]
    assert (document["app"], document["server"], document["status"]) == (
        "gino_style",
        "uvicorn",
        "ok",
    )
    summary = document["summary"]
    assert summary is not None and summary["server_cpu_s"] > 0 and summary["database_cpu_s"] > 0


def test_every_recipe_runs_the_tested_commands() -> None:
    """The recipes wrap the tested command lines; they do not re-spell them."""
    lines = doc_commands()
    text = DOC.read_text()
    recipes = {
        title: body
        for title, body in re.findall(r"## Recipe: (.+?)\n(.*?)(?=\n## |\Z)", text, re.S)
    }
    assert len(recipes) == 3, list(recipes)
    ssh = next(body for title, body in recipes.items() if "SSH" in title)
    kubernetes = next(body for title, body in recipes.items() if "Kubernetes" in title)
    actions = next(body for title, body in recipes.items() if "GitHub" in title)
    assert lines["serve"] in ssh and lines["bench"] in ssh
    assert lines["agent"] in kubernetes and "I=$JOB_COMPLETION_INDEX" in kubernetes
    assert lines["agent"] in actions and lines["merge"] in actions
    # The nox session passes serve's own options after --.
    serve_options = lines["serve"].split("--server uvicorn ", 1)[1]
    assert f"nox -s \"serve(app='gino_style', server='uvicorn')\" -- {serve_options}" in actions


def doc_agents_bench() -> str:
    """The bench command of "Several load hosts in one bench run"."""
    section = DOC.read_text().split("### Several load hosts in one bench run", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/distributed.md lost its several-load-hosts block"
    (line,) = [ln for ln in block.group(1).splitlines() if ln.startswith("python -m")]
    return line


def test_bench_target_as_one_of_three_agents(namespaces, tmp_path: Path) -> None:
    """bench --target as agent 0 of 3, the two others running the command it printed:
    the result counts every agent's requests, as the serving side counted them."""
    serve_line, bench_line = doc_commands()["serve"], doc_agents_bench()
    owner = uuid.uuid4().hex
    env = {**os.environ, OWNER_VAR: owner}
    server_dir, bench_dir = tmp_path / "server", tmp_path / "bench"
    reports = bench_dir / "reports"
    for path in (server_dir, reports):
        path.mkdir(parents=True)
    with Network(["server", "bench", "agent1", "agent2"]) as net:
        addr = net.address("server")
        serve = _start_serve(net, serve_line, server_dir, env)
        try:
            info = _wait_for_file(server_dir / "serve.json", serve, timeout=180)
            count = [PY, "-c", WORLD_SELECTS, info["stats_url"]]
            before = int(net.run("bench", count, capture_output=True, text=True).stdout)
            start_at = f"{time.time() + 8:.3f}"  # the others start after bench prints
            bench = net.popen(
                "bench",
                command(bench_line, SERVER_ADDR=addr, N="3", START_AT=start_at),
                cwd=bench_dir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert bench.stdout is not None
            printed = ""
            deadline = time.monotonic() + 60
            while not printed.startswith("python -m loadgen"):
                assert time.monotonic() < deadline and bench.poll() is None, "no agent command"
                printed = bench.stdout.readline().strip()
            agents = [
                net.popen(
                    f"agent{i}",
                    ["sh", "-c", printed.replace("python", PY, 1)],
                    cwd=reports,
                    env={**env, "I": str(i)},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in (1, 2)
            ]
            for agent in agents:
                _, err = agent.communicate(timeout=120)
                assert agent.returncode == 0, err
            out, err = bench.communicate(timeout=300)
            assert bench.returncode == 0, out[-2000:] + err
            counted = int(net.run("bench", count, capture_output=True, text=True).stdout) - before
        finally:
            serve.send_signal(signal.SIGINT)
            serve.communicate(timeout=90)
        assert serve.returncode == 130
        assert net.leftovers() == {}
    assert net.killed == {} and processes_owned_by(owner) == []

    (run_dir,) = (bench_dir / "results").iterdir()
    (document,) = [results.read_result(p) for p in run_dir.glob("*--*.json")]
    assert document["status"] == "ok", document["reason"]
    merged = document["repeats"][0]["loadgen"]
    assert [a["index"] for a in merged["agents"]] == [0, 1, 2]  # type: ignore[typeddict-item]
    # The serving side also counted bench's smoke check, which reads /db once.
    assert merged["summary"]["requests"] == merged["summary"]["ok"] == counted - 1 == 600
    union = Histogram()
    for i in (1, 2):
        part = json.loads((reports / f"agent-{i}.json").read_text())
        union.merge(Histogram.from_dict(part["latency"]["uncorrected"]["histogram"]))
    whole = Histogram.from_dict(merged["latency"]["uncorrected"]["histogram"])
    own = merged["agents"][0]["summary"]["requests"]  # type: ignore[typeddict-item]
    assert whole.count == union.count + own == 600  # every remote sample is in the merge
    whole_buckets = dict(whole.nonzero())
    assert all(whole_buckets.get(value, 0) >= n for value, n in union.nonzero())
