"""The contract's endpoints as async Django views on the async ORM API.

Django 5.2's async ORM (aget, acount, async for, abulk_update, ...) still runs each query
in a worker thread through sync_to_async; that is what this app measures (see README).
"""

import json
import logging
import random
from functools import wraps
from operator import attrgetter

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout

from . import params, upstream
from .models import College, Fortune, Performer, Troupe, TroupeMember, World

WORLD_ROWS = 10_000
UNIQUE_VIOLATION = "23505"
logger = logging.getLogger(__name__)


def error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def allow(*methods: str):
    """The methods an endpoint answers (HEAD with GET, as HTTP wants); others get a JSON 405.

    Django's require_http_methods answers an empty text/html 405 instead. A request that got
    no pooled connection within DB_POOL_TIMEOUT seconds (psycopg_pool's PoolTimeout, which
    Django raises as its OperationalError) is told 503 with Retry-After, not a 500.
    """
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorator(view):
        @wraps(view)
        async def wrapper(request, *args, **kwargs):
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            try:
                return await view(request, *args, **kwargs)
            except OperationalError as exc:
                if not isinstance(exc.__cause__, PoolTimeout):
                    raise
                response = error(503, "Database busy, retry later.")
                response["Retry-After"] = "1"
                return response

        wrapper.allowed_methods = allowed  # type: ignore[attr-defined]  # for csrf_failure
        return wrapper

    return decorator


def method_not_allowed(request, allowed: list[str]) -> JsonResponse:
    response = error(405, f"Method {request.method} not allowed.")
    response["Allow"] = ", ".join(allowed)
    return response


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: CSRF runs before the view, so `DELETE /json` lands here; a method
    the view does not serve is a 405 whatever the token says, the rest a JSON 403."""
    match = request.resolver_match
    allowed = getattr(match.func, "allowed_methods", None) if match else None
    if allowed is not None and request.method not in allowed:
        return method_not_allowed(request, allowed)
    return error(403, "CSRF verification failed.")


# --- TechEmpower tests ------------------------------------------------------------------


@allow("GET")
async def health(request):
    return JsonResponse({"status": "ok"})


@allow("GET")
async def json_view(request):
    return JsonResponse({"message": "Hello, World!"})


@allow("GET")
async def plaintext(request):
    return HttpResponse(b"Hello, World!", content_type="text/plain; charset=utf-8")


def world_json(world: World) -> dict:
    return {"id": world.id, "randomNumber": world.randomnumber}


def random_ids(n: int) -> list[int]:
    # Distinct ids, so that /updates never updates one row twice in a request.
    return random.sample(range(1, WORLD_ROWS + 1), n)


@allow("GET")
async def db(request):
    world = await World.objects.aget(id=random.randint(1, WORLD_ROWS))
    return JsonResponse(world_json(world))


@allow("GET")
async def queries(request):
    n = params.query_count(request.GET.get("queries"))
    # One SELECT per row, awaited in turn (no IN, no batching).
    worlds = [await World.objects.aget(id=i) for i in random_ids(n)]
    return JsonResponse([world_json(w) for w in worlds], safe=False)


@allow("GET")
async def updates(request):
    n = params.query_count(request.GET.get("queries"))
    worlds = [await World.objects.aget(id=i) for i in random_ids(n)]
    for world in worlds:
        world.randomnumber = random.randint(1, WORLD_ROWS)
    # One UPDATE ... CASE statement for all rows (atomic by itself), sorted by id so
    # concurrent requests lock rows in the same order and cannot deadlock.
    await World.objects.abulk_update(sorted(worlds, key=attrgetter("id")), ["randomnumber"])
    return JsonResponse([world_json(w) for w in worlds], safe=False)


@allow("GET")
async def fortunes(request):
    rows = [fortune async for fortune in Fortune.objects.all()]
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=attrgetter("message"))
    # Rendering is CPU only, fine on the event loop; no request: no context processors.
    return HttpResponse(render_to_string("circus/fortunes.html", {"fortunes": rows}))


# --- The circus API ---------------------------------------------------------------------


def college_queryset():
    # One JOIN fetches each college with its location and troupe: no query per row.
    return College.objects.select_related("location", "troupe").order_by("id")


def troupe_queryset():
    # One extra query fetches the members of every troupe on the page, ordered by id.
    members = Prefetch("members", queryset=Performer.objects.order_by("id"))
    return Troupe.objects.prefetch_related(members).order_by("id")


def college_json(college: College) -> dict:
    loc, troupe = college.location, college.troupe
    return {
        "id": college.id,
        "name": college.name,
        "location": {
            "id": loc.id,
            "line_1": loc.line_1,
            "line_2": loc.line_2,
            "line_3": loc.line_3,
            "zipcode": loc.zipcode,
        },
        "troupe": {"id": troupe.id, "name": troupe.name},
    }


def performer_json(p: Performer) -> dict:
    return {
        "id": p.id,
        "stage_name": p.stage_name,
        "kind": p.kind,
        "concentration": p.concentration,
    }


def troupe_json(troupe: Troupe, members=None) -> dict:
    members = troupe.members.all() if members is None else members  # the prefetched list
    return {"id": troupe.id, "name": troupe.name, "members": [performer_json(p) for p in members]}


async def paged(request, queryset, to_json) -> JsonResponse:
    """One page as {count, next, previous, results}: a COUNT, then the page's rows.

    Django 5.2's Paginator is sync only, so the same arithmetic is done here with acount().
    """
    number, size = params.page_params(request.GET.get("page"), request.GET.get("page_size"))
    if number is None:
        return error(404, "Invalid page.")
    count = await queryset.acount()
    last = max(1, -(-count // size))  # an empty table still has page 1
    if number > last:
        return error(404, "Invalid page.")
    start = (number - 1) * size
    # `async for` fetches the slice and runs its prefetch in one sync_to_async call.
    results = [to_json(obj) async for obj in queryset[start : start + size]]

    def link(n: int) -> str:
        return f"{request.path}?page={n}&page_size={size}"

    return JsonResponse(
        {
            "count": count,
            "next": link(number + 1) if number < last else None,
            "previous": link(number - 1) if number > 1 else None,
            "results": results,
        }
    )


@allow("GET")
async def colleges(request):
    return await paged(request, college_queryset(), college_json)


@allow("GET")
async def college(request, pk):
    pk = params.object_id(pk)
    if pk is None:
        return error(404, "Not found.")
    try:
        obj = await college_queryset().aget(pk=pk)
    except College.DoesNotExist:
        return error(404, "Not found.")
    return JsonResponse(college_json(obj))


# A token-less JSON API that reads no session or user: a forged cross-site POST can do
# nothing its sender could not do directly, so CSRF is Django's to skip here (the admin keeps it).
@csrf_exempt
@allow("GET", "POST")
async def troupes(request):
    if request.method == "POST":
        return await create_troupe(request)
    return await paged(request, troupe_queryset(), troupe_json)


async def create_troupe(request) -> JsonResponse:
    try:
        body = request.body  # read by the ASGI handler already; refused past the limit
    except RequestDataTooBig:
        return error(413, "Request body too large.")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, 5000-digit numbers, [[[[…
        return error(422, "The body must be UTF-8 JSON.")
    try:
        name, ids = params.new_troupe(payload)
    except ValueError as exc:
        return error(422, str(exc))
    if any(not 1 <= i <= params.MAX_ID for i in ids):
        return error(422, "Unknown performer ids.")
    members = [p async for p in Performer.objects.filter(id__in=ids).order_by("id")]
    if len(members) != len(ids):
        return error(422, "Unknown performer ids.")
    # The unique constraint decides whether the name is taken: no SELECT before the INSERT.
    try:
        troupe = await insert_troupe(name, ids)
    except IntegrityError as exc:  # the name is taken, or a performer was deleted meanwhile
        if sqlstate(exc) == UNIQUE_VIOLATION:
            return error(409, "A troupe with this name already exists.")
        return error(422, "Unknown performer ids.")
    response = JsonResponse(troupe_json(troupe, members), status=201)
    response["Location"] = f"/api/troupes/{troupe.id}"
    return response


# transaction.atomic is sync only in Django 5.2: the whole transaction runs in one
# sync_to_async call, on one thread and one connection, so both inserts commit together.
@sync_to_async
def insert_troupe(name: str, ids: list[int]) -> Troupe:
    with transaction.atomic():
        troupe = Troupe.objects.create(name=name)
        TroupeMember.objects.bulk_create(TroupeMember(troupe=troupe, performer_id=i) for i in ids)
    return troupe


def sqlstate(exc: IntegrityError) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)  # psycopg 3's error code


@allow("GET")
async def troupe(request, pk):
    pk = params.object_id(pk)
    if pk is None:
        return error(404, "Not found.")
    try:
        obj = await troupe_queryset().aget(pk=pk)
    except Troupe.DoesNotExist:
        return error(404, "Not found.")
    return JsonResponse(troupe_json(obj))


# --- Slow endpoints: what each concurrency model does while it waits ----------------------


# Django has no async cursor: the raw pg_sleep runs in a worker thread, like the ORM's
# queries, and the event loop serves other requests meanwhile.
@sync_to_async
def pg_sleep(seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


def upstream_error(exc: Exception) -> JsonResponse:
    if not settings.UPSTREAM_URL:
        return error(503, "UPSTREAM_URL is not set.")
    logger.warning("upstream call failed: %r", exc)  # the cause, in the log only
    return error(502, "Upstream unavailable.")


@allow("GET")
async def slow_db(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    await pg_sleep(seconds)
    return JsonResponse({"slept": seconds})


@allow("GET")
async def slow_http(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        return JsonResponse({"upstream": await upstream.delay(seconds)})
    except (httpx.HTTPError, ValueError) as exc:
        return upstream_error(exc)


@allow("GET")
async def slow_both(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        answer = await upstream.delay(seconds)
    except (httpx.HTTPError, ValueError) as exc:
        return upstream_error(exc)
    await pg_sleep(seconds)
    return JsonResponse({"upstream": answer, "slept": seconds})


@allow("GET")
async def slow_fanout(request):
    n = params.fanout_count(request.GET.get("n"))
    seconds = params.seconds(request.GET.get("seconds"))
    if n is None:
        return error(422, "n must be an integer in 1..50.")
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        results = await upstream.fanout(n, seconds)
    except (httpx.HTTPError, ValueError) as exc:
        return upstream_error(exc)
    response = JsonResponse({"results": results})
    response["X-Fanout-Concurrency"] = "asyncio"  # tasks on the event loop (asyncio.gather)
    return response


# --- JSON errors for the whole site (DEBUG is off) ---------------------------------------


def bad_request(request, exception=None):
    return error(400, "Bad request.")


def not_found(request, exception=None):
    return error(404, "Not found.")


def server_error(request):
    return error(500, "Server error.")
