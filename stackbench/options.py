"""What a bench job is asked to do (BenchOptions), and each option value checked at the
edge: a bad value is one line and exit 2, before the database, a server or the load has
been started.

Durations and KEY=VALUE pairs are parsed by loadgen's own parsers, so `--duration 10s`
means the same to the harness as to the load generator.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from loadgen.agent import parse_agent, parse_start_at
from loadgen.config import ConfigError, parse_duration
from loadgen.scenario import load_scenario, option_names, parse_option
from shared_fixtures.seed import SeedError, validate_scale
from stackbench import results
from stackbench.loadrun import Load
from stackbench.servers import Knobs

T = TypeVar("T")

DEFAULT_SCENARIOS = ("json", "db", "fortunes", "colleges", "troupes")


@dataclass(frozen=True)
class BenchOptions:
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    duration: float = 6.0
    warmup: float = 2.0
    connections: int = 32
    rate: float | None = None
    workers: int | None = None
    threads: int | None = None
    pool_size: int = 10
    repeats: int = 1
    server_cpus: str | None = None
    client_cpus: str | None = None
    output: Path = results.ROOT / "results"
    scale: int = 1
    scenario_options: tuple[tuple[str, str], ...] = ()
    processes: int = 1
    timeout: float = 20.0
    ready_timeout: float = 30.0
    requests: int | None = None  # count mode: this many requests instead of --duration
    prefix: str = ""  # where the contract is mounted, e.g. /fastapi in django_fastapi
    # The virtualenv whose Python and servers serve the app: another interpreter's, for the
    # python-versions experiment. None: the harness's own.
    bin_dir: Path | None = None
    # bench --target with agents on other hosts (docs/distributed.md): this run's loadgen is
    # agent I of N from START_AT; the others' reports are awaited in agent_reports.
    agent: tuple[int, int] | None = None
    start_at: float | None = None
    agent_reports: Path | None = None
    agent_wait: float = 60.0
    profile: bool = False  # py-spy on the server in each measured window (profiler.py)
    # A bench variant served instead of the app as shipped (stackbench/variants): its name.
    variant: str | None = None

    @property
    def knobs(self) -> Knobs:
        return Knobs(workers=self.workers, threads=self.threads, pool_size=self.pool_size)

    @property
    def server_cpu_count(self) -> int:
        return cpus_named(self.server_cpus) or os.cpu_count() or 1

    def load(self, scenario: str) -> Load:
        return Load(
            scenario,
            self.duration,
            self.warmup,
            self.connections,
            self.rate,
            self.processes,
            self.timeout,
            options_for(scenario, self.scenario_options),
            self.requests,
            self.agent,
            self.start_at,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output"] = str(self.output)
        data["scenarios"] = list(self.scenarios)
        data["scenario_options"] = dict(self.scenario_options)
        data["bin_dir"] = str(self.bin_dir) if self.bin_dir else None
        data["agent"] = list(self.agent) if self.agent else None
        data["agent_reports"] = str(self.agent_reports) if self.agent_reports else None
        return data


def cpus_named(spec: str | None) -> int:
    """How many CPUs a taskset list like '0', '0,1' or '0-3' names."""
    if not spec:
        return 0
    count = 0
    for part in spec.split(","):
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return count


class OptionError(ValueError):
    """An option that parses but cannot be used here; one line, exit 2."""


def seconds_or_zero(text: str) -> float:
    """'6', '6s', '500ms', '1m' → seconds (≥ 0)."""
    try:
        value = parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def seconds(text: str) -> float:
    """A duration that must be positive: a 0 s measurement measures nothing."""
    value = seconds_or_zero(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0: {text!r}")
    return value


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"not a positive number: {text!r}") from None
        if not value > 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def cpus(text: str) -> str:
    """A taskset CPU list naming only CPUs this process may run on."""
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} (e.g. 0 or 0,1 or 0-3)")
    named: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise argparse.ArgumentTypeError(f"not a CPU range: {part!r} (low-high)")
        named.update(range(int(low), int(high or low) + 1))
    usable = os.sched_getaffinity(0)
    if not named <= usable:
        missing = ",".join(str(cpu) for cpu in sorted(named - usable))
        have = ",".join(str(cpu) for cpu in sorted(usable))
        raise argparse.ArgumentTypeError(f"no CPU {missing} here (usable: {have})")
    return text


def _argument(parse: Callable[[str], T], error: type[Exception]) -> Callable[[str], T]:
    """A parser of loadgen's or the fixtures' as an argparse type: its error, one line."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except error as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument


agent = _argument(parse_agent, ConfigError)  # 'I/N', 0-based, as loadgen reads it
start_at = _argument(parse_start_at, ConfigError)  # '+30s', Unix seconds or ISO 8601
key_value = _argument(parse_option, ConfigError)  # KEY=VALUE, as loadgen reads it
scale = _argument(validate_scale, SeedError)


def options_for(scenario: str, options: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The scenario options ``scenario`` reads: a run's options apply to the scenarios that
    take them (``seconds`` to slow-db, not to db), and a result records only those."""
    names = option_names(scenario)
    return tuple((key, value) for key, value in options if names is None or key in names)


def _known(scenario: str) -> str:
    """'slow-db takes sample, seconds': what a message names."""
    names = option_names(scenario)
    if names is None:
        return f"{scenario} takes any (its file declares no OPTIONS)"
    plain = sorted(name for name in names if "." not in name)
    prefixed = ", ENDPOINT.KEY" if any("." in name for name in names) else ""
    return f"{scenario} takes " + (", ".join(plain) or "none") + prefixed


def check_scenarios(scenarios: Sequence[str], options: Sequence[tuple[str, str]]) -> None:
    """Each scenario built as loadgen will build it, with the options it reads; an option
    that no scenario of the run reads is refused, naming each scenario's options (a
    misspelt key would otherwise run with the default and be recorded as if applied)."""
    for scenario in scenarios:
        try:
            option_names(scenario)  # an unknown scenario or an unreadable file
        except ConfigError as exc:
            raise OptionError(f"--scenarios: {exc}") from None
    for key, value in options:
        if not any(options_for(scenario, [(key, value)]) for scenario in scenarios):
            known = "; ".join(_known(scenario) for scenario in scenarios)
            raise OptionError(
                f"--scenario-option {key}={value}: no scenario of this run reads {key!r} ({known})"
            )
    for scenario in scenarios:
        try:
            load_scenario(scenario, dict(options_for(scenario, options)))
        except ConfigError as exc:
            raise OptionError(
                f"--scenario-option: {scenario}: {exc} ({_known(scenario)})"
            ) from None


def check_output(path: Path) -> None:
    """The results directory must be creatable and writable: it is made now, and a probe
    file written and removed, so a bad path fails before anything starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OptionError(
            f"--output: cannot write results in {path}: {exc.strerror or exc}"
        ) from None
