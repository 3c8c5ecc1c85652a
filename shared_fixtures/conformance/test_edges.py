"""The edges of the contract (shared_fixtures/CONTRACT.md, section 5), one answer each.

Every input here gets the same status and body shape from every app; none may answer 5xx.
Run with the rest of the suite:

    pytest shared_fixtures/conformance --base-url http://127.0.0.1:8000 --database-url URL

``STACKBENCH_UPDATES_REQUESTS`` sets how many concurrent ``/updates?queries=20`` requests
the TechEmpower rule is checked with (default 64; TechEmpower's own verification uses 512).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.conformance.test_contract import (
    assert_json,
    assert_world,
    page_url,
    table_counts,
    troupe_from_db,
)

MAX_BODY = 64 * 1024


def _name() -> str:
    return f"Edge {uuid.uuid4().hex[:12]}"


def _post_troupe(target: AppTarget, content: bytes | Iterator[bytes]) -> httpx.Response:
    return target.post(
        "/api/troupes", content=content, headers={"content-type": "application/json"}
    )


def _post_refused_troupe(target: AppTarget, content: bytes | Iterator[bytes]) -> httpx.Response:
    """A body the app refuses unread, on a connection that closes after the answer.

    A server may drop a connection whose unread body it will not drain (gunicorn 27 drains
    at most 64 KiB) after a keep-alive answer: a later request on it would meet the close.
    HTTP/2 has no ``Connection`` header (RFC 9113 8.2.2: a request with one is malformed):
    there, the refused stream ends alone and the connection goes on.
    """
    headers = {"content-type": "application/json"}
    if not target.http2:
        headers["connection"] = "close"
    return target.post("/api/troupes", content=content, headers=headers)


def _delete_troupe(target: AppTarget, name: str) -> None:
    with target.db() as conn:
        conn.execute("DELETE FROM troupe WHERE name = %s", [name])


def assert_detail(response: httpx.Response, status: int) -> None:
    """An error answer: the status, JSON, and an object with a string ``detail``."""
    body = assert_json(response, status)
    assert isinstance(body, dict) and isinstance(body.get("detail"), str | list), body


# ---------------------------------------------------------------- POST /api/troupes bodies

BAD_TEXT = {
    "name with NUL": b'{"name": "a\\u0000b", "member_ids": [1]}',
    "name with a lone surrogate": b'{"name": "a\\ud800b", "member_ids": [1]}',
    "5000-digit member id": b'{"name": "Digits", "member_ids": [' + b"9" * 5000 + b"]}",
    "5000-digit number elsewhere": b'{"name": "Digits", "member_ids": [], "x": '
    + b"9" * 5000
    + b"}",
}


@pytest.mark.parametrize("case", BAD_TEXT)
def test_troupe_unstorable_input_is_422(target: AppTarget, case: str) -> None:
    before = table_counts(target)
    assert_detail(_post_troupe(target, BAD_TEXT[case]), 422)
    assert table_counts(target) == before, "an invalid POST wrote something"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_troupe_body_not_plain_utf8_is_422(target: AppTarget, encoding: str) -> None:
    """JSON is UTF-8 without a byte-order mark (RFC 8259 section 8.1): anything else is 422."""
    name = _name()
    before = table_counts(target)
    try:
        body = json.dumps({"name": name, "member_ids": [1]}).encode(encoding)
        assert_detail(_post_troupe(target, body), 422)
        assert table_counts(target) == before, "a body that is not UTF-8 JSON was written"
    finally:
        _delete_troupe(target, name)


def test_troupe_duplicate_ids_count_once_however_many(target: AppTarget) -> None:
    name = _name()
    try:
        response = target.post("/api/troupes", json={"name": name, "member_ids": [3] * 1001 + [1]})
        body = assert_json(response, 201)
        assert [member["id"] for member in body["members"]] == [1, 3]
        assert body == troupe_from_db(target, body["id"])
    finally:
        _delete_troupe(target, name)


def test_troupe_chunked_body(target: AppTarget) -> None:
    """A body without Content-Length (chunked transfer coding) is read like any other."""
    name = _name()
    payload = json.dumps({"name": name, "member_ids": [4, 2]}).encode()
    try:
        response = _post_troupe(target, iter([payload[:10], payload[10:]]))
        body = assert_json(response, 201)
        assert body["name"] == name and [m["id"] for m in body["members"]] == [2, 4]
    finally:
        _delete_troupe(target, name)


def test_troupe_chunked_body_too_large_is_413(target: AppTarget) -> None:
    before = table_counts(target)
    chunk = b" " * (16 * 1024)
    response = _post_refused_troupe(
        target, iter([b'{"name": "Big", "member_ids": [1]}'] + [chunk] * 5)
    )
    assert_detail(response, 413)
    assert table_counts(target) == before


def test_troupe_declared_too_large_is_413(target: AppTarget) -> None:
    body = b'{"name": "Big", "member_ids": [1]}' + b" " * MAX_BODY
    if target.http2:  # the answer comes while the body is sent: read on the stream itself
        path = f"{target.prefix}/api/troupes"
        status, headers = _h2_declared(target, path, len(body), sent=len(body))
        assert status == 413 and headers.get(b"content-type") == b"application/json", status
        return
    assert_detail(_post_refused_troupe(target, body), 413)


def test_troupe_too_large_refused_before_the_body_is_read(target: AppTarget) -> None:
    """A Content-Length of 50 MB is refused on the header: the answer comes while the
    client has sent 1 KiB of the body (an app that waited for the rest would time out).
    Over HTTP/2 the same request is a stream: its HEADERS, then 1 KiB of DATA."""
    url = urlsplit(target.base_url)
    declared = 50 * 1024 * 1024
    if target.http2:
        status, headers = _h2_declared(target, f"{url.path}/api/troupes", declared)
        assert status == 413, (status, headers)
        assert headers.get(b"content-type") == b"application/json", headers
        return
    head = (
        f"POST {url.path}/api/troupes HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    with target.connect() as sock:
        sock.sendall(head + b" " * 1024)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pytest.fail(f"no answer within 5 s to a declared {declared}-byte body: read first?")
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.split()[1:2] == [b"413"], received[:300]
    head = rest.split(b"\r\n\r\n")[0].lower()
    assert b"content-type: application/json" in head, received[:300]


def _h2_declared(
    target: AppTarget, path: str, declared: int, sent: int = 1024
) -> tuple[int, dict[bytes, bytes]]:
    """POST ``path`` on an HTTP/2 stream declaring ``declared`` bytes and sending ``sent``
    of them, as flow control lets them go (reading all the while): the response's status
    and headers (0 and none when the stream was reset unanswered)."""
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    with target.connect(alpn=("h2",)) as sock:
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "https" if target.tls else "http"),
                (":authority", target.netloc),
                (":path", path),
                ("content-type", "application/json"),
                ("content-length", str(declared)),
            ],
        )
        left = sent
        try:
            while True:
                # as much as the windows allow, then read (the server opens them as it reads)
                while (window := min(left, conn.local_flow_control_window(stream), 16384)) > 0:
                    left -= window
                    last = sent - left == declared  # the whole declared body has gone
                    conn.send_data(stream, b" " * window, end_stream=last)
                sock.sendall(conn.data_to_send())
                data = sock.recv(65536)
                if not data:
                    return 0, {}
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers = dict(event.headers)
                        return int(headers.pop(b":status")), headers
                    if isinstance(event, h2.events.StreamReset):
                        return 0, {}
        except TimeoutError:
            pytest.fail(f"no answer within 5 s to a declared {declared}-byte body: read first?")


# ---------------------------------------------------------------- integers and numbers


@pytest.mark.parametrize("kind", ["colleges", "troupes"])
def test_page_with_leading_zeros_is_that_page(target: AppTarget, kind: str) -> None:
    body = assert_json(target.get(f"/api/{kind}?page=0000000000000000001&page_size=3"))
    assert body["previous"] is None and body["next"] == page_url(target, kind, 2, 3)
    body = assert_json(target.get(f"/api/{kind}?page=0000000000000000002&page_size=3"))
    assert body["previous"] == page_url(target, kind, 1, 3)


@pytest.mark.parametrize("kind", ["colleges", "troupes"])
def test_page_size_with_leading_zeros_is_that_size(target: AppTarget, kind: str) -> None:
    body = assert_json(target.get(f"/api/{kind}?page_size=0000000000000000000002"))
    assert len(body["results"]) == 2 and body["next"] == page_url(target, kind, 2, 2)


@pytest.mark.parametrize("kind", ["colleges", "troupes"])
def test_id_with_leading_zeros_is_that_id(target: AppTarget, kind: str) -> None:
    body = assert_json(target.get(f"/api/{kind}/0000000000000000000007"))
    assert body["id"] == 7


def test_queries_with_leading_zeros(target: AppTarget) -> None:
    assert len(assert_json(target.get("/queries?queries=0000000000000000000003"))) == 3


# Not ASCII decimal numbers: a space, an underscore, Arabic-Indic three, a sign, hex.
SECONDS_NOT_NUMBERS = ["%200", "0%20", "1_0", "%D9%A3", "%2B1", "0x1", "Infinity"]


@pytest.mark.parametrize("endpoint", ["db", "http", "both"])
@pytest.mark.parametrize("seconds", SECONDS_NOT_NUMBERS)
def test_slow_seconds_must_be_an_ascii_number(
    target: AppTarget, endpoint: str, seconds: str
) -> None:
    assert_detail(target.get(f"/slow/{endpoint}?seconds={seconds}"), 422)


@pytest.mark.parametrize(("seconds", "slept"), [(".05", 0.05), ("0.", 0.0), ("5e-2", 0.05)])
def test_slow_seconds_decimal_forms(target: AppTarget, seconds: str, slept: float) -> None:
    assert assert_json(target.get(f"/slow/db?seconds={seconds}")) == {"slept": slept}


# ---------------------------------------------------------------- HTTP: errors and methods


def test_unknown_path_is_404_json(target: AppTarget) -> None:
    assert_detail(target.get("/no/such/thing"), 404)


@pytest.mark.parametrize("path", ["/json/", "/api/troupes/", "/api/colleges/1/"])
def test_trailing_slash_is_404_not_a_redirect(target: AppTarget, path: str) -> None:
    response = target.get(path)
    assert "location" not in response.headers, response.headers
    assert_detail(response, 404)


def test_no_redirect_follows_the_host_header(target: AppTarget) -> None:
    for path in ("/json/", "/api/troupes/", "/api/troupes"):
        response = target.get(path, headers={"host": "evil.example"})
        assert "evil.example" not in response.headers.get("location", ""), (path, response)
        assert response.status_code < 500, (path, response.status_code)


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/json"), ("PUT", "/api/troupes")])
def test_wrong_method_is_405_json(target: AppTarget, method: str, path: str) -> None:
    response = target.client.request(method, target.base_url + path)
    assert_detail(response, 405)


@pytest.mark.parametrize("path", ["/json", "/api/troupes?page_size=2", "/api/colleges/1"])
def test_head_is_get_without_a_body(target: AppTarget, path: str) -> None:
    got, head = target.get(path), target.client.head(target.base_url + path)
    assert head.status_code == got.status_code == 200, (head.status_code, head.text)
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.content == b""


# ---------------------------------------------------------------- /updates, as TechEmpower counts


def _updates_rule_cases() -> list[tuple[int, int]]:
    requests = int(os.environ.get("STACKBENCH_UPDATES_REQUESTS", "64"))
    # queries=500 draws 500 ids of 10,000 per request: drawn with replacement, a repeat is
    # all but certain (1 - 4e-6), so an app that merges repeats fails here every time.
    return [(requests, 20), (4, 500)]


async def _concurrent_gets(target: AppTarget, url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with target.async_client(timeout=120.0, limits=limits) as client:
        return await asyncio.gather(*(client.get(url) for _ in range(count)))


@pytest.mark.parametrize(("requests", "queries"), _updates_rule_cases())
def test_updates_as_techempower_counts_them(target: AppTarget, requests: int, queries: int) -> None:
    """N concurrent requests of queries=Q: exactly N*Q SELECTs of one world row each,
    and N*Q rows updated, by N*Q UPDATEs (one per row) or N UPDATEs (one per request),
    counted server-side (pg_stat_statements), with no margin."""
    responses: list[httpx.Response] = []

    def fire() -> None:
        url = f"{target.base_url}/updates?queries={queries}"
        responses.extend(asyncio.run(_concurrent_gets(target, url, requests)))

    world = target.counted(fire, f"{requests} x GET /updates", matching="%world%", timeout=60)
    updates = target.counts_now("update%world%")
    for response in responses:
        items = assert_json(response)
        assert len(items) == queries
        for item in items:
            assert_world(item)
    expected = requests * queries
    selects = world.calls - updates.calls
    assert selects == expected, f"{selects} SELECTs of world for {expected} rows"
    assert world.rows - updates.rows == expected, f"{world.rows - updates.rows} rows read"
    assert updates.calls in (expected, requests), f"{updates.calls} UPDATEs for {expected} rows"
    assert updates.rows == expected, f"{updates.rows} rows updated of {expected}"
    for response in responses:  # what makes the counts exact: no id twice in one request
        assert len({item["id"] for item in response.json()}) == queries, "an id drawn twice"
