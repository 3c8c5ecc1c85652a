"""``bench --target URL``: measure a pair that ``serve`` runs on another host.

The load runs here as it does for a local pair; what a local run reads from /proc (server
and database CPU, RSS, database connections, exited workers) comes from ``serve``'s stats
endpoint instead (stackbench/stats_endpoint.py), one window per measured repeat, read on
the serving host's own clock. The result documents and the manifest are a local run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import urllib.error
import urllib.request
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadgen.config import Config
from stackbench import results
from stackbench.agents import AgentHosts, Agents, Alone, Spread
from stackbench.documents import (
    SCHEMA_VERSION,
    ProxyDoc,
    ResultHeader,
    ResultRow,
    ServerSettings,
    protocol_name,
)
from stackbench.loadrun import aimed, loadgen_argv
from stackbench.measure import Sampling, failed_rows, measure_subject
from stackbench.options import BenchOptions, OptionError
from stackbench.progress import Progress
from stackbench.sampler import ServerFigures
from stackbench.server_process import ADMIN_USER, answers_health
from stackbench.servers import H1, TLS, get_server


class TargetError(RuntimeError):
    """The target or its stats endpoint cannot be used; one line for the user."""


def check_url(text: str, what: str, scheme: str = "http") -> str:
    """A ``scheme``:// URL with a host, without a trailing slash."""
    parts = urlsplit(text)
    try:
        valid = parts.scheme == scheme and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid or parts.query or parts.fragment:
        raise OptionError(f"{what}: expected {scheme}://HOST:PORT[/prefix], got {text!r}")
    return text.rstrip("/")


def connect(
    target_url: str,
    stats_url: str,
    agents: Agents | AgentHosts | None = None,
    protocol: str = H1,
    cacert: str | None = None,
) -> RemoteSubject:
    """The served pair at ``target_url``, described by its stats endpoint, which must
    serve ``protocol`` (an https:// URL for a TLS one, its CA in ``cacert``)."""
    base_url = check_url(target_url, "--target", "https" if protocol in TLS else "http")
    if protocol in TLS and cacert is None:
        raise OptionError(
            f"--protocol {protocol} with --target needs --cacert FILE (serve prints it)"
        )
    client = StatsClient(check_url(stats_url, "--target-stats"))
    info = client.info()
    served = info.get("protocol", H1)  # a serve from before protocols served HTTP/1.1
    if served != protocol:
        server = get_server(info["server"])
        why = server.why_not(protocol)
        said = (
            f": {server.id} does not speak it ({why})" if why else f" (serve --protocol {protocol})"
        )
        raise OptionError(f"--protocol {protocol}: the target serves {served}{said}")
    return RemoteSubject(base_url, client, info, agents, Path(cacert) if cacert else None)


class StatsClient:
    """GETs from a ``serve`` stats endpoint; every failure is a TargetError."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def get(self, path: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise TargetError(f"stats endpoint {self.url}{path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TargetError(f"stats endpoint {self.url} does not answer: {reason}") from None
        if not isinstance(document, dict):
            raise TargetError(f"stats endpoint {self.url}{path}: not a JSON object")
        return document

    def info(self) -> dict[str, Any]:
        info = self.get("/info")
        if info.get("kind") != "stackbench.serve":
            raise TargetError(f"{self.url} is not a stackbench serve stats endpoint")
        return info

    def stats(self, since: int | None = None) -> dict[str, Any]:
        return self.get("/stats" if since is None else f"/stats?since={since}")


class RemoteSampler:
    """The Sampler's interface over the stats endpoint: mark() opens the window, stop()
    closes it. An endpoint that stops answering leaves the figures unknown (None); the
    subject's ``stopped()`` then says why the run failed."""

    def __init__(self, client: StatsClient) -> None:
        self.client = client
        self._since: int | None = None

    def mark(self) -> None:
        try:
            self._since = int(self.client.stats()["reading"]["seq"])
        except (TargetError, KeyError, TypeError, ValueError):
            self._since = None

    def stop(self) -> ServerFigures:
        if self._since is None:
            return ServerFigures(None, None, None)
        try:
            window = self.client.stats(since=self._since)["window"]
        except (TargetError, KeyError, TypeError):
            return ServerFigures(None, None, None)
        return ServerFigures(
            cpu_s=window["server_cpu_s"],
            peak_rss_mb=window["peak_rss_mb"],
            peak_db_connections=window["peak_db_connections"],
            database_cpu_s=window["database_cpu_s"],
            exited_pids=tuple(window["exited_pids"]),
            window_s=window["window_s"],
            # A serve from before CPU was read to the ns does not say how it read it.
            cpu_read=window.get("server_cpu_read"),
            database_cpu_read=window.get("database_cpu_read"),
            proxy_cpu_s=window.get("proxy_cpu_s"),
            proxy_cpu_read=window.get("proxy_cpu_read"),
            samples=tuple(window.get("samples", ())),
        )


@dataclass(frozen=True)
class RemoteSubject:
    """A pair served by ``serve`` elsewhere: load to ``base_url``, figures from ``client``."""

    base_url: str
    client: StatsClient
    info: dict[str, Any]
    agents: Agents | AgentHosts | None = None
    cafile: Path | None = None  # its CA (bench --cacert), when it serves TLS

    @property
    def server_pid(self) -> int:
        return int(self.info["server_pid"])

    @property
    def database_cpu_source(self) -> str | None:
        source = self.info.get("database_cpu_source")
        return str(source) if source else None

    def sampler(self, label: str) -> Sampling:
        return RemoteSampler(self.client)

    def loadgen_env(self) -> dict[str, str]:
        # The login scenarios use the password the serving host was given (README there).
        return {
            **os.environ,
            "STACKBENCH_ADMIN_USER": os.environ.get("STACKBENCH_ADMIN_USER", ADMIN_USER),
        }

    def stopped(self) -> str | None:
        try:
            stats = self.client.stats()
        except TargetError as exc:
            return f"the serving host stopped answering: {exc}"
        server, front = stats["server"], stats.get("proxy")
        if front is not None and not front["running"]:
            return (
                f"nginx exited with code {front['exit_code']} during the run (on the serving host)"
            )
        if server["running"]:
            return None
        return f"server exited with code {server['exit_code']} during the run (on the serving host)"

    @property
    def health_url(self) -> str:
        parts = urlsplit(self.base_url)  # at the server's root, as locally
        return f"{parts.scheme}://{parts.netloc}{self.info.get('health', '/health')}"

    def answers(self) -> bool:
        return answers_health(self.health_url, timeout=5.0, path="", cafile=self.cafile)

    def log_tail(self) -> str | None:
        return None  # the server's log is on the serving host

    def spread(
        self, load: Config, logs: Path, env: dict[str, str]
    ) -> AbstractContextManager[Spread]:
        """With agents on other hosts: this host's share, their reports merged with its
        own (stackbench/agents.py)."""
        if self.agents is None:
            return contextlib.nullcontext(Alone(load))
        return self.agents.spread(load, logs, env)


def agent_command(options: BenchOptions, target_url: str) -> str:
    """The loadgen command every other agent runs, for a POSIX shell that sets ``I`` to
    its index: this run's own load, word for word, so the merge takes them as one run."""
    load = aimed(options.load, options.scenarios[0], target_url)
    count = load.agent[1] if load.agent else 1
    argv = loadgen_argv(load.replace(agent=None), Path("REPORT"), None)
    words = ["python", *(shlex.quote(w) for w in argv[1:-1]), f'--agent "$I/{count}"']
    words.append(shlex.quote(argv[-1]))
    return " ".join(words).replace("REPORT", '"agent-$I.json"')


def result_base(info: dict[str, Any], run_dir: Path, label: str | None) -> ResultHeader:
    """The result header a local run writes, from what ``serve`` says it serves; a proxy in
    front (serve --proxy) with its configuration copied into the run directory."""
    base = ResultHeader(
        label=label,
        schema_version=SCHEMA_VERSION,
        kind="stackbench.result",
        run_id=run_dir.name,
        app=info["app"],
        server=info["server"],
        interface=info["interface"],  # checked by the schema when written
        protocol=protocol_name(info.get("protocol", H1)),
        interpreter=info["interpreter"],
        server_command=list(info["server_command"]),
        server_env=dict(info["server_env"]),
        server_settings=ServerSettings(
            workers=info["server_settings"]["workers"],
            threads=info["server_settings"]["threads"],
            pool_size=info["server_settings"]["pool_size"],
        ),
        started_at=results.now(),
    )
    front = info.get("proxy")
    if front is not None:
        config = run_dir / TARGET_PROXY_CONFIG
        if not config.exists():
            config.parent.mkdir(parents=True, exist_ok=True)
            results.write_atomic(config, str(front["config_text"]).encode())
        base["proxy"] = ProxyDoc(
            name=front["name"],
            version=front["version"],
            client_protocol=protocol_name(front["client_protocol"]),
            upstream=front["upstream"],
            upstream_address=front["upstream_address"],
            workers=front["workers"],
            command=list(front["command"]),
            config=str(TARGET_PROXY_CONFIG),
        )
    return base


# serve --proxy's configuration, as the serving host sent it, in the bench's run directory.
TARGET_PROXY_CONFIG = Path("proxy") / "target" / "nginx.conf"


def measure_target(
    subject: RemoteSubject,
    options: BenchOptions,
    label: str | None,
    run_dir: Path,
    progress: Progress,
) -> list[ResultRow]:
    base = result_base(subject.info, run_dir, label)
    if "app_source" in subject.info:
        base["app_source"] = subject.info["app_source"]
    if (stopped := subject.stopped()) is not None:
        return failed_rows(base, options, run_dir, stopped, None)
    # An app of its own is checked by its scenarios' checks alone (as a local run does).
    smoke_paths = None if subject.info.get("contract", True) else ()
    return measure_subject(subject, options, base, run_dir, progress, smoke_paths)
