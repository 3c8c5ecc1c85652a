"""Request parsing per the contract: clamp what it says to clamp, refuse the rest.

Pure functions, no Django: the views turn a None or a ValueError into a 4xx.
"""

import math
import re

MAX_QUERIES = 500
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SECONDS = 10.0
DEFAULT_FANOUT, MAX_FANOUT = 10, 50
MAX_ID = 2**31 - 1  # the tables' ids are PostgreSQL integers

_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: int() would also take "1_0", " ٣"
# A decimal number in ASCII: 2, 0.5, .5, 5., 5e-1 (float() would also take " 1", "1_0", "٣").
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_int(text: str | None) -> int | None:
    """An integer, or None when ``text`` is not one. Huge values saturate at ±10**10."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    digits = text.lstrip("-").lstrip("0") or "0"  # 007 is 7
    if len(digits) > 10:  # never feed a 100k-digit string to int()
        return -(10**10) if text.startswith("-") else 10**10
    return -int(digits) if text.startswith("-") else int(digits)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def query_count(text: str | None) -> int:
    """/queries and /updates: missing, not an integer or < 1 -> 1; > 500 -> 500."""
    n = parse_int(text)
    return 1 if n is None else clamp(n, 1, MAX_QUERIES)


def page_params(page_text: str | None, size_text: str | None) -> tuple[int | None, int]:
    """(page or None when invalid, page size clamped to 1..100, 20 when not an integer)."""
    size = parse_int(size_text)
    size = DEFAULT_PAGE_SIZE if size is None else clamp(size, 1, MAX_PAGE_SIZE)
    page = 1 if not page_text else parse_int(page_text)  # `page=` is page 1, as in DRF
    return (page if page is not None and page >= 1 else None), size


def object_id(text: str) -> int | None:
    """A path id that can exist in the table, else None (-> 404)."""
    value = parse_int(text)
    return value if value is not None and 1 <= value <= MAX_ID else None


def seconds(text: str | None) -> float | None:
    """/slow/*: a number in 0..10, default 1; None when invalid (-> 422).

    An integer stays an int, so the answer echoes the number as given (`2`, `0.2`).
    """
    if text is None:
        return 1
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text) + 0.0  # -0.0 + 0.0 is 0.0: "-0.0" is zero, never echoed as -0.0
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        return None
    return int(value) if _INTEGER.fullmatch(text) else value


def fanout_count(text: str | None) -> int | None:
    """/slow/fanout's n: an integer in 1..50, default 10; None when invalid (-> 422)."""
    if text is None:
        return DEFAULT_FANOUT
    n = parse_int(text)
    return n if n is not None and 1 <= n <= MAX_FANOUT else None


def _storable(text: str) -> bool:
    """PostgreSQL text takes no NUL, and a lone surrogate (valid JSON) cannot be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def new_troupe(payload: object) -> tuple[str, list[int]]:
    """Validate a POST /api/troupes body: (name, sorted unique member ids) or ValueError."""
    if not isinstance(payload, dict):
        raise ValueError("The body must be a JSON object.")
    name = payload.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100 or not _storable(name):
        raise ValueError("name must be a string of 1 to 100 characters.")
    ids = payload.get("member_ids")
    # bool is an int subclass in Python; true/false are not performer ids.
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise ValueError("member_ids must be a list of integers.")
    return name, sorted(set(ids))
