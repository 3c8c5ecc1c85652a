"""Fixtures: real servers on 127.0.0.1 in subprocesses, always stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVERS = Path(__file__).with_name("servers.py")
REPO = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVERS)],
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
        self.base = f"http://127.0.0.1:{self.port}"
        self._stats_calls = 0

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url(path), timeout=5) as r:
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
    """Both engines must give the same results: uvloop+httptools, and pure stdlib."""
    on = request.param == "fast"
    return {"use_uvloop": on, "use_httptools": on}


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
