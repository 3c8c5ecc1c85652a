"""The techempower experiment's venvs for TechEmpower's apps: their requirements, with the
server packages pinned to the harness's versions (so the server is the same as ours), MySQL's
driver left out, and a pin that cannot install on this Python relaxed to the newest that can;
each change is appended to the run's list of changes."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

from stackbench.options import OptionError

# Their requirement files name these; ours serve with the harness's versions.
SERVER_PACKAGES = ("gunicorn", "uvicorn", "uvloop", "httptools")
DROPPED = {"mysqlclient": "MySQL's driver: the database here is PostgreSQL"}


class VenvError(OptionError):
    """Their requirements cannot be installed here: one line, exit 2."""


def requirements(path: Path) -> list[str]:
    """The lines of a requirements file, ``-r`` includes followed."""
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            lines += requirements(path.parent / line[2:].strip())
        elif line:
            lines.append(line)
    return lines


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", requirement)
    return match.group(0).lower().replace("_", "-") if match else requirement


def _harness_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv")
    argv = [uv, "pip", "install", "--python", str(python)] if uv else [str(python), "-m", "pip"]
    argv += [] if uv else ["install", "-q"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=600)


def wanted(folder: Path, requirement_file: str, changes: list[str]) -> list[str]:
    """Their requirements, the server packages at the harness's versions, MySQL's left out."""
    out = []
    for requirement in requirements(folder / requirement_file):
        name = _name(requirement)
        ours = _harness_version(name) if name in SERVER_PACKAGES else None
        if name in DROPPED:
            changes.append(f"{requirement}: left out ({DROPPED[name]})")
        elif ours:
            changes.append(f"{requirement} → {name}=={ours} (the harness's: the same server)")
            out.append(f"{name}=={ours}")
        else:
            out.append(requirement)
    return out


def build_venv(folder: Path, requirement_file: str, where: Path, changes: list[str]) -> Path:
    """A venv of their requirements; returns its bin directory (see the module)."""
    pins = wanted(folder, requirement_file, changes)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    if not shutil.which("uv"):
        subprocess.run([str(where / "bin" / "python"), "-m", "ensurepip", "-q"], check=True)
    python = where / "bin" / "python"
    if _pip(python, *pins).returncode != 0:  # relax each pin that cannot install here
        for index, requirement in enumerate(pins):
            if "==" in requirement and _pip(python, "--dry-run", requirement).returncode:
                name, _, marker = requirement.partition(";")
                pins[index] = _name(name) + (f";{marker}" if marker else "")
                changes.append(f"{requirement} → {pins[index]} (its pin cannot install here)")
        done = _pip(python, *pins)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise VenvError(f"cannot install {requirement_file}: {' '.join(tail)}")
    names = [_name(r) for r in pins]
    ask = f"import importlib.metadata as m; print(*(n+'=='+m.version(n) for n in {names}))"
    done = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True)
    changes.append(f"{folder.name} venv: {done.stdout.strip()}")
    return where / "bin"
