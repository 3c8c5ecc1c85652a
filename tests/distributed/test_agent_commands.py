"""``capacity --agents N --agent-via TEMPLATE`` (stackbench/agents.py), without hosts: the
command each agent runs, and that an agent which hangs, fails or answers no report fails
its repeat with a reason naming it, bounded, its whole process group stopped.
(tests/distributed/test_capacity_from_two_load_hosts.py runs real agents on namespace
hosts.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loadgen.config import Config
from stackbench.agents import AgentHosts, via_words
from stackbench.loadrun import LoadError

LOAD = Config(
    url="http://10.0.0.5:8000",
    scenario="db",
    rate=100.0,
    duration=2.0,
    warmup=1.0,
    concurrency=8,
    allow_remote=True,
)


def test_each_agent_runs_the_probes_load_as_its_share_on_its_host() -> None:
    hosts = AgentHosts(3, via_words("ssh -o BatchMode=yes 'load-{i}' -- .venv/bin/python"))
    mine = hosts.first(LOAD)
    assert mine.agent == (0, 3)
    argv = hosts.argv(mine.replace(start_at=1.8e9), 2)
    assert argv[:6] == ["ssh", "-o", "BatchMode=yes", "load-2", "--", ".venv/bin/python"]
    assert argv[6:11] == ["-m", "loadgen", "--json", "-", "-q"]  # the report on stdout
    rest = argv[11:]
    assert rest[rest.index("--agent") + 1] == "2/3" and rest[-1] == LOAD.url
    assert rest[rest.index("--start-at") + 1] == "1800000000.0"
    assert rest[rest.index("-R") + 1] == "100.0"  # the probe's rate: loadgen splits it


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("ssh load -- python", "needs {i} for it"),
        ("ssh 'load-{i} python", "No closing quotation"),
    ],
)
def test_a_template_that_cannot_reach_agent_i_is_refused(template: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        via_words(template)


def test_an_agent_share_loadgen_would_refuse_is_refused_first() -> None:
    with pytest.raises(ValueError, match=r"--agents 9: agents x processes \(9\) cannot exceed"):
        AgentHosts(9, ("x{i}",)).first(LOAD)


def _gone(group: int, within: float = 5.0) -> bool:
    """No process is left in ``group`` (an orphan in it is reaped by init: give it a moment)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("false {i}", "agent 1/2 exited with code 1: nothing on stderr"),
        ("sh -c 'echo no such host >&2; exit 255' {i}", "exited with code 255: no such host"),
        ("true {i}", "agent 1/2 sent no report on its stdout: "),
    ],
)
def test_an_agent_that_fails_fails_the_repeat_with_its_reason(
    template: str, says: str, tmp_path: Path
) -> None:
    hosts = AgentHosts(2, via_words(template), lead_s=0.0)
    env = dict(os.environ)
    with pytest.raises(LoadError) as raised, hosts.spread(LOAD, tmp_path, env) as spread:
        spread.merged({})  # type: ignore[typeddict-item]  # never read: agent 1 fails first
    assert says in str(raised.value)
    assert not list(tmp_path.glob(".agent-*.json"))  # its stdout file removed


def test_a_hung_agent_is_stopped_at_the_deadline_with_its_process_group(tmp_path: Path) -> None:
    hosts = AgentHosts(2, via_words("sh -c 'sleep 600 & wait' {i}"), lead_s=0.0)
    with hosts.spread(LOAD, tmp_path, dict(os.environ)) as spread:
        (agent,) = spread.started  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(LoadError, match="agent 1/2 did not finish by the repeat's deadline"):
            agent.report(time.monotonic() + 1.0)
        assert time.monotonic() - started < 15  # 1 s, then stopped: never a hang
        assert _gone(agent.process.pid)  # sh and its sleep, the whole group
