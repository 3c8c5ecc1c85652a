"""FastAPI + Tortoise ORM on asyncpg: the stackbench reference contract.

Run with any ASGI server, from this directory: ``uvicorn main:app``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.query_utils import Prefetch
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from db import DB_POOL_TIMEOUT, close_orm, init_orm, orm_ready
from models import College, Fortune, Performer, Troupe, World
from parameters import (
    Fanout,
    ObjectId,
    PageNumber,
    PageSize,
    Queries,
    Seconds,
    clamp_page_size,
    integer,
    query_count,
)
from schemas import (
    CollegeOut,
    Error,
    Page,
    Slept,
    TroupeIn,
    TroupeOut,
    Upstream,
    UpstreamAndSlept,
)
from schemas import Fanout as FanoutOut

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "").rstrip("/")
# The OpenAPI schema and its pages (/openapi.json, /docs, /redoc) only with API_DOCS=1:
# otherwise they are paths the contract does not have, 404 like any other.
API_DOCS = os.environ.get("API_DOCS", "").strip() == "1"
WORLD_ROWS = 10_000
MAX_BODY_BYTES = 64 * 1024  # the largest valid POST body is a few kilobytes

logger = logging.getLogger("tortoise_app")

# One client for the life of the process: it keeps connections to the upstream alive
# between requests. Created at import (it connects lazily) so that servers without an
# ASGI lifespan (daphne) get it too; the lifespan closes it.
# The generous connection cap keeps a concurrent load from queueing inside the client
# (which would look like app latency); the timeout covers the upstream's 10 s maximum.
http_client = httpx.AsyncClient(
    timeout=httpx.Timeout(30.0),
    limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Tortoise is set up here and never generates schemas: the tables already exist.
    await init_orm()
    yield
    await http_client.aclose()
    await close_orm()


# redirect_slashes=False: /json/ is a 404 like any unknown path, not a redirect whose
# Location Starlette would build from the request's Host header.
app = FastAPI(
    title="stackbench tortoise",
    lifespan=lifespan,
    redirect_slashes=False,
    openapi_url="/openapi.json" if API_DOCS else None,
)
# Every route that touches the database hangs off this router; its dependency sets the
# ORM up on the first request when the server ran no lifespan.
api = APIRouter(dependencies=[Depends(orm_ready)])

# autoescape=True: fortune 11 is a <script> tag, and must come out as text.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
)

# Every error answer, as the OpenAPI schema describes it (``responses=answers(...)``).
RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer"}}
ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": Error, "description": "The body ended before it was complete."},
    404: {"model": Error, "description": "No such row or page (`Not found.`, `Invalid page.`)."},
    409: {"model": Error, "description": "A troupe of that name exists."},
    413: {"model": Error, "description": "The body is over 64 KiB."},
    422: {"model": Error, "description": "A parameter or the body is not valid."},
    502: {"model": Error, "description": "The upstream service failed."},
    503: {
        "model": Error,
        "description": "No pooled database connection within DB_POOL_TIMEOUT seconds "
        "(`Retry-After: 1`), or UPSTREAM_URL is not set.",
        "headers": {"Retry-After": RETRY_AFTER},
    },
}


def get(
    router: FastAPI | APIRouter, path: str, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A GET route that answers HEAD too (RFC 9110: GET without the body), which FastAPI does
    not add by itself. HEAD's route stays out of the OpenAPI schema, where it would repeat
    the GET operation (and its operationId); GET's comes first, so a 405 says `Allow: GET`."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.get(path, **options)(endpoint)
        router.head(path, include_in_schema=False, **options)(endpoint)
        return endpoint

    return register


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERRORS[status] for status in statuses}


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, without echoing the input back (the input may be large, or hold text,
    a lone surrogate, that cannot even be encoded into the response), except where the
    contract answers 404: an id that cannot be one, a page that cannot be one."""
    problems = exc.errors()
    locations = {tuple(problem["loc"][:2]) for problem in problems}
    if any(location[:1] == ("path",) for location in locations):
        return error(404, "Not found.")
    if ("query", "page") in locations:
        return error(404, "Invalid page.")
    reasons = [{key: problem[key] for key in ("type", "loc", "msg")} for problem in problems]
    return JSONResponse(status_code=422, content={"detail": reasons})


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own answer, except that a 405's Allow names every method the path serves:
    Starlette names only those of the first route at the path (GET for /api/troupes)."""
    if exc.status_code == 405:
        routes = [
            route
            for route in (*app.routes, *api.routes)  # the app's, and those it includes
            if route.matches(request.scope)[0] != Match.NONE
        ]
        allow = sorted({method for route in routes for method in getattr(route, "methods", ())})
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allow)})
    return await http_exception_handler(request, exc)


@app.exception_handler(TimeoutError)
async def database_busy(request: Request, exc: TimeoutError) -> JSONResponse:
    """Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds (asyncpg's acquire
    timed out, db.BoundedPool): a 503 the client may retry, not a 500 and no endless wait."""
    path, waited = request.url.path, DB_POOL_TIMEOUT
    logger.warning("%s %s: no database connection within %g s", request.method, path, waited)
    return error(503, "Database busy, retry later.", {"Retry-After": "1"})


# --- helpers ----------------------------------------------------------------------------


def random_id() -> int:
    return random.randint(1, WORLD_ROWS)


async def paginate(
    request: Request, queryset: QuerySet[Any], number: int, size: int
) -> dict[str, Any]:
    """Page ``number`` of ``queryset`` (ordered by id), DRF-style: count, relative
    next/previous links, results."""
    count = await queryset.count()
    pages = max(1, math.ceil(count / size))
    if number > pages:
        raise HTTPException(status_code=404, detail="Invalid page.")
    rows = await queryset.offset((number - 1) * size).limit(size)

    def link(to: int) -> str:
        return f"{request.url.path}?page={to}&page_size={size}"

    return {
        "count": count,
        "next": link(number + 1) if number < pages else None,
        "previous": link(number - 1) if number > 1 else None,
        "results": rows,
    }


async def call_upstream(seconds: float) -> Any:
    if not UPSTREAM_URL:
        raise HTTPException(status_code=503, detail="UPSTREAM_URL is not set")
    try:
        response = await http_client.get(f"{UPSTREAM_URL}/delay", params={"seconds": seconds})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        # What failed is for the log; the client learns only that it did.
        logger.warning("upstream call failed: %r", exc)
        raise HTTPException(status_code=502, detail="Upstream unavailable.") from None


async def sleep_in_database(seconds: float) -> None:
    # Raw SQL through Tortoise's own connection (its asyncpg pool), with a bound parameter.
    await connections.get("default").execute_query("SELECT pg_sleep($1)", [seconds])


# --- TechEmpower-style endpoints ---------------------------------------------------------


@get(app, "/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}  # no database: the harness polls this while starting


@get(app, "/json")
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@get(app, "/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


@get(api, "/db", responses=answers(503))
async def single_query() -> dict[str, int]:
    world = await World.get(id=random_id())
    return {"id": world.id, "randomNumber": world.randomnumber}


@get(api, "/queries", responses=answers(503))
async def multiple_queries(queries: Queries = "1") -> list[dict[str, int]]:
    # One SELECT per row, awaited in turn, as the contract asks (no IN, no batching);
    # in one transaction, so that they all run on one pooled connection (see README).
    async with in_transaction():
        worlds = [await World.get(id=random_id()) for _ in range(query_count(queries))]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@get(api, "/updates", responses=answers(503))
async def updates(queries: Queries = "1") -> list[dict[str, int]]:
    # Distinct ids (as TechEmpower's own implementations draw them): one UPDATE per row.
    ids = random.sample(range(1, WORLD_ROWS + 1), query_count(queries))
    async with in_transaction():
        worlds = [await World.get(id=world_id) for world_id in ids]
        for world in worlds:
            world.randomnumber = random.randint(1, WORLD_ROWS)
        # Saved in id order: concurrent requests lock rows in the same order and cannot
        # deadlock.
        for world in sorted(worlds, key=lambda w: w.id):
            await world.save(update_fields=["randomnumber"])
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@get(api, "/fortunes", response_class=HTMLResponse, responses=answers(503))
async def fortunes(request: Request) -> HTMLResponse:
    rows = await Fortune.all()
    # Not saved: this fortune exists for this response only.
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


# --- the circus API ----------------------------------------------------------------------


def colleges() -> QuerySet[College]:
    # select_related: location and troupe are foreign keys, so one JOINed SELECT has them.
    return College.all().select_related("location", "troupe").order_by("id")


def troupes() -> QuerySet[Troupe]:
    # prefetch_related: members are many-to-many; one more SELECT (through troupe_member)
    # loads them for the whole page, however many troupes it holds, ordered by id.
    members = Prefetch("members", queryset=Performer.all().order_by("id"))
    return Troupe.all().prefetch_related(members).order_by("id")


@get(api, "/api/colleges", response_model=Page[CollegeOut], responses=answers(404, 503))
async def list_colleges(request: Request, page: PageNumber = 1, page_size: PageSize = "20") -> Any:
    # Count and page on one pooled connection (see README). A queryset takes its
    # connection when it is built, so it is built inside the transaction.
    async with in_transaction():
        return await paginate(request, colleges(), page, clamp_page_size(page_size))


@get(api, "/api/colleges/{college_id}", response_model=CollegeOut, responses=answers(404, 503))
async def get_college(college_id: ObjectId) -> Any:
    college = await colleges().filter(id=college_id).first()
    if college is None:
        raise HTTPException(status_code=404, detail="Not found.")
    return college


@get(api, "/api/troupes", response_model=Page[TroupeOut], responses=answers(404, 503))
async def list_troupes(request: Request, page: PageNumber = 1, page_size: PageSize = "20") -> Any:
    async with in_transaction():  # count, page and members on one pooled connection
        return await paginate(request, troupes(), page, clamp_page_size(page_size))


@get(api, "/api/troupes/{troupe_id}", response_model=TroupeOut, responses=answers(404, 503))
async def get_troupe(troupe_id: ObjectId) -> Any:
    async with in_transaction():  # the troupe and its members on one pooled connection
        troupe = await troupes().filter(id=troupe_id).first()
    if troupe is None:
        raise HTTPException(status_code=404, detail="Not found.")
    return troupe


async def troupe_body(request: Request) -> TroupeIn:
    """The POST body, at most MAX_BODY_BYTES, parsed and validated by Pydantic's own JSON
    parser.

    Declaring ``body: TroupeIn`` would let FastAPI parse it with ``json.loads``, which
    answers 400 (not the contract's 422) for bytes that are not UTF-8, for numbers too long
    to convert and for nesting too deep; Pydantic reports all of those as validation errors.
    The size is checked here, not with FastAPI's ``max_body_size``, because Starlette answers
    a declared Content-Length over that limit with its own text/plain 413.
    """
    try:  # a Content-Length of any length, in the contract's integer grammar
        declared = integer(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0  # the server refuses a malformed one before the app sees it
    if declared > MAX_BODY_BYTES:  # refused before reading it
        raise HTTPException(status_code=413, detail="Request body too large.")
    body = b""
    try:
        async for chunk in request.stream():  # a chunked body: counted as it arrives
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise HTTPException(status_code=413, detail="Request body too large.")
    except ClientDisconnect:
        # The client went away mid-body, or sent chunks the server could not read (granian
        # then passes our answer on; uvicorn has answered 400 itself): one line, no traceback.
        logger.warning("POST %s: the body ended before it was complete", request.url.path)
        raise HTTPException(status_code=400, detail="Incomplete request body.") from None
    try:
        return TroupeIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@api.post(
    "/api/troupes",
    status_code=201,
    response_model=TroupeOut,
    responses=answers(400, 409, 413, 422, 503),
    # The body is read by troupe_body, so describe it to the OpenAPI schema by hand.
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": TroupeIn.model_json_schema()}},
            "required": True,
        }
    },
)
async def create_troupe(body: Annotated[TroupeIn, Depends(troupe_body)]) -> Any:
    wanted = sorted(set(body.member_ids))
    # One transaction: an exception anywhere in the block (an HTTPException included)
    # rolls everything back, so a refused request writes nothing.
    async with in_transaction():
        performers = await Performer.filter(id__in=wanted).order_by("id") if wanted else []
        unknown = sorted(set(wanted) - {performer.id for performer in performers})
        if unknown:
            raise HTTPException(status_code=422, detail=f"unknown performer ids: {unknown}")
        try:
            troupe = await Troupe.create(name=body.name)
        except IntegrityError:
            # The UNIQUE constraint decides, so two concurrent requests for one name
            # cannot both succeed (a SELECT-then-INSERT check could not promise that).
            raise HTTPException(status_code=409, detail="troupe name already taken") from None
        if performers:
            try:
                await troupe.members.add(*performers)
            except IntegrityError:  # a performer deleted meanwhile
                raise HTTPException(
                    status_code=422, detail="a performer no longer exists"
                ) from None
    return {"id": troupe.id, "name": troupe.name, "members": performers}


# --- slow endpoints: where concurrency models differ ----------------------------------------


@get(api, "/slow/db", response_model=Slept, responses=answers(422, 503))
async def slow_db(seconds: Seconds = 1) -> Any:
    await sleep_in_database(seconds)
    return {"slept": seconds}


@get(app, "/slow/http", response_model=Upstream, responses=answers(422, 502, 503))
async def slow_http(seconds: Seconds = 1) -> Any:
    return {"upstream": await call_upstream(seconds)}


@get(api, "/slow/both", response_model=UpstreamAndSlept, responses=answers(422, 502, 503))
async def slow_both(seconds: Seconds = 1) -> Any:
    upstream = await call_upstream(seconds)
    await sleep_in_database(seconds)
    return {"upstream": upstream, "slept": seconds}


@get(app, "/slow/fanout", response_model=FanoutOut, responses=answers(422, 502, 503))
async def slow_fanout(n: Fanout = 10, seconds: Seconds = 1) -> Any:
    # asyncio tasks: the N calls wait on the upstream together, on one event loop.
    results = await asyncio.gather(*(call_upstream(seconds) for _ in range(n)))
    return {"results": results}


# Added last: include_router copies the routes declared above onto the app.
app.include_router(api)
