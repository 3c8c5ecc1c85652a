"""Scenario files: named requests declared in TOML, each scenario an endpoint scenario.

``python -m loadgen --scenario-file FILE --scenario NAME URL`` runs the scenario NAME of
FILE against the base URL. One ``[scenarios.NAME]`` table per scenario (an optional
``description``), its ``[[scenarios.NAME.requests]]`` with ``name``, ``method``, ``path``
(``{id}`` filled from ``ids = {range = [LOW, HIGH]}`` or ``{list = [...]}``), ``weight``,
``headers``, ``body`` or ``json``, ``status`` and a ``check`` (``json``, ``regex``,
``schema``): the format, with an example, is in loadgen/README.md.

:func:`read` reads and checks the whole file before anything is sent: an unknown key,
a missing one or a value of the wrong kind is one line naming the file, the scenario,
the request and the key (:class:`ConfigError`). Each scenario is a list of
:class:`~loadgen.scenario_types.Endpoint`, so it runs on the fast path as the built-in
endpoint scenarios do: the status of every response counted against ``status``, the
check run on a random sample of responses (the scenario option ``sample``, 16).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import json
import math
import random
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from . import values
from .errors import ConfigError
from .scenario_types import Endpoint, Scenario

__all__ = ["OPTIONS", "ScenarioFile", "read"]

OPTIONS = {"sample": "16"}  # the scenario options a file's scenarios take, with defaults
# Paths drawn up front for a templated request, at random (loadgen's request cycle is
# 4096 long): enough that every value of a short list is sent about equally often.
VARIANTS = 1024

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a file name and a --scenarios item
_TARGET = re.compile(r"/[!-~]*")  # visible ASCII: a request target, nothing to escape
_INDEX = re.compile(r"-?\d+")
_SCENARIO_KEYS = ("description", "requests")
_REQUEST_KEYS = (
    "name", "method", "path", "ids", "weight", "headers", "body", "json", "status", "check",
)  # fmt: skip
_CHECK_KEYS = ("json", "regex", "schema")
_MISSING = object()


@dataclass(frozen=True)
class ScenarioFile:
    """A scenario file, read and checked: each scenario's requests, ready to run."""

    path: str
    sha256: str  # of the file's bytes: agents merge only reports of the same file
    descriptions: dict[str, str]
    endpoints: dict[str, tuple[Endpoint, ...]]

    @property
    def names(self) -> list[str]:
        """The scenarios, in the file's order."""
        return list(self.endpoints)

    def scenario(self, name: str, options: Mapping[str, str]) -> Scenario:
        """The scenario ``name`` with its options (``sample``: check one response in N)."""
        if name not in self.endpoints:
            raise ConfigError(
                f"{self.path} has no scenario {name!r} (it has: {', '.join(self.names)})"
            )
        chosen = {**OPTIONS, **options}
        if unknown := sorted(chosen.keys() - OPTIONS.keys()):
            only = ", ".join(OPTIONS)
            raise ConfigError(f"scenario option {unknown[0]!r}: a file's scenarios take {only}")
        try:
            sample = values.positive_int(chosen["sample"])
        except ConfigError as exc:
            raise ConfigError(f"scenario option 'sample' {exc}") from None
        return Scenario(
            name=name,
            endpoints=[dataclasses.replace(e, sample_every=sample) for e in self.endpoints[name]],
            options=chosen,
            description=self.descriptions[name],
            file_sha256=self.sha256,
        )


def read(path: str) -> ScenarioFile:
    """The scenario file at ``path``, every scenario checked; ConfigError (one line) if
    it cannot be read or anything in it is wrong."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {path!r}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _known(document, ("scenarios",), path)
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, dict) or not scenarios:
        raise ConfigError(f"{path}: no [scenarios.NAME] table with [[scenarios.NAME.requests]]")
    descriptions, endpoints = {}, {}
    for name, table in scenarios.items():
        where = f"{path}: scenario {name!r}"
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: a name is letters, digits, '_', '.' and '-'")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table ([scenarios.{name}])")
        _known(table, _SCENARIO_KEYS, where)
        descriptions[name] = _kind(table.get("description", ""), str, "description", where)
        requests = table.get("requests")
        if not isinstance(requests, list) or not requests:
            raise ConfigError(f"{where}: no requests ([[scenarios.{name}.requests]])")
        found: dict[str, Endpoint] = {}
        for number, entry in enumerate(requests, 1):
            endpoint = _endpoint(entry, f"{where}, request {number}")
            if endpoint.name in found:
                raise ConfigError(f"{where}: two requests are named {endpoint.name!r}")
            found[endpoint.name] = endpoint
        endpoints[name] = tuple(found.values())
    return ScenarioFile(path, hashlib.sha256(raw).hexdigest(), descriptions, endpoints)


# -- one request --------------------------------------------------------------------------
def _endpoint(entry: Any, where: str) -> Endpoint:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table ([[...requests]])")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    _known(entry, _REQUEST_KEYS, where)
    method = _kind(entry.get("method", "GET"), str, "method", where)
    try:
        method = values.method(method)
    except ConfigError as exc:
        raise ConfigError(f"{where}: method: {exc}") from None
    if "path" not in entry:
        raise ConfigError(f"{where}: no path")
    template = _kind(entry["path"], str, "path", where)
    name = _kind(entry.get("name", f"{method} {template}"), str, "name", where)
    if not name.strip():
        raise ConfigError(f"{where}: name: must not be empty")
    weight = entry.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise ConfigError(f"{where}: weight: must be a number, got {weight!r}")
    if not (weight > 0 and math.isfinite(weight)):
        raise ConfigError(f"{where}: weight: must be above 0, got {weight!r}")
    headers = _headers(entry.get("headers", {}), where)
    body = b""
    if "body" in entry and "json" in entry:
        raise ConfigError(f"{where}: body and json: give one")
    if "body" in entry:
        body = _kind(entry["body"], str, "body", where).encode()
    elif "json" in entry:
        sent = _json_value(entry["json"], "json", where)
        body = json.dumps(sent, separators=(",", ":")).encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers += (("Content-Type", "application/json"),)
    check, validate = _check(entry["check"], where) if "check" in entry else ("", None)
    path = _path(template, entry.get("ids"), where)
    return Endpoint(
        name=name,
        path=path,
        method=method,
        weight=float(weight),
        expect=_statuses(entry.get("status", 200), where),
        validate=validate,
        check=check,
        body=body,
        headers=headers,
        variants=1 if isinstance(path, str) else VARIANTS,
    )


def _headers(table: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: headers: must be a table of 'Name' = 'value'")
    found = []
    for key, value in table.items():
        _kind(value, str, f"headers.{key}", where)
        try:
            found.append(values.header((key, value)))
            value.encode("latin-1")  # what a header's bytes can say
        except ConfigError as exc:
            raise ConfigError(f"{where}: headers.{key}: {exc}") from None
        except UnicodeEncodeError:
            raise ConfigError(f"{where}: headers.{key}: not Latin-1 text") from None
    return tuple(found)


def _statuses(status: Any, where: str) -> frozenset[int]:
    given = status if isinstance(status, list) else [status]
    for code in given:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigError(f"{where}: status: a status is 100..599, got {code!r}")
    if not given:
        raise ConfigError(f"{where}: status: an empty list expects nothing")
    return frozenset(given)


# -- the path and its placeholders --------------------------------------------------------
def _path(template: str, ids: Any, where: str) -> str | Callable[[random.Random], str]:
    """The path, or a function drawing one (its placeholders filled from ``ids``)."""
    if not _TARGET.fullmatch(template) or "#" in template:
        raise ConfigError(
            f"{where}: path: must start with '/' and hold visible ASCII only (percent-encode"
            f" the rest), got {template!r}"
        )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise ConfigError(f"{where}: path: a lone '{{' or '}}' (write {{{{ or }}}})") from None
    placeholders = []
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ConfigError(f"{where}: path: {{{field}}} is not a placeholder like {{id}}")
        placeholders.append(field)
    draws = _ids(ids, where) if ids is not None else {}
    missing = [p for p in placeholders if p not in draws]
    if missing:
        raise ConfigError(f"{where}: path: {{{missing[0]}}} has no values in ids")
    unused = [name for name in draws if name not in placeholders]
    if unused:
        key = "ids" if unused == ["id"] and "id" not in placeholders else f"ids.{unused[0]}"
        raise ConfigError(f"{where}: {key}: the path has no {{{unused[0]}}}")
    if not placeholders:
        return template
    pieces = [(literal, field and draws[field]) for literal, field, _, _ in parts]

    def path(rng: random.Random) -> str:
        return "".join(literal + (draw(rng) if draw else "") for literal, draw in pieces)

    return path


Draw = Callable[[random.Random], str]


def _ids(ids: Any, where: str) -> dict[str, Draw]:
    """``{range = [..]}`` or ``{list = [..]}`` for {id}; or one such table per placeholder."""
    if not isinstance(ids, dict) or not ids:
        raise ConfigError(f"{where}: ids: must be {{range = [LOW, HIGH]}} or {{list = [...]}}")
    if all(isinstance(v, dict) for v in ids.values()):
        return {name: _draw(spec, f"ids.{name}", where) for name, spec in ids.items()}
    return {"id": _draw(ids, "ids", where)}


def _draw(spec: dict[str, Any], key: str, where: str) -> Draw:
    _known(spec, ("range", "list"), where, prefix=f"{key}.")
    if len(spec) != 1:
        raise ConfigError(f"{where}: {key}: give one of range = [LOW, HIGH] or list = [...]")
    if "range" in spec:
        bounds = spec["range"]
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or bounds[0] > bounds[1]
        ):
            raise ConfigError(f"{where}: {key}.range: must be [LOW, HIGH], integers, LOW <= HIGH")
        low, high = bounds
        return lambda rng: str(rng.randint(low, high))
    items = spec["list"]
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(i, int | str) and not isinstance(i, bool) for i in items)
    ):
        raise ConfigError(f"{where}: {key}.list: must be a non-empty list of integers or strings")
    texts = [quote(str(i), safe="") for i in items]  # a slug with '/' or ' ' stays one segment
    return lambda rng: rng.choice(texts)


# -- the check ----------------------------------------------------------------------------
def _check(table: Any, where: str) -> tuple[str, Callable[[int, bytes], bool]]:
    """The check's description (its name in the report) and its test of a body."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}: check: must be a table of json, regex and/or schema")
    _known(table, _CHECK_KEYS, where, prefix="check.")
    said: list[str] = []
    on_json: list[Callable[[Any], bool]] = []
    pattern: re.Pattern[str] | None = None
    if "json" in table:
        spec = table["json"]
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: check.json: must be {{path = 'a.b.0', equals = VALUE}}")
        _known(spec, ("path", "equals"), where, prefix="check.json.")
        if "path" not in spec or "equals" not in spec:
            raise ConfigError(f"{where}: check.json: needs path and equals")
        at = _kind(spec["path"], str, "check.json.path", where)
        expected = _json_value(spec["equals"], "check.json.equals", where)
        steps = at.split(".") if at else []
        on_json.append(lambda doc: _same(_at(doc, steps), expected))
        shown = json.dumps(expected, ensure_ascii=False)
        said.append(f"body at {at} is {shown}" if at else f"body is {shown}")
    if "regex" in table:
        regex = _kind(table["regex"], str, "check.regex", where)
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{where}: check.regex: {exc}") from None
        said.append(f"body matches {regex!r}")
    if "schema" in table:
        on_json.append(_schema(table["schema"], where))
        said.append("body is valid against its JSON Schema")

    def validate(status: int, body: bytes) -> bool:
        if pattern is not None and not pattern.search(body.decode("utf-8", "replace")):
            return False
        if on_json:
            doc = json.loads(body)
            return all(test(doc) for test in on_json)
        return True

    return " and ".join(said), validate


def _schema(schema: Any, where: str) -> Callable[[Any], bool]:
    if not isinstance(schema, dict):
        raise ConfigError(f"{where}: check.schema: must be a table (a JSON Schema object)")
    _json_value(schema, "check.schema", where)
    try:
        import jsonschema  # the field's library; only for files that use check.schema
    except ImportError:
        raise ConfigError(
            f"{where}: check.schema needs the jsonschema package: pip install jsonschema"
        ) from None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"{where}: check.schema: not a JSON Schema: {exc.message}") from None
    return cls(schema).is_valid


def _at(doc: Any, steps: list[str]) -> Any:
    """The value at a dotted path: a key of an object, an index (from 0; -1 the last) of
    an array; _MISSING where there is none."""
    for step in steps:
        if isinstance(doc, dict) and step in doc:
            doc = doc[step]
        elif isinstance(doc, list) and _INDEX.fullmatch(step) and -len(doc) <= int(step) < len(doc):
            doc = doc[int(step)]
        else:
            return _MISSING
    return doc


def _same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 is 1.0), true is not 1, arrays in order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# -- what every part shares ---------------------------------------------------------------
def _known(table: dict[str, Any], keys: tuple[str, ...], where: str, prefix: str = "") -> None:
    for key in table:
        if key not in keys:
            near = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {prefix}{near[0]}?)" if near else ""
            raise ConfigError(f"{where}: unknown key {prefix + key!r}{hint}")


def _kind(value: Any, kind: type, key: str, where: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key}: must be a {kind.__name__}, got {value!r}")
    return value


def _json_value(value: Any, key: str, where: str) -> Any:
    """A TOML value that JSON can say (a date or a time cannot: write it as a string)."""
    if isinstance(value, datetime.date | datetime.time):
        raise ConfigError(f"{where}: {key}: a TOML date or time has no JSON form: quote it")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {key}: {value} has no JSON form")
    if isinstance(value, list):
        for item in value:
            _json_value(item, key, where)
    elif isinstance(value, dict):
        for item in value.values():
            _json_value(item, key, where)
    return value
