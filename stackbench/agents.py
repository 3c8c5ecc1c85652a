"""The load spread over agents on several hosts (docs/distributed.md): this process runs
one agent's share (``loadgen --agent I/N``; agent 0 when it starts the others), the other
agents' reports are merged into its own with loadgen's merge
(``loadgen.merge.merge_reports``, the one definition), and the merged report is what a
repeat is judged on.

Two ways to have the others:

- ``Agents`` (``bench --target --agent 0/N --start-at T --agent-reports DIR``): started by
  someone else (SSH, a Kubernetes Job, CI) on the start time given, their reports awaited
  in a directory;
- ``AgentHosts`` (``capacity --target --agents N --agent-via TEMPLATE``): started here for
  every repeat, on a start time of its own, by a command that runs Python on agent i's
  host (TEMPLATE with ``{i}``), their reports read back from their stdout
  (``loadgen --json -``), each bounded by the repeat's deadline.

A measured repeat goes through a ``Spread``: ``load`` is this host's share, ``merged``
turns its report into the whole load's. Leaving the block stops every agent it started.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from loadgen.config import Config, ConfigError
from loadgen.merge import load_report, merge_reports
from shared_fixtures.processes import ManagedProcess, ProcessError
from stackbench.documents import LoadgenReport
from stackbench.loadrun import LoadError, deadline

# How long before the schedule starts the agents are started: each agent's command must
# have loadgen running by then (an SSH connection, Python's start on a busy host). An agent
# that starts more than 1 s late is refused by loadgen itself (--start-at in the past), so a
# lead that is too short fails the repeat naming that agent, never skews its window.
LEAD_S = 3.0
# loadgen's exit codes that still come with a report: 0, and 99 (a threshold failed).
_REPORTED = (0, 99)


class Spread(Protocol):
    """One repeat's load over its agents: this host's share, and the whole load's report."""

    @property
    def load(self) -> Config: ...

    def merged(self, report: LoadgenReport) -> LoadgenReport: ...


@dataclass(frozen=True)
class Alone:
    """All the load from this host."""

    load: Config

    def merged(self, report: LoadgenReport) -> LoadgenReport:
        return report


def merged(report: LoadgenReport, others: Sequence[tuple[str, dict[str, Any]]]) -> LoadgenReport:
    """This host's report and the other agents', merged exactly as ``loadgen merge`` merges
    them (a report of another run is refused by the merge)."""
    try:
        _, whole = merge_reports([("this host", dict(report)), *others])
    except ConfigError as exc:
        raise LoadError(f"the agents' reports do not merge: {exc}") from None
    return cast(LoadgenReport, whole)


@dataclass(frozen=True)
class Agents:
    """This run's loadgen is agent ``index`` of ``count``; the other agents (started on
    their hosts by SSH, a Kubernetes Job, CI) leave their JSON reports in ``reports``."""

    index: int
    count: int
    reports: Path
    wait_s: float  # how long to wait for them (bench --agent-wait)

    @contextlib.contextmanager
    def spread(self, load: Config, logs: Path, env: dict[str, str]) -> Iterator[Spread]:
        yield _Awaited(load, self)  # the load as given: its --agent and --start-at are the user's

    def others(self, deadline: float) -> list[tuple[str, dict[str, Any]]]:
        """The other agents' reports, once all are there (at most until ``deadline``)."""
        while True:
            found = self._found()
            missing = sorted(set(range(self.count)) - {self.index} - set(found))
            if not missing:
                return list(found.values())
            if time.monotonic() > deadline:
                names = ", ".join(f"{i}/{self.count}" for i in missing)
                raise LoadError(
                    f"agents {names}: no report in {self.reports} within {self.wait_s:g} s"
                )
            time.sleep(0.5)

    def _found(self) -> dict[int, tuple[str, dict[str, Any]]]:
        found = {}
        for path in sorted(self.reports.glob("*.json")):
            try:
                report = load_report(str(path))
            except ConfigError:
                continue  # not (yet) a complete agent report: written while we look
            found[int(report["agent"]["index"])] = (str(path), report)
        return found


@dataclass(frozen=True)
class _Awaited:
    load: Config
    agents: Agents

    def merged(self, report: LoadgenReport) -> LoadgenReport:
        if self.agents.count == 1:
            return report
        return merged(report, self.agents.others(time.monotonic() + self.agents.wait_s))


def via_words(template: str) -> tuple[str, ...]:
    """``--agent-via``'s template as words (a POSIX shell's quoting), ``{i}`` in at least
    one; ValueError (one line) otherwise."""
    try:
        words = tuple(shlex.split(template))
    except ValueError as exc:
        raise ValueError(f"--agent-via: {exc}: {template!r}") from None
    if not any("{i}" in word for word in words):
        raise ValueError(
            f"--agent-via runs Python on agent i's host and needs {{i}} for it, e.g. "
            f"'ssh -o BatchMode=yes load-{{i}} -- .venv/bin/python': got {template!r}"
        )
    return words


@dataclass(frozen=True)
class AgentHosts:
    """Agents 1..count-1 started for every repeat by ``via`` (a command that runs Python
    on agent i's host, ``{i}`` replaced by i), with this host's load as agent i's share."""

    count: int
    via: tuple[str, ...]
    lead_s: float = LEAD_S

    def first(self, load: Config) -> Config:
        """``load`` as this host's share, agent 0 of ``count``, checked as loadgen checks
        it (``-c`` split over every agent's processes); ValueError (one line) otherwise."""
        mine = load.replace(agent=(0, self.count))
        try:
            mine.validate(target=False)
        except ConfigError as exc:
            raise ValueError(f"--agents {self.count}: {exc}") from None
        return mine

    def argv(self, load: Config, index: int) -> list[str]:
        """Agent ``index``'s command: ``load`` as agent index/count, its report on stdout.
        Nothing of this host's but the load: no pinning (``--client-cpus`` is this host's)."""
        words = [word.replace("{i}", str(index)) for word in self.via]
        share = load.replace(agent=(index, self.count))
        return [*words, "-m", "loadgen", "--json", "-", "-q", *share.to_argv()]

    @contextlib.contextmanager
    def spread(self, load: Config, logs: Path, env: dict[str, str]) -> Iterator[Spread]:
        mine = load.replace(agent=(0, self.count), start_at=time.time() + self.lead_s)
        limit = time.monotonic() + deadline(mine)  # loadgen's own bound, for every agent
        started: list[_Started] = []
        try:
            for index in range(1, self.count):
                started.append(_Started.start(self, mine, index, logs, env))
            yield _Launched(mine, started, limit, self.count)
        finally:
            for agent in started:
                agent.process.stop()
                agent.stdout.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Started:
    index: int
    count: int
    process: ManagedProcess
    stdout: Path  # its report (loadgen --json -); what it says goes to the log

    @classmethod
    def start(
        cls, hosts: AgentHosts, load: Config, index: int, logs: Path, env: dict[str, str]
    ) -> _Started:
        stamp = time.monotonic_ns()
        stdout = logs / f".agent-{index}-{stamp}.json"
        try:
            process = ManagedProcess(
                hosts.argv(load, index),
                name=f"agent {index}/{hosts.count}",
                log_path=logs / f"agent-{index}.log",
                env=env,
                stdout_path=stdout,
            )
        except ProcessError as exc:
            raise LoadError(f"{exc} (--agent-via {shlex.join(hosts.via)})") from None
        return cls(index, hosts.count, process, stdout)

    @property
    def name(self) -> str:
        return f"agent {self.index}/{self.count}"

    def report(self, limit: float) -> tuple[str, dict[str, Any]]:
        """Its report, once it has exited (at most until ``limit``, then stopped)."""
        while self.process.running():
            if time.monotonic() > limit:
                self.process.stop()
                raise LoadError(
                    f"{self.name} did not finish by the repeat's deadline: stopped "
                    f"(`{shlex.join(self.process.argv[:8])} …`)"
                )
            time.sleep(0.1)
        code = self.process.popen.returncode
        if code not in _REPORTED:
            said = self.process.log_tail(1) or "nothing on stderr"
            raise LoadError(f"{self.name} exited with code {code}: {said}")
        try:
            return self.name, load_report(str(self.stdout))
        except ConfigError as exc:
            raise LoadError(f"{self.name} sent no report on its stdout: {exc}") from None


@dataclass(frozen=True)
class _Launched:
    load: Config
    started: list[_Started]
    limit: float
    count: int

    def merged(self, report: LoadgenReport) -> LoadgenReport:
        return merged(report, [agent.report(self.limit) for agent in self.started])
