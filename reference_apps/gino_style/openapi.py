"""The OpenAPI schema, Starlette's way: each endpoint's docstring holds its operation (YAML
after a ``---`` line), and this module the parts they share, which they name with ``$ref``.

Served at ``/openapi.json`` only with ``API_DOCS=1`` (main.py); otherwise that path is a 404
like any the contract does not list.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.schemas import SchemaGenerator

MAX_ID = 2**31 - 1


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


INTEGER = {"type": "integer"}
TEXT = {"type": "string"}
EMPTY = {"type": "string", "maxLength": 0}
ERROR = _ref("Error")


def _page(item: str) -> dict[str, Any]:
    link = {"type": ["string", "null"]}
    return _object(
        count=INTEGER, next=link, previous=link, results={"type": "array", "items": _ref(item)}
    )


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": "a row's id; anything else: 404"}  # fmt: skip


schemas = SchemaGenerator(
    {
        "openapi": "3.1.0",
        "info": {"title": "stackbench gino_style", "version": "1.0"},
        "components": {
            "parameters": {
                "Queries": _query(
                    "queries",
                    {"type": "string", "default": "1"},
                    "an integer, clamped to 1..500; anything else is 1",
                ),
                "Page": _query(
                    "page",
                    {"anyOf": [{"type": "integer", "minimum": 1}, EMPTY], "default": 1},
                    "1 when empty; past the last page: 404",
                ),
                "PageSize": _query(
                    "page_size",
                    {"type": "string", "default": "20"},
                    "an integer, clamped to 1..100; anything else is 20",
                ),
                "Seconds": _query(
                    "seconds",
                    {"type": "number", "minimum": 0, "maximum": 10, "default": 1},
                    "how long to wait, 0..10 (ASCII digits); anything else: 422",
                ),
                "Calls": _query(
                    "n",
                    {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                    "how many calls, 1..50; anything else: 422",
                ),
                "CollegeId": _path("college_id"),
                "TroupeId": _path("troupe_id"),
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"detail": TEXT},
                    "required": ["detail"],
                },
                "World": _object(id=INTEGER, randomNumber=INTEGER),
                "Worlds": {"type": "array", "items": _ref("World")},
                "Location": _object(
                    id=INTEGER, line_1=TEXT, line_2=TEXT, line_3=TEXT, zipcode=TEXT
                ),
                "TroupeRef": _object(id=INTEGER, name=TEXT),
                "College": _object(
                    id=INTEGER, name=TEXT, location=_ref("Location"), troupe=_ref("TroupeRef")
                ),
                "Performer": _object(id=INTEGER, stage_name=TEXT, kind=TEXT, concentration=TEXT),
                "Troupe": _object(
                    id=INTEGER, name=TEXT, members={"type": "array", "items": _ref("Performer")}
                ),
                "TroupeIn": _object(
                    name={"type": "string", "minLength": 1, "maxLength": 100},
                    member_ids={
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    },
                ),
                "CollegePage": _page("College"),
                "TroupePage": _page("Troupe"),
                "Slept": _object(slept={"type": "number"}),
                "Upstream": _object(upstream={"type": "object"}),
                "UpstreamAndSlept": _object(upstream={"type": "object"}, slept={"type": "number"}),
                "Fanout": _object(results={"type": "array", "items": {"type": "object"}}),
            },
            "responses": {
                "BadBody": _json(ERROR, "The body ended before it was complete."),
                "NotFound": _json(ERROR, "No such row or page (`Not found.`, `Invalid page.`)."),
                "Conflict": _json(ERROR, "A troupe of that name exists."),
                "TooLarge": _json(ERROR, "The body is over 64 KiB."),
                "Invalid": _json(ERROR, "A parameter or the body is not valid."),
                "UpstreamFailed": _json(ERROR, "The upstream service failed."),
                "Busy": {
                    **_json(ERROR, "No pooled database connection within DB_POOL_TIMEOUT s."),
                    "headers": {"Retry-After": {"schema": INTEGER}},
                },
            },
        },
    }
)


async def openapi_schema(request: Request) -> JSONResponse:
    return JSONResponse(schemas.get_schema(routes=request.app.routes))
