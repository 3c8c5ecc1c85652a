"""An app is a directory with a declaration (stackbench/declaration.py, docs/your-app.md).

The declaration is read, never the app's code: an app whose module exits when imported is
still an app. Every key is documented, each mistake is one line naming the file and the
key, the pyproject.toml form reads as the stackbench.toml form does, and a copy of a
reference app in reference_apps/ is a new app in every nox session with no other change.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stackbench import apps, declaration, matrix
from stackbench.apps import DeclarationError, get_app, load_app
from stackbench.cli import build_parser
from stackbench.options import BenchOptions, options_for_pairs
from stackbench.server_process import app_env, placeholders
from stackbench.servers import SERVERS, Knobs, get_server
from tests.your_app import made_here
from tests.your_app.made_here import notes_app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "your-app.md"
NOTES_DIR = Path(__file__).resolve().parent / "notes"


def _error(directory: Path) -> str:
    with pytest.raises(DeclarationError) as raised:
        load_app(directory)
    message = str(raised.value)
    assert "\n" not in message, message
    return message


def test_every_key_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)`", DOCS.read_text(), re.M))
    assert set(declaration.KEYS) <= documented, set(declaration.KEYS) - documented
    placeholders_named = set(re.findall(r"`\{([a-z_]+)\}`", DOCS.read_text()))
    assert set(declaration.PLACEHOLDERS) <= placeholders_named


def test_the_documented_example_is_the_tested_app() -> None:
    """docs/your-app.md shows tests/your_app/notes' declaration and scenario file as they
    are: what a reader copies is what the end-to-end tests bench."""
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    for name in ("stackbench.toml", "scenarios.toml"):
        assert (NOTES_DIR / name).read_text() in blocks, f"docs/your-app.md lacks notes/{name}"
    assert made_here.DJANGO_DECLARATION in blocks


def test_the_code_is_never_imported(tmp_path: Path) -> None:
    app_dir = notes_app(tmp_path)
    (app_dir / "main.py").write_text('raise SystemExit("imported")\n')
    app = load_app(app_dir)
    assert app.id == "notes" and app.entries == {"asgi": "main:app"}
    assert app.scenarios == app_dir / "scenarios.toml"  # found beside the declaration
    assert app.schema == ("python", "schema.py") and not app.contract
    assert [p.server for p in [matrix.pair_of(app, "uvicorn")]] == ["uvicorn"]
    assert "notes" not in sys.modules and "main" not in sys.modules


def test_pyproject_reads_as_the_declaration_does(tmp_path: Path) -> None:
    own = notes_app(tmp_path / "a")
    tool = notes_app(tmp_path / "b")
    (tool / "pyproject.toml").write_text(
        '[project]\nname = "notes"\nversion = "1"\n\n'
        + re.sub(
            r"^\[", "[tool.stackbench.", (own / "stackbench.toml").read_text(), flags=re.M
        ).replace("# How", "[tool.stackbench]\n# How", 1)
    )
    (tool / "stackbench.toml").unlink()
    first, second = load_app(own), load_app(tool)
    assert second.declaration == tool / "pyproject.toml"
    for field in ("entries", "schema", "environment", "health", "description"):
        assert getattr(first, field) == getattr(second, field), field
    (tool / "stackbench.toml").write_text((own / "stackbench.toml").read_text())
    assert "declared twice" in _error(tool)


# The notes app's declaration, key by key (values in TOML); each mistake changes one key.
NOTES = {
    "requirements": '["requirements.txt"]',
    "schema": '"python schema.py"',
    "health": '"/health"',
    "interfaces": '{asgi = "main:app"}',
    "environment": '{DATABASE_URL = "{database_url}"}',
}
# (key, its wrong value in TOML or None to leave it out, what the line says)
MISTAKES = [
    ("interfaces", None, "missing"),
    ("entrys", '{asgi = "main:app"}', "unknown key"),
    ("interfaces", '{asgi = "nowhere:app"}', "module nowhere does not exist"),
    ("interfaces", '{asgi = "main"}', "is not module:attribute"),
    ("interfaces", '{rsgi = "main:app"}', "not an interface"),
    ("requirements", '["requirements-prod.txt"]', "does not exist"),
    ("schema", '"python migrate.py"', "migrate.py does not exist"),
    ("health", '"health"', "starting with /"),
    ("contract", "1", "true or false"),
    ("environment", '{DATABASE_URL = "{db_url}"}', "unknown placeholder {db_url}"),
    ("scenarios", '"load.toml"', "load.toml does not exist"),
]


@pytest.mark.parametrize(
    ("key", "value", "says"), MISTAKES, ids=[f"{key}: {says}" for key, _, says in MISTAKES]
)
def test_a_mistake_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, key: str, value: str | None, says: str
) -> None:
    app_dir = notes_app(tmp_path)
    declared = {k: v for k, v in {**NOTES, key: value}.items() if v is not None}
    (app_dir / "stackbench.toml").write_text("".join(f"{k} = {v}\n" for k, v in declared.items()))
    message = _error(app_dir)
    assert message.startswith(f"{app_dir / 'stackbench.toml'}: {key}: "), message
    assert says in message


def test_the_notes_keys_alone_are_a_valid_declaration(tmp_path: Path) -> None:
    app_dir = notes_app(tmp_path)
    (app_dir / "stackbench.toml").write_text("".join(f"{k} = {v}\n" for k, v in NOTES.items()))
    assert load_app(app_dir).entries == {"asgi": "main:app"}


def test_no_declaration_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert "no stackbench.toml" in _error(tmp_path / "plain")
    assert "no such directory" in _error(tmp_path / "gone")


def test_placeholders_are_filled_and_the_driver_switch_follows_the_server(tmp_path: Path) -> None:
    app = get_app("django_sync")
    url = "postgresql://user:pw@127.0.0.1:5433/stackbench"
    env = app_env(app, get_server("gunicorn-eventlet"), url, "http://u", Knobs(pool_size=7))
    assert env["DATABASE_URL"] == url and env["DB_POOL_SIZE"] == "7"
    assert env["DJANGO_SETTINGS_MODULE"] == "project.settings"
    assert env["DJANGO_DB_DRIVER"] == "psycopg2" and env["PSYCOGREEN"] == "eventlet"
    notes = load_app(notes_app(tmp_path))
    env = app_env(notes, get_server("gunicorn-eventlet"), url, "http://u", Knobs(pool_size=3))
    assert env["POOL_SIZE"] == "3" and "DJANGO_DB_DRIVER" not in env  # no driver switch
    parts = placeholders(url, "http://u", Knobs())
    assert (parts["database_host"], parts["database_port"], parts["database_name"]) == (
        "127.0.0.1",
        "5433",
        "stackbench",
    )
    assert parts["database_user"] == "user" and parts["database_password"] == "pw"


def test_two_directories_with_one_name_are_refused_in_one_run(tmp_path: Path) -> None:
    first, second = notes_app(tmp_path / "a"), notes_app(tmp_path / "b")
    with pytest.raises(matrix.PairError, match="two apps are named notes in one run"):
        matrix.parse_pairs(f"{first}@uvicorn,{second}@hypercorn")


class RecordingSession:
    """What a nox session function asks nox for: its installs and its commands, recorded;
    its errors raised."""

    def __init__(self, invoked_from: Path, *posargs: str) -> None:
        self.invoked_from, self.posargs = str(invoked_from), list(posargs)
        self.installed: list[str] = []
        self.ran: list[str] = []

    def install(self, *args: str) -> None:
        self.installed += args

    def run(self, *args: str, **how: object) -> None:
        self.ran += args

    def error(self, message: str) -> None:
        raise SystemExit(message)


def test_bench_app_session_installs_the_apps_own_requirements(tmp_path: Path) -> None:
    """nox -s bench_app -- PATH --server S: the app's requirement files, the servers'
    packages, then the bench with the rest of the arguments (a recording session)."""
    app_dir = notes_app(tmp_path)
    noxfile = _noxfile()

    Session = functools.partial(RecordingSession, tmp_path)

    session = Session("notes", "--server", "uvicorn,granian", "--duration", "1s")
    noxfile.bench_app(session)
    assert ["-r", str(app_dir / "requirements.txt")] == session.installed[2:4]
    for server in ("uvicorn", "granian"):
        assert set(SERVERS[server].requirements) <= set(session.installed)
    assert session.ran[3:] == ["bench", "--app", str(app_dir), *session.posargs[1:]]
    with pytest.raises(SystemExit, match="bench_app needs the app's directory first"):
        noxfile.bench_app(Session("--server", "uvicorn"))
    with pytest.raises(SystemExit, match="bench_app needs --server"):
        noxfile.bench_app(Session("notes", "--duration", "1s"))
    for option in ("--app=gino_style", "--pairs=gino_style@uvicorn", "--target=http://x"):
        with pytest.raises(
            SystemExit, match=f"by the path first, so no {option.partition('=')[0]}"
        ):
            noxfile.bench_app(Session("notes", "--server", "uvicorn", option))
    with pytest.raises(SystemExit, match=r"gunicorn-sync serves WSGI; notes is ASGI \(interfaces"):
        noxfile.bench_app(Session("notes", "--server", "gunicorn-sync"))


def test_capacity_app_session_installs_the_apps_own_requirements(tmp_path: Path) -> None:
    """nox -s capacity_app -- PATH [--servers A,B]: bench_app's installs for the servers
    the search serves (those capacity --app chooses), then capacity with the rest."""
    app_dir = notes_app(tmp_path)
    noxfile = _noxfile()

    Session = functools.partial(RecordingSession, tmp_path)

    session = Session("notes", "--servers", "uvicorn,granian", "--scenario", "note")
    noxfile.capacity_app(session)
    assert ["-r", str(app_dir / "requirements.txt")] == session.installed[2:4]
    for server in ("uvicorn", "granian"):
        assert set(SERVERS[server].requirements) <= set(session.installed)
    assert session.ran[3:] == ["capacity", "--app", str(app_dir), *session.posargs[1:]]
    every = Session("notes", "--scenario", "note")  # no --servers: every shared-venv one
    noxfile.capacity_app(every)
    for server in matrix.shared_venv_servers(load_app(app_dir)):
        assert set(SERVERS[server].requirements) <= set(every.installed)
    with pytest.raises(SystemExit, match="capacity_app needs the app's directory first"):
        noxfile.capacity_app(Session("--servers", "uvicorn"))
    with pytest.raises(SystemExit, match="capacity_app searches --servers A,B"):
        noxfile.capacity_app(Session("notes", "--server", "uvicorn"))
    with pytest.raises(SystemExit, match="by the path first, so no --target"):
        noxfile.capacity_app(Session("notes", "--target=http://x"))
    with pytest.raises(SystemExit, match=r"no pair \(notes, gunicorn-sync\)"):
        noxfile.capacity_app(Session("notes", "--servers", "gunicorn-sync"))


def _noxfile():  # type: ignore[no-untyped-def]
    """The noxfile imported as nox imports it; what it sets for nox's own process (PATH,
    the SIGTERM handler) is put back for this one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stackbench_noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path, on_sigterm = os.environ.get("PATH", ""), signal.getsignal(signal.SIGTERM)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ["PATH"] = path
        signal.signal(signal.SIGTERM, on_sigterm)
    return module


def test_a_copied_reference_app_is_in_every_pair_session(tmp_path: Path) -> None:
    """reference_apps/gino_style copied to reference_apps/gino_copy in a copy of the
    repository: `nox -l --json` lists bench(app='gino_copy', server=S) and serve(...) for
    every server gino_style has, and `nox -l`'s page lists it with gino_style's servers,
    with no other change."""
    copy = tmp_path / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(copy / "reference_apps" / "gino_style", copy / "reference_apps" / "gino_copy")
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", "-k", "bench or serve"],
        cwd=copy, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NOX_DEFAULT_VENV_BACKEND": "venv"},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    sessions = {s["session"] for s in json.loads(listed.stdout)}
    servers = {p.server for p in matrix.pairs() if p.app == "gino_style"}
    for kind in ("bench", "serve"):
        copied = {s for s in sessions if s.startswith(f"{kind}(app='gino_copy'")}
        assert copied == {f"{kind}(app='gino_copy', server='{s}')" for s in servers}, kind
    # nox -l's own page (stackbench/nox_listing.py): the copy shares gino_style's servers.
    page = subprocess.run(
        [sys.executable, "-m", "nox", "--list"],
        cwd=copy, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NOX_DEFAULT_VENV_BACKEND": "venv", "COLUMNS": "300"},
    )  # fmt: skip
    assert page.returncode == 0, page.stderr
    # Each list that names gino_style (the pairs' group of apps, the capacity sessions' apps)
    # names the copy too.
    lines = [line for line in page.stdout.splitlines() if "gino_style" in line]
    assert lines, page.stdout
    for line in lines:
        assert "gino_copy" in line.replace(",", " ").replace(":", " ").split(), page.stdout
    assert apps.APPS["gino_style"].directory.parent == ROOT / "reference_apps"
    assert "gino_copy" not in apps.APPS  # the copy was made in the repository's copy only


def test_matrix_json_describes_each_app_from_its_declaration() -> None:
    listed = {entry["app"]: entry for entry in json.loads(matrix.as_json())["apps"]}
    assert set(listed) == set(apps.APPS)
    for app_id, entry in listed.items():
        declared = tomllib.loads((apps.APPS_DIR / app_id / "stackbench.toml").read_text())
        assert entry["description"] == declared["description"] and entry["description"]
        assert entry["interfaces"] == list(declared["interfaces"])
        assert entry["declaration"] == f"reference_apps/{app_id}/stackbench.toml"


def test_a_run_of_an_apps_pairs_loads_its_declared_scenarios(tmp_path: Path) -> None:
    """bench and the experiments that take pairs (python-versions, the features ones)
    load an app of its own with its declared scenario file; the contract's apps with the
    contract's scenarios; --scenario-file, when given, wins."""
    notes = notes_app(tmp_path)
    parser = build_parser()

    def options(*args: str) -> BenchOptions:
        parsed = parser.parse_args([*args, "--output", str(tmp_path / "out")])
        return options_for_pairs(parsed, matrix.parse_pairs(parsed.pairs))

    own = options("bench", "--pairs", f"{notes}@uvicorn")
    assert own.load.scenario_file == str(notes / "scenarios.toml")
    assert own.scenarios == ("note", "latest")
    contract = options("bench", "--pairs", "gino_style@uvicorn")
    assert contract.load.scenario_file is None and "json" in contract.scenarios
    other = tmp_path / "other.toml"
    renamed = (notes / "scenarios.toml").read_text().replace("scenarios.note", "scenarios.one")
    other.write_text(renamed)
    typed = options("bench", "--pairs", f"{notes}@uvicorn", "--scenario-file", str(other))
    assert typed.load.scenario_file == str(other) and typed.scenarios[0] == "one"
    # The experiment's command line, refused before anything starts: the scenario it
    # names is looked up in the app's own file.
    done = subprocess.run(
        [
            sys.executable, "-m", "stackbench", "experiment", "python-versions",
            "--pairs", f"{notes}@uvicorn", "--scenarios", "json",
            "--interpreter", f"a={made_here.BIN_DIR}", "--interpreter", f"b={made_here.BIN_DIR}",
            "--output", str(tmp_path / "versions"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert str(notes / "scenarios.toml") in lines[0] and "json" in lines[0], lines[0]
    assert not (tmp_path / "versions").exists() or not any((tmp_path / "versions").iterdir())
