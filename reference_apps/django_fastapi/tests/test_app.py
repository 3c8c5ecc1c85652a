"""Every endpoint the README promises, at / (Django) and at /fastapi (FastAPI), through
Starlette's TestClient on the ASGI entry and a real PostgreSQL."""

from __future__ import annotations

from circus.models import Troupe, World


def test_health_json_plaintext(client, prefix):
    assert client.get(f"{prefix}/health").json() == {"status": "ok"}
    assert client.get(f"{prefix}/json").json() == {"message": "Hello, World!"}
    response = client.get(f"{prefix}/plaintext")
    assert response.text == "Hello, World!"
    assert response.headers["content-type"].startswith("text/plain")


def test_db(client, prefix):
    row = client.get(f"{prefix}/db").json()
    assert set(row) == {"id", "randomNumber"} and 1 <= row["id"] <= 10_000


def test_queries_are_clamped(client, prefix):
    assert len(client.get(f"{prefix}/queries?queries=3").json()) == 3
    assert len(client.get(f"{prefix}/queries?queries=0").json()) == 1
    assert len(client.get(f"{prefix}/queries?queries=foo").json()) == 1


def test_updates_are_persisted(client, prefix):
    rows = client.get(f"{prefix}/updates?queries=5").json()
    assert len(rows) == 5
    written = {row["id"]: row["randomNumber"] for row in rows}  # a repeated id: its last value
    stored = World.objects.filter(id__in=written).values_list("id", "randomnumber")
    assert dict(stored) == written


def test_fortunes_are_sorted_and_escaped(client, prefix):
    response = client.get(f"{prefix}/fortunes")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert "<script>" not in html and "&lt;script&gt;alert(" in html
    order = ["&lt;script&gt;", "Additional fortune added at request time.", "fortune: No such"]
    positions = [html.index(text) for text in [*order, "フレームワークのベンチマーク"]]
    assert positions == sorted(positions)


def test_colleges_are_paged(client, prefix):
    first = client.get(f"{prefix}/api/colleges?page_size=2").json()
    assert first["count"] == 3 and [c["id"] for c in first["results"]] == [1, 2]
    assert first["next"] == f"{prefix}/api/colleges?page=2&page_size=2"
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == [3] and second["next"] is None
    assert second["previous"] == f"{prefix}/api/colleges?page=1&page_size=2"
    response = client.get(f"{prefix}/api/colleges?page=3&page_size=2")
    assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


def test_a_college(client, prefix):
    assert client.get(f"{prefix}/api/colleges/2").json() == {
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
        response = client.get(prefix + missing)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_troupes_carry_their_members(client, prefix):
    page = client.get(f"{prefix}/api/troupes?page_size=1").json()
    assert page["next"] == f"{prefix}/api/troupes?page=2&page_size=1"
    (troupe,) = page["results"]
    assert troupe["name"] == "Red Noses"
    assert [m["stage_name"] for m in troupe["members"]] == ["Bozo", "Pogo"]
    assert set(troupe["members"][0]) == {"id", "stage_name", "kind", "concentration"}
    assert client.get(f"{prefix}/api/troupes/2").json()["members"][0]["kind"] == "acrobat"


def test_create_a_troupe(client, prefix):
    name = f"Tumblers of {prefix or '/'}"
    response = client.post(f"{prefix}/api/troupes", json={"name": name, "member_ids": [3, 1]})
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == name and [m["id"] for m in created["members"]] == [1, 3]
    assert client.get(f"{prefix}/api/troupes/{created['id']}").json() == created
    taken = client.post(f"{prefix}/api/troupes", json={"name": name, "member_ids": []})
    assert taken.status_code == 409


def test_invalid_troupes_write_nothing(client, prefix):
    before = Troupe.objects.count()
    for body in (
        {"member_ids": [1]},
        {"name": "", "member_ids": []},
        {"name": "X", "member_ids": [99]},
    ):
        response = client.post(f"{prefix}/api/troupes", json=body)
        assert response.status_code == 422 and "detail" in response.json(), body
    assert client.post(f"{prefix}/api/troupes", content=b"{not json").status_code == 422
    assert Troupe.objects.count() == before


def test_slow_endpoints(client, prefix):
    assert client.get(f"{prefix}/slow/db?seconds=0").json() == {"slept": 0}
    assert client.get(f"{prefix}/slow/http?seconds=0").json()["upstream"]["delay"] == 0
    both = client.get(f"{prefix}/slow/both?seconds=0").json()
    assert both["slept"] == 0 and both["upstream"]["delay"] == 0
    fanout = client.get(f"{prefix}/slow/fanout?n=3&seconds=0").json()
    assert [call["delay"] for call in fanout["results"]] == [0, 0, 0]
    assert client.get(f"{prefix}/slow/db?seconds=11").status_code == 422
    for minus_zero in ("-0", "-0.0", "-0e0"):  # zero, never echoed as -0.0
        response = client.get(f"{prefix}/slow/db?seconds={minus_zero}")
        assert response.json() == {"slept": 0} and b"-0" not in response.content


def test_a_method_a_view_does_not_serve_is_405_before_csrf(client):
    # No CSRF token, as a browser's cross-site request: the method is wrong all the same.
    for method, path in (("DELETE", "/json"), ("POST", "/db"), ("PUT", "/api/troupes")):
        response = client.request(method, path)
        assert response.status_code == 405 and "detail" in response.json(), (method, path)
    # The admin keeps CSRF: its refusal is a JSON 403.
    response = client.post("/admin/login/", data={"username": "x", "password": "y"})
    assert response.status_code == 403 and "detail" in response.json()
