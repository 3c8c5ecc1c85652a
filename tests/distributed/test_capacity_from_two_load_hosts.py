"""docs/distributed.md's capacity search from two load hosts, word for word: ``serve`` on
one network namespace host, ``capacity --target --agents 2`` on a second, which starts
agent 1 on a third for every repeat (``--agent-via`` an ``ip netns exec`` of it).

The served pair holds at most 100 req/s (one pooled database connection, each request
holding it 10 ms: test_capacity_across_hosts.py), so the search must land within its
precision without claiming more; every probe's merged report must count both agents'
requests. Then planted faults (an agent command that fails, a host that does not exist)
must fail the first probe with the agent's reason and exit 1, and every process must stop
by itself.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from stackbench import results
from tests.distributed.netns import Network
from tests.distributed.test_capacity_across_hosts import HOLDS_AT_MOST
from tests.distributed.test_serve_across_hosts import (
    DOC,
    PY,
    _start_serve,
    _wait_for_file,
    command,
)

PRECISION = 0.10  # the documented line's --precision


def doc_agents_capacity_commands() -> tuple[str, str]:
    """The serve line and the capacity line of "Several load hosts in one capacity search"."""
    section = DOC.read_text().split("### Several load hosts in one capacity search", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/distributed.md lost its several-load-hosts capacity block"
    serve, search = [ln for ln in block.group(1).splitlines() if ln.startswith("python -m")]
    assert shlex.split(serve)[3] == "serve" and shlex.split(search)[3] == "capacity"
    assert '--agents 2 --agent-via "$AGENT_VIA"' in search
    return serve, search


def _capacity(net: Network, line: str, cwd: Path, env: dict[str, str], **variables: str) -> Any:
    return net.run(
        "load0",
        command(line, **variables),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.serial  # a rate at a latency: busy neighbours would lower it
def test_a_capacity_search_from_two_load_hosts(namespaces, tmp_path: Path) -> None:
    serve_line, capacity_line = doc_agents_capacity_commands()
    owner = uuid.uuid4().hex
    env = {**os.environ, OWNER_VAR: owner}
    dirs = {name: tmp_path / name for name in ("server", "load", "false", "nowhere")}
    for path in dirs.values():
        path.mkdir()
    # One serve for the search and the planted faults: serving is the slow part.
    with Network(["server", "load0", "load1"]) as net:
        addr = net.address("server")
        # agent i's host is namespace "<tag>-load<i>": agent 1 runs in load1
        ip_netns_exec = net.argv("load1", [PY])
        via = shlex.join([*ip_netns_exec[:3], ip_netns_exec[3][: -len("1")] + "{i}", PY])
        assert via.count("{i}") == 1
        serve = _start_serve(net, serve_line, dirs["server"], env)
        try:
            _wait_for_file(dirs["server"] / "serve.json", serve, timeout=180)
            search = _capacity(
                net, capacity_line, dirs["load"], env, SERVER_ADDR=addr, AGENT_VIA=via
            )
            assert search.returncode == 0, search.stdout[-3000:] + search.stderr
            faults = {
                "false": _capacity(
                    net, capacity_line, dirs["false"], env, SERVER_ADDR=addr, AGENT_VIA="false {i}"
                ),
                "nowhere": _capacity(
                    net,
                    capacity_line,
                    dirs["nowhere"],
                    env,
                    SERVER_ADDR=addr,
                    AGENT_VIA=via.replace("{i}", "{i}-nowhere"),
                ),
            }
            assert net.leftover_pids("load0") == [] and net.leftover_pids("load1") == []
        finally:
            serve.send_signal(signal.SIGINT)
            _, serve_err = serve.communicate(timeout=90)
        assert serve.returncode == 130, serve_err
        assert net.leftovers() == {}
    assert net.killed == {} and processes_owned_by(owner) == []

    (run_dir,) = (dirs["load"] / "results").iterdir()
    answer = results.read_capacity(run_dir / "capacity.json")
    assert answer["search"].get("agents") == 2
    (pair,) = answer["pairs"]
    low, high = pair["bracket"]
    probes = [(p["rate"], p["outcome"], p["reason"]) for p in pair["probes"]]
    assert pair["status"] == "resolved", probes
    assert low is not None and high is not None and high <= low * (1 + PRECISION), probes
    unseen = answer["search"]["unseen_overload"]
    assert low <= HOLDS_AT_MOST * (1 + unseen), probes  # never more than the worker holds
    assert not any(p["outcome"] == "pass" for p in pair["probes"] if p["rate"] > low)
    manifest = results.read_manifest(run_dir / "manifest.json")
    assert manifest["status"] == "ok", manifest.get("reason")
    # every probe's every repeat: both agents' requests, merged by loadgen's merge
    for probe in pair["probes"]:
        assert probe.get("agents") == 2, probe
        assert probe["result"] is not None
        document = results.read_result(run_dir / probe["result"])
        assert document["load"].get("agents") == 2 and document["repeats"], probe
        for repeat in document["repeats"]:
            merged: dict[str, Any] = dict(repeat["loadgen"])
            agents = merged["agents"]
            assert [a["index"] for a in agents] == [0, 1], probe
            parts = [a["summary"]["requests"] for a in agents]
            assert all(part > 0 for part in parts), (probe, parts)
            assert merged["summary"]["requests"] == sum(parts), (probe, parts)
            # each agent ran its share of the probe's rate: half of it, over the same window
            assert abs(parts[0] - parts[1]) <= 0.1 * sum(parts) + 2, (probe, parts)
            assert merged["agent_windows"]["overlap_s"] > 0
    assert (run_dir / "logs" / "agent-1.log").exists()

    # planted faults: the first probe fails with agent 1's reason, exit 1, answer written
    said = {
        "false": "agent 1/2 exited with code 1: ",
        "nowhere": "agent 1/2 exited with code 255: Cannot open network namespace",
    }
    for name, done in faults.items():
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: gino_style @ uvicorn: ") and said[name] in last, last
        (failed_dir,) = (dirs[name] / "results").iterdir()
        (failed,) = results.read_capacity(failed_dir / "capacity.json")["pairs"]
        assert failed["status"] == "failed" and said[name] in (failed["reason"] or "")
        assert [p["outcome"] for p in failed["probes"]] == ["failed"]
