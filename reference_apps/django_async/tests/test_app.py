"""Every endpoint the README promises, through Django's AsyncClient on a real PostgreSQL."""

from __future__ import annotations

import pytest

from circus.models import Troupe, World

pytestmark = pytest.mark.anyio


async def get_json(client, path, params=None):
    response = await client.get(path, params)
    assert response.status_code == 200, (path, response.status_code, response.content)
    return response.json()


async def test_health_json_plaintext(client):
    assert await get_json(client, "/health") == {"status": "ok"}
    assert await get_json(client, "/json") == {"message": "Hello, World!"}
    response = await client.get("/plaintext")
    assert response.content == b"Hello, World!"
    assert response["Content-Type"].startswith("text/plain")


async def test_db(client):
    row = await get_json(client, "/db")
    assert set(row) == {"id", "randomNumber"} and 1 <= row["id"] <= 10_000


async def test_queries_are_clamped(client):
    assert len(await get_json(client, "/queries", {"queries": 3})) == 3
    assert len(await get_json(client, "/queries", {"queries": 0})) == 1
    assert len(await get_json(client, "/queries", {"queries": "foo"})) == 1


async def test_updates_are_persisted(client):
    rows = await get_json(client, "/updates", {"queries": 5})
    assert len(rows) == 5
    written = {row["id"]: row["randomNumber"] for row in rows}  # a repeated id: its last value
    stored = World.objects.filter(id__in=written).values_list("id", "randomnumber")
    assert {id_: number async for id_, number in stored} == written


async def test_fortunes_are_sorted_and_escaped(client):
    response = await client.get("/fortunes")
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<script>" not in html and "&lt;script&gt;alert(" in html
    order = ["&lt;script&gt;", "Additional fortune added at request time.", "fortune: No such"]
    positions = [html.index(text) for text in [*order, "フレームワークのベンチマーク"]]
    assert positions == sorted(positions)


async def test_colleges_are_paged(client):
    first = await get_json(client, "/api/colleges", {"page_size": 2})
    assert first["count"] == 3 and [c["id"] for c in first["results"]] == [1, 2]
    assert first["next"] == "/api/colleges?page=2&page_size=2" and first["previous"] is None
    second = await get_json(client, first["next"])
    assert [c["id"] for c in second["results"]] == [3] and second["next"] is None
    assert second["previous"] == "/api/colleges?page=1&page_size=2"
    response = await client.get("/api/colleges", {"page": 3, "page_size": 2})
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


async def test_a_college(client):
    assert await get_json(client, "/api/colleges/2") == {
        "id": 2,
        "name": "Trapeze School",
        "location": {
            "id": 1,
            "line_1": "1 Ring Road",
            "line_2": "",
            "line_3": "Sarasota",
            "zipcode": "34236",
        },
        "troupe": {"id": 2, "name": "High Wire"},
    }
    for missing in ("/api/colleges/99", "/api/colleges/abc"):
        response = await client.get(missing)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}


async def test_troupes_carry_their_members(client):
    page = await get_json(client, "/api/troupes", {"page_size": 1})
    assert page["next"] == "/api/troupes?page=2&page_size=1"
    (troupe,) = page["results"]
    assert troupe["name"] == "Red Noses"
    assert [m["stage_name"] for m in troupe["members"]] == ["Bozo", "Pogo"]
    assert set(troupe["members"][0]) == {"id", "stage_name", "kind", "concentration"}
    assert (await get_json(client, "/api/troupes/2"))["members"][0]["kind"] == "acrobat"


async def post(client, body):
    return await client.post("/api/troupes", body, content_type="application/json")


async def test_create_a_troupe(client):
    response = await post(client, {"name": "Tumblers", "member_ids": [3, 1]})
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "Tumblers" and [m["id"] for m in created["members"]] == [1, 3]
    assert await get_json(client, f"/api/troupes/{created['id']}") == created
    taken = await post(client, {"name": "Tumblers", "member_ids": []})
    assert taken.status_code == 409


async def test_invalid_troupes_write_nothing(client):
    before = await Troupe.objects.acount()
    for body in (
        {"member_ids": [1]},
        {"name": "", "member_ids": []},
        {"name": "X", "member_ids": [99]},
    ):
        response = await post(client, body)
        assert response.status_code == 422 and "detail" in response.json(), body
    assert (await post(client, "{not json")).status_code == 422
    assert await Troupe.objects.acount() == before


async def test_slow_endpoints(client):
    assert await get_json(client, "/slow/db", {"seconds": 0}) == {"slept": 0}
    assert (await get_json(client, "/slow/http", {"seconds": 0}))["upstream"]["delay"] == 0
    both = await get_json(client, "/slow/both", {"seconds": 0})
    assert both["slept"] == 0 and both["upstream"]["delay"] == 0
    fanout = await get_json(client, "/slow/fanout", {"n": 3, "seconds": 0})
    assert [call["delay"] for call in fanout["results"]] == [0, 0, 0]
    assert (await client.get("/slow/db", {"seconds": 11})).status_code == 422
    for minus_zero in ("-0", "-0.0", "-0e0"):  # zero, never echoed as -0.0
        response = await client.get("/slow/db", {"seconds": minus_zero})
        assert response.json() == {"slept": 0} and b"-0" not in response.content


async def test_a_method_a_view_does_not_serve_is_405_before_csrf():
    from django.test import AsyncClient

    strict = AsyncClient(enforce_csrf_checks=True)  # as a browser without a token meets it
    for method, path in (("delete", "/json"), ("post", "/db"), ("put", "/api/troupes")):
        response = await getattr(strict, method)(path)
        assert response.status_code == 405 and "detail" in response.json(), (method, path)
    # The admin keeps CSRF: its refusal is a JSON 403.
    response = await strict.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403 and "detail" in response.json()
