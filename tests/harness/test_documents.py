"""One definition of each document: ``stackbench/documents.py``.

The result and manifest schemas are generated from its TypedDicts and must be what is
committed; loadgen's report is loadgen's, and the part the harness types must be in
loadgen's schema, required there. Each check is shown to fail on a planted rename.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import jsonschema
import pytest

import loadgen
from stackbench import documents, json_schema, results

LOADGEN_SCHEMA = json.loads((Path(loadgen.__file__).parent / "report.schema.json").read_text())


# -- the result and the manifest: generated from documents.py ---------------------------
def test_the_committed_schemas_are_the_generated_ones() -> None:
    assert json_schema.differences() == []
    assert json_schema.main(["--check"]) == 0


def test_a_key_renamed_in_documents_py_alone_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source renamed, the schema not regenerated: the check names both keys."""
    source = Path(documents.__file__).read_text()
    renamed = source.replace("    responses: Count\n", "    answered: Count\n")
    assert renamed != source
    renamed_module = _module(tmp_path, "renamed_documents", renamed, monkeypatch)
    monkeypatch.setattr(json_schema, "documents", renamed_module)
    found = json_schema.differences()
    summary = "result.schema.json: /properties/summary/properties"
    assert f"{summary}/answered is in documents.py, not in the file" in found
    assert f"{summary}/responses is in the file, not in documents.py" in found
    assert json_schema.main(["--check"]) == 1


def test_a_key_renamed_in_a_schema_file_alone_fails_the_check(tmp_path: Path) -> None:
    shutil.copytree(json_schema.SCHEMA_DIR, tmp_path, dirs_exist_ok=True)
    edited = tmp_path / "manifest.schema.json"
    edited.write_text(edited.read_text().replace('"run_id"', '"run"'))
    found = json_schema.differences(tmp_path)
    assert "manifest.schema.json: /properties/run_id is in documents.py, not in the file" in found
    assert all(line.startswith("manifest.schema.json") for line in found)


class Part(TypedDict):
    count: Annotated[int, documents.Json(minimum=0)]
    """how many; said
    over two lines"""
    share: NotRequired[float | None]
    kind: Literal["a", "b"]
    kind_of_one: Literal["a"]
    names: list[str]
    counts: dict[str, int]
    anything: dict[str, Any]


class Whole(TypedDict):
    part: Annotated[Part | None, documents.Json(additionalProperties=False)]
    head: Annotated[Part, documents.Json(replace=True, type="object")]


def test_the_schemas_say_what_the_types_say() -> None:
    assert json_schema.schema_of(Whole) == {
        "type": "object",
        "required": ["part", "head"],
        "properties": {
            "part": {
                "type": ["object", "null"],
                "required": ["count", "kind", "kind_of_one", "names", "counts", "anything"],
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "how many; said over two lines",
                    },
                    "share": {"type": ["number", "null"]},
                    "kind": {"enum": ["a", "b"]},
                    "kind_of_one": {"const": "a"},
                    "names": {"type": "array", "items": {"type": "string"}},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "anything": {"type": "object"},
                },
                "additionalProperties": False,
            },
            "head": {"type": "object"},
        },
    }
    with pytest.raises(TypeError, match=r"only X \| None"):
        json_schema.schema_of(int | str)
    with pytest.raises(TypeError, match="no JSON schema"):
        json_schema.schema_of(bytes)


def test_the_schema_refuses_an_old_key_in_a_new_document() -> None:
    with pytest.raises(results.ResultsError, match="'variant' was unexpected"):
        results.validate(_manifest_with_result_key(), "result")


def _manifest_with_result_key() -> dict[str, Any]:
    """A minimal valid result, then the label under its version-1 name."""
    document: dict[str, Any] = {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": "stackbench.result",
        "run_id": "r",
        "app": "gino_style",
        "server": "uvicorn",
        "interface": "asgi",
        "server_command": [],
        "server_settings": {"workers": 1, "threads": 1, "pool_size": 1},
        "started_at": "t",
        "scenario": "db",
        "status": "failed",
        "reason": "x",
        "log_tail": None,
        "load": {
            "model": "closed",
            "duration_s": 1.0,
            "warmup_s": 0.0,
            "connections": 1,
            "rate": None,
            "repeats": 1,
            "processes": 1,
        },
        "summary": None,
        "flags": {"noisy": False, "client_saturated": False, "checks_failed": False},
        "repeats": [],
        "finished_at": "t",
    }
    jsonschema.validate(document, results.schema("result"))  # valid as it is
    document["variant"] = "r200"
    return document


def test_a_job_option_cannot_overwrite_the_jobs_own_keys() -> None:
    entry = documents.job("gino_style", "uvicorn", "r200", {"variant": "no-csrf-mw", "repeats": 3})
    assert entry == {
        "app": "gino_style",
        "server": "uvicorn",
        "label": "r200",
        "variant": "no-csrf-mw",
        "repeats": 3,
    }
    with pytest.raises(ValueError, match="may not be named label"):
        documents.job("gino_style", "uvicorn", "r200", {"label": "w1"})


def _module(tmp_path: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # inspect reads the docstrings from it
    spec.loader.exec_module(module)
    return module


# -- loadgen's report: the harness's part of it, checked against loadgen's schema -------
def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A node of loadgen's schema with its $ref followed and a nullable oneOf unwrapped."""
    if "$ref" in node:
        node = LOADGEN_SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in node:
        (node,) = [n for n in node["oneOf"] if n.get("type") != "null"]
        return _resolve(node)
    return node


def _json_types(node: dict[str, Any]) -> set[str]:
    if "const" in node or "enum" in node:
        values = [node["const"]] if "const" in node else node["enum"]
        names = {bool: "boolean", int: "integer", float: "number", str: "string"}
        return {names[type(v)] if v is not None else "null" for v in values}
    kinds = node.get("type", [])
    return set(kinds if isinstance(kinds, list) else [kinds])


def _bare(tp: Any) -> Any:
    """The type without NotRequired, Annotated and None."""
    while typing.get_origin(tp) in (NotRequired, Annotated):
        tp = typing.get_args(tp)[0]
    members = [m for m in typing.get_args(tp) if m is not type(None)]
    return members[0] if typing.get_origin(tp) in (typing.Union, type(int | None)) else tp


def _not_in_loadgen(typed: Any, node: dict[str, Any], where: str = "") -> list[str]:
    """Every key of ``typed`` that loadgen's schema at ``node`` lacks, does not require
    when the harness does, or types other than the harness reads it."""
    found = []
    node = _resolve(node)
    required = set(node.get("required", []))
    for key, tp in typing.get_type_hints(typed, include_extras=True).items():
        here = f"{where}/{key}"
        if key not in node.get("properties", {}):
            found.append(f"{here}: not in loadgen's report")
            continue
        theirs = _resolve(node["properties"][key])
        if key in typed.__required_keys__ and key not in required:
            found.append(f"{here}: loadgen may leave it out")
        ours = _json_types(json_schema.schema_of(tp))
        if "number" in ours:
            ours.add("integer")  # a float reads an integer
        if _json_types(theirs) - ours:
            found.append(f"{here}: loadgen writes {sorted(_json_types(theirs))}")
        inner = _bare(tp)
        if typing.get_origin(inner) is list:
            inner, theirs = typing.get_args(inner)[0], _resolve(theirs["items"])
        if typing.is_typeddict(inner):
            found += _not_in_loadgen(inner, theirs, here)
    return found


def test_the_harness_reads_only_what_loadgen_always_writes() -> None:
    assert _not_in_loadgen(documents.LoadgenReport, LOADGEN_SCHEMA) == []


def test_a_key_loadgen_does_not_write_fails_that_check() -> None:
    class Renamed(documents.LoadgenSummary):
        sent: int  # loadgen calls it "requests"

    class MergedOnly(TypedDict):
        agents: list[Any]  # only a merged report has it

    class Mistyped(TypedDict):
        version: str  # loadgen writes the integer 1

    assert _not_in_loadgen(Renamed, LOADGEN_SCHEMA["properties"]["summary"]) == [
        "/sent: not in loadgen's report"
    ]
    assert _not_in_loadgen(MergedOnly, LOADGEN_SCHEMA) == ["/agents: loadgen may leave it out"]
    assert _not_in_loadgen(Mistyped, LOADGEN_SCHEMA) == ["/version: loadgen writes ['integer']"]


def test_only_an_app_interface_is_a_results_interface() -> None:
    assert [documents.interface(name) for name in ("asgi", "wsgi")] == ["asgi", "wsgi"]
    for wrong in ("rsgi", None):
        with pytest.raises(ValueError, match="not an app interface"):
            documents.interface(wrong)
