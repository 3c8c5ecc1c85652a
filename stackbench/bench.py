"""One bench run, end to end (matrix.md, "One bench session"):

database up and seed verified → upstream up → each pair served in its own process group
→ smoke check → per scenario: warm-up and measured runs, server figures sampled → one
result JSON each, written atomically → manifest → summary. Everything started here is
stopped on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared_fixtures.db import Database, database
from shared_fixtures.processes import ProcessError
from shared_fixtures.seed import ensure_seeded
from shared_fixtures.upstream import start_upstream
from stackbench import results
from stackbench.apps import App
from stackbench.judge import MAX_ERROR_RATE, NOISE_BOUND, headline, judge
from stackbench.loadrun import Load, LoadError, run_load
from stackbench.matrix import Pair, get_pair
from stackbench.sampler import Sampler, ServerFigures
from stackbench.serve import Served, answers_health, serve
from stackbench.servers import Knobs, Server
from stackbench.smoke import smoke_check

DEFAULT_SCENARIOS = ("json", "db", "fortunes", "colleges", "troupes")
__all__ = ["MAX_ERROR_RATE", "NOISE_BOUND", "BenchOptions", "Run", "many_pairs", "single_pair"]
BIN_DIR = Path(sys.executable).parent


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

    @property
    def knobs(self) -> Knobs:
        return Knobs(workers=self.workers, threads=self.threads, pool_size=self.pool_size)

    @property
    def server_cpu_count(self) -> int:
        return _cpu_count(self.server_cpus) or os.cpu_count() or 1

    def load(self, scenario: str) -> Load:
        return Load(
            scenario,
            self.duration,
            self.warmup,
            self.connections,
            self.rate,
            self.processes,
            self.timeout,
            self.scenario_options,
            self.requests,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output"] = str(self.output)
        data["scenarios"] = list(self.scenarios)
        data["scenario_options"] = dict(self.scenario_options)
        return data


def _cpu_count(spec: str | None) -> int:
    """How many CPUs a taskset list like '0', '0,1' or '0-3' names."""
    if not spec:
        return 0
    count = 0
    for part in spec.split(","):
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return count


@dataclass
class RunReport:
    run_dir: Path
    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _needs_upstream(scenarios: tuple[str, ...]) -> bool:
    return any(s.startswith("slow") or s == "mix" for s in scenarios)


class Run:
    """One run directory: the database, the upstream and the manifest, shared by its jobs.

        with Run("fastapi_sqla-uvicorn", output=Path("results")) as run:
            rows = run.job(Pair("fastapi_sqla", "uvicorn"), options)

    A job serves one pair with one set of options and measures its scenarios; experiments
    run several jobs (and may choose the next from the last one's rows). Leaving the block
    stops everything and writes the manifest, also on Ctrl-C or SIGTERM.
    """

    def __init__(
        self,
        label: str,
        *,
        output: Path,
        scale: int = 1,
        experiment: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.label, self.output, self.scale = label, output, scale
        self.progress = progress or Progress()
        self.report: RunReport | None = None
        self._stack = contextlib.ExitStack()
        self._upstream_url: str | None = None
        self._manifest: dict[str, Any] = {
            "schema_version": results.SCHEMA_VERSION,
            "kind": "stackbench.manifest",
            "run_id": "",
            "status": "failed",
            "reason": None,
            "experiment": experiment,
            "started_at": results.now(),
            "command": sys.argv,
            "git": results.git_state(),
            "python": results.python_info(),
            "packages": results.packages(),
            "machine": results.machine(),
            "pinning": {"server_cpus": None, "client_cpus": None},
            "database": {"embedded": False, "url": "", "settings": {}},
            "seed": {"scale": scale, "checksum": "", "reseeded": False},
            "loadgen": _loadgen_info(),
            "options": {"jobs": []},
            "pairs": [],
            "results": [],
        }

    @property
    def run_dir(self) -> Path:
        assert self.report is not None, "use Run as a context manager"
        return self.report.run_dir

    def __enter__(self) -> Run:
        run_dir = results.new_run_dir(self.output, self.label)
        self.report = RunReport(run_dir, "ok")
        self._manifest["run_id"] = run_dir.name
        try:
            # SIGTERM unwinds like Ctrl-C, so every context below stops what it started.
            previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
            self._stack.callback(signal.signal, signal.SIGTERM, previous)
            work = Path(
                self._stack.enter_context(tempfile.TemporaryDirectory(prefix="stackbench-run-"))
            )
            self.db = self._stack.enter_context(database(work_dir=work))
            self._manifest["database"] = self.db.server_info()
            with self.db.connect() as conn:
                checksum, reseeded = ensure_seeded(conn, self.scale)
            self._manifest["seed"] = {
                "scale": self.scale,
                "checksum": checksum,
                "reseeded": reseeded,
            }
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _upstream(self, scenarios: tuple[str, ...]) -> str:
        if not _needs_upstream(scenarios):
            return self._upstream_url or "http://127.0.0.1:9"  # discard: nothing calls it
        if self._upstream_url is None:
            process, self._upstream_url = start_upstream(self.run_dir / "logs")
            self._stack.enter_context(process)
        return self._upstream_url

    def job(
        self, pair: Pair, options: BenchOptions, variant: str | None = None
    ) -> list[dict[str, Any]]:
        """Serve ``pair`` with ``options`` and measure each scenario; returns its rows."""
        assert self.report is not None, "use Run as a context manager"
        app, server = get_pair(pair.app, pair.server)  # one clear line when invalid
        manifest = self._manifest
        if not manifest["options"]["jobs"]:
            manifest["pinning"] = {
                "server_cpus": options.server_cpus,
                "client_cpus": options.client_cpus,
            }
        manifest["options"]["jobs"].append(
            {"app": pair.app, "server": pair.server, "variant": variant, **options.as_dict()}
        )
        if {"app": pair.app, "server": pair.server} not in manifest["pairs"]:
            manifest["pairs"].append({"app": pair.app, "server": pair.server})
        rows = _run_pair(
            app,
            server,
            pair,
            options,
            variant,
            self.db,
            self._upstream(options.scenarios),
            self.run_dir,
            self.progress,
        )
        self.report.rows.extend(rows)
        manifest["results"].extend(row["file"] for row in rows)
        return rows

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        manifest, report = self._manifest, self.report
        try:
            self._stack.close()  # upstream, database, temporary files: in reverse order
        finally:
            if report is not None:
                if exc_type is None:
                    report.status, manifest["reason"] = _run_verdict(report.rows)
                elif issubclass(exc_type, KeyboardInterrupt):
                    report.status = "interrupted"
                    manifest["reason"] = "interrupted (SIGINT/SIGTERM); completed results are kept"
                else:
                    report.status = "failed"
                    manifest["reason"] = str(exc).splitlines()[0] if str(exc) else repr(exc)
                manifest["status"] = report.status
                manifest["finished_at"] = results.now()
                with contextlib.suppress(results.ResultsError):
                    results.write_json(report.run_dir / "manifest.json", manifest, "manifest")


def _run_verdict(rows: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The run's status is its worst result's; the reason names the first such result."""
    for status in ("failed", "degraded"):
        worst = [row for row in rows if row["status"] == status]
        if worst:
            first = worst[0]
            where = f"{first['app']} @ {first['server']}: {first['scenario']}"
            more = f" (and {len(worst) - 1} more {status})" if len(worst) > 1 else ""
            return status, f"{where}: {first['reason'] or status}{more}"
    if not rows:
        return "failed", "no result was measured"
    return "ok", None


def _run_pair(
    app: App,
    server: Server,
    pair: Pair,
    options: BenchOptions,
    variant: str | None,
    db: Database,
    upstream_url: str,
    run_dir: Path,
    progress: Progress,
) -> list[dict[str, Any]]:
    settings = server.resolve(options.knobs, options.server_cpu_count)
    base = _result_base(app, server, pair, run_dir, settings, variant)
    try:
        with serve(
            app,
            server,
            database_url=db.url,
            upstream_url=upstream_url,
            bin_dir=BIN_DIR,
            log_dir=run_dir / "logs",
            knobs=options.knobs,
            cpus=options.server_cpu_count,
            ready_timeout=options.ready_timeout,
            wrap=["taskset", "-c", options.server_cpus] if options.server_cpus else None,
        ) as served:
            base["server_command"] = served.argv
            # The check probes what the load will hit: the app mounted at the prefix.
            failures = smoke_check(
                served.base_url + options.prefix, slow=_needs_upstream(options.scenarios)
            )
            if failures:
                reason = "smoke check failed: " + "; ".join(failures)
                return [
                    _write_failed(base, options, s, run_dir, reason, None)
                    for s in options.scenarios
                ]
            rows = []
            for scenario in options.scenarios:
                rows.append(_run_scenario(served, scenario, options, db, base, run_dir, progress))
                server_gone = not answers_health(served.base_url, timeout=5.0)
                if rows[-1]["status"] == "failed" and server_gone:
                    break  # the server is gone or hung: the other scenarios cannot run
            return rows
    except ProcessError as exc:
        reason, _, tail = str(exc).partition("; last log lines:\n")
        return [
            _write_failed(base, options, s, run_dir, reason, tail or None)
            for s in options.scenarios
        ]


def _result_base(
    app: App,
    server: Server,
    pair: Pair,
    run_dir: Path,
    settings: dict[str, int],
    variant: str | None,
) -> dict[str, Any]:
    return {
        "variant": variant,
        "schema_version": results.SCHEMA_VERSION,
        "kind": "stackbench.result",
        "run_id": run_dir.name,
        "app": pair.app,
        "server": pair.server,
        "interface": server.interface_for(app),
        "server_command": [],
        "server_env": {k: v for k, v in server.env.items() if app.driver_switch},
        "server_settings": settings,
        "started_at": results.now(),
    }


def _load_info(options: BenchOptions, scenario: str) -> dict[str, Any]:
    load = options.load(scenario)
    return {
        "model": load.model,
        "duration_s": load.duration,
        "warmup_s": load.warmup,
        "connections": load.connections,
        "rate": load.rate,
        "requests": load.requests,
        "repeats": options.repeats,
        "processes": load.processes,
    }


def _write_failed(
    base: dict[str, Any],
    options: BenchOptions,
    scenario: str,
    run_dir: Path,
    reason: str,
    log_tail: str | None,
) -> dict[str, Any]:
    document = {
        **base,
        "scenario": scenario,
        "scenario_options": dict(options.scenario_options),
        "status": "failed",
        "reason": reason,
        "log_tail": log_tail,
        "load": _load_info(options, scenario),
        "summary": None,
        "flags": {
            "noisy": False,
            "client_saturated": False,
            "checks_failed": False,
            "worker_restarted": False,
        },
        "repeats": [],
        "finished_at": results.now(),
    }
    return _write_result(document, run_dir)


def _write_result(document: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    variant = f"--{document['variant']}" if document.get("variant") else ""
    name = f"{document['app']}--{document['server']}--{document['scenario']}{variant}.json"
    results.write_json(run_dir / name, document, "result")
    return {
        "file": name,
        **{
            k: document[k]
            for k in (
                "app",
                "server",
                "variant",
                "scenario",
                "status",
                "reason",
                "summary",
                "flags",
            )
        },
    }


def _run_scenario(
    served: Served,
    scenario: str,
    options: BenchOptions,
    db: Database,
    base: dict[str, Any],
    run_dir: Path,
    progress: Progress,
) -> dict[str, Any]:
    load = options.load(scenario)
    env = {
        **os.environ,
        "STACKBENCH_ADMIN_USER": served.admin_credentials[0],
        "STACKBENCH_ADMIN_PASSWORD": served.admin_credentials[1],
    }
    repeats: list[dict[str, Any]] = []
    reason: str | None = None
    label = f"{base['app']} @ {base['server']}: {scenario}"
    for index in range(options.repeats):
        database_pid = db.process.pid if db.embedded and db.process else None
        sampler = Sampler(served.process.pid, db.url, database_pid=database_pid).start()
        figures = ServerFigures(None, None, None)
        try:
            tick = progress.start(
                f"{label} ({index + 1}/{options.repeats})", load.warmup + load.duration
            )
            report = run_load(
                load,
                served.base_url + options.prefix,
                run_dir / "logs",
                env=env,
                client_cpus=options.client_cpus,
                on_warm=sampler.mark,
                on_tick=tick,
            )
        except LoadError as exc:
            reason = str(exc)
            break
        finally:
            figures = sampler.stop()
            progress.done()
        alive = served.process.running()
        repeats.append(
            {
                "rps": float(report["summary"]["rps"]),
                "p99_ms": round(headline(report)["percentiles_ns"]["99"] / 1e6, 3),
                "server": {
                    "cpu_s": figures.cpu_s,
                    "peak_rss_mb": figures.peak_rss_mb,
                    "peak_db_connections": figures.peak_db_connections,
                    "alive_after": alive,
                    # The master's exit is the "server exited" reason below, not a restart.
                    "worker_exits": len(
                        [pid for pid in figures.exited_pids if pid != served.process.pid]
                    ),
                    "exited_pids": list(figures.exited_pids),
                    "window_s": figures.window_s,
                },
                "database": {
                    "cpu_s": figures.database_cpu_s,
                    "source": "proc" if database_pid is not None else None,
                },
                "loadgen": report,
            }
        )
        if not alive:
            code = served.process.popen.poll()
            reason = (
                f"server exited with code {code} during the run"
                if code is not None
                else "server stopped answering /health (hung)"
            )
            break
    document = {
        **base,
        "scenario": scenario,
        "scenario_options": dict(options.scenario_options),
        "load": _load_info(options, scenario),
        "repeats": repeats,
        "log_tail": None,
        "finished_at": results.now(),
    }
    document.update(judge(repeats, reason))
    if document["status"] == "failed":
        document["log_tail"] = served.process.log_tail()
    return _write_result(document, run_dir)


def _loadgen_info() -> dict[str, Any]:
    try:
        import loadgen
    except ImportError:
        return {"version": None}
    return {"version": getattr(loadgen, "__version__", None)}


class Progress:
    """What a run shows while it measures; the CLI swaps in a rich display."""

    def start(self, label: str, seconds: float) -> Callable[[float], None]:
        return lambda elapsed: None

    def done(self) -> None:
        pass


def many_pairs(
    pairs: list[Pair], options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """Several pairs side by side in one run directory, with the same options."""
    for pair in pairs:
        get_pair(pair.app, pair.server)  # every pair is checked before anything starts
    label = "-".join(sorted({p.app for p in pairs})) if len(pairs) <= 2 else f"{len(pairs)}-pairs"
    with Run(label, output=options.output, scale=options.scale, progress=progress) as run:
        for pair in pairs:
            run.job(pair, options)
    assert run.report is not None
    return run.report


def single_pair(
    app: str, server: str, options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """The bench session: one pair, one options set, one run directory."""
    get_pair(app, server)  # an invalid pair is refused before anything starts
    with Run(
        f"{app}-{server}", output=options.output, scale=options.scale, progress=progress
    ) as run:
        run.job(Pair(app, server), options)
    assert run.report is not None
    return run.report
