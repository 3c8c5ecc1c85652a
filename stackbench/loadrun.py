"""One measured load: loadgen in its own process (pinnable with taskset), given the load
specification as its own command line (``Config.to_argv``), its JSON report back."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from loadgen.config import Config, is_loopback_host
from loadgen.scenario import options_for
from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.documents import LoadgenReport


class LoadError(RuntimeError):
    pass


def aimed(load: Config, scenario: str, base_url: str) -> Config:
    """``load`` for one scenario at ``base_url``. Only a target on another host
    (``bench --target``) lifts loadgen's loopback guard."""
    remote = not is_loopback_host(urlsplit(base_url).hostname or "")
    return load.replace(
        url=base_url,
        scenario=scenario,
        allow_remote=load.allow_remote or remote,
        # One run's options go to the scenarios that read them (seconds: slow-db, not db).
        scenario_options=options_for(scenario, load.scenario_options, load.scenario_file),
    )


def start_wait(load: Config) -> float:
    """Seconds loadgen sleeps before its warm-up: until --start-at."""
    return max(0.0, load.start_at - time.time()) if load.start_at else 0.0


def deadline(load: Config) -> float:
    """Seconds after which the harness gives up on loadgen (it stops itself before): the
    wait, the warm-up, the run, one request's timeout and 30 s. A count (``-n``) is
    bounded by a timeout per request (the bench refuses a timeout of 0)."""
    before = start_wait(load) + load.warmup
    if load.duration is None:
        return before + load.timeout * (load.n_total or 0) + 30
    return before + load.duration + load.timeout + 30


def loadgen_argv(load: Config, report: Path, client_cpus: str | None) -> list[str]:
    argv = [sys.executable, "-m", "loadgen", "--json", str(report), "-q", *load.to_argv()]
    return (["taskset", "-c", client_cpus] if client_cpus else []) + argv


def run_load(
    load: Config,
    work_dir: Path,
    *,
    env: dict[str, str],
    client_cpus: str | None = None,
    on_warm: Callable[[], None] | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> LoadgenReport:
    """Run loadgen on ``load`` (aimed: its URL and scenario set) to completion, bounded,
    and return its JSON report."""
    report = work_dir / f".loadgen-{time.monotonic_ns()}.json"
    process = ManagedProcess(
        loadgen_argv(load, report, client_cpus),
        name="loadgen",
        log_path=work_dir / "loadgen.log",
        env=env,
    )
    limit = deadline(load)
    started = time.monotonic()
    warm_after = start_wait(load) + load.warmup  # loadgen sleeps until --start-at, then warms up
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
            if elapsed > limit:
                raise LoadError(f"loadgen did not finish within {limit:.0f} s")
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
