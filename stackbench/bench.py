"""The bench entry points (docs/bench.md, "One run, end to end"): pairs measured side by
side in one run directory.

every pair checked, and each app from elsewhere that claims the contract smoke-checked
(``check_claims``) → database up → each app's database (the contract's seed verified, or
its own made by its schema command: stackbench/app_database.py) → upstream up when used →
each pair served in its own process group → smoke check → per scenario: warm-up and
measured runs, server figures sampled → one result JSON each, written atomically →
manifest → summary (stackbench/run.py, stackbench/measure.py).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from shared_fixtures.db import database
from stackbench.agents import Agents
from stackbench.app_database import AppDatabases
from stackbench.apps import App, DeclarationError
from stackbench.matrix import Pair, app_of, distinct, parse_pairs, resolve
from stackbench.measure import BIN_DIR
from stackbench.options import BenchOptions, OptionError
from stackbench.progress import Progress
from stackbench.run import BenchRun, RunReport
from stackbench.server_process import app_env, serve
from stackbench.servers import Knobs, get_server
from stackbench.smoke import smoke_check
from stackbench.target import connect


def many_pairs(
    pairs: list[Pair], options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """Several pairs side by side in one run directory, with the same options."""
    for pair in distinct(pairs):
        resolve(pair)  # every pair is checked before anything starts
    check_apps(pairs, options)
    label = "-".join(sorted({p.app for p in pairs})) if len(pairs) <= 2 else f"{len(pairs)}-pairs"
    with BenchRun(
        label,
        output=options.output,
        scale=options.scale,
        progress=progress,
        reseed=options.reseed,
    ) as run:
        run.progress.jobs = len(pairs)
        for pair in pairs:
            run.job(pair, options)
    assert run.report is not None
    return run.report


def single_pair(
    app: str, server: str, options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """The bench session: one pair (``app`` a reference app's id or a directory), one
    options set, one run directory."""
    (pair,) = parse_pairs(f"{app}@{server}")  # an invalid pair is refused before anything starts
    check_apps([pair], options)
    with BenchRun(
        f"{pair.app}-{server}",
        output=options.output,
        scale=options.scale,
        progress=progress,
        reseed=options.reseed,
    ) as run:
        run.progress.jobs = 1
        run.job(pair, options)
    assert run.report is not None
    return run.report


def remote_pair(
    target_url: str, stats_url: str, options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """bench --target: the pair ``serve`` runs at ``target_url``, measured from here, its
    server-side figures from ``stats_url`` (the stats endpoint ``serve`` printed)."""
    agents = None
    if options.load.agent is not None:
        index, count = options.load.agent
        reports = options.agent_reports or options.output  # unused when N is 1
        agents = Agents(index, count, reports, options.agent_wait)
    # An unreachable target is one line, before anything runs.
    subject = connect(target_url, stats_url, agents, options.protocol, options.load.cacert)
    if not subject.info.get("contract", True) and options.load.scenario_file is None:
        raise OptionError(
            f"{subject.info['app']} does not serve the contract: give its scenario file "
            "(--scenario-file FILE, a copy of the one beside its stackbench.toml)"
        )
    label = f"{subject.info['app']}-{subject.info['server']}-target"
    with BenchRun(
        label, output=options.output, scale=options.scale, progress=progress, target=subject
    ) as run:
        run.progress.jobs = 1
        run.remote_job(options)
    assert run.report is not None
    return run.report


def check_apps(pairs: list[Pair], options: BenchOptions) -> None:
    """The apps from outside reference_apps/ that ``pairs`` serve, checked before anything
    starts, by every command that serves them (bench, capacity): each entry imports
    (``check_entries``) and a contract it claims holds (``check_claims``); a failure is its
    declaration's error, one line and exit 2."""
    check_entries(pairs, options.bin_dir or BIN_DIR)
    check_claims(pairs, options)


# Imports the entry's module and reads its attribute, as a server would; nothing else of
# the app runs (no server, no lifespan, no request).
_IMPORT = (
    "import importlib, sys; sys.path.insert(0, ''); "
    "getattr(importlib.import_module(sys.argv[1]), sys.argv[2])"
)
# Where an app that imports its entry finds its database: nobody listens there (the
# check reads no table; an app that connects on import is refused, naming the error).
_NO_DATABASE = "postgresql://stackbench@127.0.0.1:9/unused"


def check_entries(pairs: list[Pair], bin_dir: Path) -> None:
    """The entry point each server of a pair would load, for an app from outside
    reference_apps/, imported once in a child process in the app's directory with its
    declared environment and ``bin_dir``'s Python: one that does not import (a missing
    dependency, a syntax error, no such attribute) is its declaration's error (exit 2)
    before anything starts. The harness learns nothing from it; the reference apps' entries
    are imported by the test suite."""
    checked: set[tuple[Path, str]] = set()
    for pair in pairs:
        if pair.home is None:
            continue
        app, server = resolve(pair)
        interface = server.interface_for(app)
        assert interface is not None  # resolve refused the pair otherwise
        entry = app.entries[interface]
        if (app.directory, entry) in checked:
            continue
        checked.add((app.directory, entry))
        env = app_env(app, server, _NO_DATABASE, "http://127.0.0.1:9", Knobs())
        module, _, attribute = entry.partition(":")
        try:
            done = subprocess.run(
                [str(bin_dir / "python"), "-c", _IMPORT, module, attribute],
                cwd=app.directory,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DeclarationError(f"{app.declared_in}: interfaces: {entry}: {exc}") from None
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            raise DeclarationError(
                f"{app.declared_in}: interfaces: {interface} = {entry!r} does not import "
                f"in {app.directory} ({server.id}'s Python, {bin_dir}): {lines[-1]}"
            )


def check_claims(pairs: list[Pair], options: BenchOptions) -> None:
    """An app from outside reference_apps/ that declares the contract is served once, on a
    database made for the check, and smoke-checked at each of its prefixes before a run
    starts: one that fails is its declaration's error (exit 2), and no run directory is
    made. (The reference apps are held to the contract by the test suite's conformance
    run, tests/test_conformance.py, over every one found.)"""
    claimed: dict[str, tuple[App, str]] = {}
    for pair in pairs:
        app = app_of(pair)
        if pair.home is not None and app.contract:
            claimed.setdefault(app.id, (app, pair.server))
    if not claimed:
        return
    bin_dir = options.bin_dir or BIN_DIR
    with (
        tempfile.TemporaryDirectory(prefix="stackbench-claim-") as work,
        database(work_dir=Path(work)) as db,
    ):
        databases = AppDatabases(db, options.scale, reseed=options.reseed)
        for app, server in claimed.values():
            with serve(
                app,
                get_server(server),
                database_url=databases.url_for(app, bin_dir),
                upstream_url="http://127.0.0.1:9",  # the slow endpoints are not checked
                bin_dir=bin_dir,
                log_dir=Path(work) / "logs",
                knobs=Knobs(workers=1, pool_size=options.pool_size),
                cpus=1,
                ready_timeout=options.ready_timeout,
            ) as served:
                failures = [
                    f"{prefix}{failure}"
                    for prefix in app.prefixes
                    for failure in smoke_check(served.base_url + prefix, slow=False)
                ]
            if failures:
                more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
                raise DeclarationError(
                    f"{app.declared_in}: contract: {app.id} declares the contract but fails "
                    f"its smoke check under {server}: {failures[0]}{more}"
                )
