"""FastAPI + Tortoise ORM on asyncpg: the stackbench reference contract.

Run with any ASGI server, from this directory: ``uvicorn main:app``.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.query_utils import Prefetch
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from db import close_orm, init_orm, orm_ready
from models import College, Fortune, Performer, Troupe, World
from schemas import MAX_ID, CollegeOut, Page, TroupeIn, TroupeOut

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "").rstrip("/")
WORLD_ROWS = 10_000
MAX_QUERIES = 500
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SLEEP = 10.0
MAX_FANOUT = 50
INTEGER = re.compile(r"-?[0-9]+")
# A decimal number in ASCII: 2, 0.5, .5, 5., 5e-1 (float() alone also takes ' 1', '1_0', '٣').
NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# HEAD is GET without the body (RFC 9110); FastAPI routes only the methods they name.
GET = ["GET", "HEAD"]
MAX_BODY_BYTES = 64 * 1024  # the largest valid POST body is a few kilobytes

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
app = FastAPI(title="stackbench tortoise", lifespan=lifespan, redirect_slashes=False)
# Every route that touches the database hangs off this router; its dependency sets the
# ORM up on the first request when the server ran no lifespan.
api = APIRouter(dependencies=[Depends(orm_ready)])

# autoescape=True: fortune 11 is a <script> tag, and must come out as text.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, without echoing the input back: the input may be large, or hold
    text (a lone surrogate) that cannot even be encoded into the response."""
    errors = [{key: error[key] for key in ("type", "loc", "msg")} for error in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


# --- helpers ----------------------------------------------------------------------------


def parse_int(value: str | None) -> int | None:
    """An integer query or path parameter: ASCII digits with an optional minus sign
    (``int()`` alone would also take "٣", "1_000" and " 7"), else None.

    Parameters are taken as text and parsed here because the contract clamps or 404s bad
    values where FastAPI's own int parameters would answer 422.
    """
    if value is None or not INTEGER.fullmatch(value):
        return None
    digits = value.lstrip("-").lstrip("0") or "0"
    # Past 18 digits only the sign matters to every caller (each clamps or range-checks),
    # and int() refuses strings of more than 4300 digits.
    number = 10**18 if len(digits) > 18 else int(digits)
    return -number if value.startswith("-") else number


def query_count(queries: str | None) -> int:
    count = parse_int(queries) or 1
    return min(max(count, 1), MAX_QUERIES)


def parse_id(value: str) -> int:
    """Path ids are text too, so that /api/colleges/abc is a 404 like any unknown id."""
    number = parse_int(value)
    if number is None or not 1 <= number <= MAX_ID:
        raise HTTPException(status_code=404, detail="Not found.")
    return number


def parse_seconds(value: str | None) -> float:
    """``seconds``: a number from 0 to 10, 1 when missing, else 422. An integer stays an
    integer, so that the response echoes it as given (1, not 1.0)."""
    if value is None:
        return 1
    seconds = parse_int(value)
    if seconds is None:
        seconds = float(value) if NUMBER.fullmatch(value) else math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SLEEP):
        raise HTTPException(
            status_code=422, detail=f"seconds must be a number from 0 to {MAX_SLEEP:g}"
        )
    return seconds


def random_id() -> int:
    return random.randint(1, WORLD_ROWS)


async def paginate(
    request: Request, queryset: QuerySet[Any], page: str | None, page_size: str | None
) -> dict[str, Any]:
    """One page of ``queryset`` (ordered by id), DRF-style: count, relative next/previous
    links, results."""
    size = parse_int(page_size)
    size = DEFAULT_PAGE_SIZE if size is None else min(max(size, 1), MAX_PAGE_SIZE)
    number = 1 if not page else parse_int(page)  # page= (empty) is page 1
    count = await queryset.count()
    pages = max(1, math.ceil(count / size))
    if number is None or not 1 <= number <= pages:
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
        raise HTTPException(status_code=502, detail=f"upstream failed: {exc}") from None


async def sleep_in_database(seconds: float) -> None:
    # Raw SQL through Tortoise's own connection (its asyncpg pool), with a bound parameter.
    await connections.get("default").execute_query("SELECT pg_sleep($1)", [seconds])


# --- TechEmpower-style endpoints ---------------------------------------------------------


@app.api_route("/health", methods=GET)
async def health() -> dict[str, str]:
    return {"status": "ok"}  # no database: the harness polls this while starting


@app.api_route("/json", methods=GET)
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.api_route("/plaintext", methods=GET, response_class=PlainTextResponse)
async def plaintext() -> str:
    return "Hello, World!"


@api.api_route("/db", methods=GET)
async def single_query() -> dict[str, int]:
    world = await World.get(id=random_id())
    return {"id": world.id, "randomNumber": world.randomnumber}


@api.api_route("/queries", methods=GET)
async def multiple_queries(queries: str | None = None) -> list[dict[str, int]]:
    # One SELECT per row, awaited in turn, as the contract asks (no IN, no batching);
    # in one transaction, so that they all run on one pooled connection (see README).
    async with in_transaction():
        worlds = [await World.get(id=random_id()) for _ in range(query_count(queries))]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@api.api_route("/updates", methods=GET)
async def updates(queries: str | None = None) -> list[dict[str, int]]:
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


@api.api_route("/fortunes", methods=GET, response_class=HTMLResponse)
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


@api.api_route("/api/colleges", methods=GET, response_model=Page[CollegeOut])
async def list_colleges(
    request: Request, page: str | None = None, page_size: str | None = None
) -> Any:
    # Count and page on one pooled connection (see README). A queryset takes its
    # connection when it is built, so it is built inside the transaction.
    async with in_transaction():
        return await paginate(request, colleges(), page, page_size)


@api.api_route("/api/colleges/{college_id}", methods=GET, response_model=CollegeOut)
async def get_college(college_id: str) -> Any:
    college = await colleges().filter(id=parse_id(college_id)).first()
    if college is None:
        raise HTTPException(status_code=404, detail="Not found.")
    return college


@api.api_route("/api/troupes", methods=GET, response_model=Page[TroupeOut])
async def list_troupes(
    request: Request, page: str | None = None, page_size: str | None = None
) -> Any:
    async with in_transaction():  # count, page and members on one pooled connection
        return await paginate(request, troupes(), page, page_size)


@api.api_route("/api/troupes/{troupe_id}", methods=GET, response_model=TroupeOut)
async def get_troupe(troupe_id: str) -> Any:
    async with in_transaction():  # the troupe and its members on one pooled connection
        troupe = await troupes().filter(id=parse_id(troupe_id)).first()
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
    declared = parse_int(request.headers.get("content-length"))
    if declared is not None and declared > MAX_BODY_BYTES:  # refused before reading it
        raise HTTPException(status_code=413, detail="Request body too large.")
    body = b""
    async for chunk in request.stream():  # a chunked body: counted as it arrives
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail="Request body too large.")
    try:
        return TroupeIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@api.post(
    "/api/troupes",
    status_code=201,
    response_model=TroupeOut,
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


@api.api_route("/slow/db", methods=GET)
async def slow_db(seconds: str | None = None) -> dict[str, float]:
    slept = parse_seconds(seconds)
    await sleep_in_database(slept)
    return {"slept": slept}


@app.api_route("/slow/http", methods=GET)
async def slow_http(seconds: str | None = None) -> dict[str, Any]:
    return {"upstream": await call_upstream(parse_seconds(seconds))}


@api.api_route("/slow/both", methods=GET)
async def slow_both(seconds: str | None = None) -> dict[str, Any]:
    slept = parse_seconds(seconds)
    upstream = await call_upstream(slept)
    await sleep_in_database(slept)
    return {"upstream": upstream, "slept": slept}


@app.api_route("/slow/fanout", methods=GET)
async def slow_fanout(n: str | None = None, seconds: str | None = None) -> dict[str, Any]:
    calls = 10 if n is None else parse_int(n)
    if calls is None or not 1 <= calls <= MAX_FANOUT:
        raise HTTPException(status_code=422, detail=f"n must be an integer from 1 to {MAX_FANOUT}")
    slept = parse_seconds(seconds)
    # asyncio tasks: the N calls wait on the upstream together, on one event loop.
    results = await asyncio.gather(*(call_upstream(slept) for _ in range(calls)))
    return {"results": results}


# Added last: include_router copies the routes declared above onto the app.
app.include_router(api)
