"""The JSON schemas of the documents on disk, generated from their TypedDicts.

    python -m stackbench.json_schema           write stackbench/schemas/*.schema.json
    python -m stackbench.json_schema --check   exit 1, naming each key where they differ

``stackbench.documents`` is the source; the schema files are what it says, in the words
of JSON Schema (draft 2020-12), for ``jsonschema`` and for readers outside Python. A
TypedDict is an object of its keys (the required ones required; closed at the top of a
document); ``X | None`` adds "null" to X's type; a ``Literal`` is a const or an enum;
``list[X]`` an array of X; ``dict[str, X]`` an object of X; ``Json(...)`` adds keywords;
the docstring under a key (``documents`` writes one where a key needs saying) is its
description.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

from stackbench import documents

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON schema of one Python type, as ``documents`` writes them."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        inner, *metadata = get_args(tp)
        node = {} if any(m.replace for m in _json(metadata)) else schema_of(inner)
        for meta in _json(metadata):
            node.update(meta.keywords)
        return node
    if origin in (NotRequired, Required):
        return schema_of(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{tp}: only X | None is said in a schema")
        node = schema_of(members[0])
        if "type" not in node:
            raise TypeError(f"{tp}: cannot add null to {node}")
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return {**node, "type": [*kinds, "null"]}
    if origin is Literal:
        values = list(get_args(tp))
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if origin is list:
        return {"type": "array", "items": schema_of(get_args(tp)[0])}
    if origin is dict:
        key, value = get_args(tp)
        if key is not str:
            raise TypeError(f"{tp}: JSON object keys are strings")
        return (
            {"type": "object"}
            if value is Any
            else {
                "type": "object",
                "additionalProperties": schema_of(value),
            }
        )
    if typing.is_typeddict(tp):
        return _object(tp)
    if tp is Any:
        return {}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    raise TypeError(f"{tp}: no JSON schema for this type")


def _json(metadata: list[Any]) -> list[documents.Json]:
    return [m for m in metadata if isinstance(m, documents.Json)]


def _object(typed: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(typed, include_extras=True)
    required = [key for key, tp in hints.items() if _required(typed, key, tp)]
    said = _docstrings(typed.__module__, typed.__name__)
    node: dict[str, Any] = {"type": "object"}
    if required:
        node["required"] = required
    node["properties"] = {
        key: {**schema_of(tp), **({"description": said[key]} if key in said else {})}
        for key, tp in hints.items()
    }
    return node


def _required(typed: Any, key: str, tp: Any) -> bool:
    """Required in the TypedDict (its keys' sets miss ``NotRequired`` when annotations
    were strings, under ``from __future__ import annotations``; the hints do not)."""
    if get_origin(tp) is NotRequired:
        return False
    return get_origin(tp) is Required or key in typed.__required_keys__


@functools.cache
def _classes(module: str) -> dict[str, ast.ClassDef]:
    tree = ast.parse(inspect.getsource(sys.modules[module]))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _docstrings(module: str, name: str) -> dict[str, str]:
    """Each key's docstring (the string under it in the class body), the bases' included."""
    found: dict[str, str] = {}
    cls = _classes(module).get(name)
    if cls is None:  # not a class statement at the top of its module: nothing said
        return found
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in _classes(module):
            found.update(_docstrings(module, base.id))
    for key, under in zip(cls.body, cls.body[1:], strict=False):
        if (
            isinstance(key, ast.AnnAssign)
            and isinstance(key.target, ast.Name)
            and isinstance(under, ast.Expr)
            and isinstance(under.value, ast.Constant)
            and isinstance(under.value.value, str)
        ):
            found[key.target.id] = " ".join(under.value.value.split())
    return found


def document_schema(schema: documents.Schema) -> dict[str, Any]:
    """The whole schema file of one document."""
    node = _object(schema.document)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://stackbench.invalid/schemas/{schema.name}.schema.json",
        "$comment": "generated from stackbench/documents.py by `python -m stackbench.json_schema`"
        "; edit that, not this",
        "title": schema.title,
        "type": "object",
        "required": node["required"],
        "additionalProperties": False,
        "properties": node["properties"],
    }


def text(schema: documents.Schema) -> str:
    return json.dumps(document_schema(schema), indent=2, ensure_ascii=False) + "\n"


def path(schema: documents.Schema, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{schema.name}.schema.json"


def differences(directory: Path = SCHEMA_DIR) -> list[str]:
    """Where each committed schema is not the generated one, key by key (empty: none)."""
    found = []
    for schema in documents.SCHEMAS:
        file = path(schema, directory)
        try:
            committed = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            found.append(f"{file.name}: unreadable ({exc})")
            continue
        found += [f"{file.name}: {where}" for where in _diff(document_schema(schema), committed)]
    return found


def _diff(generated: Any, committed: Any, where: str = "") -> list[str]:
    if isinstance(generated, dict) and isinstance(committed, dict):
        found = []
        for key in generated.keys() | committed.keys():
            here = f"{where}/{key}"
            if key not in committed:
                found.append(f"{here} is in documents.py, not in the file")
            elif key not in generated:
                found.append(f"{here} is in the file, not in documents.py")
            else:
                found += _diff(generated[key], committed[key], here)
        return sorted(found)
    if generated != committed:
        return [f"{where or '/'}: documents.py says {generated!r}, the file {committed!r}"]
    return []


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = differences()
        for line in found:
            print(line, file=sys.stderr)
        if found:
            print("run `python -m stackbench.json_schema` to regenerate", file=sys.stderr)
        return 1 if found else 0
    if argv:
        print("usage: python -m stackbench.json_schema [--check]", file=sys.stderr)
        return 2
    for schema in documents.SCHEMAS:
        file = path(schema)
        file.write_text(text(schema))
        print(f"wrote {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
