"""Linux network namespaces as stand-in hosts, so tests can prove things across hosts.

``Network(["server", "agent0"])`` gives each named host its own network namespace (its
own ``lo``, its own port space, its own address on one /24) joined by veth pairs to a
bridge.  The bridge lives in an extra namespace of its own, so nothing at all is added
to the root namespace and no host can route anywhere but to its peers: the traffic
never leaves the machine.

    with Network(["a", "b"]) as net:
        net.run("a", ["ip", "-brief", "addr"])         # subprocess.run inside host a
        proc = net.popen("b", [sys.executable, "x.py"])  # started, own session
        net.address("a")                                 # "10.213.77.1"
        assert not net.leftovers()                       # nothing left running?

On exit, whatever happened (an exception, Ctrl-C), every process still running in any
of its namespaces gets SIGTERM, then SIGKILL after ``grace`` seconds, and every
namespace is deleted.  ``leftover_pids`` reads what is still running *before* that
forced cleanup, which is the verdict a test wants ("everything stopped by itself");
``killed`` says afterwards which processes needed SIGKILL.

Needs root and Debian's ``iproute2`` (the ``ip`` binary); ``namespace_support()`` says
in one line why namespaces cannot be used here, or None when they can.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Every Network has its own bridge, so two Networks (or two test processes) using the
# same /24 cannot see each other; the subnet only has to avoid whatever a namespace
# could otherwise reach, and it reaches nothing.  10.213.77.0/24 is simply unlikely to
# confuse anyone reading `ip addr` output next to a real network.
SUBNET = "10.213.77"
# Namespace names are "<PREFIX><pid>.<n>-<host>": the pid keeps concurrent test
# processes apart and lets a later run recognise (and remove) what a killed run left.
PREFIX = "sbnet"
_NAME = re.compile(rf"^{PREFIX}(\d+)\.")  # ours, a probe's included
_HOST = re.compile(r"^[a-z0-9_-]{1,24}$")
_IP_TIMEOUT = 10.0  # seconds for any one `ip` command: they take milliseconds
_serial = itertools.count()


class NetnsError(RuntimeError):
    """An `ip` command failed while building or removing the network (one-line message)."""


def _ip_binary() -> str | None:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)),
        None,
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def namespace_support() -> str | None:
    """None when network namespaces (and the veth/bridge links Network needs) can be
    created here, else the one-line reason.  Really creates and deletes a throwaway
    namespace: only the kernel and the sandbox know whether that is allowed."""
    if sys.platform != "linux":
        return f"network namespaces are Linux only (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"network namespaces need root (running as uid {os.geteuid()})"
    ip = _ip_binary()
    if ip is None:
        return "no `ip` binary to create network namespaces (Debian package iproute2)"
    probe = f"{PREFIX}{os.getpid()}.probe{next(_serial)}"
    steps = [
        ["netns", "add", probe],
        ["-n", probe, "link", "add", "br0", "type", "bridge"],
        ["-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        ["netns", "exec", probe, "true"],
    ]
    try:
        for step in steps:
            try:
                done = subprocess.run(
                    [ip, *step], capture_output=True, text=True, timeout=_IP_TIMEOUT
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"`ip {' '.join(step[:4])}` failed: {exc}"
            if done.returncode != 0:
                why = _first_line(done.stderr) or f"exit code {done.returncode}"
                return f"`ip {' '.join(step[:4])}` refused: {why}"
        return None
    finally:
        subprocess.run(
            [ip, "netns", "del", probe], capture_output=True, timeout=_IP_TIMEOUT, check=False
        )


@dataclass(frozen=True)
class Host:
    name: str  # what the test calls it: "server", "agent0"
    namespace: str  # the `ip netns` name
    address: str  # its private IPv4 address on the shared /24


class Network:
    """Hosts (network namespaces) on one bridge; a context manager that always cleans up."""

    def __init__(self, hosts: Sequence[str] | int, *, grace: float = 3.0) -> None:
        names = [f"host{i}" for i in range(hosts)] if isinstance(hosts, int) else list(hosts)
        if not 1 <= len(names) <= 250 or len(set(names)) != len(names):
            raise ValueError(f"want 1 to 250 distinct host names, got {names!r}")
        for name in names:
            if not _HOST.match(name):
                raise ValueError(f"host name {name!r}: use 1-24 of a-z 0-9 _ -")
        ip = _ip_binary()
        if ip is None:
            raise NetnsError("no `ip` binary (Debian package iproute2)")
        self._ip_path = ip
        self.grace = grace
        tag = f"{PREFIX}{os.getpid()}.{next(_serial)}"
        self.bridge_namespace = f"{tag}-bridge"
        # .1 upwards: the order given is the order of the addresses
        self.hosts = {
            name: Host(name, f"{tag}-{name}", f"{SUBNET}.{i + 1}") for i, name in enumerate(names)
        }
        self.killed: dict[str, list[int]] = {}  # host -> pids that needed SIGKILL at exit
        self._created: list[str] = []  # namespaces that exist, in creation order
        self._started: list[subprocess.Popen] = []

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Network:
        remove_stale_namespaces()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _build(self) -> None:
        bridge = self.bridge_namespace
        self._add_namespace(bridge)
        self._ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        self._ip("-n", bridge, "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts.values()):
            self._add_namespace(host.namespace)
            port = f"p{index}"  # interface names are per namespace: no clash possible
            self._ip(
                "-n", bridge, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", host.namespace,
            )  # fmt: skip
            self._ip("-n", bridge, "link", "set", port, "master", "br0", "up")
            self._ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            self._ip("-n", host.namespace, "link", "set", "eth0", "up")

    def _add_namespace(self, name: str) -> None:
        self._ip("netns", "add", name)
        self._created.append(name)
        # the namespace's own lo, so "localhost" inside a host means that host
        self._ip("-n", name, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop every process in the namespaces (TERM, then KILL after the grace), delete
        them.  Safe to call twice; a Ctrl-C meanwhile is held until the cleanup is done."""
        with _sigint_deferred():
            stubborn = _stop_all(self._created, self.grace, self._started)
            self.killed.update({self._host_of(ns): pids for ns, pids in stubborn.items()})
            errors = []
            for ns in reversed(self._created):
                done = self._ip("netns", "del", ns, check=False)
                if done.returncode != 0 and ns in list_namespaces():
                    errors.append(f"{ns}: {_first_line(done.stderr)}")
            self._created.clear()
            if errors:
                raise NetnsError("could not delete namespaces: " + "; ".join(errors))

    def _host_of(self, namespace: str) -> str:
        return next((h.name for h in self.hosts.values() if h.namespace == namespace), "bridge")

    # -- hosts -----------------------------------------------------------------------------
    def address(self, host: str) -> str:
        return self.hosts[host].address

    def namespace(self, host: str) -> str:
        return self.hosts[host].namespace

    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host`` (`ip netns exec` execs it: same pid, same process)."""
        return [self._ip_path, "netns", "exec", self.namespace(host), *argv]

    def run(
        self, host: str, argv: Sequence[str], *, timeout: float = 30.0, **kw
    ) -> subprocess.CompletedProcess:
        """subprocess.run inside ``host``, always with a timeout."""
        return subprocess.run(self.argv(host, argv), timeout=timeout, **kw)

    def popen(self, host: str, argv: Sequence[str], **kw) -> subprocess.Popen:
        """A started process inside ``host``, in its own session: ``os.killpg(p.pid, sig)``
        signals its whole tree, and a terminal's Ctrl-C reaches only us (we stop it)."""
        kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(host, argv), **kw)
        self._started.append(proc)
        return proc

    def leftover_pids(self, host: str) -> list[int]:
        """Pids of every process running in ``host`` now (`ip netns pids`), before any
        cleanup forced them: empty means everything there stopped by itself."""
        return namespace_pids(self.namespace(host))

    def leftovers(self) -> dict[str, list[int]]:
        """host -> leftover pids, for the hosts where something still runs."""
        found = {name: self.leftover_pids(name) for name in self.hosts}
        return {name: pids for name, pids in found.items() if pids}

    def reachable(self, source: str, address: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from inside ``source`` to ``address:port`` succeeds."""
        code = f"import socket; socket.create_connection(({address!r}, {port}), {timeout}).close()"
        done = self.run(
            source, [sys.executable, "-c", code], capture_output=True, timeout=timeout + 10
        )
        return done.returncode == 0

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self._ip_path, *args], capture_output=True, text=True, timeout=_IP_TIMEOUT
        )
        if check and done.returncode != 0:
            raise NetnsError(f"`ip {' '.join(args)}` failed: {_first_line(done.stderr)}")
        return done


# -- processes and namespaces, by name -------------------------------------------------------
def list_namespaces() -> list[str]:
    ip = _ip_binary()
    if ip is None:
        return []
    done = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, timeout=10)
    # lines look like "name" or "name (id: 3)"
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    """Live processes in ``namespace`` (zombies hold no namespace and are not listed)."""
    ip = _ip_binary()
    if ip is None:
        return []
    done = subprocess.run(
        [ip, "netns", "pids", namespace], capture_output=True, text=True, timeout=10
    )
    return sorted(int(word) for word in done.stdout.split() if word.isdigit())


def _stop_all(
    namespaces: Sequence[str], grace: float, children: Sequence[subprocess.Popen]
) -> dict[str, list[int]]:
    """SIGTERM everything in ``namespaces`` at once, SIGKILL what is left after ``grace``
    seconds; returns namespace -> pids that needed SIGKILL."""

    def remaining() -> dict[str, list[int]]:
        for child in children:  # reap ours, or a dead child would linger as a zombie
            child.poll()
        found = {ns: namespace_pids(ns) for ns in namespaces}
        return {ns: pids for ns, pids in found.items() if pids}

    def send(found: dict[str, list[int]], sig: int) -> None:
        for pid in itertools.chain.from_iterable(found.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    found = remaining()
    send(found, signal.SIGTERM)
    send(found, signal.SIGCONT)  # a stopped process must run to act on SIGTERM
    deadline = time.monotonic() + grace
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = remaining()
    killed = found
    send(killed, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.02)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(1)
    return killed


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces a dead test process of ours left behind (it was SIGKILLed, say),
    stopping what still runs in them; returns their names."""
    stale = []
    for name in list_namespaces():
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            stale.append(name)
    if stale:
        _stop_all(stale, 1.0, ())
        ip = _ip_binary()
        for name in stale:
            subprocess.run([ip, "netns", "del", name], capture_output=True, timeout=10)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it: a cleanup cut short would
    leave processes and namespaces behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        # None: a handler not set from Python; the default is the closest we can restore
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        if caught:
            raise KeyboardInterrupt
