"""The contract's data access on the Django ORM, shared by both halves (sync code).

The Django views (``circus.views``) and the FastAPI endpoints (``api.main``) parse HTTP
their own way and call these; nothing here knows about requests or responses.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import IntegrityError, connection, transaction
from django.db.models import Prefetch, QuerySet

from circus.models import College, Fortune, Performer, Troupe, World

WORLD_ROWS = 10_000
MAX_QUERIES = 500
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SLEEP = 10.0
MAX_FANOUT = 50
PG_INT_MAX = 2**31 - 1  # ids are PostgreSQL integers: anything larger cannot exist
EXTRA_FORTUNE = "Additional fortune added at request time."


class NotFound(Exception):
    """The contract's 404 ``{"detail": "Not found."}``."""


class InvalidPage(Exception):
    """The contract's 404 ``{"detail": "Invalid page."}``."""


class Invalid(Exception):
    """422: the request is well-formed HTTP but its values are not acceptable."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class Conflict(Exception):
    """409: the troupe's name is taken."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- parameters -------------------------------------------------------------------------


_INTEGER = re.compile(r"-?[0-9]+")
# A decimal number in ASCII: 2, 0.5, .5, 5., 5e-1 (float() would also take " 1", "1_0", "٣").
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _int_or_none(raw: str | None) -> int | None:
    """ASCII digits with an optional minus sign, else None (so not " 7", "1.5" or "٣")."""
    if raw is None or not _INTEGER.fullmatch(raw):
        return None
    digits = raw.lstrip("-").lstrip("0") or "0"  # 007 is 7
    # Past 18 digits it is out of every range anyway: clamp it, without converting 5,000.
    value = 10**18 if len(digits) > 18 else int(digits)
    return -value if raw.startswith("-") else value


def query_count(raw: str | None) -> int:
    """``queries``: missing, not an integer, or < 1 -> 1; > 500 -> 500 (never an error)."""
    value = _int_or_none(raw)
    return 1 if value is None or value < 1 else min(value, MAX_QUERIES)


def page_size(raw: str | None) -> int:
    """``page_size``: default 20, non-integer -> 20, clamped to 1..100."""
    value = _int_or_none(raw)
    return DEFAULT_PAGE_SIZE if value is None else max(1, min(value, MAX_PAGE_SIZE))


def object_id(raw: str) -> int:
    """A path id; anything that cannot be a row's id is simply not found."""
    value = _int_or_none(raw)
    if value is None or not 1 <= value <= PG_INT_MAX:
        raise NotFound
    return value


def seconds(raw: str | None) -> float | int:
    """``seconds`` for /slow/*: default 1, a number in 0..10 (echoed as given), else 422."""
    if raw is None:
        return 1
    value: float | int = math.nan
    if _INTEGER.fullmatch(raw):
        value = _int_or_none(raw) or 0
    elif _NUMBER.fullmatch(raw):
        value = float(raw) + 0.0  # -0.0 + 0.0 is 0.0: "-0.0" is zero, never echoed as -0.0
    if not math.isfinite(value) or not 0 <= value <= MAX_SLEEP:
        raise Invalid(f"seconds must be a number in 0..{MAX_SLEEP:g}")
    return value


def fanout_count(raw: str | None) -> int:
    """``n`` for /slow/fanout: default 10, an integer in 1..50, else 422."""
    if raw is None:
        return 10
    value = _int_or_none(raw)
    if value is None or not 1 <= value <= MAX_FANOUT:
        raise Invalid(f"n must be an integer in 1..{MAX_FANOUT}")
    return value


# --- TechEmpower tests --------------------------------------------------------------------


def _random_id() -> int:
    return random.randint(1, WORLD_ROWS)


def world_json(world: World) -> dict[str, int]:
    return {"id": world.id, "randomNumber": world.randomnumber}


def random_world() -> dict[str, int]:
    return world_json(World.objects.get(id=_random_id()))


def random_worlds(count: int) -> list[dict[str, int]]:
    # One SELECT per row, as TechEmpower's rules ask (no IN, no batching).
    return [world_json(World.objects.get(id=_random_id())) for _ in range(count)]


def update_worlds(count: int) -> list[dict[str, int]]:
    # Distinct ids, so every returned row is exactly what is persisted.
    worlds = [World.objects.get(id=i) for i in random.sample(range(1, WORLD_ROWS + 1), count)]
    for world in worlds:
        world.randomnumber = _random_id()
    # One UPDATE ... CASE statement for all rows, committed before the response.
    with transaction.atomic():
        World.objects.bulk_update(sorted(worlds, key=lambda w: w.id), ["randomnumber"])
    return [world_json(world) for world in worlds]


def fortunes() -> list[Fortune]:
    rows = list(Fortune.objects.all())
    rows.append(Fortune(id=0, message=EXTRA_FORTUNE))
    rows.sort(key=lambda fortune: fortune.message)
    return rows


# --- the circus API -----------------------------------------------------------------------


def college_json(college: College) -> dict[str, Any]:
    location, troupe = college.location, college.troupe
    return {
        "id": college.id,
        "name": college.name,
        "location": {
            "id": location.id,
            "line_1": location.line_1,
            "line_2": location.line_2,
            "line_3": location.line_3,
            "zipcode": location.zipcode,
        },
        "troupe": {"id": troupe.id, "name": troupe.name},
    }


def troupe_json(troupe: Troupe) -> dict[str, Any]:
    return {
        "id": troupe.id,
        "name": troupe.name,
        "members": [
            {
                "id": member.id,
                "stage_name": member.stage_name,
                "kind": member.kind,
                "concentration": member.concentration,
            }
            for member in troupe.members.all()  # prefetched, ordered by id
        ],
    }


def colleges() -> QuerySet[College]:
    # One JOIN brings each college's location and troupe: no query per row.
    return College.objects.select_related("location", "troupe").order_by("id")


def troupes() -> QuerySet[Troupe]:
    # One more query fetches the members of every troupe on the page, in id order.
    members = Prefetch("members", queryset=Performer.objects.order_by("id"))
    return Troupe.objects.prefetch_related(members).order_by("id")


def college(raw_id: str) -> dict[str, Any]:
    try:
        return college_json(colleges().get(id=object_id(raw_id)))
    except College.DoesNotExist:
        raise NotFound from None


def troupe(raw_id: str) -> dict[str, Any]:
    try:
        return troupe_json(troupes().get(id=object_id(raw_id)))
    except Troupe.DoesNotExist:
        raise NotFound from None


@dataclass(frozen=True)
class PageRequest:
    page: str | None
    page_size: str | None


def page(queryset: QuerySet[Any], request: PageRequest, path: str, to_json: Any) -> dict[str, Any]:
    """A list page: COUNT(*) plus the page's own query (and its prefetches).

    ``path`` is the list's path as the client sees it (with any mount prefix), so that
    ``next``/``previous`` are relative URLs that work as they are.
    """
    size = page_size(request.page_size)
    paginator = Paginator(queryset, size)
    # Missing or empty is the first page (as in Django REST Framework).
    number = 1 if not request.page else _int_or_none(request.page)
    if number is None:
        raise InvalidPage
    try:
        current = paginator.page(number)
    except (EmptyPage, PageNotAnInteger):
        raise InvalidPage from None

    def link(number: int) -> str:
        return f"{path}?page={number}&page_size={size}"

    return {
        "count": paginator.count,
        "next": link(current.next_page_number()) if current.has_next() else None,
        "previous": link(current.previous_page_number()) if current.has_previous() else None,
        "results": [to_json(item) for item in current.object_list],
    }


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("name must be a string")
    if not 1 <= len(value) <= 100:
        raise Invalid("name must be 1 to 100 characters long")
    if "\x00" in value:
        raise Invalid("name must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("name must be valid Unicode text") from None
    return value


def _check_member_ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise Invalid("member_ids must be a list of integers")
    return sorted(set(value))


def validate_troupe(body: Any) -> tuple[str, list[int]]:
    """The POST body's values (for the Django half, which has no schema library)."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    if "name" not in body:
        raise Invalid("name is required")
    if "member_ids" not in body:
        raise Invalid("member_ids is required")
    return _check_name(body["name"]), _check_member_ids(body["member_ids"])


def create_troupe(name: str, member_ids: list[int]) -> dict[str, Any]:
    """Insert a troupe and its members in one transaction: all of it or nothing."""
    name = _check_name(name)
    member_ids = sorted(set(member_ids))
    in_range = [i for i in member_ids if 1 <= i <= PG_INT_MAX]
    with transaction.atomic():
        found = set(Performer.objects.filter(id__in=in_range).values_list("id", flat=True))
        unknown = [i for i in member_ids if i not in found]
        if unknown:
            raise Invalid(f"unknown performer ids: {unknown[:20]}")
        try:
            # A savepoint, so a unique violation rolls back just this INSERT ...
            with transaction.atomic():
                created = Troupe.objects.create(name=name)
        except IntegrityError:
            # ... and the outer block then rolls back the rest (nothing was written).
            raise Conflict(f"a troupe named {name!r} already exists") from None
        try:
            with transaction.atomic():
                created.members.add(*member_ids)
        except IntegrityError:  # a performer deleted since the check above
            raise Invalid("unknown performer ids") from None
    return troupe_json(troupes().get(id=created.id))


def sleep_in_database(value: float | int) -> None:
    """``pg_sleep`` on this request's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [value])
