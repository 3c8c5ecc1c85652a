"""Fixtures: real servers on 127.0.0.1 in subprocesses, always stopped; for TLS, a test CA
and a server certificate made once per session (trustme) in a directory removed after it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

SERVERS = Path(__file__).with_name("servers.py")
H2SERVER = Path(__file__).with_name("h2server.py")
REPO = Path(__file__).resolve().parents[2]


class Server:
    """``servers.py`` (HTTP/1.1; ``tls``: a PEM of key and chain to serve TLS with)."""

    def __init__(self, *args: str, script: Path = SERVERS, tls: TLSFiles | None = None) -> None:
        self.tls = tls
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args, *(["--tls", tls.server] if tls else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"test server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._stats_calls = 0

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> bytes:
        context = ssl.create_default_context(cafile=self.tls.ca) if self.tls else None
        with urllib.request.urlopen(self.url(path), timeout=5, context=context) as r:
            return r.read()

    def served(self) -> int:
        """Requests served so far, not counting these /__stats calls."""
        self._stats_calls += 1
        return int(json.loads(self.get("/__stats"))["requests"]) - self._stats_calls

    def targets(self) -> dict[str, int]:
        """How many times each request target was served so far (/__ routes aside)."""
        return {k: int(v) for k, v in json.loads(self.get("/__targets")).items()}

    def stop(self) -> None:
        p = self.proc
        if p.poll() is None:
            try:
                if p.stdin:
                    p.stdin.close()
                p.wait(timeout=2)
            except Exception:
                p.kill()
                p.wait(timeout=5)


class H2Server(Server):
    """``h2server.py``: HTTP/2 (h2c, or ALPN h2 with ``tls``); its counters on request."""

    def __init__(self, *args: str, tls: TLSFiles | None = None) -> None:
        super().__init__(*args, script=H2SERVER, tls=tls)

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))


class TLSFiles(SimpleNamespace):
    ca: str  # the test CA's certificate (PEM): what --cacert trusts
    server: str  # the server's key and certificate chain (PEM), for 127.0.0.1 and localhost


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TLSFiles]:
    """A CA made for this session and a server certificate it signed; never committed, the
    directory removed after the session."""
    trustme = pytest.importorskip("trustme", reason="trustme is in the test extra")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="loadgen-tls-") as d:
        files = TLSFiles(ca=os.path.join(d, "ca.pem"), server=os.path.join(d, "server.pem"))
        ca.cert_pem.write_to_path(files.ca)
        cert.private_key_and_cert_chain_pem.write_to_path(files.server)
        yield files


@pytest.fixture(scope="session")
def tls_server(tls_files: TLSFiles) -> Iterator[Server]:
    """servers.py over TLS (ALPN http/1.1)."""
    s = Server(tls=tls_files)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def h2c_server() -> Iterator[H2Server]:
    s = H2Server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def h2_tls_server(tls_files: TLSFiles) -> Iterator[H2Server]:
    s = H2Server(tls=tls_files)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def start_h2_server() -> Iterator[Callable[..., H2Server]]:
    """``start_h2_server(*args)``: an h2server.py of this test's own (its options, its
    counters from zero), stopped after the test."""
    started: list[H2Server] = []

    def start(*args: str, tls: TLSFiles | None = None) -> H2Server:
        started.append(H2Server(*args, tls=tls))
        return started[-1]

    try:
        yield start
    finally:
        for s in started:
            s.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def fresh_server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def closed_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    time.sleep(0.01)
    return port


@pytest.fixture(params=["fast", "pure"])
def engine(request: pytest.FixtureRequest) -> dict[str, bool]:
    """Both engines must give the same results: uvloop+httptools (and over HTTP/2
    loadgen's lean engine, h2wire), and the reference ones (--pure: the stdlib loop, the
    pure-Python parser, python-hyper's h2)."""
    on = request.param == "fast"
    return {"use_uvloop": on, "use_httptools": on, "use_h2wire": on}


def _run_cli(
    *args: str, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=e,
    )


@pytest.fixture()
def cli():  # type: ignore[no-untyped-def]
    """Run ``python -m loadgen ARGS`` from the repo root; returns CompletedProcess."""
    return _run_cli
