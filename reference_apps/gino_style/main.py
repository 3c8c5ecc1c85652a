"""gino_style: Starlette + SQLAlchemy Core statements run on a raw asyncpg pool.

DATABASE_URL=postgresql://... UPSTREAM_URL=http://... uvicorn main:app --host 127.0.0.1
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

import db
from openapi import openapi_schema

# asyncpg reads the URL itself, libpq options included (?sslmode=require, ?application_name=).
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    raise RuntimeError(
        "Set the DATABASE_URL environment variable, "
        "e.g. DATABASE_URL=postgresql://user:password@127.0.0.1:5432/dbname"
    )
UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8001").rstrip("/")
# The OpenAPI schema (/openapi.json, openapi.py) only with API_DOCS=1: otherwise it is a
# path the contract does not have, 404 like any other.
API_DOCS = os.environ.get("API_DOCS", "").strip() == "1"
DB_POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
# How long a request waits for a pooled connection before the app answers 503.
DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", "10"))
MAX_BODY_BYTES = 64 * 1024  # a troupe is a name and a few ids; refuse anything bigger
MAX_SLEEP = 10.0

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")  # autoescapes .html
logger = logging.getLogger("gino_style")


async def _reset(connection: asyncpg.Connection) -> None:
    # The default reset also runs UNLISTEN/RESET ALL/... per checkout; this app never sets
    # session state, so only an interrupted transaction needs undoing.
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def open_resources(app: Starlette) -> None:
    # One pool and one upstream client per worker process, opened once.
    app.state.pool = await asyncpg.create_pool(
        DATABASE_URL, min_size=1, max_size=DB_POOL_SIZE, reset=_reset
    )
    app.state.upstream = httpx.AsyncClient(
        base_url=UPSTREAM_URL, timeout=30.0, limits=httpx.Limits(max_connections=100)
    )


@asynccontextmanager
async def lifespan(app: Starlette):
    await open_resources(app)
    yield
    await app.state.upstream.aclose()
    await app.state.pool.close()


class OpenOnFirstRequest:
    """Servers without lifespan (daphne) get the pool opened by the first request instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state if "app" in scope else None
        if scope["type"] == "http" and state is not None and not hasattr(state, "pool"):
            async with self.lock:
                if not hasattr(state, "pool"):
                    await open_resources(scope["app"])
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- input at the edge


INTEGER = re.compile(r"-?[0-9]+")
# A decimal number in ASCII: 2, 0.5, .5, 5., 5e-1 (float() alone also takes ' 1', '1_0', '٣').
NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _integer(text: str | None) -> int | None:
    """An ASCII integer of any length, or None (int() alone accepts '٣', '1_000', ' 7 ')."""
    if text is None or not INTEGER.fullmatch(text):
        return None
    digits = text.lstrip("-").lstrip("0") or "0"  # 007 is 7
    # Beyond 18 digits the value only matters as "huge": saturate instead of parsing
    # thousands of digits (int() refuses more than 4300 anyway).
    number = 10**18 if len(digits) > 18 else int(digits)
    return -number if text.startswith("-") else number


def query_count(request: Request) -> int:
    count = _integer(request.query_params.get("queries"))
    return min(max(count or 1, 1), 500)


def seconds_param(request: Request) -> float | None:
    """`seconds` in 0..10 (default 1), or None when invalid."""
    raw = request.query_params.get("seconds", "1")
    if not NUMBER.fullmatch(raw):
        return None
    seconds = float(raw) + 0.0  # -0 is 0: -0.0 + 0.0 == 0.0
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_SLEEP else None


def connection_of(request: Request) -> Any:
    """A pooled connection for ``async with``, waited for at most DB_POOL_TIMEOUT seconds:
    then asyncpg raises TimeoutError, which ``database_busy`` answers with a 503."""
    return request.app.state.pool.acquire(timeout=DB_POOL_TIMEOUT)


def detail(status: int, message: object) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


NOT_FOUND = {"detail": "Not found."}
INVALID_PAGE = {"detail": "Invalid page."}


# ---------------------------------------------------------------- TechEmpower endpoints


async def health(request: Request) -> Response:
    """The service is up (no database).

    ---
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              type: object
    """
    return JSONResponse({"status": "ok"})


async def json_endpoint(request: Request) -> Response:
    """TechEmpower: a JSON object built per request.

    ---
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              type: object
    """
    return JSONResponse({"message": "Hello, World!"})


async def plaintext(request: Request) -> Response:
    """TechEmpower: plain text.

    ---
    responses:
      200:
        description: OK
        content:
          text/plain:
            schema:
              type: string
    """
    return PlainTextResponse("Hello, World!")


def _world(row: asyncpg.Record) -> dict[str, int]:
    return {"id": row["id"], "randomNumber": row["randomnumber"]}


def _by_id(row: dict[str, int]) -> int:
    return row["id"]


async def single_query(request: Request) -> Response:
    """TechEmpower: one random world row.

    ---
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/World'
      503:
        $ref: '#/components/responses/Busy'
    """
    async with connection_of(request) as connection:
        row = await connection.fetchrow(db.WORLD_BY_ID.sql, random.randint(1, 10_000))
    return JSONResponse(_world(row))


async def _rows(connection: asyncpg.Connection, ids: list[int]) -> list[dict[str, int]]:
    # One SELECT per row, as the test requires; the statement is prepared once per connection.
    return [_world(await connection.fetchrow(db.WORLD_BY_ID.sql, world_id)) for world_id in ids]


async def multiple_queries(request: Request) -> Response:
    """TechEmpower: N random rows, one SELECT each.

    ---
    parameters:
    - $ref: '#/components/parameters/Queries'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Worlds'
      503:
        $ref: '#/components/responses/Busy'
    """
    async with connection_of(request) as connection:
        ids = [random.randint(1, 10_000) for _ in range(query_count(request))]
        rows = await _rows(connection, ids)
    return JSONResponse(rows)


async def updates(request: Request) -> Response:
    """TechEmpower: N random rows, each updated.

    ---
    parameters:
    - $ref: '#/components/parameters/Queries'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Worlds'
      503:
        $ref: '#/components/responses/Busy'
    """
    async with connection_of(request) as connection:
        # Distinct ids (as TechEmpower's own implementations draw them): one UPDATE per row.
        rows = await _rows(connection, random.sample(range(1, 10_001), query_count(request)))
        for row in rows:
            row["randomNumber"] = random.randint(1, 10_000)
        # Sorted by id so that concurrent requests lock rows in one order (no deadlocks).
        async with connection.transaction():
            await connection.executemany(
                db.UPDATE_WORLD.sql,
                [(row["randomNumber"], row["id"]) for row in sorted(rows, key=_by_id)],
            )
    return JSONResponse(rows)


async def fortunes(request: Request) -> Response:
    """TechEmpower: the fortunes page.

    ---
    responses:
      200:
        description: OK
        content:
          text/html:
            schema:
              type: string
      503:
        $ref: '#/components/responses/Busy'
    """
    async with connection_of(request) as connection:
        rows = await connection.fetch(db.ALL_FORTUNES.sql)
    items = [{"id": row["id"], "message": row["message"]} for row in rows]
    items.append({"id": 0, "message": "Additional fortune added at request time."})
    items.sort(key=lambda item: item["message"])
    return templates.TemplateResponse(
        request, "fortunes.html", {"fortunes": items}, media_type="text/html; charset=utf-8"
    )


# ---------------------------------------------------------------- the circus API


def _page(request: Request) -> tuple[int, int] | None:
    """(page, page_size) after the contract's defaults and clamping; None: invalid page."""
    size = _integer(request.query_params.get("page_size"))
    size = 20 if size is None else min(max(size, 1), 100)
    raw_page = request.query_params.get("page")
    page = 1 if raw_page in (None, "") else _integer(raw_page)
    if page is None or page < 1:
        return None
    return page, size


def _paged(
    request: Request, path: str, count: int, page: int, size: int, results: list
) -> Response:
    prefix = request.scope.get("root_path", "")
    last = max(1, -(-count // size))

    def link(number: int) -> str:
        return f"{prefix}{path}?page={number}&page_size={size}"

    return JSONResponse(
        {
            "count": count,
            "next": link(page + 1) if page < last else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": results,
        }
    )


def _college(row: asyncpg.Record) -> dict[str, object]:
    return {
        "id": row["id"],
        "name": row["name"],
        "location": {
            "id": row["location_id"],
            "line_1": row["line_1"],
            "line_2": row["line_2"],
            "line_3": row["line_3"],
            "zipcode": row["zipcode"],
        },
        "troupe": {"id": row["troupe_id"], "name": row["troupe_name"]},
    }


async def colleges(request: Request) -> Response:
    """A page of colleges.

    ---
    parameters:
    - $ref: '#/components/parameters/Page'
    - $ref: '#/components/parameters/PageSize'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/CollegePage'
      404:
        $ref: '#/components/responses/NotFound'
      503:
        $ref: '#/components/responses/Busy'
    """
    paging = _page(request)
    if paging is None:
        return JSONResponse(INVALID_PAGE, status_code=404)
    page, size = paging
    async with connection_of(request) as connection:
        count = await connection.fetchval(db.COUNT_COLLEGES.sql)
        if (page - 1) * size >= max(count, 1):
            return JSONResponse(INVALID_PAGE, status_code=404)
        rows = await connection.fetch(db.COLLEGE_PAGE.sql, size, (page - 1) * size)
    return _paged(request, "/api/colleges", count, page, size, [_college(r) for r in rows])


async def college_detail(request: Request) -> Response:
    """One college.

    ---
    parameters:
    - $ref: '#/components/parameters/CollegeId'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/College'
      404:
        $ref: '#/components/responses/NotFound'
      503:
        $ref: '#/components/responses/Busy'
    """
    college_id = _integer(request.path_params["college_id"])
    row = None
    if college_id is not None and -(2**31) <= college_id < 2**31:
        async with connection_of(request) as connection:
            row = await connection.fetchrow(db.COLLEGE_BY_ID.sql, college_id)
    if row is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return JSONResponse(_college(row))


async def _with_members(connection: asyncpg.Connection, troupes: list[asyncpg.Record]) -> list:
    members: dict[int, list[dict[str, object]]] = {row["id"]: [] for row in troupes}
    for row in await connection.fetch(db.MEMBERS_OF.sql, list(members)):
        members[row["troupe_id"]].append(
            {
                "id": row["id"],
                "stage_name": row["stage_name"],
                "kind": row["kind"],
                "concentration": row["concentration"],
            }
        )
    return [
        {"id": row["id"], "name": row["name"], "members": members[row["id"]]} for row in troupes
    ]


async def troupes(request: Request) -> Response:
    """A page of troupes with their members.

    ---
    parameters:
    - $ref: '#/components/parameters/Page'
    - $ref: '#/components/parameters/PageSize'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/TroupePage'
      404:
        $ref: '#/components/responses/NotFound'
      503:
        $ref: '#/components/responses/Busy'
    """
    paging = _page(request)
    if paging is None:
        return JSONResponse(INVALID_PAGE, status_code=404)
    page, size = paging
    async with connection_of(request) as connection:
        count = await connection.fetchval(db.COUNT_TROUPES.sql)
        if (page - 1) * size >= max(count, 1):
            return JSONResponse(INVALID_PAGE, status_code=404)
        rows = await connection.fetch(db.TROUPE_PAGE.sql, size, (page - 1) * size)
        results = await _with_members(connection, rows)
    return _paged(request, "/api/troupes", count, page, size, results)


async def troupe_detail(request: Request) -> Response:
    """One troupe with its members.

    ---
    parameters:
    - $ref: '#/components/parameters/TroupeId'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Troupe'
      404:
        $ref: '#/components/responses/NotFound'
      503:
        $ref: '#/components/responses/Busy'
    """
    troupe_id = _integer(request.path_params["troupe_id"])
    if troupe_id is None or not -(2**31) <= troupe_id < 2**31:
        return JSONResponse(NOT_FOUND, status_code=404)
    async with connection_of(request) as connection:
        row = await connection.fetchrow(db.TROUPE_BY_ID.sql, troupe_id)
        if row is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        (result,) = await _with_members(connection, [row])
    return JSONResponse(result)


def _encodable(text: str) -> bool:
    """False for a lone surrogate: JSON's "\\ud800" decodes to one, and UTF-8 has none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _troupe_input(body: bytes) -> tuple[str, list[int]] | str:
    """(name, member ids) from a JSON body, or the reason it is invalid."""
    try:
        # ValueError: not UTF-8 (a BOM included), not JSON, or an integer of over 4300 digits.
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return "Body must be a JSON object in UTF-8."
    if not isinstance(data, dict):
        return "Body must be a JSON object."
    name, member_ids = data.get("name"), data.get("member_ids")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        return "name must be a string of 1 to 100 characters."
    if "\x00" in name or not _encodable(name):
        return "name must be text PostgreSQL can store (no NUL, no lone surrogate)."
    if not isinstance(member_ids, list) or not all(
        type(i) is int and 1 <= i < 2**31 for i in member_ids
    ):
        return "member_ids must be a list of performer ids."
    return name, sorted(set(member_ids))


async def create_troupe(request: Request) -> Response:
    """A new troupe.

    ---
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/TroupeIn'
    responses:
      201:
        description: Created
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Troupe'
      400:
        $ref: '#/components/responses/BadBody'
      409:
        $ref: '#/components/responses/Conflict'
      413:
        $ref: '#/components/responses/TooLarge'
      422:
        $ref: '#/components/responses/Invalid'
      503:
        $ref: '#/components/responses/Busy'
    """
    declared = _integer(request.headers.get("content-length"))
    if declared is not None and declared > MAX_BODY_BYTES:
        return detail(413, "Body too large.")
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return detail(413, "Body too large.")
    except ClientDisconnect:
        # The client went away mid-body, or sent chunks the server could not read (granian
        # then passes this answer on; uvicorn has answered 400 itself): one line, no traceback.
        logger.warning("POST %s: the body ended before it was complete", request.url.path)
        return detail(400, "Incomplete request body.")
    parsed = _troupe_input(body)
    if isinstance(parsed, str):
        return detail(422, parsed)
    name, member_ids = parsed
    try:
        # One transaction: an exception leaving the block rolls everything back.
        async with connection_of(request) as connection, connection.transaction():
            known = await connection.fetchval(db.KNOWN_PERFORMERS.sql, member_ids)
            if known != len(member_ids):
                raise LookupError("Unknown performer id in member_ids.")
            troupe_id = await connection.fetchval(db.INSERT_TROUPE.sql, name)
            await connection.execute(db.INSERT_MEMBERS.sql, troupe_id, member_ids)
            (result,) = await _with_members(connection, [{"id": troupe_id, "name": name}])
    except LookupError as exc:
        return detail(422, str(exc))
    except asyncpg.UniqueViolationError:
        return detail(409, "A troupe with this name already exists.")
    return JSONResponse(result, status_code=201)


# ---------------------------------------------------------------- slow I/O


class UpstreamError(Exception):
    """The upstream service could not be reached, or did not answer with JSON."""


async def _upstream(request: Request, seconds: float) -> object:
    try:
        response = await request.app.state.upstream.get("/delay", params={"seconds": seconds})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        # What failed is for the log; the client learns only that it did.
        logger.warning("upstream call failed: %r", exc)
        raise UpstreamError from None


async def slow_db(request: Request) -> Response:
    """pg_sleep on the database connection.

    ---
    parameters:
    - $ref: '#/components/parameters/Seconds'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Slept'
      422:
        $ref: '#/components/responses/Invalid'
      503:
        $ref: '#/components/responses/Busy'
    """
    seconds = seconds_param(request)
    if seconds is None:
        return detail(422, f"seconds must be a number in 0..{MAX_SLEEP:g}")
    async with connection_of(request) as connection:
        await connection.execute(db.SLEEP.sql, seconds)
    return JSONResponse({"slept": seconds})


async def slow_http(request: Request) -> Response:
    """One upstream call.

    ---
    parameters:
    - $ref: '#/components/parameters/Seconds'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Upstream'
      422:
        $ref: '#/components/responses/Invalid'
      502:
        $ref: '#/components/responses/UpstreamFailed'
    """
    seconds = seconds_param(request)
    if seconds is None:
        return detail(422, f"seconds must be a number in 0..{MAX_SLEEP:g}")
    return JSONResponse({"upstream": await _upstream(request, seconds)})


async def slow_both(request: Request) -> Response:
    """The upstream call, then pg_sleep.

    ---
    parameters:
    - $ref: '#/components/parameters/Seconds'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/UpstreamAndSlept'
      422:
        $ref: '#/components/responses/Invalid'
      502:
        $ref: '#/components/responses/UpstreamFailed'
      503:
        $ref: '#/components/responses/Busy'
    """
    seconds = seconds_param(request)
    if seconds is None:
        return detail(422, f"seconds must be a number in 0..{MAX_SLEEP:g}")
    upstream = await _upstream(request, seconds)
    async with connection_of(request) as connection:
        await connection.execute(db.SLEEP.sql, seconds)
    return JSONResponse({"upstream": upstream, "slept": seconds})


async def slow_fanout(request: Request) -> Response:
    """N upstream calls at once.

    ---
    parameters:
    - $ref: '#/components/parameters/Seconds'
    - $ref: '#/components/parameters/Calls'
    responses:
      200:
        description: OK
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Fanout'
      422:
        $ref: '#/components/responses/Invalid'
      502:
        $ref: '#/components/responses/UpstreamFailed'
    """
    seconds = seconds_param(request)
    raw_n = request.query_params.get("n")
    n = 10 if raw_n is None else _integer(raw_n)
    if seconds is None or n is None or not 1 <= n <= 50:
        return detail(422, "n must be an integer in 1..50 and seconds a number in 0..10")
    # Concurrency the asyncio way: n tasks on this worker's event loop.
    results = await asyncio.gather(*(_upstream(request, seconds) for _ in range(n)))
    return JSONResponse({"results": results})


routes = [
    Route("/health", health),
    Route("/json", json_endpoint),
    Route("/plaintext", plaintext),
    Route("/db", single_query),
    Route("/queries", multiple_queries),
    Route("/updates", updates),
    Route("/fortunes", fortunes),
    Route("/api/colleges", colleges),
    Route("/api/colleges/{college_id}", college_detail),
    Route("/api/troupes", troupes, methods=["GET"]),
    Route("/api/troupes", create_troupe, methods=["POST"]),
    Route("/api/troupes/{troupe_id}", troupe_detail),
    Route("/slow/db", slow_db),
    Route("/slow/http", slow_http),
    Route("/slow/both", slow_both),
    Route("/slow/fanout", slow_fanout),
]
if API_DOCS:
    routes.append(Route("/openapi.json", openapi_schema, include_in_schema=False))


async def upstream_failed(request: Request, exc: Exception) -> Response:
    # The upstream's failure is not ours: a gateway error, not a 500.
    return detail(502, "Upstream unavailable.")


async def database_busy(request: Request, exc: Exception) -> Response:
    # Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds: a 503 to retry.
    path, waited = request.url.path, DB_POOL_TIMEOUT
    logger.warning("%s %s: no database connection within %g s", request.method, path, waited)
    return JSONResponse(
        {"detail": "Database busy, retry later."}, status_code=503, headers={"Retry-After": "1"}
    )


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404 and 405 as JSON, like every other error of this API; a 405's Allow
    names every method of the path (Starlette names the first route's: GET for /api/troupes)."""
    headers = exc.headers
    if exc.status_code == 405:
        routes = [route for route in app.routes if route.matches(request.scope)[0] != Match.NONE]
        allow = sorted({method for route in routes for method in getattr(route, "methods", ())})
        headers = {"Allow": ", ".join(allow)}
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


app = Starlette(
    routes=routes,
    lifespan=lifespan,
    middleware=[Middleware(OpenOnFirstRequest)],
    exception_handlers={
        HTTPException: http_error,
        UpstreamError: upstream_failed,
        TimeoutError: database_busy,  # asyncpg's acquire(timeout=...): see connection_of
    },
)  # debug stays off: no tracebacks to clients
# /json/ is a 404 like any unknown path: no redirect (Starlette builds its Location from the
# request's Host header).
app.router.redirect_slashes = False
