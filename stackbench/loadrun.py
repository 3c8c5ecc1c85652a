"""One measured load: loadgen in its own process (pinnable with taskset), JSON report back."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from loadgen.config import is_loopback_host
from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.documents import LoadgenReport


@dataclass(frozen=True)
class Load:
    scenario: str
    duration: float
    warmup: float
    connections: int
    rate: float | None = None
    processes: int = 1
    timeout: float = 20.0
    options: tuple[tuple[str, str], ...] = ()
    requests: int | None = None  # count mode (-n) instead of the duration
    agent: tuple[int, int] | None = None  # loadgen's --agent I/N (0-based)
    start_at: float | None = None  # loadgen's --start-at, Unix seconds

    @property
    def wait(self) -> float:
        """Seconds loadgen sleeps before its warm-up: until --start-at."""
        return max(0.0, self.start_at - time.time()) if self.start_at else 0.0

    @property
    def deadline(self) -> float:
        """Seconds after which the harness gives up on loadgen (it stops itself before)."""
        if self.requests:
            return self.wait + self.warmup + self.timeout * self.requests + 30
        return self.wait + self.warmup + self.duration + self.timeout + 30

    @property
    def model(self) -> Literal["closed", "open"]:
        return "open" if self.rate else "closed"


class LoadError(RuntimeError):
    pass


def loadgen_argv(load: Load, base_url: str, report: Path, client_cpus: str | None) -> list[str]:
    stop = ["-n", str(load.requests)] if load.requests else ["-z", f"{load.duration}s"]
    argv = [sys.executable, "-m", "loadgen", "--scenario", load.scenario, *stop]
    argv += ["--warmup", f"{load.warmup}s", "-c", str(load.connections)]
    argv += ["-t", f"{load.timeout}s", "--processes", str(load.processes)]
    argv += ["--json", str(report), "-q"]
    if not is_loopback_host(urlsplit(base_url).hostname or ""):
        argv.append("--allow-remote")  # only `bench --target` names another host
    if load.agent:
        argv += ["--agent", f"{load.agent[0]}/{load.agent[1]}"]
    if load.start_at:
        argv += ["--start-at", repr(load.start_at)]
    if load.rate:
        argv += ["-R", str(load.rate)]
    for key, value in load.options:
        argv += ["--scenario-option", f"{key}={value}"]
    argv.append(base_url)
    return (["taskset", "-c", client_cpus] if client_cpus else []) + argv


def run_load(
    load: Load,
    base_url: str,
    work_dir: Path,
    *,
    env: dict[str, str],
    client_cpus: str | None = None,
    on_warm: Callable[[], None] | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> LoadgenReport:
    """Run loadgen to completion (bounded) and return its JSON report."""
    report = work_dir / f".loadgen-{time.monotonic_ns()}.json"
    process = ManagedProcess(
        loadgen_argv(load, base_url, report, client_cpus),
        name="loadgen",
        log_path=work_dir / "loadgen.log",
        env=env,
    )
    deadline = load.deadline
    started = time.monotonic()
    warm_after = load.wait + load.warmup  # loadgen sleeps until --start-at, then warms up
    warm = False
    try:
        while process.running():
            elapsed = time.monotonic() - started
            if not warm and elapsed >= warm_after:
                warm = True
                if on_warm:
                    on_warm()
            if on_tick:
                on_tick(elapsed)
            if elapsed > deadline:
                raise LoadError(f"loadgen did not finish within {deadline:.0f} s")
            time.sleep(0.1)
        if not warm and on_warm:
            on_warm()
        code = process.popen.returncode
        if code not in (0, 99) or not report.exists():  # 99: a threshold failed, still a report
            raise LoadError(f"loadgen exited with code {code}: {process.log_tail(3)}")
        try:
            return cast(LoadgenReport, json.loads(report.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise LoadError(f"loadgen's report is unreadable: {exc}") from None
    except ProcessError as exc:
        raise LoadError(str(exc)) from None
    finally:
        process.stop()
        report.unlink(missing_ok=True)
