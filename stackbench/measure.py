"""One pair measured: served in its own process group, smoke-checked where the load will
go, then each scenario's warm-up and measured repeats with the server figures sampled
beside them, judged, and written as one result document each."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast
from urllib.parse import urlsplit

from loadgen.config import Config
from loadgen.scenario import options_for
from shared_fixtures.db import Database
from shared_fixtures.processes import ProcessError
from stackbench import proxy, results
from stackbench.agents import Alone, Spread
from stackbench.apps import App
from stackbench.documents import (
    SCHEMA_VERSION,
    DatabaseFigures,
    Flags,
    LoadInfo,
    ProtocolCheck,
    ProxyDoc,
    ProxyFigures,
    Repeat,
    ResultDocument,
    ResultHeader,
    ResultRow,
    ServerFiguresDoc,
    ServerSettings,
    Verdict,
    interface,
    protocol_name,
)
from stackbench.judge import headline, judge
from stackbench.loadrun import LoadError, aimed, run_load
from stackbench.matrix import Pair
from stackbench.options import BENCH_LOAD, BenchOptions
from stackbench.profiler import ProfiledSampler
from stackbench.progress import Progress
from stackbench.protocol_check import check as check_protocol
from stackbench.proxy import Proxied
from stackbench.sampler import Sampler, ServerFigures
from stackbench.server_process import Served, answers_health, serve
from stackbench.servers import TLS, Certificates, Server
from stackbench.smoke import smoke_check
from stackbench.variants import get_variant

BIN_DIR = Path(sys.executable).parent


def needs_upstream(options: BenchOptions) -> bool:
    """The contract's scenarios that call the upstream service (a scenario file's are
    named by their author: theirs are not the contract's ``slow-*``)."""
    if options.load.scenario_file is not None:
        return False
    return any(s.startswith("slow") or s == "mix" for s in options.scenarios)


class Sampling(Protocol):
    def mark(self) -> None: ...
    def stop(self) -> ServerFigures: ...


class Subject(Protocol):
    """What the scenarios measure: a pair served here, or by ``serve`` on another host."""

    @property
    def base_url(self) -> str: ...  # the contract's root, where the load goes
    @property
    def server_pid(self) -> int: ...  # the master: its exit is not a worker restart
    @property
    def database_cpu_source(self) -> str | None: ...  # "proc": read from /proc
    @property
    def cafile(self) -> Path | None: ...  # the CA a TLS client trusts (None: cleartext)
    @property
    def health_url(self) -> str: ...  # the app's health path at the front's root

    def sampler(self, label: str) -> Sampling: ...  # started; mark() opens the window
    def loadgen_env(self) -> dict[str, str]: ...
    def stopped(self) -> str | None: ...  # None while the server runs, else why not
    def answers(self) -> bool: ...  # /health answers: the next scenario can run
    def log_tail(self) -> str | None: ...
    # This host's share of one repeat's load, and the whole load's report (stackbench/agents.py)
    def spread(
        self, load: Config, logs: Path, env: dict[str, str]
    ) -> AbstractContextManager[Spread]: ...


@dataclass(frozen=True)
class LocalSubject:
    """A pair this process serves (with a proxy in front, or not), its figures read from
    this host's /proc."""

    served: Served
    db: Database
    database_url: str  # the app's database in it (its connections are counted there)
    prefix: str = ""
    profiles: Path | None = None  # bench --profile: py-spy's files go here
    proxied: Proxied | None = None  # bench --proxy: the load goes through it

    @property
    def front_url(self) -> str:
        """Where clients reach the app's root: the proxy, or the server itself."""
        return self.proxied.base_url if self.proxied else self.served.base_url

    @property
    def base_url(self) -> str:
        return self.front_url + self.prefix

    @property
    def server_pid(self) -> int:
        return self.served.process.pid

    @property
    def _database_pid(self) -> int | None:
        return self.db.process.pid if self.db.embedded and self.db.process else None

    @property
    def database_cpu_source(self) -> str | None:
        return "proc" if self._database_pid is not None else None

    @property
    def cafile(self) -> Path | None:
        """What a client of the front trusts: the proxy's CA, or the server's."""
        return self.proxied.cafile if self.proxied else self.served.cafile

    @property
    def health_url(self) -> str:
        return self.front_url + self.served.app.health

    def sampler(self, label: str) -> Sampling:
        sampler = Sampler(
            self.server_pid,
            self.database_url,
            database_pid=self._database_pid,
            proxy_pgid=self.proxied.process.pid if self.proxied else None,
        )
        if self.profiles is None:
            return sampler.start()
        app_modules = {p.stem for p in self.served.app.directory.iterdir()}
        raw = self.profiles / f"{label}.txt"
        return ProfiledSampler(sampler, self.server_pid, raw, app_modules).start()

    def loadgen_env(self) -> dict[str, str]:
        user, password = self.served.admin_credentials
        return {**os.environ, "STACKBENCH_ADMIN_USER": user, "STACKBENCH_ADMIN_PASSWORD": password}

    def stopped(self) -> str | None:
        if self.proxied is not None and (why := self.proxied.stopped()) is not None:
            return why
        if self.served.process.running():
            return None
        code = self.served.process.popen.poll()
        if code is None:
            return "server stopped answering /health (hung)"
        return f"server exited with code {code} during the run"

    def answers(self) -> bool:
        return answers_health(self.health_url, timeout=5.0, path="", cafile=self.cafile)

    def log_tail(self) -> str | None:
        if self.proxied is not None and self.proxied.stopped() is not None:
            return self.proxied.log_tail()
        return self.served.process.log_tail()

    def spread(
        self, load: Config, logs: Path, env: dict[str, str]
    ) -> AbstractContextManager[Spread]:
        return nullcontext(Alone(load))  # all the load runs here


def measure_pair(
    app: App,
    server: Server,
    pair: Pair,
    options: BenchOptions,
    label: str | None,
    db: Database,
    database_url: str,
    upstream_url: str,
    run_dir: Path,
    progress: Progress,
    certificates: Certificates | None = None,
    proxy_dir: Path | None = None,
) -> list[ResultRow]:
    """Serve ``app`` under ``server`` on ``database_url`` (its database in ``db``) and
    measure each scenario; one row each. ``certificates``: a TLS protocol's (the server's,
    or the proxy's in front); ``proxy_dir``: where the proxy's configuration and logs go
    (``options.proxy``)."""
    settings = server.resolve(options.knobs, options.server_cpu_count)
    base = _result_base(app, server, pair, run_dir, settings, label, options.protocol)
    served_variant = get_variant(options.variant, [app.id]) if options.variant else None
    if served_variant is not None and served_variant.settings:  # what the server ran
        base["server_env"] = {
            **base.get("server_env", {}),
            "DJANGO_SETTINGS_MODULE": served_variant.settings,
        }
    progress.step(f"{progress.where()} · server: starting {app.id} under {server.id}")
    try:
        logs = run_dir / "logs"
        with serve_fronted(
            app, server, options, database_url, upstream_url, logs, proxy_dir, certificates
        ) as (served, proxied):
            base["server_command"] = served.argv
            # The server's own Python (its venv's), asked with the server's environment.
            base["interpreter"] = results.interpreter(
                (options.bin_dir or BIN_DIR) / "python", served.env
            )
            if proxied is not None:
                base["proxy"] = proxy_doc(proxied, run_dir)
            # The load (and the smoke check) go to the app mounted at the prefix.
            profiles = run_dir / "profiles" if options.profile else None
            subject = LocalSubject(served, db, database_url, options.prefix, profiles, proxied)
            # An app of its own is checked by its scenarios' checks alone.
            smoke_paths = app.smoke_paths if app.contract else ()
            return measure_subject(subject, options, base, run_dir, progress, smoke_paths)
    except ProcessError as exc:
        reason, _, tail = str(exc).partition("; last log lines:\n")
        return failed_rows(base, options, run_dir, reason, tail or None)


def serve_pair(
    app: App,
    server: Server,
    options: BenchOptions,
    database_url: str,
    upstream_url: str,
    log_dir: Path,
    wrap: list[str] | None = None,
    certificates: Certificates | None = None,
    unix_socket: Path | None = None,
) -> AbstractContextManager[Served]:
    """``app`` under ``server`` as ``options`` say (variant, knobs, pinning, protocol),
    until the block ends; ``wrap`` prefixes the server's command (after the pinning);
    ``certificates``: a TLS protocol's. Behind a proxy (``options.proxy``) the server
    speaks HTTP/1.1 (the proxy ends the protocol) and listens on ``unix_socket`` when
    given."""
    pinning = _pinning(options)
    protocol = options.server_protocol
    return serve(
        app,
        server,
        database_url=database_url,
        upstream_url=upstream_url,
        bin_dir=options.bin_dir or BIN_DIR,
        log_dir=log_dir,
        knobs=options.knobs,
        cpus=options.server_cpu_count,
        ready_timeout=options.ready_timeout,
        wrap=[*pinning, *(wrap or [])] or None,
        variant=get_variant(options.variant, [app.id]) if options.variant else None,
        protocol=protocol,
        certificates=certificates if protocol in TLS else None,
        unix_socket=unix_socket,
    )


def _pinning(options: BenchOptions) -> list[str]:
    return ["taskset", "-c", options.server_cpus] if options.server_cpus else []


@contextmanager
def serve_fronted(
    app: App,
    server: Server,
    options: BenchOptions,
    database_url: str,
    upstream_url: str,
    log_dir: Path,
    proxy_dir: Path | None,
    certificates: Certificates | None = None,
) -> Iterator[tuple[Served, Proxied | None]]:
    """The pair served as ``serve_pair`` serves it, with the proxy ``options`` ask for in
    front (its files in ``proxy_dir``), pinned to the server's CPUs: the serving side. A
    TLS protocol's ``certificates`` are the proxy's when there is one, else the server's."""
    spec = options.front
    if spec is None:
        with serve_pair(
            app, server, options, database_url, upstream_url, log_dir, certificates=certificates
        ) as served:
            yield served, None
        return
    with proxy.runtime_dir() as runtime:
        layout = proxy.Layout(proxy_dir or log_dir / "proxy", runtime)
        socket = layout.socket if spec.upstream == proxy.UNIX else None
        with (
            serve_pair(
                app, server, options, database_url, upstream_url, log_dir, unix_socket=socket
            ) as served,
            proxy.front(
                served,
                spec,
                layout,
                wrap=_pinning(options),
                ready_timeout=options.ready_timeout,
                certificates=certificates,
            ) as proxied,
        ):
            yield served, proxied


def proxy_doc(proxied: Proxied, run_dir: Path) -> ProxyDoc:
    """What a result says about the proxy in front of its pair."""
    config = proxied.layout.config
    return ProxyDoc(
        name=proxied.spec.name,
        version=proxied.version,
        client_protocol=protocol_name(proxied.spec.client_protocol),
        upstream="unix" if proxied.spec.upstream == proxy.UNIX else "tcp",
        upstream_address=proxied.upstream_address,
        workers=proxied.spec.workers,
        command=proxied.argv,
        config=str(config.relative_to(run_dir)) if config.is_relative_to(run_dir) else str(config),
    )


def measure_subject(
    subject: Subject,
    options: BenchOptions,
    base: ResultHeader,
    run_dir: Path,
    progress: Progress,
    smoke_paths: tuple[str, ...] | None = None,
) -> list[ResultRow]:
    """Smoke-check the subject (``smoke_paths`` only, if given), then measure each
    scenario; one result document each."""
    slow = needs_upstream(options)
    progress.step(f"{progress.where()} · smoke check at {subject.base_url}")
    failures = smoke_check(subject.base_url, slow=slow, paths=smoke_paths, cafile=subject.cafile)
    if failures:
        reason = "smoke check failed: " + "; ".join(failures)
        return failed_rows(base, options, run_dir, reason, None)
    # The protocol asked, spoken on one connection of its own before the load, on the path
    # every app answers (its health path: an app of its own has no /json).
    health = urlsplit(subject.health_url)
    root = f"{health.scheme}://{health.netloc}"
    spoken = check_protocol(root, options.protocol, subject.cafile, health.path)
    if isinstance(spoken, str):
        return failed_rows(base, options, run_dir, f"protocol check failed: {spoken}", None)
    base["protocol_check"] = ProtocolCheck(
        protocol=spoken.protocol,
        tls_version=spoken.tls_version,
        cipher=spoken.cipher,
        alpn=spoken.alpn,
    )
    rows = []
    for index, scenario in enumerate(options.scenarios):
        where = f"{progress.where()} · scenario {index + 1} of {len(options.scenarios)}"
        rows.append(_run_scenario(subject, scenario, options, base, run_dir, progress, where))
        if rows[-1]["status"] == "failed" and not subject.answers():
            break  # the server is gone or hung: the other scenarios cannot run
    return rows


def failed_rows(
    base: ResultHeader, options: BenchOptions, run_dir: Path, reason: str, log_tail: str | None
) -> list[ResultRow]:
    rows = []
    for scenario in options.scenarios:
        flags = Flags(
            noisy=False, client_saturated=False, checks_failed=False, worker_restarted=False
        )
        verdict = Verdict(status="failed", reason=reason, summary=None, flags=flags)
        rows.append(_write_result(base, options, scenario, verdict, [], log_tail, run_dir))
    return rows


def _result_base(
    app: App,
    server: Server,
    pair: Pair,
    run_dir: Path,
    settings: dict[str, int],
    label: str | None,
    protocol: str,
) -> ResultHeader:
    return ResultHeader(
        label=label,
        schema_version=SCHEMA_VERSION,
        kind="stackbench.result",
        run_id=run_dir.name,
        app=pair.app,
        app_source=results.app_source(app),
        server=pair.server,
        interface=interface(server.interface_for(app)),
        protocol=protocol_name(protocol),
        server_command=[],
        server_env={k: v for k, v in server.env.items() if app.driver_switch},
        server_settings=ServerSettings(
            workers=settings["workers"],
            threads=settings["threads"],
            pool_size=settings["pool_size"],
        ),
        started_at=results.now(),
    )


def _load_info(options: BenchOptions, scenario: str) -> LoadInfo:
    load = options.load
    return LoadInfo(
        model="open" if load.open_model else "closed",
        # A count (-n) has no requested duration; the document's is the bench's default.
        duration_s=load.duration if load.duration is not None else cast(float, BENCH_LOAD.duration),
        warmup_s=load.warmup,
        connections=load.concurrency,
        rate=load.rate,
        requests=load.requests,
        repeats=options.repeats,
        processes=load.processes,
        misbehaving=dict(load.misbehaving),
        agents=load.agent[1] if load.agent else 1,
    )


def _write_result(
    base: ResultHeader,
    options: BenchOptions,
    scenario: str,
    verdict: Verdict,
    repeats: list[Repeat],
    log_tail: str | None,
    run_dir: Path,
) -> ResultRow:
    """One scenario's result document, written; its row in the run's summary table."""
    document = ResultDocument(
        **base,
        scenario=scenario,
        scenario_options=options_for(
            scenario, options.load.scenario_options, options.load.scenario_file
        ),
        status=verdict["status"],
        reason=verdict["reason"],
        log_tail=log_tail,
        load=_load_info(options, scenario),
        summary=verdict["summary"],
        flags=verdict["flags"],
        repeats=repeats,
        finished_at=results.now(),
    )
    if options.load.scenario_file is not None:
        document["scenario_file"] = options.load.scenario_file
    label = base.get("label")
    name = f"{base['app']}--{base['server']}--{_file_part(scenario)}"
    name += f"{f'--{label}' if label else ''}.json"
    results.write_json(run_dir / name, dict(document), "result")
    return results.row_of(document, name)


def _file_part(scenario: str) -> str:
    """A scenario as part of a file name: a scenario file by its name without .py, any
    character a file name should not hold replaced (the document keeps it as given)."""
    if scenario.endswith(".py") or os.sep in scenario:
        scenario = Path(scenario).name.removesuffix(".py")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario)


def _run_scenario(
    subject: Subject,
    scenario: str,
    options: BenchOptions,
    base: ResultHeader,
    run_dir: Path,
    progress: Progress,
    where: str,
) -> ResultRow:
    load = aimed(options.load, scenario, subject.base_url, subject.cafile)
    env = subject.loadgen_env()
    repeats: list[Repeat] = []
    reason: str | None = None
    tag = f" [{base['label']}]" if base.get("label") else ""
    label = f"{base['app']} @ {base['server']}: {scenario}{tag}"
    for index in range(options.repeats):
        window = f"{base['app']}--{base['server']}--{_file_part(scenario)}--{index + 1}"
        sampler = subject.sampler(window)
        figures = ServerFigures(None, None, None)
        try:
            repeat = f" · repeat {index + 1} of {options.repeats}" if options.repeats > 1 else ""
            seconds = load.warmup + (load.duration or 0.0)
            tick = progress.start(f"{where}{repeat}: {label}", seconds)
            with subject.spread(load, run_dir / "logs", env) as spread:
                report = run_load(
                    spread.load,
                    run_dir / "logs",
                    env=env,
                    client_cpus=options.client_cpus,
                    on_warm=sampler.mark,
                    on_tick=tick,
                )
                report = spread.merged(report)
        except LoadError as exc:
            reason = str(exc)
            break
        finally:
            figures = sampler.stop()
            progress.done()
        stopped = subject.stopped()
        repeats.append(
            Repeat(
                rps=float(report["summary"]["rps"]),
                p99_ms=round(headline(report)["percentiles_ns"]["99"] / 1e6, 3),
                server=ServerFiguresDoc(
                    cpu_s=figures.cpu_s,
                    peak_rss_mb=figures.peak_rss_mb,
                    peak_db_connections=figures.peak_db_connections,
                    alive_after=stopped is None,
                    # The master's exit is the "server exited" reason below, not a restart.
                    worker_exits=len(
                        [pid for pid in figures.exited_pids if pid != subject.server_pid]
                    ),
                    exited_pids=list(figures.exited_pids),
                    window_s=figures.window_s,
                    cpu_read=figures.cpu_read,
                    samples=list(figures.samples),
                ),
                database=DatabaseFigures(
                    cpu_s=figures.database_cpu_s,
                    source=subject.database_cpu_source,
                    cpu_read=figures.database_cpu_read,
                ),
                loadgen=report,
            )
        )
        if figures.proxy_cpu_read is not None:  # a proxy in front: its CPU beside the server's
            repeats[-1]["proxy"] = ProxyFigures(
                cpu_s=figures.proxy_cpu_s, cpu_read=figures.proxy_cpu_read
            )
        if figures.profile is not None:
            repeats[-1]["profile"] = figures.profile
        if stopped is not None:
            reason = stopped
            break
    verdict = judge(repeats, reason, options.protocol)
    if any("profile" in repeat for repeat in repeats):
        verdict["flags"]["profiled"] = True  # py-spy's pauses are in these figures
    log_tail = subject.log_tail() if verdict["status"] == "failed" else None
    return _write_result(base, options, scenario, verdict, repeats, log_tail, run_dir)
