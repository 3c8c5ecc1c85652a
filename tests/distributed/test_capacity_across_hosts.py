"""docs/distributed.md's capacity search across two hosts, word for word: ``serve`` on one
network namespace host, ``capacity --target`` from another.

The served pair has one pooled database connection, and every ``/slow/db?seconds=0.01``
request holds it 10 ms in PostgreSQL: it can never hold more than 100 req/s (less, by its
own overhead), so the search must not say it does beyond what a probe cannot see; its
answer must carry the serving host's figures, and everything must stop by itself.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import uuid
from pathlib import Path

import pytest

from shared_fixtures.processes import OWNER_VAR, processes_owned_by
from stackbench import results
from tests.distributed.netns import Network
from tests.distributed.test_serve_across_hosts import DOC, _start_serve, _wait_for_file, command

HOLDS_AT_MOST = 100.0  # req/s: one database connection, 10 ms of pg_sleep per request


def doc_capacity_commands() -> tuple[str, str]:
    """The serve line and the capacity line of "The capacity of a served pair"."""
    section = DOC.read_text().split("### The capacity of a served pair", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/distributed.md lost its capacity block"
    serve, search = [ln for ln in block.group(1).splitlines() if ln.startswith("python -m")]
    assert shlex.split(serve)[3] == "serve" and shlex.split(search)[3] == "capacity"
    return serve, search


@pytest.mark.slow
def test_the_documented_capacity_search_across_two_hosts(namespaces, tmp_path: Path) -> None:
    serve_line, capacity_line = doc_capacity_commands()
    owner = uuid.uuid4().hex
    env = {**os.environ, OWNER_VAR: owner}
    server_dir, load_dir = tmp_path / "server", tmp_path / "load"
    for path in (server_dir, load_dir):
        path.mkdir()
    with Network(["server", "load"]) as net:
        addr = net.address("server")
        serve = _start_serve(net, serve_line, server_dir, env)
        try:
            _wait_for_file(server_dir / "serve.json", serve, timeout=180)
            search = net.run(
                "load",
                command(capacity_line, SERVER_ADDR=addr),
                cwd=load_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            serve.send_signal(signal.SIGINT)
            _, serve_err = serve.communicate(timeout=90)
        assert serve.returncode == 130, serve_err
        assert search.returncode == 0, search.stdout[-3000:] + search.stderr
        assert net.leftovers() == {}
    assert net.killed == {} and processes_owned_by(owner) == []

    (run_dir,) = (load_dir / "results").iterdir()
    answer = results.read_capacity(run_dir / "capacity.json")
    (pair,) = answer["pairs"]
    low, high = pair["bracket"]
    probes = [(p["rate"], p["outcome"], p["reason"]) for p in pair["probes"]]
    assert (pair["app"], pair["server"], pair["status"]) == (
        "gino_style",
        "uvicorn",
        "resolved",
    ), probes
    assert low is not None and high is not None and high <= low * 1.10, probes
    unseen = answer["search"]["unseen_overload"]
    assert low <= HOLDS_AT_MOST * (1 + unseen), probes  # never more than the worker holds
    assert not any(p["outcome"] == "pass" for p in pair["probes"] if p["rate"] > low)
    # each probe measured from here, its server figures from the serving host
    manifest = results.read_manifest(run_dir / "manifest.json")
    assert manifest["target"]["app_url"] == f"http://{addr}:8000"
    assert manifest["status"] == "ok", manifest.get("reason")
    at = pair["at_sustainable"]
    assert at is not None and at["workers"] == 1 and at["server_cpu_us_per_request"]
    for probe in pair["probes"]:
        assert probe["result"] is not None
        document = results.read_result(run_dir / probe["result"])
        assert document["load"]["rate"] == probe["rate"] and document["repeats"]
        assert document["repeats"][0]["server"]["window_s"], probe  # serve's window
    assert (run_dir / "capacity.png").exists() and (run_dir / "capacity.md").exists()
