"""Every registered app is on disk, and a lost app file fails loudly instead of skipping.

The planted fault is a copy of ``reference_apps/`` (symlinks) without
``tortoise/requirements.txt``, made the apps' directory for one test: the matrix, the
noxfile (its import and its test install) and the session's app servers must each raise
one clear error naming the file, never skip or leave the app out.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from stackbench import apps, matrix, nox_command, nox_sessions
from stackbench.apps import APPS, get_app

ROOT = Path(__file__).resolve().parents[2]
LOST = "tortoise/requirements.txt"


def _error(call: Callable[[], object]) -> str:
    """The AppFilesMissingError message of ``call``; a skip or a success fails the test."""
    try:
        call()
    except pytest.skip.Exception as skipped:
        pytest.fail(f"a lost app file was skipped instead of failing: {skipped}")
    except matrix.AppFilesMissingError as exc:
        message = str(exc)
        assert "\n" not in message, message
        return message
    pytest.fail(f"{call} carried on without {LOST}")


@pytest.fixture
def lost_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """reference_apps/ as symlinks, tortoise without its requirements.txt."""
    copy = tmp_path / "reference_apps"
    copy.mkdir()
    for source in apps.APPS_DIR.iterdir():
        if source.name != "tortoise":
            (copy / source.name).symlink_to(source)
    (copy / "tortoise").mkdir()
    for source in (apps.APPS_DIR / "tortoise").iterdir():
        if source.name != "requirements.txt":
            (copy / "tortoise" / source.name).symlink_to(source)
    monkeypatch.setattr(apps, "APPS_DIR", copy)
    assert not get_app("tortoise").requirements.exists()
    return copy


@pytest.fixture(scope="module")
def noxfile() -> Iterator[ModuleType]:
    yield _import_noxfile()


def _import_noxfile() -> ModuleType:
    """The noxfile imported as nox imports it; what it sets for nox's process (PATH, the
    SIGTERM handler) is put back for this one."""
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


def test_every_registered_app_has_its_files() -> None:
    assert len(APPS) == 6
    for app in APPS.values():
        assert matrix.missing_files(app) == [], app.id
    matrix.check_apps()
    assert {p.app for p in matrix.pairs()} == set(APPS)


def test_the_noxfile_installs_every_app() -> None:
    requirements = nox_sessions.app_requirements()
    assert requirements[::2] == ["-r"] * len(APPS)
    assert requirements[1::2] == [str(app.requirements) for app in APPS.values()]


def test_a_lost_requirements_file_fails_the_matrix(lost_requirements: Path) -> None:
    for call in (
        matrix.pairs,
        matrix.as_json,
        lambda: matrix.get_pair("tortoise", "uvicorn"),
        lambda: matrix.check_apps([get_app("tortoise")]),
    ):
        assert str(lost_requirements / LOST) in _error(call)
    # Only the lost app's file is named; the registry itself still lists its pairs.
    assert _error(matrix.check_apps).count("requirements.txt") == 1
    assert "tortoise" in {p.app for p in matrix.pairs(check_files=False)}
    # The noxfile asks this before nox looks for any session, `lint` included.
    for session in ("lint", "tests", "bench(app='tortoise', server='uvicorn')"):
        command = nox_command.NoxCommand.parse(["nox", "-s", session])
        refused = nox_command.refusal(command, [], [])
        assert refused is not None and LOST in refused.message and refused.code == 1, session


def test_a_lost_requirements_file_fails_the_noxfile(
    noxfile: ModuleType, lost_requirements: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert LOST in _error(nox_sessions.app_requirements)
    with pytest.raises(SystemExit) as exited:
        _import_noxfile()
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nox: error: registered app files are missing: ")
    assert LOST in lines[0]


def test_a_lost_requirements_file_fails_the_app_servers(
    lost_requirements: Path, pytestconfig: pytest.Config
) -> None:
    # tests/conftest.py as pytest loaded it: its module name depends on what ran first
    # (tests/loadgen has a conftest too), so it is found among pytest's plugins by its file.
    conftest_file = ROOT / "tests" / "conftest.py"
    (conftest,) = [
        plugin
        for plugin in pytestconfig.pluginmanager.get_plugins()
        if Path(getattr(plugin, "__file__", None) or "/").resolve() == conftest_file
    ]
    servers = conftest.AppServers(db=None, upstream_url="http://127.0.0.1:9", log_dir=ROOT)
    try:
        assert LOST in _error(lambda: servers.get("tortoise", "uvicorn"))
    finally:
        servers.close()
