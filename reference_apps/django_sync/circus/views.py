"""The contract's endpoints as plain sync Django views."""

import json
import logging
import random
from functools import wraps
from operator import attrgetter

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import InvalidPage, Paginator
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt

from . import params, upstream
from .models import College, Fortune, Performer, Troupe, TroupeMember, World

try:
    from psycopg_pool import PoolTimeout

    POOL_TIMEOUT: tuple[type[Exception], ...] = (PoolTimeout,)
except ImportError:  # DJANGO_DB_DRIVER=psycopg2 (project/driver.py): no pool to wait on
    POOL_TIMEOUT = ()

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
        def wrapper(request, *args, **kwargs):
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            try:
                return view(request, *args, **kwargs)
            except OperationalError as exc:
                if not isinstance(exc.__cause__, POOL_TIMEOUT):
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
def health(request):
    return JsonResponse({"status": "ok"})


@allow("GET")
def json_view(request):
    return JsonResponse({"message": "Hello, World!"})


@allow("GET")
def plaintext(request):
    return HttpResponse(b"Hello, World!", content_type="text/plain; charset=utf-8")


def world_json(world: World) -> dict:
    return {"id": world.id, "randomNumber": world.randomnumber}


def random_ids(n: int) -> list[int]:
    # Distinct ids, so that /updates never updates one row twice in a request.
    return random.sample(range(1, WORLD_ROWS + 1), n)


@allow("GET")
def db(request):
    return JsonResponse(world_json(World.objects.get(id=random.randint(1, WORLD_ROWS))))


@allow("GET")
def queries(request):
    n = params.query_count(request.GET.get("queries"))
    # One SELECT per row, as the test requires (no IN, no batching).
    worlds = [World.objects.get(id=i) for i in random_ids(n)]
    return JsonResponse([world_json(w) for w in worlds], safe=False)


@allow("GET")
def updates(request):
    n = params.query_count(request.GET.get("queries"))
    worlds = [World.objects.get(id=i) for i in random_ids(n)]
    for world in worlds:
        world.randomnumber = random.randint(1, WORLD_ROWS)
    # One UPDATE ... CASE statement for all rows (atomic by itself), sorted by id so
    # concurrent requests lock rows in the same order and cannot deadlock.
    World.objects.bulk_update(sorted(worlds, key=attrgetter("id")), ["randomnumber"])
    return JsonResponse([world_json(w) for w in worlds], safe=False)


@allow("GET")
def fortunes(request):
    rows = list(Fortune.objects.all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=attrgetter("message"))
    # Rendered without the request: no context processors, only the template's autoescape.
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


def paged(request, queryset, to_json) -> JsonResponse:
    """One page as {count, next, previous, results}: a COUNT, then the page's rows."""
    number, size = params.page_params(request.GET.get("page"), request.GET.get("page_size"))
    paginator = Paginator(queryset, size)
    try:
        page = paginator.page(number or 0)  # 0 is refused like any invalid page
    except InvalidPage:
        return error(404, "Invalid page.")

    def link(n: int) -> str:
        return f"{request.path}?page={n}&page_size={size}"

    return JsonResponse(
        {
            "count": paginator.count,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "results": [to_json(obj) for obj in page.object_list],
        }
    )


@allow("GET")
def colleges(request):
    return paged(request, college_queryset(), college_json)


@allow("GET")
def college(request, pk):
    pk = params.object_id(pk)
    if pk is None:
        return error(404, "Not found.")
    try:
        obj = college_queryset().get(pk=pk)
    except College.DoesNotExist:
        return error(404, "Not found.")
    return JsonResponse(college_json(obj))


# A token-less JSON API that reads no session or user: a forged cross-site POST can do
# nothing its sender could not do directly, so CSRF is Django's to skip here (the admin keeps it).
@csrf_exempt
@allow("GET", "POST")
def troupes(request):
    if request.method == "POST":
        return create_troupe(request)
    return paged(request, troupe_queryset(), troupe_json)


def create_troupe(request) -> JsonResponse:
    try:
        body = request.body  # refused past DATA_UPLOAD_MAX_MEMORY_SIZE, before parsing
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
    members = list(Performer.objects.filter(id__in=ids).order_by("id"))
    if len(members) != len(ids):
        return error(422, "Unknown performer ids.")
    # The unique constraint decides whether the name is taken: no SELECT before the INSERT.
    try:
        # Both inserts commit together or not at all.
        with transaction.atomic():
            troupe = Troupe.objects.create(name=name)
            TroupeMember.objects.bulk_create(
                TroupeMember(troupe=troupe, performer_id=i) for i in ids
            )
    except IntegrityError as exc:  # the name is taken, or a performer was deleted meanwhile
        if sqlstate(exc) == UNIQUE_VIOLATION:
            return error(409, "A troupe with this name already exists.")
        return error(422, "Unknown performer ids.")
    response = JsonResponse(troupe_json(troupe, members), status=201)
    response["Location"] = f"/api/troupes/{troupe.id}"
    return response


def sqlstate(exc: IntegrityError) -> str | None:
    cause = exc.__cause__  # the driver's error: psycopg 3 .sqlstate, psycopg2 .pgcode
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


@allow("GET")
def troupe(request, pk):
    pk = params.object_id(pk)
    if pk is None:
        return error(404, "Not found.")
    try:
        obj = troupe_queryset().get(pk=pk)
    except Troupe.DoesNotExist:
        return error(404, "Not found.")
    return JsonResponse(troupe_json(obj))


# --- Slow endpoints: what each concurrency model does while it waits ----------------------


def pg_sleep(seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


def upstream_error(exc: Exception) -> JsonResponse:
    if not settings.UPSTREAM_URL:
        return error(503, "UPSTREAM_URL is not set.")
    logger.warning("upstream call failed: %r", exc)  # the cause, in the log only
    return error(502, "Upstream unavailable.")


@allow("GET")
def slow_db(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    pg_sleep(seconds)
    return JsonResponse({"slept": seconds})


@allow("GET")
def slow_http(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        return JsonResponse({"upstream": upstream.delay(seconds)})
    except (upstream.UpstreamError, ValueError) as exc:
        return upstream_error(exc)


@allow("GET")
def slow_both(request):
    seconds = params.seconds(request.GET.get("seconds"))
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        answer = upstream.delay(seconds)
    except (upstream.UpstreamError, ValueError) as exc:
        return upstream_error(exc)
    pg_sleep(seconds)
    return JsonResponse({"upstream": answer, "slept": seconds})


@allow("GET")
def slow_fanout(request):
    n = params.fanout_count(request.GET.get("n"))
    seconds = params.seconds(request.GET.get("seconds"))
    if n is None:
        return error(422, "n must be an integer in 1..50.")
    if seconds is None:
        return error(422, "seconds must be a number in 0..10.")
    try:
        results, mode = upstream.fanout(n, seconds)
    except (upstream.UpstreamError, ValueError) as exc:
        return upstream_error(exc)
    response = JsonResponse({"results": results})
    response["X-Fanout-Concurrency"] = mode  # gevent, eventlet or threads
    return response


# --- JSON errors for the whole site (DEBUG is off) ---------------------------------------


def bad_request(request, exception=None):
    return error(400, "Bad request.")


def not_found(request, exception=None):
    return error(404, "Not found.")


def server_error(request):
    return error(500, "Server error.")
