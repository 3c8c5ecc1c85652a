"""Hostile clients, generated (hypothesis): parameters, path segments, JSON bodies, header
fields and request targets that nobody wrote down, each held to the contract's answer
where it has one, and to "no 5xx, no hang" everywhere.

Each test draws ``STACKBENCH_HOSTILE_EXAMPLES`` inputs (default 40), a new draw each run;
a failure prints the input that failed, and ``--hypothesis-seed N`` repeats a run. No
example database is written (nothing is left behind in the working directory).
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared_fixtures.conformance.raw import Answer, exchange
from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.conformance.test_hostile import (
    assert_error_json,
    assert_no_5xx,
    fill,
    send,
)

EXAMPLES = int(os.environ.get("STACKBENCH_HOSTILE_EXAMPLES", "40"))
GENERATED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# The contract's number forms (CONTRACT.md section 5): what the apps must read as a number.
INTEGER = re.compile(r"-?[0-9]+")
DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

ODD_VALUES = [
    "",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "0x10",
    " 1",
    "1 ",
    "\u0661",
    "\u00bd",
    "1_0",
    "9" * 5000,
    "-" + "9" * 5000,
    "0" * 5000 + "1",
    "1" + "0" * 400,
    "-0",
    "1.0",
    "1e2",
    "%",
    "\x00",
]
VALUES = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A-?[0-9]{0,40}(\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?\Z"),
    st.integers().map(str),
    st.sampled_from(ODD_VALUES),
)
RAW_VALUES = st.one_of(
    VALUES.map(lambda v: quote(v, safe="")), st.binary(max_size=12).map(quote_from_bytes)
)


# gunicorn refuses a request line over 4,094 bytes with 414 before any app sees it (its
# limit_request_line; docs/servers.md): a longer line may get that answer instead.
LINE_LIMIT = 4_094


def _get(target: AppTarget, path_and_query: str) -> Answer | None:
    """The answer to a GET (None: the server's 414 to a line over LINE_LIMIT)."""
    line = f"GET {{P}}{path_and_query} HTTP/1.1"
    what = path_and_query[:120]
    ex = send(target, f"{line}\r\nHost: {{H}}\r\n\r\n".encode())
    assert_no_5xx(ex, what)
    assert len(ex.answers) == 1, f"{what}: {ex.describe()}"
    if ex.statuses == [414] and len(fill(line.encode(), target)) > LINE_LIMIT:
        return None
    return ex.answers[0]


def _small(raw: str) -> bool:
    """Not an integer past 20 (500 rows are checked once in test_contract, not 40 times)."""
    value = _decoded(raw)
    if value is None or INTEGER.fullmatch(value.strip()) is None:
        return True
    digits = value.strip().lstrip("-").lstrip("0")
    return len(digits) <= 2 and int(digits or "0") <= 20


def _decoded(raw: str) -> str | None:
    from urllib.parse import unquote_to_bytes

    try:
        return unquote_to_bytes(raw).decode()
    except UnicodeDecodeError:
        return None


@GENERATED
@given(raw=RAW_VALUES.filter(_small), again=st.none() | RAW_VALUES.filter(_small))
def test_generated_queries_is_always_a_list(target: AppTarget, raw: str, again: str | None) -> None:
    """Any ``queries`` (repeated or not): 200 and 1..20 rows (no integer past 20 is drawn)."""
    query = f"queries={raw}" + (f"&queries={again}" if again is not None else "")
    answer = _get(target, f"/queries?{query}")
    if answer is not None:
        assert answer.status == 200, (query[:120], answer.status, answer.body[:200])
        rows = json.loads(answer.body)
        assert isinstance(rows, list) and 1 <= len(rows) <= 20, (query[:120], len(rows))


@GENERATED
@given(kind=st.sampled_from(["colleges", "troupes"]), size=RAW_VALUES, page=RAW_VALUES)
def test_generated_paging(target: AppTarget, kind: str, size: str, page: str) -> None:
    """Any ``page_size`` is a size in 1..100; any ``page`` is a page or 404 Invalid page."""
    answer = _get(target, f"/api/{kind}?page_size={size}")
    if answer is not None:
        assert answer.status == 200, (size[:120], answer.status, answer.body[:200])
        assert 1 <= len(json.loads(answer.body)["results"]) <= 100
    answer = _get(target, f"/api/{kind}?page={page}&page_size=100")
    if answer is not None and answer.status != 200:
        assert assert_error_json(answer, 404, page[:120]) == {"detail": "Invalid page."}


@GENERATED
@given(
    endpoint=st.sampled_from(["db", "http", "both", "fanout"]),
    raw=RAW_VALUES,
)
def test_generated_seconds(target: AppTarget, endpoint: str, raw: str) -> None:
    """Any ``seconds``: a number in 0..10 is slept (only short ones are drawn), else 422."""
    value = _decoded(raw)
    number = value is not None and DECIMAL.fullmatch(value) is not None
    if number:
        assume(float(value) < 0.05)  # type: ignore[arg-type]
    query = f"seconds={raw}" + ("&n=2" if endpoint == "fanout" else "")
    answer = _get(target, f"/slow/{endpoint}?{query}")
    if answer is None:
        return
    if number and 0 <= float(value) <= 10:  # type: ignore[arg-type]
        assert answer.status == 200, (raw[:120], answer.status, answer.body[:200])
    else:
        assert_error_json(answer, 422, raw[:120])


@GENERATED
@given(kind=st.sampled_from(["colleges", "troupes"]), raw=RAW_VALUES.filter(lambda v: v != ""))
def test_generated_detail_ids(target: AppTarget, kind: str, raw: str) -> None:
    """Any id segment: that row (an integer in range) or 404 Not found."""
    value = _decoded(raw)
    answer = _get(target, f"/api/{kind}/{raw}")
    if answer is None:
        return
    if answer.status == 200:
        assert value is not None and INTEGER.fullmatch(value), raw[:120]
        assert str(json.loads(answer.body)["id"]) == value.lstrip("0"), raw[:120]  # no int()
    else:
        assert answer.status == 404, (raw[:120], answer.status, answer.body[:200])


@GENERATED
@given(target_bytes=st.binary(max_size=40).map(lambda b: re.sub(rb"[\s]", b"", b)))
def test_generated_request_targets(target: AppTarget, target_bytes: bytes) -> None:
    """Any bytes after the mount prefix's slash: no 5xx, no hang."""
    request = b"GET {P}/" + target_bytes + b" HTTP/1.1\r\nHost: {H}\r\n\r\n"
    assert_no_5xx(send(target, request), repr(target_bytes))


TOKEN = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=20,
)


@GENERATED
@given(
    name=TOKEN | st.binary(min_size=1, max_size=10),
    value=st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    path=st.sampled_from(["/json", "/api/troupes?page_size=1", "/fortunes", "/health"]),
)
def test_generated_header_fields(
    target: AppTarget, name: str | bytes, value: bytes, path: str
) -> None:
    """Any header field on a GET: no 5xx, no hang."""
    raw_name = (
        name.encode() if isinstance(name, str) else name.replace(b"\r", b"").replace(b"\n", b"")
    )
    request = b"GET {P}" + path.encode() + b" HTTP/1.1\r\nHost: {H}\r\n" + raw_name + b": "
    assert_no_5xx(send(target, request + value + b"\r\n\r\n"), f"{raw_name!r}: {value!r}")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TROUPES = st.fixed_dictionaries(
    {
        "name": st.text(max_size=110) | JSON,
        "member_ids": st.lists(st.integers(min_value=-3, max_value=620), max_size=8)
        | st.lists(st.integers(), max_size=3)
        | JSON,
    },
    optional={"extra": JSON},
)
BODIES = st.one_of(
    TROUPES.map(lambda d: json.dumps(d).encode()),
    TROUPES.map(lambda d: json.dumps(d, ensure_ascii=False).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
)


@GENERATED
@given(body=BODIES)
def test_generated_troupe_bodies(target: AppTarget, body: bytes) -> None:
    """Any body: 201 with exactly what was sent (then removed), 409 for a name taken, or a
    422 error; never a 5xx."""
    with target.db() as conn:
        request = (
            b"POST {P}/api/troupes HTTP/1.1\r\nHost: {H}\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        ) + body
        ex = exchange(target.address, fill(request, target))
        assert_no_5xx(ex, repr(body[:200]))
        assert len(ex.answers) == 1, ex.describe()
        (answer,) = ex.answers
        if answer.status != 201:
            assert_error_json(answer, answer.status, repr(body[:200]))
            assert answer.status in (409, 422), (answer.status, body[:200])
            return
        created = json.loads(answer.body)
        conn.execute("DELETE FROM troupe WHERE id = %s", [created["id"]])
    sent = json.loads(body)
    assert created["name"] == sent["name"], (created, sent)
    members = [member["id"] for member in created["members"]]
    assert members == sorted(set(sent["member_ids"])), (created, sent)


@pytest.mark.parametrize("value", ["9" * 5000, "0" * 5000 + "7"])
def test_id_of_5000_digits(target: AppTarget, value: str) -> None:
    """The contract reads an integer of any length: a 5,000-digit id is that id or 404,
    whatever the server's limit on a request line (gunicorn's 4,094 answers 414 first:
    docs/servers.md)."""
    request = f"GET {{P}}/api/colleges/{value} HTTP/1.1\r\nHost: {{H}}\r\n\r\n".encode()
    ex = send(target, request)
    assert_no_5xx(ex, f"{len(value)}-digit id")
    expected = 200 if value.endswith("7") else 404
    assert ex.statuses in ([expected], [414]), ex.describe()
