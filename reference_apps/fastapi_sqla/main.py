"""FastAPI + SQLAlchemy 2 async ORM on asyncpg: the stackbench reference contract.

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
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Select, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import flag_modified

from db import SessionLocal, engine, get_session
from models import Base, College, Fortune, Performer, Troupe, World
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
    yield
    await http_client.aclose()
    await engine.dispose()


# redirect_slashes=False: /json/ is a 404 like any unknown path, not a redirect whose
# Location Starlette would build from the request's Host header.
app = FastAPI(title="stackbench fastapi_sqla", lifespan=lifespan, redirect_slashes=False)

# autoescape=True: fortune 11 is a <script> tag, and must come out as text.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
)

# The API endpoints get their session from this dependency. scope="function": it closes (its
# ROLLBACK, its connection back to the pool) when the endpoint returns, before the response
# is sent; FastAPI's default scope would hold the pooled connection while the response goes.
# The TechEmpower endpoints below open theirs inline instead, around their queries only, so
# a connection is held for no more than the queries (README: "Sessions and the pool").
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


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


async def fetch_world(session: AsyncSession, world_id: int) -> World:
    # A SELECT per call: session.get() would answer a repeated id from the identity map.
    result = await session.execute(select(World).where(World.id == world_id))
    return result.scalar_one()


async def paginate(
    session: AsyncSession,
    request: Request,
    model: type[Base],
    statement: Select[Any],
    page: str | None,
    page_size: str | None,
) -> dict[str, Any]:
    """One page of ``statement`` (rows of ``model`` ordered by id), DRF-style: count,
    relative next/previous links, results."""
    size = parse_int(page_size)
    size = DEFAULT_PAGE_SIZE if size is None else min(max(size, 1), MAX_PAGE_SIZE)
    number = 1 if not page else parse_int(page)  # page= (empty) is page 1
    count = await session.scalar(select(func.count()).select_from(model)) or 0
    pages = max(1, math.ceil(count / size))
    if number is None or not 1 <= number <= pages:
        raise HTTPException(status_code=404, detail="Invalid page.")
    rows = await session.scalars(statement.offset((number - 1) * size).limit(size))

    def link(to: int) -> str:
        return f"{request.url.path}?page={to}&page_size={size}"

    return {
        "count": count,
        "next": link(number + 1) if number < pages else None,
        "previous": link(number - 1) if number > 1 else None,
        "results": rows.all(),
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


async def sleep_in_database(session: AsyncSession, seconds: float) -> None:
    await session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})


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


@app.api_route("/db", methods=GET)
async def single_query() -> dict[str, int]:
    async with SessionLocal() as session:
        world = await fetch_world(session, random_id())
    return {"id": world.id, "randomNumber": world.randomnumber}


@app.api_route("/queries", methods=GET)
async def multiple_queries(queries: str | None = None) -> list[dict[str, int]]:
    count = query_count(queries)
    # One SELECT per row, awaited in turn: one session is one connection, which runs one
    # statement at a time.
    async with SessionLocal() as session:
        worlds = [await fetch_world(session, random_id()) for _ in range(count)]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@app.api_route("/updates", methods=GET)
async def updates(queries: str | None = None) -> list[dict[str, int]]:
    # Distinct ids (as TechEmpower's own implementations draw them): the identity map would
    # merge a repeated id into one object, and so one UPDATE for two rows asked for.
    ids = random.sample(range(1, WORLD_ROWS + 1), query_count(queries))
    result = []
    async with SessionLocal() as session:
        worlds = [await fetch_world(session, world_id) for world_id in ids]
        for world in worlds:
            world.randomnumber = random.randint(1, WORLD_ROWS)
            # An UPDATE even when the number drawn is the one stored (1 in 10,000):
            # unflagged, the unit of work would see no change and skip that row.
            flag_modified(world, "randomnumber")
            result.append({"id": world.id, "randomNumber": world.randomnumber})
        # The unit of work sends the UPDATEs in primary-key order, so concurrent requests
        # lock rows in the same order and cannot deadlock.
        await session.commit()
    return result


@app.api_route("/fortunes", methods=GET, response_class=HTMLResponse)
async def fortunes(request: Request) -> HTMLResponse:
    async with SessionLocal() as session:
        rows = list(await session.scalars(select(Fortune)))
    # A transient object, never added to the session: it exists for this response only.
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


# --- the circus API ----------------------------------------------------------------------

# joinedload: location and troupe are many-to-one, so one JOINed SELECT fetches them.
COLLEGES = (
    select(College)
    .options(joinedload(College.location), joinedload(College.troupe))
    .order_by(College.id)
)
# selectinload: members are a collection; one extra SELECT ... WHERE troupe_id IN (page ids)
# loads them for the whole page, however many troupes it holds.
TROUPES = select(Troupe).options(selectinload(Troupe.members)).order_by(Troupe.id)


@app.api_route("/api/colleges", methods=GET, response_model=Page[CollegeOut])
async def list_colleges(
    request: Request, session: Session, page: str | None = None, page_size: str | None = None
) -> Any:
    return await paginate(session, request, College, COLLEGES, page, page_size)


@app.api_route("/api/colleges/{college_id}", methods=GET, response_model=CollegeOut)
async def get_college(college_id: str, session: Session) -> Any:
    college = await session.scalar(COLLEGES.where(College.id == parse_id(college_id)))
    if college is None:
        raise HTTPException(status_code=404, detail="Not found.")
    return college


@app.api_route("/api/troupes", methods=GET, response_model=Page[TroupeOut])
async def list_troupes(
    request: Request, session: Session, page: str | None = None, page_size: str | None = None
) -> Any:
    return await paginate(session, request, Troupe, TROUPES, page, page_size)


@app.api_route("/api/troupes/{troupe_id}", methods=GET, response_model=TroupeOut)
async def get_troupe(troupe_id: str, session: Session) -> Any:
    troupe = await session.scalar(TROUPES.where(Troupe.id == parse_id(troupe_id)))
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


@app.post(
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
async def create_troupe(body: Annotated[TroupeIn, Depends(troupe_body)], session: Session) -> Any:
    # Everything happens in the session's one transaction: any error below rolls it all
    # back, so a refused request writes nothing.
    wanted = sorted(set(body.member_ids))
    performers = []
    if wanted:
        found = await session.scalars(
            select(Performer).where(Performer.id.in_(wanted)).order_by(Performer.id)
        )
        performers = list(found)
    unknown = sorted(set(wanted) - {performer.id for performer in performers})
    if unknown:
        raise HTTPException(status_code=422, detail=f"unknown performer ids: {unknown}")
    troupe = Troupe(name=body.name, members=performers)
    session.add(troupe)
    try:
        await session.commit()
    except IntegrityError as exc:
        # The UNIQUE constraint decides, so two concurrent requests for one name cannot
        # both succeed (a SELECT-then-INSERT check could not promise that).
        await session.rollback()
        if getattr(exc.orig, "sqlstate", None) == "23505":
            raise HTTPException(status_code=409, detail="troupe name already taken") from None
        raise HTTPException(status_code=422, detail="a performer no longer exists") from None
    return troupe


# --- slow endpoints: where concurrency models differ ----------------------------------------


@app.api_route("/slow/db", methods=GET)
async def slow_db(session: Session, seconds: str | None = None) -> dict[str, float]:
    slept = parse_seconds(seconds)
    await sleep_in_database(session, slept)
    return {"slept": slept}


@app.api_route("/slow/http", methods=GET)
async def slow_http(seconds: str | None = None) -> dict[str, Any]:
    return {"upstream": await call_upstream(parse_seconds(seconds))}


@app.api_route("/slow/both", methods=GET)
async def slow_both(session: Session, seconds: str | None = None) -> dict[str, Any]:
    slept = parse_seconds(seconds)
    upstream = await call_upstream(slept)
    await sleep_in_database(session, slept)
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
