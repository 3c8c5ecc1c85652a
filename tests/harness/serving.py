"""``python -m stackbench serve`` as a user starts it (owner tagged, so leaks can be
proven), ready when its --ready-file appears, and ``bench --target`` against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_fixtures.processes import OWNER_VAR
from tests.harness.runs import ROOT

SHORT_LOAD = ["--duration", "2s", "--warmup", "1s", "--connections", "8"]


@dataclass
class Serving:
    process: subprocess.Popen
    info: dict[str, Any]
    ready_file: Path

    @property
    def app_url(self) -> str:
        return str(self.info["app_url"])

    @property
    def stats_url(self) -> str:
        return str(self.info["stats_url"])

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.stats_url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def serve_argv(app: str, server: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stackbench", "serve", "--app", app, "--server", server, *extra]


@contextmanager
def serving(
    app: str,
    server: str,
    work: Path,
    *extra: str,
    owner: str,
    timeout: float = 120.0,
    sigint: signal.Handlers = signal.SIG_DFL,
    env: dict[str, str] | None = None,
) -> Iterator[Serving]:
    """serve started and ready (SIGINT at ``sigint``: as a terminal starts it, or ignored
    as a shell's background job); stopped on the way out if the test has not stopped it.
    ``env``: the environment instead of this process's."""
    ready = work / "serve-ready.json"
    process = subprocess.Popen(
        serve_argv(app, server, "--ready-file", str(ready), *extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**(os.environ if env is None else env), OWNER_VAR: owner},
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: {process.stderr.read()}")
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)
        yield Serving(process, json.loads(ready.read_text()), ready)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def target_argv(app_url: str, stats_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stackbench",
        "bench",
        "--target",
        app_url,
        "--target-stats",
        stats_url,
        *extra,
    ]


def bench_target(
    target: Serving, output: Path, *extra: str, owner: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        target_argv(target.app_url, target.stats_url, "--output", str(output), *SHORT_LOAD, *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, OWNER_VAR: owner},
    )
