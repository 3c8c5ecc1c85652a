"""The techempower experiment: each of our apps beside TechEmpower's implementation of its
stack, on the same database, under the same server, pinning and load.

TechEmpower's apps are not in the repository: ``--techempower PATH`` names a checkout of
TechEmpower/FrameworkBenchmarks (or an export of its ``frameworks/Python/{django,fastapi}``
folders). Each is served from a temporary copy in which only where the database is has been
changed (a settings overlay for Django; for FastAPI, whose host, port and database name are
literals in the code, those literals), from a temporary venv of their requirements (the
server packages at the harness's versions, so the server is the same as ours; what had to be
relaxed is listed in the output). Ours and theirs are measured as duets in ONE run
directory, rounds reversing the order (as django-features does); the table gives the median
of each duet's ratio ours / theirs with its range.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from stackbench.apps import ASGI, WSGI, App
from stackbench.documents import ResultRow
from stackbench.experiments.duets import Measured, append_round, count_job, median, paired_ratio
from stackbench.experiments.report import markdown_table
from stackbench.experiments.their_venv import build_venv
from stackbench.matrix import Pair
from stackbench.options import BenchOptions, OptionError
from stackbench.progress import Progress
from stackbench.run import BenchRun

NAME = "techempower"
OURS, THEIRS = "ours", "theirs"
DJANGO_OVERLAY = "sb_techempower_settings"


class TechEmpowerError(OptionError):
    """A missing or unusable TechEmpower folder: one line, exit 2."""


@dataclass(frozen=True)
class Counterpart:
    ours: Pair
    app_id: str
    folder: str  # under frameworks/Python/
    cwd: str  # the app's directory inside the folder
    entry: str
    interface: str
    requirements: str
    stack: str
    smoke_paths: tuple[str, ...] = ("/db", "/fortunes")
    known: str = ""  # a way their answer differs from our contract's checks


COUNTERPARTS = {
    c.ours.app: c
    for c in (
        Counterpart(
            Pair("django_sync", "gunicorn-gthread"),
            "techempower_django",
            "django",
            "hello",
            "hello.wsgi:application",
            WSGI,
            "requirements-gunicorn.txt",
            "TechEmpower's Django app (no middleware, psycopg2, persistent connections)",
        ),
        Counterpart(
            Pair("fastapi_sqla", "uvicorn"),
            "techempower_fastapi_orm",
            "fastapi",
            "",
            "app_orm:app",
            ASGI,
            "requirements-sqlalchemy.txt",
            "TechEmpower's FastAPI + SQLAlchemy ORM app (app_orm.py)",
            smoke_paths=("/fortunes",),
            known="its /db answers `randomnumber` in lower case; TechEmpower's verifier "
            "lowercases keys, our contract's check does not (loadgen's check stays on: its "
            "/db rows are marked checks_failed)",
        ),
        Counterpart(
            Pair("gino_style", "uvicorn"),
            "techempower_fastapi_raw",
            "fastapi",
            "",
            "app:app",
            ASGI,
            "requirements-sqlalchemy.txt",
            "TechEmpower's FastAPI raw asyncpg app (app.py)",
        ),
    )
}


def locate(root: Path, ours: list[str]) -> dict[str, Path]:
    """Each needed folder (django, fastapi) under ``root`` or ``root/frameworks/Python``."""
    base = root / "frameworks" / "Python"
    base = base if base.is_dir() else root
    found = {}
    for app in ours:
        counterpart = COUNTERPARTS[app]
        folder = base / counterpart.folder
        module = counterpart.entry.partition(":")[0].replace(".", "/") + ".py"
        for needed in (Path(counterpart.cwd) / module, Path(counterpart.requirements)):
            if not (folder / needed).exists():
                raise TechEmpowerError(
                    f"--techempower {root}: no {folder / needed} (expected a checkout of "
                    "TechEmpower/FrameworkBenchmarks or an export of frameworks/Python/"
                    f"{counterpart.folder})"
                )
        found[counterpart.folder] = folder
    return found


def _commit(root: Path) -> str:
    """' at commit …' when ``root`` is the top of a git checkout (an export has none)."""
    git = ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"]
    done = subprocess.run(git, capture_output=True, text=True, check=False)
    top, _, commit = done.stdout.strip().partition("\n")
    return f" at commit {commit}" if done.returncode == 0 and Path(top) == root.resolve() else ""


def _substitute(path: Path, old: str, new: str, changes: list[str]) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise TechEmpowerError(
            f"{path.name}: expected {old!r} once, found it {text.count(old)} times; "
            "TechEmpower's app has changed: update stackbench/experiments/techempower.py"
        )
    path.write_text(text.replace(old, new))
    changes.append(f"{path.name}: `{old}` → `{new}`")


def configure(counterpart: Counterpart, app_dir: Path, url: str, changes: list[str]) -> App:
    """Point the copy in ``app_dir`` at the database ``url``; only its location changes."""
    db = urlsplit(url)
    host, port, name = db.hostname or "127.0.0.1", db.port or 5432, db.path.lstrip("/")
    user, password = db.username or "postgres", db.password or ""
    env: dict[str, str] = {}
    if counterpart.folder == "django":
        location = {"NAME": name, "USER": user, "PASSWORD": password, "HOST": host, "PORT": port}
        overlay = app_dir / f"{DJANGO_OVERLAY}.py"
        overlay.write_text(
            "# Generated by stackbench: TechEmpower's settings, the database's location changed\n"
            "from hello.settings import *  # noqa: F403\n\n"
            f"DATABASES['default'].update({location!r})  # noqa: F405\n"
        )
        changes.append(f"{overlay.name} (new): DATABASES['default'].update({location!r})")
        env = {"DJANGO_DB": "postgresql", "DJANGO_SETTINGS_MODULE": DJANGO_OVERLAY}
    elif counterpart.entry == "app:app":
        source = app_dir / "app.py"
        _substitute(source, 'host="tfb-database"', f'host="{host}"', changes)
        _substitute(source, "port=5432", f"port={port}", changes)
        _substitute(source, 'database="hello_world"', f'database="{name}"', changes)
        env = {"PGUSER": user, "PGPASS": password}
    else:  # app_orm.py reads PGPASS for the user as well as the password
        old = "@tfb-database:5432/hello_world"
        _substitute(app_dir / "app_orm.py", old, f"@{host}:{port}/{name}", changes)
        env = {"PGPASS": user}
    changes.append(f"{counterpart.app_id} environment: {env}")
    return App(
        counterpart.app_id,
        {counterpart.interface: counterpart.entry},
        counterpart.stack,
        env=tuple(env.items()),
        home=app_dir,
        ready_path="/db",
        smoke_paths=counterpart.smoke_paths,
    )


@dataclass
class TechEmpowerOutcome:
    run_dir: Path
    changes: list[str] = field(default_factory=list)
    # (our app, server, scenario) → OURS / THEIRS → per round
    measured: dict[tuple[str, str, str], dict[str, Measured]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # each result not measured cleanly
    # --instructions: (our app, server, scenario) → OURS / THEIRS → per round
    counted: dict[tuple[str, str, str], dict[str, list[float | None]]] = field(default_factory=dict)

    @property
    def missing(self) -> bool:
        """True when some duet has a side without numbers (exit 1)."""
        return any(
            None in m.per_server_cpu for sides in self.measured.values() for m in sides.values()
        ) or any(None in c for sides in self.counted.values() for c in sides.values())


def run_techempower(
    *,
    root: Path,
    ours: list[str],
    options: BenchOptions,
    rounds: int,
    their_bin: Path | None = None,
    progress: Progress | None = None,
    instructions: tuple[int, int] | None = None,
) -> TechEmpowerOutcome:
    """Each of ``ours`` and its counterpart as a duet, ``rounds`` times (see the module).
    ``instructions`` (requests, warm-up requests): count each side's instructions per
    request under callgrind instead of measuring it under load."""
    folders = locate(root, ours)
    counterparts = [COUNTERPARTS[app] for app in ours]
    with (
        BenchRun(NAME, output=options.output, experiment=NAME, progress=progress) as run,
        tempfile.TemporaryDirectory(prefix="stackbench-techempower-") as tmp,
    ):
        outcome = TechEmpowerOutcome(run.run_dir)
        outcome.changes.append(f"TechEmpower's apps from {root}{_commit(root)}")
        bins: dict[str, Path] = {}
        theirs: dict[str, App] = {}
        for counterpart in counterparts:
            folder = folders[counterpart.folder]
            copy = Path(tmp) / counterpart.app_id
            shutil.copytree(folder, copy)
            theirs[counterpart.ours.app] = configure(
                counterpart, copy / counterpart.cwd, run.db.url, outcome.changes
            )
            if counterpart.folder not in bins:
                venv = Path(tmp) / f"venv-{counterpart.folder}"
                bins[counterpart.folder] = their_bin or build_venv(
                    folder, counterpart.requirements, venv, outcome.changes
                )
        if their_bin:
            outcome.changes.append(f"their apps ran from the venv {their_bin} (given)")
        for round_ in range(rounds):
            order = counterparts if round_ % 2 == 0 else counterparts[::-1]
            for index, counterpart in enumerate(order):
                duet = [OURS, THEIRS] if (round_ + index) % 2 == 0 else [THEIRS, OURS]
                for side in duet:
                    app = theirs[counterpart.ours.app] if side == THEIRS else None
                    pair = Pair(app.id, counterpart.ours.server) if app else counterpart.ours
                    served = replace(options, repeats=1)
                    if app:
                        served = replace(served, bin_dir=bins[counterpart.folder])
                    label = f"{side}-r{round_ + 1}"
                    if instructions is not None:
                        counts, failure = count_job(run, pair, served, label, *instructions, app)
                        _record_counts(outcome, counterpart, side, counts, failure, round_)
                        continue
                    for row in run.job(pair, served, label=label, app=app):
                        _record(outcome, counterpart, side, row, round_)
        if instructions is not None:  # no result documents: the counts give the verdict
            run.judge_by(outcome.notes)
        (run.run_dir / "techempower-changes.json").write_text(json.dumps(outcome.changes))
    return outcome


def _record(
    outcome: TechEmpowerOutcome, counterpart: Counterpart, side: str, row: ResultRow, round_: int
) -> None:
    """Numbers are kept from a degraded result too (its status is listed in the notes)."""
    key = (counterpart.ours.app, counterpart.ours.server, row["scenario"])
    measured = outcome.measured.setdefault(key, {}).setdefault(side, Measured())
    measured.record(row["summary"], round_)
    if row["status"] != "ok":
        outcome.notes.append(
            f"{row['app']} @ {row['server']} {row['scenario']} ({side}), round {round_ + 1}: "
            f"{row['status']}: {row['reason']}"
        )


def _record_counts(
    outcome: TechEmpowerOutcome,
    counterpart: Counterpart,
    side: str,
    counts: dict[str, float | None],
    failure: str | None,
    round_: int,
) -> None:
    if failure is not None:
        outcome.notes.append(failure)
    for scenario, per_request in counts.items():
        key = (counterpart.ours.app, counterpart.ours.server, scenario)
        append_round(outcome.counted.setdefault(key, {}).setdefault(side, []), round_, per_request)


HEADERS = [
    "ours @ server (theirs)",
    "scenario",
    "req/s ours",
    "req/s theirs",
    "p99 ms ours",
    "p99 ms theirs",
    "req/server CPU-s ours",
    "req/server CPU-s theirs",
    "ours / theirs (range)",
    "req/(server+DB) CPU-s: ours / theirs (range)",
]


def rows(outcome: TechEmpowerOutcome) -> list[list[str]]:
    out = []
    for (app, server, scenario), sides in sorted(outcome.measured.items()):
        ours, theirs = sides.get(OURS, Measured()), sides.get(THEIRS, Measured())
        out.append(
            [
                f"{app} @ {server} ({COUNTERPARTS[app].app_id})",
                scenario,
                median(ours.rps),
                median(theirs.rps),
                median(ours.p99_ms, "{:.1f}"),
                median(theirs.p99_ms, "{:.1f}"),
                median(ours.per_server_cpu),
                median(theirs.per_server_cpu),
                paired_ratio(ours.per_server_cpu, theirs.per_server_cpu).text(),
                paired_ratio(ours.per_stack_cpu, theirs.per_stack_cpu).text(),
            ]
        )
    return out


INSTRUCTION_HEADERS = [
    "ours @ server (theirs)",
    "scenario",
    "instructions/request ours",
    "instructions/request theirs",
    "ours / theirs, per instruction (range)",
]


def instruction_rows(outcome: TechEmpowerOutcome) -> list[list[str]]:
    """Theirs' count over ours', round by round: below 1, ours runs more instructions per
    request (read as the req/server CPU-s ratio is read)."""
    out = []
    for (app, server, scenario), sides in sorted(outcome.counted.items()):
        ours, theirs = sides.get(OURS, []), sides.get(THEIRS, [])
        out.append(
            [
                f"{app} @ {server} ({COUNTERPARTS[app].app_id})",
                scenario,
                median(ours),
                median(theirs),
                paired_ratio(theirs, ours).text(digits=3),
            ]
        )
    return out


def markdown(outcome: TechEmpowerOutcome, command: str) -> str:
    headers, body = HEADERS, rows(outcome)
    if outcome.counted:
        headers, body = INSTRUCTION_HEADERS, instruction_rows(outcome)
    lines = [f"`{command}`", "", *markdown_table(headers, body, labels=2)]
    lines += ["", "Their copies and venvs, as changed:", *(f"- {c}" for c in outcome.changes)]
    known = [c for c in COUNTERPARTS.values() if c.known and c.ours.app in _apps(outcome)]
    lines += ["", *(f"Known difference: {c.app_id}: {c.known}" for c in known)]
    if outcome.notes:
        lines += ["", "Not measured cleanly:", *(f"- {n}" for n in outcome.notes)]
    return "\n".join(lines) + "\n"


def _apps(outcome: TechEmpowerOutcome) -> set[str]:
    return {app for app, _, _ in [*outcome.measured, *outcome.counted]}
