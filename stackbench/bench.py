"""The bench entry points (docs/bench.md, "One run, end to end"): pairs measured side by
side in one run directory.

database up and seed verified → upstream up → each pair served in its own process group
→ smoke check → per scenario: warm-up and measured runs, server figures sampled → one
result JSON each, written atomically → manifest → summary (stackbench/run.py,
stackbench/measure.py).
"""

from __future__ import annotations

from stackbench.matrix import Pair, get_pair
from stackbench.options import BenchOptions
from stackbench.progress import Progress
from stackbench.run import BenchRun, RunReport
from stackbench.target import Agents, connect


def many_pairs(
    pairs: list[Pair], options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """Several pairs side by side in one run directory, with the same options."""
    for pair in pairs:
        get_pair(pair.app, pair.server)  # every pair is checked before anything starts
    label = "-".join(sorted({p.app for p in pairs})) if len(pairs) <= 2 else f"{len(pairs)}-pairs"
    with BenchRun(label, output=options.output, scale=options.scale, progress=progress) as run:
        run.progress.jobs = len(pairs)
        for pair in pairs:
            run.job(pair, options)
    assert run.report is not None
    return run.report


def single_pair(
    app: str, server: str, options: BenchOptions, progress: Progress | None = None
) -> RunReport:
    """The bench session: one pair, one options set, one run directory."""
    get_pair(app, server)  # an invalid pair is refused before anything starts
    with BenchRun(
        f"{app}-{server}", output=options.output, scale=options.scale, progress=progress
    ) as run:
        run.progress.jobs = 1
        run.job(Pair(app, server), options)
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
    subject = connect(target_url, stats_url, agents)
    label = f"{subject.info['app']}-{subject.info['server']}-target"
    with BenchRun(
        label, output=options.output, scale=options.scale, progress=progress, target=subject
    ) as run:
        run.progress.jobs = 1
        run.remote_job(options)
    assert run.report is not None
    return run.report
