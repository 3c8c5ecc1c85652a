"""Finding interpreters and the lanes they open, on stub interpreters (no real 3.14t here).

Each stub is a shell script named like an interpreter that answers the probe as a real
one would: the detection runs it exactly as it runs a real interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import interpreters
from stackbench.interpreters import FREE_THREADED_LANE, Interpreter
from stackbench.nox_command import NoxCommand

ROOT = Path(__file__).resolve().parents[2]


def stub(directory: Path, name: str, version: str, *, free_threaded: bool = False) -> Path:
    """An executable ``name`` in ``directory`` answering the probe as CPython ``version``."""
    directory.mkdir(parents=True, exist_ok=True)
    answer = json.dumps(
        {
            "version": [int(part) for part in version.split(".")],
            "implementation": "CPython",
            "free_threaded": free_threaded,
        }
    )
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{answer}'\n")
    path.chmod(0o755)
    return path


def broken(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path: Path) -> list[Path]:
    """A search path: a default 3.13, a free-threaded 3.14t, and what must be ignored."""
    usr = tmp_path / "usr" / "bin"
    stub(usr, "python3.13", "3.13.0")
    stub(usr, "python3.10", "3.10.13")  # below 3.11: never even run
    stub(usr, "python3", "3.13.0")  # only versioned names are candidates
    shims = tmp_path / "pyenv" / "shims"
    stub(shims, "python3.12", "3.12.1")  # a shim: skipped, the installs are searched instead
    ft = tmp_path / "opt" / "3.14t" / "bin"
    stub(ft, "python3.14t", "3.14.0", free_threaded=True)
    failing = tmp_path / "failing" / "bin"
    broken(failing, "python3.12")  # runs, fails: not an interpreter
    venv = tmp_path / "venv"
    stub(venv / "bin", "python3.13", "3.13.0")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a venv: its base is found already
    alias = tmp_path / "alias"
    alias.mkdir()
    (alias / "python3.13").symlink_to(usr / "python3.13")  # the same file twice
    return [alias, usr, shims, tmp_path / "nowhere", ft, failing, venv / "bin"]


def test_interpreters_found_on_a_stub_path(machine: list[Path]) -> None:
    found = interpreters.find_interpreters(machine)
    assert [(i.tag, i.describe) for i in found] == [
        ("3.13", "CPython 3.13.0"),
        ("3.14t", "CPython 3.14.0 free-threaded"),
    ]
    usr, ft = machine[1], machine[4]
    assert [i.path for i in found] == [(usr / "python3.13").resolve(), ft / "python3.14t"]
    candidates = interpreters.candidates(machine)
    assert all(path.name not in ("python3.10", "python3") for path in candidates)
    assert not any("shims" in path.parts or "venv" in path.parts for path in candidates)


def test_free_threaded_lane_opens_only_with_a_free_threaded_build(machine: list[Path]) -> None:
    found = interpreters.find_interpreters(machine)
    lane = interpreters.free_threaded(found)
    assert lane is not None and lane.tag == "3.14t" and lane.free_threaded
    assert interpreters.free_threaded_lane_missing(found) is None
    assert interpreters.find(found, "3.14t") == lane and interpreters.find(found, "3.14") is None
    rows = dict(interpreters.lanes(found))
    assert "PYTHON_GIL=0" in rows[FREE_THREADED_LANE]
    assert "gunicorn-gthread and granian" in rows[FREE_THREADED_LANE]

    default_only = [i for i in found if not i.free_threaded]
    reason = interpreters.free_threaded_lane_missing(default_only)
    assert reason == (
        "no free-threaded CPython (python3.14t, python3.13t) is installed; "
        "installed: CPython 3.13.0"
    )
    assert dict(interpreters.lanes(default_only))[FREE_THREADED_LANE] == f"missing: {reason}"
    assert interpreters.free_threaded_lane_missing([]) is not None
    assert "installed: none" in interpreters.missing_interpreter("3.13", [])


def _installed(*tags: str) -> list[Interpreter]:
    return [
        Interpreter(
            Path(f"/stub/python{tag}"),
            (3, int(tag.rstrip("t").split(".")[1]), 0),
            "CPython",
            tag.endswith("t"),
        )
        for tag in tags
    ]


NEEDS = {"conformance": "3.13", "freethreaded": FREE_THREADED_LANE}
DEFAULTS = ["lint", "tests", "conformance"]


@pytest.mark.parametrize(
    ("argv", "installed", "message"),
    [
        (["nox", "-s", "freethreaded"], ("3.11", "3.13"), "the free-threaded lane is missing"),
        (["nox", "--session=freethreaded"], ("3.11",), "the free-threaded lane is missing"),
        (["nox", "-s", "lint", "freethreaded"], ("3.11",), "the free-threaded lane is missing"),
        (["nox", "-s", "freethreaded"], ("3.11", "3.14t"), None),
        (["nox", "-l"], ("3.11",), None),  # listing says why instead of refusing
        (["nox", "--list", "-s", "freethreaded"], ("3.11",), None),
        (["nox", "-s", "tests"], ("3.11",), None),
        (["nox"], ("3.11",), "session conformance runs on Python 3.13 is not installed"),
        (["nox"], ("3.11", "3.13"), None),
        (["nox", "-s", "conformance-3.13"], ("3.11",), "Python 3.13 is not installed here"),
        (["nox", "-k", "lint"], ("3.11",), None),  # a selection replaces the defaults
        (["nox", "-P", "3.14", "-s", "tests"], ("3.11", "3.13"), "Python 3.14 is not installed"),
        (["nox", "--force-python=python3.12", "-s", "tests"], ("3.11",), "Python 3.12 is not"),
        (["nox", "-P", "3.13.0", "-s", "tests"], ("3.11", "3.13"), None),
        (["nox", "-P", "/opt/python", "-s", "tests"], ("3.11",), None),  # a path: nox's to say
        (["nox", "-s", "tests", "--", "-P", "3.9"], ("3.11",), None),  # posargs are not nox's
    ],
)
def test_a_request_for_a_missing_interpreter_is_one_line(
    argv: list[str], installed: tuple[str, ...], message: str | None
) -> None:
    command = NoxCommand.parse(argv, environ={}, stdin_is_terminal=False)
    if command.listing:  # listing says why instead of refusing: not even asked
        assert message is None
        return
    error = interpreters.check_requested(
        command.requested(DEFAULTS), command.pythons, _installed(*installed), NEEDS
    )
    if message is None:
        assert error is None
    else:
        assert error is not None and message in error and "\n" not in error
        assert "installed: CPython 3.11.0" in error


def test_link_directory_names_each_installation(tmp_path: Path, machine: list[Path]) -> None:
    found = interpreters.find_interpreters(machine)
    links = tmp_path / "links"
    links.mkdir()
    (links / "python3.9").symlink_to("/nowhere/python3.9")  # stale: removed
    interpreters.link_directory(found, links)
    assert sorted(p.name for p in links.iterdir()) == ["python3.13", "python3.14t"]
    assert (links / "python3.14t").resolve() == found[1].path.resolve()
    interpreters.link_directory(found, links)  # again: unchanged, no error
    assert interpreters.find_interpreters([links]) == found


def test_default_search_path_adds_pyenv_installs(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    (root / "versions" / "3.13.0" / "bin").mkdir(parents=True)
    path = interpreters.default_search_path(
        {"PATH": "/usr/bin:/bin", "PYENV_ROOT": str(root), "HOME": str(tmp_path)}
    )
    assert path[:2] == [Path("/usr/bin"), Path("/bin")]
    assert root / "versions" / "3.13.0" / "bin" in path


def test_this_machine_lists_its_lanes() -> None:
    """The module's own listing (what `nox -s matrix` prints after the pairs)."""
    run = subprocess.run(
        [sys.executable, "-m", "stackbench.interpreters"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in run.stdout
    assert FREE_THREADED_LANE in run.stdout


def test_nox_refuses_a_missing_free_threaded_lane_in_one_line() -> None:
    found = interpreters.find_interpreters(interpreters.default_search_path())
    if interpreters.free_threaded(found) is not None:
        pytest.skip("a free-threaded interpreter is installed here: the lane would run")
    run = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "freethreaded"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "No module named nox" in run.stderr:
        pytest.skip("nox is not installed in this environment")
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "the free-threaded lane is missing here" in lines[0], run.stderr
    assert "installed: CPython 3." in lines[0]


def _counting(directory: Path, name: str, version: str, log: Path) -> Path:
    """A stub that also notes each time it is run."""
    path = stub(directory, name, version)
    path.write_text(path.read_text().replace("#!/bin/sh\n", f"#!/bin/sh\necho run >> {log}\n"))
    return path


def test_each_installation_is_asked_once_then_remembered(tmp_path: Path) -> None:
    """`nox -l` imports the noxfile: no interpreter runs again until it is replaced."""
    log, cache = tmp_path / "runs.log", tmp_path / "cache" / "probed.json"
    bin_dir = tmp_path / "bin"
    _counting(bin_dir, "python3.13", "3.13.0", log)
    python312 = _counting(bin_dir, "python3.12", "3.12.1", log)

    def runs() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    first = interpreters.installed([bin_dir], cache)
    assert [i.tag for i in first] == ["3.12", "3.13"] and runs() == 2
    assert interpreters.installed([bin_dir], cache) == first and runs() == 2  # remembered
    # An upgrade is another file: asked again, and only it.
    _counting(bin_dir, "python3.12", "3.12.2", log)
    os.utime(python312, ns=(1, 1))
    again = interpreters.installed([bin_dir], cache)
    assert [i.describe for i in again] == ["CPython 3.12.2", "CPython 3.13.0"] and runs() == 3
    # An uninstalled interpreter is forgotten, not remembered.
    python312.unlink()
    assert [i.tag for i in interpreters.installed([bin_dir], cache)] == ["3.13"]
    assert "python3.12" not in cache.read_text()


def test_a_damaged_cache_is_asked_again(tmp_path: Path) -> None:
    log, cache = tmp_path / "runs.log", tmp_path / "probed.json"
    _counting(tmp_path / "bin", "python3.13", "3.13.0", log)
    for damage in ("not json", "[]", "{}"):
        cache.write_text(damage)
        assert [i.tag for i in interpreters.installed([tmp_path / "bin"], cache)] == ["3.13"]
    key = next(iter(json.loads(cache.read_text())))
    cache.write_text(json.dumps({key: {"version": "x"}}))  # an entry of the wrong shape
    assert [i.tag for i in interpreters.installed([tmp_path / "bin"], cache)] == ["3.13"]
    assert len(log.read_text().splitlines()) == 4  # each damage: asked once more
