"""The typed documents and the JSON schemas say the same thing, key for key.

Writer and readers are typed with ``stackbench.documents``; files are validated against
``stackbench/schemas/``. If either side renames, adds or drops a key, this fails, naming it.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest

from stackbench import documents, results

# (TypedDict, schema name, path of the object inside the schema)
PAIRS = [
    (documents.ResultDocument, "result", ()),
    (documents.ServerSettings, "result", ("server_settings",)),
    (documents.LoadInfo, "result", ("load",)),
    (documents.Summary, "result", ("summary",)),
    (documents.CpuPerRequest, "result", ("summary", "cpu_us_per_request")),
    (documents.CpuRead, "result", ("summary", "server_cpu_read")),
    (documents.Flags, "result", ("flags",)),
    (documents.ServerFiguresDoc, "result", ("repeats", "server")),
    (documents.DatabaseFigures, "result", ("repeats", "database")),
    (documents.Manifest, "manifest", ()),
    (documents.Git, "manifest", ("git",)),
    (documents.PythonInfo, "manifest", ("python",)),
    (documents.Machine, "manifest", ("machine",)),
    (documents.Pinning, "manifest", ("pinning",)),
    (documents.DatabaseInfo, "manifest", ("database",)),
    (documents.Seed, "manifest", ("seed",)),
]


def _object(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for key in path:
        node = node["properties"][key]
        if node.get("type") == "array" or "items" in node:
            node = node["items"]
    return node


def _keys(typed: Any) -> tuple[set[str], set[str]]:
    hints = typing.get_type_hints(typed, include_extras=True)
    return set(hints), set(typed.__required_keys__)


@pytest.mark.parametrize(("typed", "name", "path"), PAIRS, ids=[t.__name__ for t, _, _ in PAIRS])
def test_typed_document_matches_its_schema(typed: Any, name: str, path: tuple[str, ...]) -> None:
    node = _object(results.schema(name), path)
    keys, required = _keys(typed)
    properties = set(node["properties"])
    assert keys - properties == set(), f"{typed.__name__} has keys the schema lacks"
    assert properties - keys == set(), f"the schema has keys {typed.__name__} lacks"
    assert required == set(node.get("required", [])), f"{typed.__name__}: required keys differ"


def test_the_check_has_teeth() -> None:
    class Renamed(documents.Flags):
        checks_fail: bool  # a key the schema does not know

    node = _object(results.schema("result"), ("flags",))
    keys, _ = _keys(Renamed)
    assert keys - set(node["properties"]) == {"checks_fail"}
