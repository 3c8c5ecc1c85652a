"""The Django half: the whole contract at ``/`` with plain sync views.

Under WSGI each view runs in its worker's thread (or greenlet); under ASGI Django runs
sync views in its single thread-sensitive executor, one at a time per process (see
README.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from circus import queries, upstream
from project.concurrency import green_threads

try:
    from psycopg_pool import PoolTimeout

    POOL_TIMEOUT: tuple[type[Exception], ...] = (PoolTimeout,)
except ImportError:  # DJANGO_DB_DRIVER=psycopg2 (project/driver.py): no pool to wait on
    POOL_TIMEOUT = ()

View = Callable[..., HttpResponse]
logger = logging.getLogger(__name__)


def detail(status: int, message: Any) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def allow(*methods: str) -> Callable[[View], View]:
    """The methods an endpoint answers (HEAD with GET, as HTTP wants); others get a JSON 405.

    Django's require_http_methods answers an empty text/html 405 instead. A request that got
    no pooled connection within DB_POOL_TIMEOUT seconds (psycopg_pool's PoolTimeout, which
    Django raises as its OperationalError) is told 503 with Retry-After, not a 500.
    """
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            try:
                return view(request, *args, **kwargs)
            except OperationalError as exc:
                if not isinstance(exc.__cause__, POOL_TIMEOUT):
                    raise
                response = detail(503, "Database busy, retry later.")
                response["Retry-After"] = "1"
                return response

        wrapper.allowed_methods = allowed  # type: ignore[attr-defined]  # for csrf_failure
        return wrapper

    return decorator


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = detail(405, f"Method {request.method} not allowed.")
    response["Allow"] = ", ".join(allowed)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: CSRF runs before the view, so `DELETE /json` lands here; a method
    the view does not serve is a 405 whatever the token says, the rest a JSON 403."""
    match = request.resolver_match
    allowed = getattr(match.func, "allowed_methods", None) if match else None
    if allowed is not None and request.method not in allowed:
        return method_not_allowed(request, allowed)
    return detail(403, "CSRF verification failed.")


def contract_errors(view: View) -> View:
    """Turn the shared layer's outcomes into the contract's error responses."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except queries.NotFound:
            return detail(404, "Not found.")
        except queries.InvalidPage:
            return detail(404, "Invalid page.")
        except queries.Invalid as exc:
            return detail(422, exc.detail)
        except queries.Conflict as exc:
            return detail(409, exc.detail)
        except upstream.UpstreamError as exc:
            logger.warning("%s", exc)  # the cause, in the log only
            return detail(502, "Upstream unavailable.")

    return wrapper


@allow("GET")
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@allow("GET")
def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "Hello, World!"})


@allow("GET")
def plaintext(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, World!", content_type="text/plain; charset=utf-8")


@allow("GET")
def db(request: HttpRequest) -> JsonResponse:
    return JsonResponse(queries.random_world())


@allow("GET")
def queries_view(request: HttpRequest) -> JsonResponse:
    count = queries.query_count(request.GET.get("queries"))
    return JsonResponse(queries.random_worlds(count), safe=False)


@allow("GET")
def updates(request: HttpRequest) -> JsonResponse:
    count = queries.query_count(request.GET.get("queries"))
    return JsonResponse(queries.update_worlds(count), safe=False)


@allow("GET")
def fortunes(request: HttpRequest) -> HttpResponse:
    # Django templates autoescape: the <script> fortune arrives as text.
    return render(request, "circus/fortunes.html", {"fortunes": queries.fortunes()})


def _page(request: HttpRequest) -> queries.PageRequest:
    return queries.PageRequest(request.GET.get("page"), request.GET.get("page_size"))


@allow("GET")
@contract_errors
def colleges(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        queries.page(queries.colleges(), _page(request), request.path, queries.college_json)
    )


@allow("GET")
@contract_errors
def college(request: HttpRequest, pk: str) -> JsonResponse:
    return JsonResponse(queries.college(pk))


# A token-less JSON API that reads no session or user: a forged cross-site POST can do
# nothing its sender could not do directly, so CSRF is Django's to skip here (the admin keeps it).
@csrf_exempt
@allow("GET", "POST")
@contract_errors
def troupes(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return create_troupe(request)
    return JsonResponse(
        queries.page(queries.troupes(), _page(request), request.path, queries.troupe_json)
    )


def create_troupe(request: HttpRequest) -> JsonResponse:
    try:
        raw = request.body  # capped by DATA_UPLOAD_MAX_MEMORY_SIZE
    except RequestDataTooBig:
        return detail(413, "Request body too large.")
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also take UTF-16 and a BOM.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bytes that are not UTF-8, or invalid JSON
        return detail(422, "The body is not valid JSON.")
    name, member_ids = queries.validate_troupe(body)
    return JsonResponse(queries.create_troupe(name, member_ids), status=201)


@allow("GET")
@contract_errors
def troupe(request: HttpRequest, pk: str) -> JsonResponse:
    return JsonResponse(queries.troupe(pk))


@allow("GET")
@contract_errors
def slow_db(request: HttpRequest) -> JsonResponse:
    seconds = queries.seconds(request.GET.get("seconds"))
    queries.sleep_in_database(seconds)
    return JsonResponse({"slept": seconds})


@allow("GET")
@contract_errors
def slow_http(request: HttpRequest) -> JsonResponse:
    seconds = queries.seconds(request.GET.get("seconds"))
    return JsonResponse({"upstream": upstream.delay(seconds)})


@allow("GET")
@contract_errors
def slow_both(request: HttpRequest) -> JsonResponse:
    seconds = queries.seconds(request.GET.get("seconds"))
    result = upstream.delay(seconds)
    queries.sleep_in_database(seconds)
    return JsonResponse({"upstream": result, "slept": seconds})


@allow("GET")
@contract_errors
def slow_fanout(request: HttpRequest) -> JsonResponse:
    n = queries.fanout_count(request.GET.get("n"))
    seconds = queries.seconds(request.GET.get("seconds"))
    # Threads: the sync stack's way. Under gevent/eventlet workers the threading module is
    # monkey-patched, so these same threads are greenlets.
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="fanout") as pool:
        results = list(pool.map(upstream.delay, [seconds] * n))
    response = JsonResponse({"results": results})
    green = green_threads()
    response["X-Fanout-Concurrency"] = f"greenlets ({green})" if green else "threads"
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return detail(404, "Not found.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return detail(400, "Bad request.")


def server_error(request: HttpRequest) -> JsonResponse:
    return detail(500, "Server error.")
