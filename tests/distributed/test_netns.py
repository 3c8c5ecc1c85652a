"""The namespace hosts themselves: isolation, the cleanup verdict, Ctrl-C; then loadgen
agents on two hosts loading a server on a third, merged exactly."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loadgen import Histogram
from tests.distributed import netns
from tests.distributed.netns import Network, list_namespaces, namespace_support

REPO = Path(__file__).resolve().parents[2]
SERVERS = REPO / "tests" / "loadgen" / "servers.py"
PY = sys.executable

# Prints "READY", then answers every connection with its own host name (argv[3]) and
# the address the connection came from.
PEER_ECHO = """
import socket, sys
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("READY", flush=True)
while True:
    c, (peer, _port) = s.accept()
    c.sendall(f"{sys.argv[3]} {peer}".encode()); c.close()
"""
# Connects, prints what the server sent.
ASK_PEER = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), 5) as c:
    print(c.recv(100).decode())
"""
# The planted fault: a process that ignores SIGTERM (only SIGKILL stops it).
IGNORES_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("READY", flush=True)
time.sleep(600)
"""
HTTP_GET = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


def _first_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """The first line a child prints, or fail within ``timeout`` (never hang on it)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from {proc.args!r} within {timeout:g} s"
    return proc.stdout.readline().strip()


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _root_links() -> set[str]:
    done = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    return {line.split(":")[1].strip() for line in done.stdout.splitlines()}


# -- namespace_support ------------------------------------------------------------------------
def test_support_reports_a_refusal_with_its_message(tmp_path, monkeypatch) -> None:
    """Where `ip netns add` is refused, the reason is that command and its own message."""
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\necho 'mount --make-shared /run/netns failed: EPERM' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(netns, "_ip_binary", lambda: str(fake))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    reason = namespace_support()
    assert reason is not None and reason.startswith("`ip netns add sbnet")
    assert reason.endswith("refused: mount --make-shared /run/netns failed: EPERM")
    monkeypatch.setattr(netns, "_ip_binary", lambda: None)
    assert "iproute2" in (namespace_support() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert namespace_support() == "network namespaces need root (running as uid 1000)"


def test_support_probe_leaves_no_namespace(namespaces) -> None:
    assert namespace_support() is None
    assert not [n for n in list_namespaces() if n.startswith(f"sbnet{os.getpid()}.")]


def _start_echo(net: Network, host: str, bind: str, port: int) -> subprocess.Popen:
    argv = [PY, "-c", PEER_ECHO, bind, str(port), host]
    proc = net.popen(host, argv, stdout=subprocess.PIPE, text=True)
    assert _first_line(proc) == "READY"
    return proc


# -- isolation ---------------------------------------------------------------------------------
def test_hosts_reach_each_other_over_the_bridge_and_not_via_loopback(namespaces) -> None:
    root_before = _root_links()
    with Network(["a", "b"]) as net:
        assert _root_links() == root_before  # the bridge and veths live in namespaces
        a, b = net.address("a"), net.address("b")
        # Both hosts bind the same port on all addresses: each has its own port space.
        echo = [_start_echo(net, host, "0.0.0.0", 8000) for host in ("a", "b")]
        local_only = _start_echo(net, "a", "127.0.0.1", 8001)

        # Each host reaches the other (not itself) at its address, and the other sees the
        # caller's own address: the connection went over the veths and the bridge.
        for source, target, want in (("b", a, f"a {b}"), ("a", b, f"b {a}")):
            ask = [PY, "-c", ASK_PEER, target, "8000"]
            done = net.run(source, ask, capture_output=True, text=True, timeout=20)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == want

        # A server on a's loopback: a reaches it, b reaches it neither at a's address
        # nor at its own 127.0.0.1 (that is b's loopback, where nothing listens).
        assert net.reachable("a", "127.0.0.1", 8001)
        assert not net.reachable("b", a, 8001)
        assert not net.reachable("b", "127.0.0.1", 8001)

        for proc in (*echo, local_only):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        assert net.leftovers() == {}  # stopped by us, not by the cleanup
    assert net.killed == {}


# -- the cleanup verdict -----------------------------------------------------------------------
def test_a_process_ignoring_sigterm_is_reported_then_killed(namespaces) -> None:
    with Network(["a", "b"], grace=1.0) as net:
        planted = net.popen("a", [PY, "-c", IGNORES_TERM], stdout=subprocess.PIPE, text=True)
        assert _first_line(planted) == "READY"  # SIGTERM is ignored from here on
        polite = net.popen("a", ["sleep", "600"])
        names = [net.namespace("a"), net.namespace("b"), net.bridge_namespace]
        assert set(names) <= set(list_namespaces())
        assert _wait_until(lambda: polite.pid in net.leftover_pids("a"))
        # The verdict a test reads before the cleanup forces anything:
        assert set(net.leftover_pids("a")) == {planted.pid, polite.pid}
        assert net.leftovers() == {"a": sorted([planted.pid, polite.pid])}
        assert net.leftover_pids("b") == []
        started = time.monotonic()
    took = time.monotonic() - started
    assert polite.returncode == -signal.SIGTERM  # went at SIGTERM
    assert planted.returncode == -signal.SIGKILL  # needed SIGKILL, after the grace
    assert net.killed == {"a": [planted.pid]}
    assert 1.0 <= took < 10
    for pid in (planted.pid, polite.pid):
        assert not Path(f"/proc/{pid}").exists()
    assert not set(names) & set(list_namespaces())


def test_popen_children_lead_their_process_group(namespaces) -> None:
    """A signal to the group reaches the child's own children: nothing outlives it."""
    tree = "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"
    with Network(["a"]) as net:
        parent = net.popen("a", [PY, "-c", tree])
        assert _wait_until(lambda: len(net.leftover_pids("a")) == 2)
        assert os.getpgid(parent.pid) == parent.pid == os.getsid(parent.pid)
        os.killpg(parent.pid, signal.SIGTERM)
        parent.wait(10)
        assert _wait_until(lambda: net.leftover_pids("a") == [], timeout=5)
    assert net.killed == {}


def test_ctrl_c_stops_everything(namespaces, tmp_path) -> None:
    """SIGINT to a process inside ``with Network``: its hosts' processes (a SIGTERM-ignoring
    one included) are stopped and its namespaces deleted before it exits."""
    script = f"""
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
from tests.distributed.netns import Network
with Network(["a"], grace=1.0) as net:
    p = net.popen("a", [sys.executable, "-c", {IGNORES_TERM!r}], stdout=-1, text=True)
    p.stdout.readline()
    names = [net.namespace("a"), net.bridge_namespace]
    print(json.dumps({{"pid": p.pid, "namespaces": names}}), flush=True)
    time.sleep(60)
"""
    child = subprocess.Popen(
        [PY, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = _first_line(child, timeout=20)
        assert line.startswith("{"), child.stderr.read() if child.poll() is not None else line
        info = json.loads(line)
        assert set(info["namespaces"]) <= set(list_namespaces())
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=20)
        assert "KeyboardInterrupt" in err
        assert not Path(f"/proc/{info['pid']}").exists()
        assert not set(info["namespaces"]) & set(list_namespaces())
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        netns.remove_stale_namespaces()  # whatever a failed run left, its pid is dead


# -- loadgen agents across hosts ---------------------------------------------------------------
def _served(net: Network, host: str, base: str) -> int:
    """The server's request counter, read from ``host`` (this read counts itself)."""
    done = net.run(host, [PY, "-c", HTTP_GET, base + "/__stats"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["requests"])


def test_loadgen_agents_on_two_hosts_merge_exactly(namespaces, tmp_path) -> None:
    with Network(["server", "agent0", "agent1"]) as net:
        addr = net.address("server")
        server = net.popen(
            "server",
            [PY, str(SERVERS), "--host", addr],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = _first_line(server)
        assert line.startswith("PORT "), line
        base = f"http://{addr}:{line.split()[1]}"
        before = _served(net, "agent0", base)

        start_at = f"{time.time() + 2:.3f}"  # one instant for both agents
        reports = [tmp_path / f"a{i}.json" for i in range(2)]
        load = ["-n", "200", "-c", "4", "--start-at", start_at, "--allow-remote", "-q"]
        agents = [
            net.popen(
                f"agent{i}",
                [
                    PY,
                    "-m",
                    "loadgen",
                    "--agent",
                    f"{i}/2",
                    *load,
                    "--json",
                    str(reports[i]),
                    base + "/fast",
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        for agent in agents:
            _out, err = agent.communicate(timeout=60)
            assert agent.returncode == 0, err
        served = _served(net, "agent1", base) - before - 1  # minus this read itself

        merged_path = tmp_path / "merged.json"
        merge = [PY, "-m", "loadgen", "merge", *map(str, reports), "--json", str(merged_path)]
        done = subprocess.run(merge, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

        server.stdin.close()  # servers.py exits when its stdin closes
        server.wait(10)
        assert net.leftovers() == {}  # every process stopped by itself

    assert net.killed == {}
    assert not {h.namespace for h in net.hosts.values()} & set(list_namespaces())

    parts = [json.loads(p.read_text()) for p in reports]
    merged = json.loads(merged_path.read_text())
    assert served == 200
    assert merged["summary"]["requests"] == 200
    assert [p["summary"]["requests"] for p in parts] == [100, 100]
    assert [p["summary"]["connections"] for p in parts] == [2, 2]
    assert merged["status_codes"] == {"200": 200}
    assert [a["index"] for a in merged["agents"]] == [0, 1]
    assert merged["agent_windows"]["overlap_s"] > 0
    assert merged["agent_windows"]["max_clock_offset_s"] < 0.1  # both waited for start_at

    union = Histogram()
    for part in parts:
        union.merge(Histogram.from_dict(part["latency"]["uncorrected"]["histogram"]))
    got = Histogram.from_dict(merged["latency"]["uncorrected"]["histogram"])
    assert dict(got.nonzero()) == dict(union.nonzero())  # bucket by bucket
    assert got.count == union.count == 200
    percentiles = merged["latency"]["uncorrected"]["percentiles_ns"]
    want = union.percentiles([float(p) for p in percentiles])
    assert percentiles == {f"{p:g}": v for p, v in want.items()}
