"""Every endpoint the README promises, through Django's test Client on a real PostgreSQL."""

from __future__ import annotations

from circus.models import Troupe, World


def test_health_json_plaintext(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/json").json() == {"message": "Hello, World!"}
    response = client.get("/plaintext")
    assert response.content == b"Hello, World!"
    assert response["Content-Type"].startswith("text/plain")


def test_db(client):
    row = client.get("/db").json()
    assert set(row) == {"id", "randomNumber"} and 1 <= row["id"] <= 10_000


def test_queries_are_clamped(client):
    assert len(client.get("/queries", {"queries": 3}).json()) == 3
    assert len(client.get("/queries", {"queries": 0}).json()) == 1
    assert len(client.get("/queries", {"queries": "foo"}).json()) == 1


def test_updates_are_persisted(client):
    rows = client.get("/updates", {"queries": 5}).json()
    assert len(rows) == 5
    written = {row["id"]: row["randomNumber"] for row in rows}  # a repeated id: its last value
    stored = World.objects.filter(id__in=written).values_list("id", "randomnumber")
    assert dict(stored) == written


def test_fortunes_are_sorted_and_escaped(client):
    response = client.get("/fortunes")
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<script>" not in html and "&lt;script&gt;alert(" in html
    order = ["&lt;script&gt;", "Additional fortune added at request time.", "fortune: No such"]
    positions = [html.index(text) for text in [*order, "フレームワークのベンチマーク"]]
    assert positions == sorted(positions)


def test_colleges_are_paged(client):
    first = client.get("/api/colleges", {"page_size": 2}).json()
    assert first["count"] == 3 and [c["id"] for c in first["results"]] == [1, 2]
    assert first["next"] == "/api/colleges?page=2&page_size=2" and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == [3] and second["next"] is None
    assert second["previous"] == "/api/colleges?page=1&page_size=2"
    response = client.get("/api/colleges", {"page": 3, "page_size": 2})
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


def test_a_college(client):
    assert client.get("/api/colleges/2").json() == {
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
        response = client.get(missing)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_troupes_carry_their_members(client):
    page = client.get("/api/troupes", {"page_size": 1}).json()
    assert page["next"] == "/api/troupes?page=2&page_size=1"
    (troupe,) = page["results"]
    assert troupe["name"] == "Red Noses"
    assert [m["stage_name"] for m in troupe["members"]] == ["Bozo", "Pogo"]
    assert set(troupe["members"][0]) == {"id", "stage_name", "kind", "concentration"}
    assert client.get("/api/troupes/2").json()["members"][0]["kind"] == "acrobat"


def post(client, body):
    return client.post("/api/troupes", body, content_type="application/json")


def test_create_a_troupe(client):
    response = post(client, {"name": "Tumblers", "member_ids": [3, 1]})
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "Tumblers" and [m["id"] for m in created["members"]] == [1, 3]
    assert client.get(f"/api/troupes/{created['id']}").json() == created
    assert post(client, {"name": "Tumblers", "member_ids": []}).status_code == 409


def test_invalid_troupes_write_nothing(client):
    before = Troupe.objects.count()
    for body in (
        {"member_ids": [1]},
        {"name": "", "member_ids": []},
        {"name": "X", "member_ids": [99]},
    ):
        response = post(client, body)
        assert response.status_code == 422 and "detail" in response.json(), body
    assert post(client, "{not json").status_code == 422
    assert Troupe.objects.count() == before


def test_slow_endpoints(client):
    assert client.get("/slow/db", {"seconds": 0}).json() == {"slept": 0}
    assert client.get("/slow/http", {"seconds": 0}).json()["upstream"]["delay"] == 0
    both = client.get("/slow/both", {"seconds": 0}).json()
    assert both["slept"] == 0 and both["upstream"]["delay"] == 0
    fanout = client.get("/slow/fanout", {"n": 3, "seconds": 0}).json()
    assert [call["delay"] for call in fanout["results"]] == [0, 0, 0]
    assert client.get("/slow/db", {"seconds": 11}).status_code == 422
    for minus_zero in ("-0", "-0.0", "-0e0"):  # zero, never echoed as -0.0
        response = client.get("/slow/db", {"seconds": minus_zero})
        assert response.json() == {"slept": 0} and b"-0" not in response.content


def test_a_method_a_view_does_not_serve_is_405_before_csrf():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)  # as a browser without a token meets it
    for method, path in (("delete", "/json"), ("post", "/db"), ("put", "/api/troupes")):
        response = getattr(strict, method)(path)
        assert response.status_code == 405 and "detail" in response.json(), (method, path)
    # The admin keeps CSRF: its refusal is a JSON 403.
    response = strict.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403 and "detail" in response.json()
