"""Every registered app is on disk, and a lost app file fails loudly instead of skipping.

The planted fault is a copy of ``reference_apps/`` (symlinks) without
``tortoise/requirements.txt``, made the apps' directory for one test: the matrix, the
noxfile (its import and its test install) and the session's app servers must each raise
one clear error naming the file, never skip or leave the app out.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from stackbench import apps, matrix
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
    spec = importlib.util.spec_from_file_location("stackbench_noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_app_has_its_files() -> None:
    assert len(APPS) == 6
    for app in APPS.values():
        assert matrix.missing_files(app) == [], app.id
    matrix.check_apps()
    assert {p.app for p in matrix.pairs()} == set(APPS)


def test_the_noxfile_installs_every_app(noxfile: ModuleType) -> None:
    requirements = noxfile._app_requirements()
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
        error = matrix.check_requested_sessions(["nox", "-s", session])
        assert error is not None and LOST in error, session


def test_a_lost_requirements_file_fails_the_noxfile(
    noxfile: ModuleType, lost_requirements: Path
) -> None:
    assert LOST in _error(noxfile._app_requirements)
    with pytest.raises(SystemExit) as exited:
        _import_noxfile()
    assert str(exited.value).startswith("nox: error: registered app files are missing: ")
    assert LOST in str(exited.value)


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
