"""Run directories: one JSON per (app, server, scenario) and a manifest, validated, atomic.

A run directory is new for every invocation (``results/<UTC time>-<app>-<server>-<tag>``)
and a file in it is never rewritten once complete: each is written to a temporary name
and renamed into place, so a crash or a full disk leaves no half-written result.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import secrets
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

import jsonschema

from stackbench.apps import App
from stackbench.documents import (
    SCHEMA_VERSION,
    AppSource,
    CapacityDocument,
    Git,
    Interpreter,
    Machine,
    Manifest,
    PythonInfo,
    ResultDocument,
    ResultRow,
)

ROOT = Path(__file__).resolve().parent.parent
CAPACITY_FILE = "capacity.json"  # a capacity run's answer, beside its manifest


class ResultsError(RuntimeError):
    """Results cannot be written or read; the message names the file."""


def new_run_dir(base: Path, label: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = base / f"{stamp}-{label}-{secrets.token_hex(2)}"
    try:
        path.mkdir(parents=True, exist_ok=False)  # never reuse a run directory
    except OSError as exc:
        raise ResultsError(f"cannot create run directory {path}: {exc.strerror}") from None
    return path


def schema(name: str) -> dict[str, Any]:
    """The named document's schema (generated from ``stackbench.documents``)."""
    return json.loads(files("stackbench").joinpath("schemas", f"{name}.schema.json").read_text())


def validate(document: Mapping[str, Any], name: str) -> None:
    """Raise ResultsError with the first violation of the named schema."""
    try:
        jsonschema.validate(document, schema(name))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
        raise ResultsError(f"{name} document invalid at {where}: {exc.message}") from None


def write_json(path: Path, document: Mapping[str, Any], schema_name: str) -> Path:
    """Validate, then write atomically; refuse to overwrite an existing file."""
    validate(document, schema_name)
    if path.exists():
        raise ResultsError(f"refusing to overwrite {path}")
    data = (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
    return write_atomic(path, data)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary name beside ``path``, fsync, then rename: a crash or a full disk
    never leaves a half-written file under the real name."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path, schema_name: str) -> dict[str, Any]:
    """A document validated against its schema; an older version's file is read in this
    version's words (``documents.upgraded``), never rewritten."""
    try:
        document = upgraded(json.loads(path.read_text()), schema_name)
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable ({exc})") from None
    try:
        validate(document, schema_name)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    return document


def upgraded(document: Any, name: str) -> Any:
    """An older version's document in this version's words (``documents.SCHEMA_VERSION``
    says what changed), for a reader; the file is never rewritten. Anything else is
    returned as it is, for the schema to judge."""
    if not isinstance(document, dict) or document.get("schema_version") != 1:
        return document
    document = copy.deepcopy(document)
    if name == "result":
        if "variant" in document:
            document["label"] = document.pop("variant")
        if isinstance(document.get("summary"), dict) and "requests" in document["summary"]:
            document["summary"]["responses"] = document["summary"].pop("requests")
    elif name == "manifest":
        options = document.get("options")
        for job in options.get("jobs", []) if isinstance(options, dict) else []:
            if isinstance(job, dict):
                job["label"] = job.pop("variant", None)
                if "served_variant" in job:
                    job["variant"] = job.pop("served_variant")
    document["schema_version"] = SCHEMA_VERSION
    return document


def read_result(path: Path) -> ResultDocument:
    """A result document, validated against its schema."""
    return cast(ResultDocument, read_json(path, "result"))


def row_of(document: ResultDocument, file: str) -> ResultRow:
    """A result as a run's summary table lists it (``file``: its name in the run directory)."""
    return ResultRow(
        file=file,
        app=document["app"],
        server=document["server"],
        label=document.get("label"),
        scenario=document["scenario"],
        status=document["status"],
        reason=document["reason"],
        summary=document["summary"],
        flags=document["flags"],
        proxy=proxy_named(document),
    )


def proxy_named(document: ResultDocument) -> str | None:
    """'nginx (unix)': the proxy clients reached the pair through; None when none."""
    front = document.get("proxy")
    return None if front is None else f"{front['name']} ({front['upstream']})"


def read_manifest(path: Path) -> Manifest:
    """A manifest, validated against its schema."""
    return cast(Manifest, read_json(path, "manifest"))


def read_capacity(path: Path) -> CapacityDocument:
    """A capacity run's answer, validated against its schema."""
    return cast(CapacityDocument, read_json(path, "capacity"))


# ---------------------------------------------------------------- provenance


def git_state(directory: Path = ROOT) -> Git:
    """The commit of the repository ``directory`` is in, and whether anything under
    ``directory`` differs from it (both None outside a repository)."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    return Git(
        commit=commit or None,
        dirty=bool(git("status", "--porcelain", "--", ".")) if commit else None,
    )


def app_source(app: App) -> AppSource:
    """Where an app came from, as its results record it: directory, declaration, commit."""
    return AppSource(
        path=str(app.directory),
        declaration=str(app.declaration) if app.declaration else "",
        declared=dict(app.declared),
        git=git_state(app.directory),
    )


def packages() -> dict[str, str]:
    """Every distribution installed in this (the session's) environment, by name."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def machine() -> Machine:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return Machine(
        cpu_model=model,
        cpu_count=os.cpu_count() or 0,
        memory_gb=round(mem_kb / 1024 / 1024, 1),
        platform=platform.platform(),
    )


def python_info() -> PythonInfo:
    return PythonInfo(
        version=platform.python_version(),
        implementation=platform.python_implementation(),
        executable=sys.executable,
        free_threaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        gil_enabled=getattr(sys, "_is_gil_enabled", lambda: True)(),
    )


_ASK_INTERPRETER = (
    "import json, platform, sys, sysconfig; print(json.dumps({"
    "'version': platform.python_version(), "
    "'implementation': platform.python_implementation(), "
    "'executable': sys.executable, "
    "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
    "'gil_enabled': getattr(sys, '_is_gil_enabled', lambda: True)()}))"
)


def interpreter(python: Path, env: Mapping[str, str] | None = None) -> Interpreter:
    """What ``python`` is, asked by running it (with the server's environment: PYTHON_GIL)."""
    try:
        done = subprocess.run(
            [str(python), "-c", _ASK_INTERPRETER],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=None if env is None else dict(env),
        )
        return cast(Interpreter, json.loads(done.stdout))
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
        raise ResultsError(f"cannot ask {python} what it is: {exc}") from None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
