"""schemathesis hooks for tests/apps/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

Two, each for a reason the test names: the slow endpoints sleep for a tenth of what was
generated, and the one contract decision a JSON Schema cannot state is not a failure.
"""

from __future__ import annotations

import math
from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """`seconds` in 0..10 becomes a thousandth of itself, still a valid number: schemathesis
    draws hundreds of them, and at up to 20 s a request (/slow/both) the run would take an
    hour. Values outside the range (the negative cases) go as they were generated."""
    if case.path.startswith("/slow/") and isinstance(case.query, dict) and "seconds" in case.query:
        value = case.query["seconds"]
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return case
        if not isinstance(value, bool) and math.isfinite(seconds) and 0 <= seconds <= 10:
            case.query["seconds"] = seconds / 1000
    return case


SEEDED_PERFORMERS = 600  # ids 1..600 at the test session's seed scale (1)


def _member_ids(body: object) -> list[object]:
    ids = body.get("member_ids") if isinstance(body, dict) else None
    return ids if isinstance(ids, list) else []


def _refused_by_the_contract(ids: list[object]) -> bool:
    """A number written with a fraction (593.0), or an id no performer has."""
    return any(
        isinstance(item, float) or (isinstance(item, int) and not 1 <= item <= SEEDED_PERFORMERS)
        for item in ids
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but one kind: "valid data rejected" for a POST /api/troupes whose
    member_ids the contract refuses with 422 though the schema cannot say so. A number
    written with a fraction (593.0) is an integer to JSON Schema, and not to the contract
    (a performer id is an integer, strictly, as the conformance suite checks); an id no
    performer has is a 422 ("unknown performer ids"), which depends on the data."""
    refused_by_the_contract = (
        failure.code == "ST202"
        and case.method.upper() == "POST"
        and case.path.endswith("/api/troupes")
        and response.status_code == 422
        and _refused_by_the_contract(_member_ids(case.body))
    )
    return not refused_by_the_contract
