"""The FastAPI half: the same contract under ``/fastapi``, on the Django ORM.

Endpoints that touch the database are plain ``def``: FastAPI runs them in its threadpool,
where Django's sync ORM is safe (no event loop in those threads). Django's own request
cycle closes or recycles each thread's connection through its request_started/finished
signals; FastAPI does not send them, so ``django_db`` does the same around each call
(returning the connection to the pool). Endpoints that only wait on the upstream service
are ``async def`` on one ``httpx.AsyncClient``, and ``/slow/fanout`` gathers tasks.

Import this module only after ``django.setup()`` (project.asgi / project.wsgi do).
"""

import asyncio
import json
import logging
import os
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import wraps
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

import httpx
from django.conf import settings
from django.db import OperationalError, close_old_connections
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from circus import queries, upstream

try:
    from psycopg_pool import PoolTimeout
except ImportError:  # DJANGO_DB_DRIVER=psycopg2: no pool, so nothing to wait for
    PoolTimeout = None

PREFIX = "/fastapi"  # where project.asgi / project.wsgi mount this app
# The OpenAPI schema and its pages (/fastapi/openapi.json, /fastapi/docs, /fastapi/redoc)
# only with API_DOCS=1: otherwise they are paths the contract does not have, 404.
API_DOCS = os.environ.get("API_DOCS", "").strip() == "1"
logger = logging.getLogger("api")

T = TypeVar("T")


def django_db(endpoint: Callable[..., T]) -> Callable[..., T]:
    """Run a sync endpoint inside Django's per-request connection handling.

    The whole endpoint runs in one threadpool thread, so this closes that thread's
    connection (back to the pool) exactly as Django's request_finished signal would.
    """

    @wraps(endpoint)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        close_old_connections()
        try:
            return endpoint(*args, **kwargs)
        finally:
            close_old_connections()

    return wrapper


# --- the upstream client -----------------------------------------------------------------

# One AsyncClient per event loop (uvicorn: one per worker; a2wsgi: its one loop thread).
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def async_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(
            base_url=upstream.base_url(), timeout=upstream.TIMEOUT, limits=upstream.LIMITS
        )
        _clients[loop] = client
    return client


async def async_delay(seconds: float | int) -> Any:
    try:
        response = await async_client().get("/delay", params={"seconds": seconds})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise upstream.UpstreamError(f"upstream call failed: {exc!r}") from None  # logged


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


# --- the app ------------------------------------------------------------------------------

# redirect_slashes=False: /fastapi/json/ is a 404 like any unknown path, not a redirect whose
# Location Starlette would build from the request's Host header.
app = FastAPI(
    title="stackbench django_fastapi (FastAPI half)",
    lifespan=lifespan,
    redirect_slashes=False,
    openapi_url="/openapi.json" if API_DOCS else None,
)
templates = Jinja2Templates(directory=FilePath(__file__).resolve().parent / "templates")


def _detail(status: int, message: Any) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


@app.exception_handler(queries.NotFound)
async def _not_found(request: Request, exc: queries.NotFound) -> JSONResponse:
    return _detail(404, "Not found.")


@app.exception_handler(queries.InvalidPage)
async def _invalid_page(request: Request, exc: queries.InvalidPage) -> JSONResponse:
    return _detail(404, "Invalid page.")


@app.exception_handler(queries.Invalid)
async def _invalid(request: Request, exc: queries.Invalid) -> JSONResponse:
    return _detail(422, exc.detail)


@app.exception_handler(queries.Conflict)
async def _conflict(request: Request, exc: queries.Conflict) -> JSONResponse:
    return _detail(409, exc.detail)


@app.exception_handler(upstream.UpstreamError)
async def _upstream_error(request: Request, exc: upstream.UpstreamError) -> JSONResponse:
    # What failed is for the log; the client learns only that it did.
    logger.warning("%s", exc)
    return _detail(502, "Upstream unavailable.")


@app.exception_handler(OperationalError)
async def _database_busy(request: Request, exc: OperationalError) -> JSONResponse:
    """Every pooled connection stayed busy for the pool's timeout (psycopg_pool's
    PoolTimeout, which Django wraps): a 503 the client may retry. Any other database
    error stays a 500."""
    if PoolTimeout is None or not isinstance(exc.__cause__, PoolTimeout):
        raise exc
    logger.warning("%s %s: no database connection in time", request.method, request.url.path)
    return JSONResponse(
        {"detail": "Database busy, retry later."}, status_code=503, headers={"Retry-After": "1"}
    )


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own answer, except that a 405's Allow names every method the path serves:
    Starlette names only those of the first route at the path (GET for /api/troupes)."""
    if exc.status_code == 405:
        routes = [route for route in app.routes if route.matches(request.scope)[0] != Match.NONE]
        allow = sorted({method for route in routes for method in getattr(route, "methods", ())})
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allow)})
    return await http_exception_handler(request, exc)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own 422 body, minus the echoed input (it may be huge or not JSON-safe).
    errors = [
        {key: value for key, value in error.items() if key in ("type", "loc", "msg")}
        for error in exc.errors()[:20]  # a 1 MiB body can hold 100,000s of errors
    ]
    return _detail(422, json.loads(json.dumps(errors, default=str)))


# Parameters arrive as text and circus.queries applies the contract's rules to it, as the
# Django half does (hand-written: the contract's integer and number grammar, README "How it
# does things"). Each one's OpenAPI schema says what the text must hold (WithJsonSchema),
# and the description says what anything else gets.
Queries = Annotated[
    str | None,
    Query(alias="queries", description="an integer, clamped to 1..500; anything else is 1"),
    WithJsonSchema({"type": "string", "default": "1"}),
]
PageNumber = Annotated[
    str | None,
    Query(description="1 when empty; not an integer, < 1 or past the last page: 404"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}],
            "default": 1,
        }
    ),
]
PageSize = Annotated[
    str | None,
    Query(description="an integer, clamped to 1..100; anything else is 20"),
    WithJsonSchema({"type": "string", "default": "20"}),
]
ObjectId = Annotated[
    str,
    Path(description="a row's id; anything else: 404"),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": queries.PG_INT_MAX}),
]
Seconds = Annotated[
    str | None,
    Query(description="how long to wait, 0..10 (ASCII digits); anything else: 422"),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": queries.MAX_SLEEP, "default": 1}),
]
Calls = Annotated[
    str | None,
    Query(description="how many calls, 1..50; anything else: 422"),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": queries.MAX_FANOUT, "default": 10}),
]


class Invalid(BaseModel):
    """One reason a request was refused (FastAPI's own, without the input echoed back)."""

    type: str
    loc: list[str | int]
    msg: str


class Error(BaseModel):
    """Every error answer: ``{"detail": ...}``, a sentence or a list of reasons."""

    detail: str | list[Invalid]


class Location(BaseModel):
    id: int
    line_1: str
    line_2: str
    line_3: str
    zipcode: str


class TroupeRef(BaseModel):
    id: int
    name: str


class College(BaseModel):
    id: int
    name: str
    location: Location
    troupe: TroupeRef


class Performer(BaseModel):
    id: int
    stage_name: str
    kind: str
    concentration: str


class Troupe(BaseModel):
    id: int
    name: str
    members: list[Performer]


class CollegePage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[College]


class TroupePage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[Troupe]


class Slept(BaseModel):
    slept: float


class Upstream(BaseModel):
    upstream: dict[str, Any]


class UpstreamAndSlept(BaseModel):
    upstream: dict[str, Any]
    slept: float


class Fanout(BaseModel):
    results: list[dict[str, Any]]


# Every error answer, as the OpenAPI schema describes it (``responses=answers(...)``).
RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer"}}
ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": Error, "description": "The body ended before it was complete."},
    404: {"model": Error, "description": "No such row or page (`Not found.`, `Invalid page.`)."},
    409: {"model": Error, "description": "A troupe of that name exists."},
    413: {"model": Error, "description": "The body is over 64 KiB."},
    422: {"model": Error, "description": "A parameter or the body is not valid."},
    502: {"model": Error, "description": "The upstream service failed, or UPSTREAM_URL is unset."},
    503: {
        "model": Error,
        "description": "No pooled database connection in time (`Retry-After: 1`).",
        "headers": {"Retry-After": RETRY_AFTER},
    },
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERRORS[status] for status in statuses}


def get(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A GET route that answers HEAD too (RFC 9110: GET without the body), which FastAPI does
    not add by itself. HEAD's route stays out of the OpenAPI schema, where it would repeat
    the GET operation (and its operationId); GET's comes first, so a 405 says `Allow: GET`."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        app.get(path, **options)(endpoint)
        app.head(path, include_in_schema=False, **options)(endpoint)
        return endpoint

    return register


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@get("/db", responses=answers(503))
@django_db
def db() -> dict[str, int]:
    return queries.random_world()


@get("/queries", responses=answers(503))
@django_db
def queries_endpoint(queries_: Queries = None) -> Any:
    return queries.random_worlds(queries.query_count(queries_))


@get("/updates", responses=answers(503))
@django_db
def updates(queries_: Queries = None) -> Any:
    return queries.update_worlds(queries.query_count(queries_))


@get("/fortunes", response_class=HTMLResponse, responses=answers(503))
@django_db
def fortunes(request: Request) -> Any:
    # Jinja2 (FastAPI's template engine) with autoescaping on for .html templates.
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": queries.fortunes()})


@get("/api/colleges", response_model=CollegePage, responses=answers(404, 503))
@django_db
def colleges(request: Request, page: PageNumber = None, page_size: PageSize = None) -> Any:
    # request.url.path includes the mount prefix, so next/previous start with /fastapi.
    return queries.page(
        queries.colleges(),
        queries.PageRequest(page, page_size),
        request.url.path,
        queries.college_json,
    )


@get("/api/colleges/{college_id}", response_model=College, responses=answers(404, 503))
@django_db
def college(college_id: ObjectId) -> Any:
    return queries.college(college_id)


@get("/api/troupes", response_model=TroupePage, responses=answers(404, 503))
@django_db
def troupes(request: Request, page: PageNumber = None, page_size: PageSize = None) -> Any:
    return queries.page(
        queries.troupes(),
        queries.PageRequest(page, page_size),
        request.url.path,
        queries.troupe_json,
    )


class TroupeIn(BaseModel):
    # Strict: "5" is not a performer id and true is not an integer.
    model_config = ConfigDict(strict=True)

    name: str = Field(min_length=1, max_length=100)
    member_ids: list[int]


async def troupe_body(request: Request) -> TroupeIn:
    """The body, at most MAX_REQUEST_BODY bytes, validated by pydantic's own JSON parser
    whatever the Content-Type.

    FastAPI's default body parsing answers 400 for bytes that are not UTF-8 or JSON nested
    too deeply; the contract wants 422 for any body that is not a valid troupe. The size is
    checked here, not with FastAPI's ``max_body_size``, because Starlette answers a declared
    Content-Length over that limit with its own text/plain 413.
    """
    limit = settings.MAX_REQUEST_BODY
    # A Content-Length of any length (int() refuses over 4,300 digits): past the limit's
    # digits (leading zeros aside) it is over the limit, whatever its value.
    digits = request.headers.get("content-length", "").lstrip("0")
    if digits.isascii() and digits.isdigit() and (len(digits) > 18 or int(digits) > limit):
        raise HTTPException(status_code=413, detail="Request body too large.")  # unread
    body = b""
    try:
        async for chunk in request.stream():  # a chunked body: counted as it arrives
            body += chunk
            if len(body) > limit:
                raise HTTPException(status_code=413, detail="Request body too large.")
    except ClientDisconnect:
        # The client went away mid-body, or sent chunks the server could not read (granian
        # then passes this answer on; uvicorn has answered 400 itself): one line, no traceback.
        logger.warning("POST %s: the body ended before it was complete", request.url.path)
        raise HTTPException(status_code=400, detail="Incomplete request body.") from None
    try:
        return TroupeIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


@app.post(
    "/api/troupes",
    status_code=201,
    response_model=Troupe,
    responses=answers(400, 409, 413, 422, 503),
    # The body is read by troupe_body, so describe it to the OpenAPI schema by hand.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TroupeIn.model_json_schema()}},
        }
    },
)
@django_db
def create_troupe(troupe: Annotated[TroupeIn, Depends(troupe_body)]) -> Any:
    return queries.create_troupe(troupe.name, troupe.member_ids)


@get("/api/troupes/{troupe_id}", response_model=Troupe, responses=answers(404, 503))
@django_db
def troupe(troupe_id: ObjectId) -> Any:
    return queries.troupe(troupe_id)


def sleep_seconds(raw: str | None) -> float | int:
    """The contract's rule (circus.queries), and -0 is 0: -0.0 + 0 == 0.0."""
    return queries.seconds(raw) + 0


@get("/slow/db", response_model=Slept, responses=answers(422, 503))
@django_db
def slow_db(seconds: Seconds = None) -> Any:
    value = sleep_seconds(seconds)
    queries.sleep_in_database(value)
    return {"slept": value}


@get("/slow/http", response_model=Upstream, responses=answers(422, 502))
async def slow_http(seconds: Seconds = None) -> Any:
    return {"upstream": await async_delay(sleep_seconds(seconds))}


@get("/slow/both", response_model=UpstreamAndSlept, responses=answers(422, 502, 503))
@django_db
def slow_both(seconds: Seconds = None) -> Any:
    # Sync end to end (one threadpool thread): the process's httpx.Client, then pg_sleep.
    value = sleep_seconds(seconds)
    result = upstream.delay(value)
    queries.sleep_in_database(value)
    return {"upstream": result, "slept": value}


@get("/slow/fanout", response_model=Fanout, responses=answers(422, 502))
async def slow_fanout(seconds: Seconds = None, n: Calls = None) -> Any:
    count, value = queries.fanout_count(n), sleep_seconds(seconds)
    # Tasks on the event loop: FastAPI's way of waiting on many things at once.
    results = await asyncio.gather(*(async_delay(value) for _ in range(count)))
    return JSONResponse(
        {"results": list(results)}, headers={"X-Fanout-Concurrency": "asyncio tasks"}
    )
