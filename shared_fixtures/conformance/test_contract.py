"""The contract (shared_fixtures/CONTRACT.md, section 2), row by row, against any app at
any base URL.

Every test takes the ``target`` fixture: an app's base URL and, for the tests that read
data back or count statements, its database URL. Run it against an app you started:

    pytest shared_fixtures/conformance --base-url http://127.0.0.1:8000 --database-url URL
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.seed import FORTUNES

MAX_LIST_STATEMENTS = 10  # a page of any size: count, page, prefetch, pool chatter
LOCATION_KEYS = ("id", "line_1", "line_2", "line_3", "zipcode")

# ---------------------------------------------------------------- helpers


def assert_json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text[:300])
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", content_type
    return response.json()


def assert_framing(response: httpx.Response) -> None:
    """Every response has a Date and is framed by Content-Length or chunked encoding."""
    assert "date" in response.headers, dict(response.headers)
    chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
    assert chunked or "content-length" in response.headers, dict(response.headers)


def world_row(target: AppTarget, world_id: int) -> int:
    with target.db() as conn:
        row = conn.execute("SELECT randomnumber FROM world WHERE id = %s", [world_id]).fetchone()
    assert row is not None, world_id
    return int(row[0])


def assert_world(item: object) -> None:
    assert isinstance(item, dict) and set(item) == {"id", "randomNumber"}, item
    assert type(item["id"]) is int and 1 <= item["id"] <= 10_000, item
    assert type(item["randomNumber"]) is int and 1 <= item["randomNumber"] <= 10_000, item


def college_from_db(target: AppTarget, college_id: int) -> dict:
    with target.db() as conn:
        row = conn.execute(
            "SELECT c.id, c.name, l.id, l.line_1, l.line_2, l.line_3, l.zipcode, t.id, t.name "
            "FROM college c JOIN location l ON l.id = c.location_id "
            "JOIN troupe t ON t.id = c.troupe_id WHERE c.id = %s",
            [college_id],
        ).fetchone()
    assert row is not None
    return {
        "id": row[0],
        "name": row[1],
        "location": dict(
            zip(("id", "line_1", "line_2", "line_3", "zipcode"), row[2:7], strict=True)
        ),
        "troupe": {"id": row[7], "name": row[8]},
    }


def troupe_from_db(target: AppTarget, troupe_id: int) -> dict:
    with target.db() as conn:
        name = conn.execute("SELECT name FROM troupe WHERE id = %s", [troupe_id]).fetchone()
        members = conn.execute(
            "SELECT p.id, p.stage_name, p.kind, p.concentration FROM troupe_member m "
            "JOIN performer p ON p.id = m.performer_id WHERE m.troupe_id = %s ORDER BY p.id",
            [troupe_id],
        ).fetchall()
    assert name is not None
    keys = ("id", "stage_name", "kind", "concentration")
    return {
        "id": troupe_id,
        "name": name[0],
        "members": [dict(zip(keys, member, strict=True)) for member in members],
    }


def table_counts(target: AppTarget) -> tuple[int, int]:
    with target.db() as conn:
        troupes = conn.execute("SELECT count(*) FROM troupe").fetchone()
        members = conn.execute("SELECT count(*) FROM troupe_member").fetchone()
    assert troupes and members
    return int(troupes[0]), int(members[0])


def row_count(target: AppTarget, table: str) -> int:
    with target.db() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row
    return int(row[0])


# ---------------------------------------------------------------- plain endpoints


def test_health(target: AppTarget) -> None:
    response = target.get("/health")
    assert assert_json(response) == {"status": "ok"}
    assert_framing(response)


def test_health_touches_no_database(target: AppTarget) -> None:
    target.get("/health")
    assert target.statements("/health") == 0


def test_json(target: AppTarget) -> None:
    response = target.get("/json")
    assert assert_json(response) == {"message": "Hello, World!"}
    assert_framing(response)


def test_plaintext(target: AppTarget) -> None:
    response = target.get("/plaintext")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0].strip() == "text/plain"
    assert response.text == "Hello, World!"
    assert_framing(response)


@pytest.mark.parametrize(
    "path",
    [
        "/db",
        "/queries?queries=2",
        "/fortunes",
        "/api/colleges",
        "/api/colleges/1",
        "/api/troupes",
        "/api/troupes/1",
        "/slow/db?seconds=0",
    ],
)
def test_framing_and_date(target: AppTarget, path: str) -> None:
    assert_framing(target.get(path))


def test_db_returns_a_real_row(target: AppTarget) -> None:
    for _ in range(5):
        item = assert_json(target.get("/db"))
        assert_world(item)
        assert item["randomNumber"] == world_row(target, item["id"])


@pytest.mark.parametrize(
    ("query", "length"),
    [
        ("?queries=2", 2),
        ("?queries=0", 1),
        ("?queries=foo", 1),
        ("?queries=501", 500),
        ("?queries=", 1),
        ("", 1),
        ("?queries=-3", 1),
        ("?queries=20", 20),
    ],
)
def test_queries_lengths(target: AppTarget, query: str, length: int) -> None:
    items = assert_json(target.get("/queries" + query))
    assert isinstance(items, list) and len(items) == length
    for item in items:
        assert_world(item)


def test_queries_rows_are_real(target: AppTarget) -> None:
    items = assert_json(target.get("/queries?queries=5"))
    for item in items:
        assert item["randomNumber"] == world_row(target, item["id"])


def test_queries_one_select_per_row(target: AppTarget) -> None:
    target.get("/queries?queries=20")  # warm the pool
    one, twenty = target.statements("/queries?queries=1"), target.statements("/queries?queries=20")
    assert twenty - one >= 19, f"20 rows took {twenty} statements, 1 row took {one}: batched?"


@pytest.mark.parametrize(
    ("query", "length"),
    [("?queries=2", 2), ("?queries=0", 1), ("?queries=foo", 1), ("?queries=", 1), ("", 1)],
)
def test_updates_lengths(target: AppTarget, query: str, length: int) -> None:
    items = assert_json(target.get("/updates" + query))
    assert isinstance(items, list) and len(items) == length
    for item in items:
        assert_world(item)


def test_updates_clamps_to_500(target: AppTarget) -> None:
    items = assert_json(target.get("/updates?queries=501"))
    assert len(items) == 500


def test_updates_persist(target: AppTarget) -> None:
    for _ in range(3):
        items = assert_json(target.get("/updates?queries=10"))
        assert len(items) == 10
        persisted = {item["id"]: world_row(target, item["id"]) for item in items}
        # With duplicate ids the last update wins; every returned row must be what is stored
        # for at least its last occurrence.
        last = {item["id"]: item["randomNumber"] for item in items}
        assert last == persisted


# ---------------------------------------------------------------- fortunes


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.header: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
            if tag == "th":
                self.header = self._row
        elif tag == "tr" and self._row is not None:
            if self._row is not self.header:
                self.rows.append(self._row)
            self._row = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


def test_fortunes(target: AppTarget) -> None:
    response = target.get("/fortunes")
    assert response.status_code == 200
    content_type = response.headers["content-type"].replace(" ", "").lower()
    assert content_type == "text/html;charset=utf-8", content_type
    body = response.content.decode("utf-8")
    assert body.lstrip().lower().startswith("<!doctype html>")
    parser = _TableParser()
    parser.feed(body)
    assert parser.title == "Fortunes"
    assert parser.header == ["id", "message"]
    expected = sorted(
        [*FORTUNES, (0, "Additional fortune added at request time.")], key=lambda row: row[1]
    )
    assert parser.rows == [[str(i), message] for i, message in expected]


def test_fortunes_markup_is_exact(target: AppTarget) -> None:
    """TechEmpower's page: one <table>, header row, a <tr><td>id</td><td>message</td></tr> each."""
    body = target.get("/fortunes").content.decode("utf-8")
    compact = re.sub(r">\s+<", "><", body.strip())
    assert re.fullmatch(
        r"(?is)<!doctype html><html><head><title>Fortunes</title></head><body><table>"
        r"<tr><th>id</th><th>message</th></tr>(<tr><td>\d+</td><td>[^<]*</td></tr>){13}"
        r"</table></body></html>",
        compact,
    ), compact[:400]


def test_fortunes_escapes_script_and_keeps_unicode(target: AppTarget) -> None:
    body = target.get("/fortunes").content.decode("utf-8")
    assert "<script>" not in body
    assert "&lt;script&gt;alert(" in body
    escaped_row = re.search(r"<td>(&lt;script&gt;.*?)</td>", body)
    assert escaped_row is not None
    assert html.unescape(escaped_row.group(1)) == FORTUNES[10][1]
    assert "フレームワークのベンチマーク" in body
    assert "— Donald Knuth" in body


# ---------------------------------------------------------------- paging


LISTS = {"colleges": "college", "troupes": "troupe"}


def page_url(target: AppTarget, kind: str, page: int, size: int) -> str:
    return f"{target.prefix}/api/{kind}?page={page}&page_size={size}"


@pytest.mark.parametrize("kind", LISTS)
def test_list_first_page(target: AppTarget, kind: str) -> None:
    body = assert_json(target.get(f"/api/{kind}"))
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == row_count(target, LISTS[kind])
    assert body["previous"] is None
    assert body["next"] == page_url(target, kind, 2, 20)
    ids = [item["id"] for item in body["results"]]
    assert ids == sorted(ids) and len(ids) == 20
    with target.db() as conn:
        first = conn.execute(f"SELECT id FROM {LISTS[kind]} ORDER BY id LIMIT 20").fetchall()
    assert ids == [row[0] for row in first]


@pytest.mark.parametrize("kind", LISTS)
def test_list_middle_and_last_page(target: AppTarget, kind: str) -> None:
    count = row_count(target, LISTS[kind])
    middle = assert_json(target.get(f"/api/{kind}?page=2&page_size=7"))
    assert middle["previous"] == page_url(target, kind, 1, 7)
    assert middle["next"] == page_url(target, kind, 3, 7)
    assert len(middle["results"]) == 7
    last_page = -(-count // 7)
    last = assert_json(target.get(f"/api/{kind}?page={last_page}&page_size=7"))
    assert last["next"] is None
    assert last["previous"] == page_url(target, kind, last_page - 1, 7)
    assert len(last["results"]) == count - 7 * (last_page - 1)


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize(
    ("size", "effective"),
    [
        ("0", 1),
        ("-5", 1),
        ("1", 1),
        ("100", 100),
        ("101", 100),
        ("100000", 100),
        ("foo", 20),
        ("", 20),
        ("2.5", 20),
    ],
)
def test_list_page_size_clamped(target: AppTarget, kind: str, size: str, effective: int) -> None:
    body = assert_json(target.get(f"/api/{kind}?page_size={size}"))
    assert len(body["results"]) == min(effective, body["count"])
    more = body["count"] > effective
    assert body["next"] == (page_url(target, kind, 2, effective) if more else None)


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize("page", ["0", "-1", "foo", "1.5", "999999", "9" * 40])
def test_list_invalid_page(target: AppTarget, kind: str, page: str) -> None:
    body = assert_json(target.get(f"/api/{kind}?page={page}"), status=404)
    assert body == {"detail": "Invalid page."}


@pytest.mark.parametrize("kind", LISTS)
def test_list_empty_page_is_the_first(target: AppTarget, kind: str) -> None:
    body = assert_json(target.get(f"/api/{kind}?page=&page_size=3"))
    assert body["previous"] is None and body["next"] == page_url(target, kind, 2, 3)


@pytest.mark.parametrize("kind", LISTS)
def test_list_page_past_last(target: AppTarget, kind: str) -> None:
    count = row_count(target, LISTS[kind])
    past = -(-count // 100) + 1
    assert target.get(f"/api/{kind}?page={past - 1}&page_size=100").status_code == 200
    body = assert_json(target.get(f"/api/{kind}?page={past}&page_size=100"), status=404)
    assert body == {"detail": "Invalid page."}


def test_college_shape_matches_database(target: AppTarget) -> None:
    body = assert_json(target.get("/api/colleges?page=3&page_size=5"))
    for college in body["results"]:
        assert college == college_from_db(target, college["id"])


def test_troupe_shape_matches_database(target: AppTarget) -> None:
    body = assert_json(target.get("/api/troupes?page=2&page_size=5"))
    for troupe in body["results"]:
        assert troupe == troupe_from_db(target, troupe["id"])
        assert [m["id"] for m in troupe["members"]] == sorted(m["id"] for m in troupe["members"])


@pytest.mark.parametrize("kind", LISTS)
def test_detail(target: AppTarget, kind: str) -> None:
    expected = (college_from_db if kind == "colleges" else troupe_from_db)(target, 7)
    assert assert_json(target.get(f"/api/{kind}/7")) == expected


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize("item", ["99999999", "0", "-1", "abc", "1.5", "9" * 40])
def test_detail_not_found(target: AppTarget, kind: str, item: str) -> None:
    body = assert_json(target.get(f"/api/{kind}/{item}"), status=404)
    assert body == {"detail": "Not found."}


@pytest.mark.parametrize("kind", LISTS)
def test_list_statements_bounded(target: AppTarget, kind: str) -> None:
    """No N+1: a page of 100 takes no more statements than a page of 5 (server-side count)."""
    for _ in range(2):  # warm every pooled connection's caches
        target.get(f"/api/{kind}?page_size=100")
    small = target.statements(f"/api/{kind}?page_size=5")
    large = target.statements(f"/api/{kind}?page_size=100")
    assert large <= small + 1, f"page_size=5: {small} statements, page_size=100: {large}"
    assert large <= MAX_LIST_STATEMENTS, f"page_size=100 took {large} statements"


@pytest.mark.parametrize("kind", LISTS)
def test_detail_statements_bounded(target: AppTarget, kind: str) -> None:
    target.get(f"/api/{kind}/3")
    assert target.statements(f"/api/{kind}/3") <= MAX_LIST_STATEMENTS


# ---------------------------------------------------------------- POST /api/troupes


def _unique_name() -> str:
    return f"Conformance {uuid.uuid4().hex[:12]}"


def _delete_troupe(target: AppTarget, name: str) -> None:
    with target.db() as conn:
        conn.execute("DELETE FROM troupe WHERE name = %s", [name])


def test_create_troupe(target: AppTarget) -> None:
    name = _unique_name()
    try:
        response = target.post("/api/troupes", json={"name": name, "member_ids": [5, 2, 9]})
        body = assert_json(response, status=201)
        assert set(body) == {"id", "name", "members"}
        assert body["name"] == name
        assert [m["id"] for m in body["members"]] == [2, 5, 9]
        assert body == troupe_from_db(target, body["id"])
        assert assert_json(target.get(f"/api/troupes/{body['id']}")) == body
    finally:
        _delete_troupe(target, name)


def test_create_troupe_without_members(target: AppTarget) -> None:
    name = _unique_name()
    try:
        body = assert_json(target.post("/api/troupes", json={"name": name, "member_ids": []}), 201)
        assert body["members"] == [] and body["name"] == name
    finally:
        _delete_troupe(target, name)


BAD_BODIES = {
    "invalid json": b'{"name": "x", "member_ids": [1,',
    "not an object": b'["name", "member_ids"]',
    "name missing": b'{"member_ids": [1]}',
    "member_ids missing": b'{"name": "Nameless wonder"}',
    "name not a string": b'{"name": 5, "member_ids": [1]}',
    "name empty": b'{"name": "", "member_ids": [1]}',
    "name too long": json.dumps({"name": "x" * 101, "member_ids": [1]}).encode(),
    "member_ids not a list": b'{"name": "Listless", "member_ids": "1,2"}',
    "member id not an int": b'{"name": "Stringy", "member_ids": ["a"]}',
    "unknown performer": b'{"name": "Ghosts", "member_ids": [1, 99999999]}',
    "non-utf8": b'{"name": "\xff\xfe", "member_ids": [1]}',
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_create_troupe_rejects_bad_input(target: AppTarget, case: str) -> None:
    before = table_counts(target)
    response = target.post(
        "/api/troupes", content=BAD_BODIES[case], headers={"content-type": "application/json"}
    )
    body = assert_json(response, status=422)
    assert "detail" in body
    assert table_counts(target) == before, "an invalid POST wrote something"


def test_create_troupe_name_taken(target: AppTarget) -> None:
    with target.db() as conn:
        row = conn.execute("SELECT name FROM troupe ORDER BY id LIMIT 1").fetchone()
    assert row
    before = table_counts(target)
    response = target.post("/api/troupes", json={"name": row[0], "member_ids": [1, 2]})
    body = assert_json(response, status=409)
    assert "detail" in body
    assert table_counts(target) == before, "a conflicting POST wrote something"


# ---------------------------------------------------------------- slow endpoints


def test_slow_db(target: AppTarget) -> None:
    started = time.perf_counter()
    body = assert_json(target.get("/slow/db?seconds=0.2"))
    assert body == {"slept": 0.2}
    assert time.perf_counter() - started >= 0.2


def test_slow_db_default_is_one_second(target: AppTarget) -> None:
    started = time.perf_counter()
    body = assert_json(target.get("/slow/db"))
    assert body == {"slept": 1} and time.perf_counter() - started >= 1.0


def test_slow_db_sleeps_in_the_database(target: AppTarget) -> None:
    target.get("/slow/db?seconds=0")
    assert target.statements("/slow/db?seconds=0.01", matching="%pg_sleep%") == 1


SLOW_BAD = ["abc", "-1", "10.5", "11", "nan", "inf", ""]


@pytest.mark.parametrize("endpoint", ["db", "http", "both"])
@pytest.mark.parametrize("seconds", SLOW_BAD)
def test_slow_rejects_bad_seconds(target: AppTarget, endpoint: str, seconds: str) -> None:
    body = assert_json(target.get(f"/slow/{endpoint}?seconds={seconds}"), status=422)
    assert "detail" in body


def _assert_upstream(payload: object, seconds: float) -> None:
    assert isinstance(payload, dict) and set(payload) == {"delay", "served_at"}, payload
    assert payload["delay"] == seconds
    assert abs(payload["served_at"] - time.time()) < 60


def test_slow_http(target: AppTarget) -> None:
    started = time.perf_counter()
    body = assert_json(target.get("/slow/http?seconds=0.2"))
    assert set(body) == {"upstream"}
    _assert_upstream(body["upstream"], 0.2)
    assert time.perf_counter() - started >= 0.2


def test_slow_both(target: AppTarget) -> None:
    started = time.perf_counter()
    body = assert_json(target.get("/slow/both?seconds=0.15"))
    assert set(body) == {"upstream", "slept"} and body["slept"] == 0.15
    _assert_upstream(body["upstream"], 0.15)
    assert time.perf_counter() - started >= 0.3  # upstream, then the sleep: in sequence


def test_slow_fanout(target: AppTarget) -> None:
    body = assert_json(target.get("/slow/fanout?n=5&seconds=0.1"))
    assert set(body) == {"results"} and len(body["results"]) == 5
    for payload in body["results"]:
        _assert_upstream(payload, 0.1)


def test_slow_fanout_default_n(target: AppTarget) -> None:
    body = assert_json(target.get("/slow/fanout?seconds=0"))
    assert len(body["results"]) == 10


@pytest.mark.parametrize(
    "query", ["n=0", "n=51", "n=abc", "n=-1", "n=5&seconds=11", "n=5&seconds=abc"]
)
def test_slow_fanout_rejects_bad_input(target: AppTarget, query: str) -> None:
    body = assert_json(target.get(f"/slow/fanout?{query}"), status=422)
    assert "detail" in body
