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
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
from django.conf import settings
from django.db import close_old_connections
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from circus import queries, upstream

PREFIX = "/fastapi"  # where project.asgi / project.wsgi mount this app

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
        raise upstream.UpstreamError(f"upstream call failed: {exc!r}") from None


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
    title="stackbench django_fastapi (FastAPI half)", lifespan=lifespan, redirect_slashes=False
)
# HEAD is GET without the body (RFC 9110); FastAPI routes only the methods they name.
GET = ["GET", "HEAD"]
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


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
    return _detail(502, str(exc))


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own 422 body, minus the echoed input (it may be huge or not JSON-safe).
    errors = [
        {key: value for key, value in error.items() if key in ("type", "loc", "msg")}
        for error in exc.errors()[:20]  # a 1 MiB body can hold 100,000s of errors
    ]
    return _detail(422, json.loads(json.dumps(errors, default=str)))


# Query parameters the contract clamps (never a 422) are read as strings and parsed in
# circus.queries, exactly as the Django half does.
QueryStr = Annotated[str | None, Query()]


@app.api_route("/health", methods=GET)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.api_route("/json", methods=GET)
async def json_endpoint() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.api_route("/plaintext", methods=GET)
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.api_route("/db", methods=GET)
@django_db
def db() -> dict[str, int]:
    return queries.random_world()


@app.api_route("/queries", methods=GET)
@django_db
def queries_endpoint(queries_: Annotated[str | None, Query(alias="queries")] = None) -> Any:
    return queries.random_worlds(queries.query_count(queries_))


@app.api_route("/updates", methods=GET)
@django_db
def updates(queries_: Annotated[str | None, Query(alias="queries")] = None) -> Any:
    return queries.update_worlds(queries.query_count(queries_))


@app.api_route("/fortunes", methods=GET)
@django_db
def fortunes(request: Request) -> Any:
    # Jinja2 (FastAPI's template engine) with autoescaping on for .html templates.
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": queries.fortunes()})


@app.api_route("/api/colleges", methods=GET)
@django_db
def colleges(request: Request, page: QueryStr = None, page_size: QueryStr = None) -> Any:
    # request.url.path includes the mount prefix, so next/previous start with /fastapi.
    return queries.page(
        queries.colleges(),
        queries.PageRequest(page, page_size),
        request.url.path,
        queries.college_json,
    )


@app.api_route("/api/colleges/{college_id}", methods=GET)
@django_db
def college(college_id: str) -> Any:
    return queries.college(college_id)


@app.api_route("/api/troupes", methods=GET)
@django_db
def troupes(request: Request, page: QueryStr = None, page_size: QueryStr = None) -> Any:
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
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refused before reading it
        raise HTTPException(status_code=413, detail="Request body too large.")
    body = b""
    async for chunk in request.stream():  # a chunked body: counted as it arrives
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail="Request body too large.")
    try:
        return TroupeIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


@app.post(
    "/api/troupes",
    status_code=201,
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


@app.api_route("/api/troupes/{troupe_id}", methods=GET)
@django_db
def troupe(troupe_id: str) -> Any:
    return queries.troupe(troupe_id)


# The Django half's rules exactly (a number echoed as given: 1 stays 1), hence strings.
Seconds = Annotated[str | None, Query(description="a number in 0..10, default 1")]


@app.api_route("/slow/db", methods=GET)
@django_db
def slow_db(seconds: Seconds = None) -> dict[str, Any]:
    value = queries.seconds(seconds)
    queries.sleep_in_database(value)
    return {"slept": value}


@app.api_route("/slow/http", methods=GET)
async def slow_http(seconds: Seconds = None) -> dict[str, Any]:
    return {"upstream": await async_delay(queries.seconds(seconds))}


@app.api_route("/slow/both", methods=GET)
@django_db
def slow_both(seconds: Seconds = None) -> dict[str, Any]:
    # Sync end to end (one threadpool thread): the process's httpx.Client, then pg_sleep.
    value = queries.seconds(seconds)
    result = upstream.delay(value)
    queries.sleep_in_database(value)
    return {"upstream": result, "slept": value}


@app.api_route("/slow/fanout", methods=GET)
async def slow_fanout(
    seconds: Seconds = None,
    n: Annotated[str | None, Query(description="an integer in 1..50, default 10")] = None,
) -> JSONResponse:
    count, value = queries.fanout_count(n), queries.seconds(seconds)
    # Tasks on the event loop: FastAPI's way of waiting on many things at once.
    results = await asyncio.gather(*(async_delay(value) for _ in range(count)))
    return JSONResponse(
        {"results": list(results)}, headers={"X-Fanout-Concurrency": "asyncio tasks"}
    )
