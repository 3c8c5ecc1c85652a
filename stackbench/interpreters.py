"""The Python interpreters installed here (3.11+): version, implementation, free-threading.

Standard library only: the noxfile imports it before any virtualenv exists. It answers
which lanes the sessions can run on this machine:

* each CPython 3.11+ found, by version (``conformance`` needs 3.13);
* the free-threaded lane: a build with ``Py_GIL_DISABLED`` (``python3.13t``,
  ``python3.14t``), where gunicorn gthread and granian run with the GIL off.

Interpreters are found by name (``python3.N`` and ``python3.Nt``) in the directories of a
search path given as an argument (tests pass a stub path), and each candidate is asked
what it is by running it. pyenv's and asdf's shims are skipped: they are scripts that
answer only for the versions the user selected, and the installs behind them are searched
directly (``$PYENV_ROOT/versions/*/bin``).

``python -m stackbench.interpreters`` prints the table and the lanes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MINIMUM = (3, 11)
# Free-threaded builds exist from 3.13 on; the lane asks for one of these names.
FREE_THREADED_NAMES = ("python3.14t", "python3.13t")
FREE_THREADED_SERVERS = ("gunicorn-gthread", "granian")

_NAME = re.compile(r"python3\.(\d+)(t?)")
_SHIM_DIRS = frozenset({"shims"})  # pyenv, asdf: wrappers, not interpreters
_PROBE = (
    "import json, platform, sys, sysconfig; print(json.dumps({"
    "'version': list(sys.version_info[:3]), "
    "'implementation': platform.python_implementation(), "
    "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))"
)


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: tuple[int, int, int]
    implementation: str
    free_threaded: bool

    @property
    def minor(self) -> str:
        """``3.13``: what a nox session's ``python=`` names."""
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def tag(self) -> str:
        """``3.13`` or ``3.13t``: the minor version, ``t`` for a free-threaded build."""
        return self.minor + ("t" if self.free_threaded else "")

    @property
    def describe(self) -> str:
        """``CPython 3.13.0`` (``free-threaded`` added when it is)."""
        text = f"{self.implementation} {'.'.join(map(str, self.version))}"
        return text + (" free-threaded" if self.free_threaded else "")


def default_search_path(environ: Mapping[str, str] | None = None) -> list[Path]:
    """PATH's directories, then every pyenv install's and uv's managed interpreters' bin."""
    environ = os.environ if environ is None else environ
    found = [Path(entry) for entry in environ.get("PATH", "").split(os.pathsep) if entry]
    home = Path(environ.get("HOME") or Path.home())
    pyenv = Path(environ.get("PYENV_ROOT") or home / ".pyenv")
    uv = Path(
        environ.get("UV_PYTHON_INSTALL_DIR")
        or Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "uv" / "python"
    )
    for root in (pyenv / "versions", uv):
        if root.is_dir():
            found.extend(sorted(path / "bin" for path in root.iterdir()))
    return found


def candidates(search_path: Iterable[Path | str]) -> list[Path]:
    """Executables named ``python3.N`` or ``python3.Nt`` (N >= 11), in search order."""
    found: list[Path] = []
    seen: set[Path] = set()  # /bin/python3.11 and /usr/bin/python3.11 are one file
    for directory in map(Path, search_path):
        if directory.name in _SHIM_DIRS or not directory.is_dir():
            continue
        if (directory.parent / "pyvenv.cfg").is_file():
            continue  # a virtualenv's python is its base interpreter again, not an install
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            match = _NAME.fullmatch(name)
            if match is None or (3, int(match.group(1))) < MINIMUM:
                continue
            path = directory / name
            if not (path.is_file() and os.access(path, os.X_OK)) or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            found.append(path)
    return found


def probe(path: Path, timeout: float = 10.0) -> Interpreter | None:
    """Ask the interpreter at ``path`` what it is; None when it does not answer as one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        result = subprocess.run(
            [str(path), "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            return None
        data = json.loads(result.stdout.strip().splitlines()[-1])
        major, minor, micro = (int(part) for part in data["version"])
        return Interpreter(
            path.resolve(),
            (major, minor, micro),
            str(data["implementation"]),
            bool(data["free_threaded"]),
        )
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError, TypeError):
        return None


def find_interpreters(
    search_path: Iterable[Path | str],
    *,
    ask: Callable[[Path], Interpreter | None] = probe,
) -> list[Interpreter]:
    """Every working interpreter 3.11+ on ``search_path``: one per installation, first found
    wins, sorted by version (a free-threaded build after the default one of its version)."""
    paths = candidates(search_path)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, paths))
    chosen: dict[tuple[tuple[int, int, int], str, bool], Interpreter] = {}
    for found in answers:
        if found is None or found.version[:2] < MINIMUM:
            continue
        chosen.setdefault((found.version, found.implementation, found.free_threaded), found)
    return sorted(chosen.values(), key=lambda i: (i.version, i.free_threaded, i.implementation))


class ProbeCache:
    """``probe`` (or ``ask``), answering from a JSON file for a candidate already asked.

    nox imports the noxfile for every command (``nox -l`` too), and asking each interpreter
    costs a subprocess per candidate each time. An answer is kept under the candidate's
    path and its file's identity (device, inode, size, modification time): a reinstalled
    or upgraded interpreter is another file and is asked again. ``save()`` keeps the
    answers of this search only, so an uninstalled interpreter is forgotten.
    """

    def __init__(self, path: Path, ask: Callable[[Path], Interpreter | None] = probe) -> None:
        self.path, self._ask = path, ask
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        self._known: dict[str, Any] = known if isinstance(known, dict) else {}
        self._seen: dict[str, Any] = {}

    def __call__(self, candidate: Path) -> Interpreter | None:
        try:
            st = candidate.stat()
        except OSError:
            return None
        key = f"{candidate}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        if key in self._known:
            with contextlib.suppress(KeyError, TypeError, ValueError):  # a damaged entry
                answer = self._known[key]
                found = None if answer is None else _from_json(answer)
                self._seen[key] = answer
                return found
        found = self._ask(candidate)
        self._seen[key] = None if found is None else _as_json(found)
        return found

    def save(self) -> None:
        """Written atomically: concurrent nox commands may do the same."""
        if self._seen == self._known:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temporary.write_text(json.dumps(self._seen, indent=1, sort_keys=True))
            os.replace(temporary, self.path)


def _as_json(found: Interpreter) -> dict[str, Any]:
    return {
        "path": str(found.path),
        "version": list(found.version),
        "implementation": found.implementation,
        "free_threaded": found.free_threaded,
    }


def _from_json(answer: dict[str, Any]) -> Interpreter:
    major, minor, micro = (int(part) for part in answer["version"])
    return Interpreter(
        Path(answer["path"]),
        (major, minor, micro),
        answer["implementation"],
        answer["free_threaded"],
    )


def installed(search_path: Iterable[Path | str], cache: Path) -> list[Interpreter]:
    """``find_interpreters`` on ``search_path``, running only the candidates ``cache`` has
    no answer for."""
    probe_cache = ProbeCache(cache)
    found = find_interpreters(search_path, ask=probe_cache)
    probe_cache.save()
    return found


def find(interpreters: Iterable[Interpreter], tag: str) -> Interpreter | None:
    """The newest CPython for ``3.13`` (the default build) or ``3.13t`` (free-threaded)."""
    matching = [i for i in interpreters if i.tag == tag and i.implementation == "CPython"]
    return matching[-1] if matching else None


def free_threaded(interpreters: Iterable[Interpreter]) -> Interpreter | None:
    """The newest free-threaded CPython found, or None."""
    found = [i for i in interpreters if i.free_threaded and i.implementation == "CPython"]
    return found[-1] if found else None


def installed_summary(interpreters: Iterable[Interpreter]) -> str:
    """``CPython 3.11.7, CPython 3.13.0`` (or ``none``): what a one-line error names."""
    return ", ".join(i.describe for i in interpreters) or "none"


def free_threaded_lane_missing(interpreters: list[Interpreter]) -> str | None:
    """None when the free-threaded lane can run here, else why not (one line)."""
    if free_threaded(interpreters) is not None:
        return None
    return (
        f"no free-threaded CPython ({', '.join(FREE_THREADED_NAMES)}) is installed; "
        f"installed: {installed_summary(interpreters)}"
    )


def missing_interpreter(tag: str, interpreters: list[Interpreter]) -> str:
    """One line for a requested interpreter that is not installed."""
    return f"Python {tag} is not installed here; installed: {installed_summary(interpreters)}"


def link_directory(interpreters: Iterable[Interpreter], directory: Path) -> Path:
    """A directory of ``python3.N[t]`` symlinks to the interpreters found, for PATH.

    Tools that look interpreters up by name (nox's discovery, uv) stop at the first
    ``python3.13`` on PATH; when that is a pyenv shim for a version the user has not
    selected it fails, though the interpreter is installed. Put first on PATH, this
    directory holds only interpreter names, each pointing at a working installation.
    """
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {f"python{i.tag}": i.path for i in interpreters}
    for name, target in wanted.items():
        link = directory / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        temporary = directory / f".{name}.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target)
        os.replace(temporary, link)  # atomic: concurrent nox runs may do the same
    for stale in directory.iterdir():
        if stale.name not in wanted and stale.is_symlink() and _NAME.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    return directory


FREE_THREADED_LANE = "free-threaded"


def as_tag(spec: str) -> str | None:
    """``3.14``, ``3.14.1``, ``python3.14``, ``3.14t`` → ``3.14``/``3.14t``; None for a path
    or anything else nox may accept (left to nox)."""
    match = re.fullmatch(r"(?:python)?(3\.\d+)(?:\.\d+)?(t?)", spec)
    return match.group(1) + match.group(2) if match else None


def check_requested(
    sessions: Iterable[str],
    pythons: Iterable[str],
    interpreters: list[Interpreter],
    needs: Mapping[str, str],
) -> str | None:
    """One line when nox is asked for an interpreter not installed here, else None.

    ``pythons``: the ``-P``/``--force-python``/``--extra-python(s)`` values; ``sessions``:
    the sessions that will run. ``needs`` maps a session's name to the interpreter tag it
    runs on (``3.13``), or to ``FREE_THREADED_LANE``.
    """
    for spec in pythons:
        tag = as_tag(spec)
        if tag is not None and find(interpreters, tag) is None:
            return missing_interpreter(tag, interpreters)
    for session in sessions:
        base = re.split(r"[-(]", session, maxsplit=1)[0]
        tag = needs.get(base)
        if tag is None:
            continue
        if tag == FREE_THREADED_LANE:
            reason = free_threaded_lane_missing(interpreters)
            if reason is not None:
                return f"session {session}: the free-threaded lane is missing here: {reason}"
        elif find(interpreters, tag) is None:
            return f"session {session} runs on {missing_interpreter(tag, interpreters)}"
    return None


def lanes(interpreters: list[Interpreter]) -> list[tuple[str, str]]:
    """(lane, status) lines: each interpreter found, then the free-threaded lane."""
    rows = [(i.tag, f"{i.describe}  {i.path}") for i in interpreters]
    lane = free_threaded(interpreters)
    servers = " and ".join(FREE_THREADED_SERVERS)
    if lane is None:
        reason = free_threaded_lane_missing(interpreters)
        rows.append((FREE_THREADED_LANE, f"missing: {reason}"))
    else:
        rows.append(
            (FREE_THREADED_LANE, f"{lane.describe}: {servers} with PYTHON_GIL=0 ({lane.path})")
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    found = find_interpreters(default_search_path())
    print("Python lanes on this machine:")
    for lane, status in lanes(found):
        print(f"  {lane:<14} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
