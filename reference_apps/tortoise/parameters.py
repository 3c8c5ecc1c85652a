"""The query and path parameters, typed for FastAPI (and so for the OpenAPI schema), with the
contract's rules for the text they arrive as.

Hand-written because the contract requires it (README, "Input handling"): an integer is
ASCII digits with an optional minus sign, of any length, leading zeros allowed, and a
number is ASCII digits with an optional fraction and exponent. Pydantic's own ``int`` and
``float`` also take " 7", "1_000", "+1" and "1.0" (and refuse integers of over 4,300
digits), so each typed parameter runs its text through ``integer`` or ``number`` first.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

# Ids are PostgreSQL ``integer``: a bigger number can only be an unknown id.
MAX_ID = 2**31 - 1
MAX_QUERIES = 500
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SLEEP = 10
MAX_FANOUT = 50

INTEGER = re.compile(r"-?[0-9]+")
NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
PAGE_SCHEMA = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}],
    "default": 1,
}
# Past 18 digits only the sign matters to every rule below (each clamps or range-checks).
HUGE = 10**18


def integer(value: Any) -> Any:
    """Text in the contract's integer grammar, as an int (others pass on to pydantic)."""
    if not isinstance(value, str):
        return value
    if not INTEGER.fullmatch(value):
        raise ValueError("not an integer (ASCII digits, an optional minus sign)")
    digits = value.lstrip("-").lstrip("0") or "0"  # 007 is 7
    number = HUGE if len(digits) > 18 else int(digits)
    return -number if value.startswith("-") else number


def number(value: Any) -> Any:
    """Text in the contract's number grammar (2, 0.5, .5, 5., 5e-1), for pydantic's float."""
    if isinstance(value, str) and not NUMBER.fullmatch(value):
        raise ValueError("not a number (ASCII digits, an optional fraction and exponent)")
    return value


def page_number(value: Any) -> Any:
    """``page=`` (empty) is the first page, as in Django REST Framework."""
    return 1 if value == "" else integer(value)


def clamped(value: str, default: int, highest: int) -> int:
    """The TechEmpower rule: not an integer → ``default``; then clamped to 1..``highest``."""
    try:
        count = integer(value)
    except ValueError:
        return default
    return min(max(count, 1), highest)


def query_count(queries: str) -> int:
    return clamped(queries, 1, MAX_QUERIES)


def clamp_page_size(size: str) -> int:
    return clamped(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


# A path id; anything else (abc, 0, 2147483648) is answered 404 by main.validation_error.
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row's id"), BeforeValidator(integer)]
# A page past the last, or not an integer, is 404 too (main.validation_error). The schema
# says what pydantic's cannot: an empty page= is valid (the first page).
PageNumber = Annotated[
    int,
    Query(ge=1, description="1 when empty; past the last page: 404"),
    BeforeValidator(page_number),
    WithJsonSchema(PAGE_SCHEMA),
]
# Clamped, never refused: any text is a valid value (page_size=abc is 20), so the schema
# says string and the endpoint applies clamp_page_size().
PageSize = Annotated[str, Query(description="an integer, clamped to 1..100; anything else is 20")]
Queries = Annotated[str, Query(description="an integer, clamped to 1..500; anything else is 1")]
Seconds = Annotated[
    float,
    Query(ge=0, le=MAX_SLEEP, description="how long to wait, 0..10"),
    BeforeValidator(number),
    AfterValidator(lambda seconds: seconds + 0.0),  # -0 is 0: -0.0 + 0.0 == 0.0
]
Fanout = Annotated[
    int, Query(ge=1, le=MAX_FANOUT, description="how many calls"), BeforeValidator(integer)
]
