"""Reading run directories for a report, tolerantly.

A run directory holds ``manifest.json`` and one ``APP--SERVER--SCENARIO.json`` per
result (``stackbench.results``). A file that is missing, unreadable or not valid against
its schema becomes a warning naming the file; everything else is still reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from stackbench import results
from stackbench.documents import CapacityDocument, Manifest, Repeat, ResultDocument, Summary
from stackbench.judge import median_index
from stackbench.matrix import REFERENCE_APP, REFERENCE_SERVER


class ReportError(ValueError):
    """The report cannot be made at all (bad input); one line, naming what is wrong."""


@dataclass(frozen=True)
class LoadedResult:
    """One validated result document and where it came from."""

    doc: ResultDocument
    path: Path
    # Set when a report holds several interpreters: the label then names the Python.
    show_python: bool = False

    @property
    def app(self) -> str:
        return str(self.doc["app"])

    @property
    def server(self) -> str:
        return str(self.doc["server"])

    @property
    def pair_arg(self) -> str:
        """The pair as --pairs names it: app@server, an app from outside a reference_apps/
        directory by the path its result recorded."""
        source = self.doc.get("app_source")
        if source and Path(source["path"]).parent.name != "reference_apps":
            return f"{source['path']}@{self.server}"
        return f"{self.app}@{self.server}"

    @property
    def scenario(self) -> str:
        return str(self.doc["scenario"])

    @property
    def python(self) -> str:
        """The server's Python: '3.13', '3.13t' with the GIL off, '' when not recorded."""
        found = self.doc.get("interpreter")
        if not found:
            return ""
        minor = ".".join(found["version"].split(".")[:2])
        return minor + ("" if found["gil_enabled"] else "t")

    @property
    def proxy(self) -> str:
        """The proxy clients reached the server through: 'nginx (unix)'; '' when none."""
        return results.proxy_named(self.doc) or ""

    @property
    def pair(self) -> str:
        label = f"{self.app} @ {self.server}" + (f" via {self.proxy}" if self.proxy else "")
        return f"{label} · py{self.python}" if self.show_python and self.python else label

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a result is the measurement of: pairs on two Pythons are two rows, a pair
        reached directly and through a proxy too."""
        server = self.server + (f" via {self.proxy}" if self.proxy else "")
        return (self.scenario, self.app, server, self.python)

    @property
    def is_reference(self) -> bool:
        return (self.app, self.server) == (REFERENCE_APP, REFERENCE_SERVER)

    @property
    def status(self) -> str:
        return str(self.doc["status"])

    @property
    def summary(self) -> Summary | None:
        return self.doc["summary"] or None

    @property
    def rps(self) -> float | None:
        return float(self.doc["summary"]["rps"]) if self.doc["summary"] else None

    @property
    def repeats(self) -> list[Repeat]:
        return list(self.doc["repeats"])

    def median_repeat(self) -> Repeat | None:
        """The repeat whose req/s is the median: the one the summary's percentiles are from."""
        repeats = self.repeats
        if not repeats:
            return None
        return repeats[median_index([float(r["rps"]) for r in repeats])]


@dataclass
class LoadedRun:
    """One run directory: its manifest (None when unusable) and the results that loaded."""

    path: Path
    manifest: Manifest | None
    results: list[LoadedResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # A capacity run's answer (capacity.json); its results are the search's probes.
    capacity: CapacityDocument | None = None

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"]) if self.manifest else self.path.name


def load_run(path: Path) -> LoadedRun:
    """Read one run directory; what cannot be read becomes a warning naming the file."""
    if not path.is_dir():
        raise ReportError(f"{path}: not a run directory (no such directory)")
    run = LoadedRun(path, None)
    try:
        run.manifest = results.read_manifest(path / "manifest.json")
    except results.ResultsError as exc:
        run.warnings.append(f"{exc}; provenance unknown, results read from the directory")
    if (path / results.CAPACITY_FILE).exists():
        try:
            run.capacity = results.read_capacity(path / results.CAPACITY_FILE)
        except results.ResultsError as exc:
            run.warnings.append(str(exc))
    listed = [str(name) for name in (run.manifest["results"] if run.manifest else [])]
    names = list(dict.fromkeys([*listed, *sorted(p.name for p in path.glob("*--*.json"))]))
    if not names:
        run.warnings.append(f"{path}: no result files (*--*.json) in this directory")
    for name in names:
        try:
            document = results.read_result(path / name)
        except results.ResultsError as exc:
            run.warnings.append(str(exc))
            continue
        run.results.append(LoadedResult(document, path / name))
    return run


def merge(runs: list[LoadedRun]) -> list[LoadedResult]:
    """Every result of every run. One (app, server, scenario) may come from one run only,
    except the reference pair, which every CI job measures beside its own pairs."""
    seen: dict[tuple[str, str, str, str], LoadedResult] = {}
    merged: list[LoadedResult] = []
    for run in runs:
        for result in run.results:
            other = seen.get(result.key)
            # The same run given twice is a mistake even for the reference pair.
            if other is not None and (
                not result.is_reference or other.doc["run_id"] == result.doc["run_id"]
            ):
                raise ReportError(
                    f"{result.pair}, scenario {result.scenario}, is in both "
                    f"{other.path.parent} and {result.path.parent}: to compare two runs give "
                    "exactly two run directories, or the older with --baseline"
                )
            seen[result.key] = result
            merged.append(result)
    return merged


def label_interpreters(runs: list[LoadedRun]) -> None:
    """When the runs hold more than one Python, every result's label names its Python."""
    if len({r.python for run in runs for r in run.results}) <= 1:
        return
    for run in runs:
        run.results = [dataclasses.replace(r, show_python=True) for r in run.results]


def pairs_measured(run: LoadedRun) -> set[tuple[str, str]]:
    """The (app, server) pairs of a run, the reference pair left out."""
    return {(r.app, r.server) for r in run.results if not r.is_reference}


def scenarios(items: list[LoadedResult]) -> list[str]:
    """Scenarios in the order the runs measured them."""
    return list(dict.fromkeys(r.scenario for r in items))
