"""One run directory: the database, the upstream and the manifest, shared by its jobs;
the run's verdict; everything stopped on the way out, whatever happened."""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from shared_fixtures.db import DatabaseError, database
from shared_fixtures.processes import stopped_by_signals
from shared_fixtures.upstream import start_upstream
from stackbench import results
from stackbench.app_database import AppDatabases
from stackbench.apps import App
from stackbench.certificates import certificates
from stackbench.documents import (
    SCHEMA_VERSION,
    DatabaseInfo,
    Job,
    JobProtocol,
    Manifest,
    Negotiated,
    PairRef,
    Pinning,
    ResultRow,
    RunOptions,
    RunStatus,
    Seed,
    Target,
    job,
    protocol_name,
)
from stackbench.matrix import Pair, PairError, resolve
from stackbench.measure import BIN_DIR, measure_pair, needs_upstream, serve_pair
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.server_process import Served
from stackbench.servers import TLS, Certificates, Server, get_server
from stackbench.target import TARGET_PROXY_CONFIG, RemoteSubject, measure_target


@dataclass
class RunReport:
    run_dir: Path
    status: RunStatus
    rows: list[ResultRow] = field(default_factory=list)


class BenchRun:
    """One run directory: the database, the upstream and the manifest, shared by its jobs.

        with BenchRun("fastapi_sqla-uvicorn", output=Path("results")) as run:
            rows = run.job(Pair("fastapi_sqla", "uvicorn"), options)

    A job serves one pair with one set of options and measures its scenarios; experiments
    run several jobs (and may choose the next from the last one's rows). Leaving the block
    stops everything and writes the manifest, also on Ctrl-C or SIGTERM (the first one
    stops the run; later ones wait for the stopping to finish).
    """

    def __init__(
        self,
        label: str,
        *,
        output: Path,
        scale: int = 1,
        experiment: str | None = None,
        progress: Progress | None = None,
        target: RemoteSubject | None = None,
        reseed: bool = False,
    ) -> None:
        self.label, self.output, self.scale, self.reseed = label, output, scale, reseed
        self.target = target  # a pair `serve` runs elsewhere: no database or upstream here
        self.progress = progress or Progress()
        self.report: RunReport | None = None
        # A run without result documents (instruction counts) is judged by judge_by();
        # otherwise the run's verdict is its results'.
        self._verdict: tuple[RunStatus, str | None] | None = None
        self._stack = contextlib.ExitStack()
        self._signals = contextlib.ExitStack()  # left last: after the manifest is written
        self._received: list[int] = []  # SIGINT/SIGTERM received while the run was open
        self._upstream_url: str | None = None
        self._work: Path | None = None  # the run's private temporary directory
        self._certificates: Certificates | None = None
        self._homes: dict[str, Path] = {}  # app id -> its directory: one per id in a run
        self._set_up = True  # False when the database was not had: no run to record
        self._manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            kind="stackbench.manifest",
            run_id="",
            status="failed",
            reason=None,
            experiment=experiment,
            started_at=results.now(),
            finished_at="",
            command=sys.argv,
            git=results.git_state(),
            python=results.python_info(),
            packages=results.packages(),
            machine=results.machine(),
            pinning=Pinning(server_cpus=None, client_cpus=None),
            database=DatabaseInfo(embedded=False, url="", settings={}),
            seed=Seed(scale=scale, checksum="", reseeded=False),
            loadgen=_loadgen_info(),
            options=RunOptions(jobs=[]),
            pairs=[],
            results=[],
        )

    @property
    def run_dir(self) -> Path:
        assert self.report is not None, "use BenchRun as a context manager"
        return self.report.run_dir

    def __enter__(self) -> BenchRun:
        run_dir = results.new_run_dir(self.output, self.label)
        self.report = RunReport(run_dir, "ok")
        self._manifest["run_id"] = run_dir.name
        try:
            # SIGTERM unwinds like Ctrl-C, so every context below stops what it started; a
            # second signal (nox's SIGTERM after a terminal's Ctrl-C) cannot cut that short.
            self._received = self._signals.enter_context(stopped_by_signals())
            if self.target is not None:
                self._describe_target(self.target)
                return self
            work = Path(
                self._stack.enter_context(tempfile.TemporaryDirectory(prefix="stackbench-run-"))
            )
            self._work = work
            self.progress.step("database: starting")
            self.db = self._stack.enter_context(database(work_dir=work))
            self._manifest["database"] = cast(DatabaseInfo, self.db.server_info())
            # The contract's seed is loaded for the first app that declares the contract.
            self.databases = AppDatabases(self.db, self.scale, reseed=self.reseed)
        except BaseException as exc:
            # No database, nothing measured: a run directory holding only a manifest would
            # say nothing the error line does not (an interrupted run keeps its manifest).
            self._set_up = isinstance(exc, KeyboardInterrupt)
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _describe_target(self, target: RemoteSubject) -> None:
        """The manifest's database, seed and serving host, as ``serve`` reports them."""
        info = target.info
        self._manifest["database"] = cast(DatabaseInfo, info["database"])
        self._manifest["seed"] = cast(Seed, info["seed"])
        self._manifest["target"] = Target(
            app_url=target.base_url,
            stats_url=target.client.url,
            host=info["host"],
            machine=info["machine"],
        )

    def remote_job(self, options: BenchOptions, label: str | None = None) -> list[ResultRow]:
        """Measure each scenario against the target; returns its rows."""
        assert self.report is not None and self.target is not None
        info, manifest = self.target.info, self._manifest
        manifest["pinning"] = Pinning(
            server_cpus=info["pinning"]["server_cpus"],  # on the serving host
            client_cpus=options.client_cpus,
        )
        self._jobs.append(job(info["app"], info["server"], label, options.as_dict()))
        self.progress.job += 1
        pair = PairRef(app=info["app"], server=info["server"])
        if pair not in manifest["pairs"]:
            manifest["pairs"].append(pair)
        rows = measure_target(self.target, options, label, self.run_dir, self.progress)
        if (self.run_dir / TARGET_PROXY_CONFIG).exists():  # serve --proxy on the serving host
            manifest["proxy_configs"] = [str(TARGET_PROXY_CONFIG)]
        self.report.rows.extend(rows)
        manifest["results"].extend(row["file"] for row in rows)
        self._record_protocol(Pair(info["app"], info["server"]), options, label, rows)
        return rows

    def _upstream(self, app: App, options: BenchOptions) -> str:
        """The slow upstream's URL, started for the contract's slow scenarios or an app that
        declares {upstream_url}; a discard address otherwise."""
        declared = any("{upstream_url}" in value for _, value in app.environment)
        if not (needs_upstream(options) if app.contract else declared):
            return self._upstream_url or "http://127.0.0.1:9"  # discard: nothing calls it
        if self._upstream_url is None:
            self.progress.step("upstream: starting the slow upstream service")
            process, self._upstream_url = start_upstream(self.run_dir / "logs")
            self._stack.enter_context(process)
        return self._upstream_url

    def _tls(self, options: BenchOptions) -> Certificates | None:
        """The run's certificates when ``options`` ask a TLS protocol: a test CA and a
        server certificate made on first use in the run's private temporary directory,
        removed with it (stackbench/certificates.py)."""
        if options.protocol not in TLS:
            return None
        if self._certificates is None:
            assert self._work is not None, "a local run has a temporary directory"
            self._certificates = self._stack.enter_context(certificates(self._work))
        return self._certificates

    def job(
        self,
        pair: Pair,
        options: BenchOptions,
        label: str | None = None,
        app: App | None = None,
    ) -> list[ResultRow]:
        """Serve ``pair`` with ``options`` and measure each scenario; returns its rows.

        ``label`` tells this job's results from the pair's other jobs in the run (file
        names get ``--<label>``); by default the bench variant ``options.variant`` served,
        if any. ``app``: an app that is not in the registry (experiment techempower),
        served under ``pair.server``."""
        assert self.report is not None, "use BenchRun as a context manager"
        if label is None:
            label = options.variant
        app, server = self._app_and_server(pair, app)
        self._record_job(pair, options, label)
        proxy_dir = self._proxy_dir(pair, label) if options.proxy else None
        upstream = self._upstream(app, options)
        rows = measure_pair(
            app,
            server,
            pair,
            options,
            label,
            self.db,
            self._database(app, options, upstream),
            upstream,
            self.run_dir,
            self.progress,
            self._tls(options),
            proxy_dir,
        )
        if proxy_dir is not None and (config := proxy_dir / "nginx.conf").exists():
            configs = self._manifest.setdefault("proxy_configs", [])
            configs.append(str(config.relative_to(self.run_dir)))
        self.report.rows.extend(rows)
        self._manifest["results"].extend(row["file"] for row in rows)
        self._record_protocol(pair, options, label, rows)
        return rows

    def _record_protocol(
        self, pair: Pair, options: BenchOptions, label: str | None, rows: list[ResultRow]
    ) -> None:
        """The manifest's record of what the job's load negotiated, over its scenarios."""
        spoken: Negotiated | None = Negotiated(protocols={}, tls_versions={}, ciphers={})
        for row in rows:
            said = row["summary"].get("negotiated") if row["summary"] else None
            if said is None or spoken is None:
                spoken = None  # a result that does not say: the job's is unknown
                continue
            for total, counts in (
                (spoken["protocols"], said["protocols"]),
                (spoken["tls_versions"], said["tls_versions"]),
                (spoken["ciphers"], said["ciphers"]),
            ):
                for name, count in counts.items():
                    total[name] = total.get(name, 0) + count
        self._manifest.setdefault("protocols", []).append(
            JobProtocol(
                app=pair.app,
                server=pair.server,
                label=label,
                protocol=protocol_name(options.protocol),
                negotiated=spoken,
            )
        )

    def _proxy_dir(self, pair: Pair, label: str | None) -> Path:
        """Where a job's proxy keeps its configuration and logs: one directory per job."""
        name = f"{pair.app}--{pair.server}" + (f"--{label}" if label else "")
        path, count = self.run_dir / "proxy" / name, 1
        while path.exists():
            count += 1
            path = self.run_dir / "proxy" / f"{name}-{count}"
        return path

    @contextlib.contextmanager
    def serving(
        self,
        pair: Pair,
        options: BenchOptions,
        wrap: list[str] | None = None,
        label: str | None = None,
        app: App | None = None,
    ) -> Iterator[Served]:
        """Serve ``pair`` as ``job`` does (``app``: one not in the registry), for the block
        to measure in its own way (instruction counts); the manifest records it as a job."""
        assert self.report is not None, "use BenchRun as a context manager"
        app, server = self._app_and_server(pair, app)
        self._record_job(pair, options, label if label is not None else options.variant)
        upstream = self._upstream(app, options)
        database_url = self._database(app, options, upstream)
        with serve_pair(
            app,
            server,
            options,
            database_url,
            upstream,
            self.run_dir / "logs",
            wrap,
            self._tls(options),
        ) as served:
            yield served

    def _database(self, app: App, options: BenchOptions, upstream: str) -> str:
        if app.contract and self.databases.seed is None:
            self.progress.step(f"seed: checking scale {self.scale} at {self.db.display_url}")
        elif self.databases.makes(app):
            made = f"made by `{shlex.join(app.schema)}`" if app.schema else "left empty"
            self.progress.step(f"database: app_{app.id} for {app.id}, {made}")
        try:
            database_url = self.databases.url_for(app, options.bin_dir or BIN_DIR, upstream)
        except DatabaseError:
            # A DATABASE_URL refused before anything was measured (the contract's seed not
            # there, no --reseed): the error line says it all, as for one that cannot be had.
            self._set_up = bool(self.report and self.report.rows)
            raise
        if self.databases.seed is not None:
            checksum, reseeded = self.databases.seed
            self._manifest["seed"] = Seed(scale=self.scale, checksum=checksum, reseeded=reseeded)
        return database_url

    def _app_and_server(self, pair: Pair, app: App | None) -> tuple[App, Server]:
        if app is None:
            app, server = resolve(pair)  # one clear line when invalid
        else:
            server = get_server(pair.server)
            if server.interface_for(app) is None:
                raise ValueError(f"{server.id} cannot serve {app.id}")
        if self._homes.setdefault(app.id, app.directory) != app.directory:
            raise PairError(
                f"two apps are named {app.id} in one run ({self._homes[app.id]}, "
                f"{app.directory}): an app's id is its directory's name; rename one"
            )
        return app, server

    def judge_by(self, failures: list[str]) -> None:
        """The verdict of a run measured without result documents: "ok", or "failed" naming
        the first of ``failures``."""
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        self._verdict = ("failed", failures[0] + more) if failures else ("ok", None)

    @property
    def _jobs(self) -> list[Job]:
        return self._manifest["options"].setdefault("jobs", [])

    def _record_job(self, pair: Pair, options: BenchOptions, label: str | None) -> None:
        self.progress.job += 1
        manifest = self._manifest
        if not self._jobs:
            manifest["pinning"] = Pinning(
                server_cpus=options.server_cpus, client_cpus=options.client_cpus
            )
        self._jobs.append(job(pair.app, pair.server, label, options.as_dict()))
        if (ref := PairRef(app=pair.app, server=pair.server)) not in manifest["pairs"]:
            manifest["pairs"].append(ref)

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        manifest, report = self._manifest, self.report
        try:
            self._stack.close()  # upstream, database, temporary files: in reverse order
        finally:
            if report is not None and not self._set_up and _removed_if_empty(report.run_dir):
                pass  # the database never came up: nothing ran, nothing to record
            elif report is not None:
                if exc_type is None and not self._received:
                    report.status, manifest["reason"] = self._verdict or run_verdict(report.rows)
                elif self._received or issubclass(exc_type, KeyboardInterrupt):
                    report.status = "interrupted"
                    manifest["reason"] = "interrupted (SIGINT/SIGTERM); completed results are kept"
                else:
                    report.status = "failed"
                    manifest["reason"] = str(exc).splitlines()[0] if str(exc) else repr(exc)
                manifest["status"] = report.status
                manifest["finished_at"] = results.now()
                with contextlib.suppress(results.ResultsError):
                    results.write_json(report.run_dir / "manifest.json", manifest, "manifest")
            self._signals.close()


def _removed_if_empty(path: Path) -> bool:
    try:
        path.rmdir()
    except OSError:
        return False
    return True


def run_verdict(rows: list[ResultRow]) -> tuple[RunStatus, str | None]:
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


def _loadgen_info() -> dict[str, Any]:
    try:
        import loadgen
    except ImportError:
        return {"version": None}
    return {"version": getattr(loadgen, "__version__", None)}
