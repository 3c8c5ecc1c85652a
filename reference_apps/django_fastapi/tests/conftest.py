"""What the tests run on: an empty PostgreSQL migrated by Django, a few rows of their own,
a stand-in for the slow upstream service, and the ASGI entry (Django at /, FastAPI at
/fastapi) behind Starlette's TestClient.

DATABASE_URL must name an empty database, and SECRET_KEY be set. The tests run
``manage.py migrate`` on that database, load their rows, and empty the circus tables again
when they end; they refuse a database whose tables already hold rows, so they never mix
with (or delete) anyone's data.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import django
import pytest
from starlette.testclient import TestClient

SCRIPT = '<script>alert("This should not be displayed in a browser alert box.");</script>'


def pytest_configure(config: pytest.Config) -> None:
    missing = [name for name in ("DATABASE_URL", "SECRET_KEY") if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"set {' and '.join(missing)}: the tests need an empty PostgreSQL database (README.md)"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test Client's host, "testserver", is allowed


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[None]:
    from django.core.management import call_command
    from django.db import connection

    from circus.models import College, Fortune, Location, Performer, Troupe, TroupeMember, World

    existing = connection.introspection.table_names()
    for model in (World, Fortune, Location, Performer, Troupe, TroupeMember, College):
        if model._meta.db_table in existing and model.objects.exists():
            table = model._meta.db_table
            pytest.exit(f"DATABASE_URL's {table} holds rows: the tests need an empty database")
    call_command("migrate", "--noinput", verbosity=0)

    World.objects.bulk_create(World(id=i, randomnumber=i) for i in range(1, 10_001))
    Fortune.objects.bulk_create(
        [
            Fortune(id=1, message="fortune: No such file or directory"),
            Fortune(id=2, message=SCRIPT),
            Fortune(id=3, message="フレームワークのベンチマーク"),
        ]
    )
    ring = Location.objects.create(
        line_1="1 Ring Road", line_2="", line_3="Sarasota", zipcode="34236"
    )
    bozo, pogo, flyer = Performer.objects.bulk_create(
        [
            Performer(stage_name="Bozo", kind="clown", concentration="juggling"),
            Performer(stage_name="Pogo", kind="clown", concentration="pratfalls"),
            Performer(stage_name="Flyer", kind="acrobat", concentration="trapeze"),
        ]
    )
    red_noses = Troupe.objects.create(name="Red Noses")
    high_wire = Troupe.objects.create(name="High Wire")
    red_noses.members.add(bozo, pogo)
    high_wire.members.add(flyer)
    College.objects.create(name="Clown College", location=ring, troupe=red_noses)
    College.objects.create(name="Trapeze School", location=ring, troupe=high_wire)
    College.objects.create(name="Mime Academy", location=ring, troupe=red_noses)
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE world, fortune, location, performer, troupe, troupe_member, college"
            " RESTART IDENTITY"
        )


class Upstream(BaseHTTPRequestHandler):
    """The slow upstream service: GET /delay?seconds=S sleeps S, answers {"delay": S}."""

    def do_GET(self) -> None:
        seconds = float(parse_qs(urlsplit(self.path).query)["seconds"][0])
        time.sleep(seconds)
        body = json.dumps({"delay": seconds, "served_at": time.time()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session", autouse=True)
def upstream() -> Iterator[None]:
    from django.test import override_settings

    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with override_settings(UPSTREAM_URL=f"http://127.0.0.1:{server.server_port}"):
        yield
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def client(database: None, upstream: None) -> Iterator[TestClient]:
    from project.asgi import application

    with TestClient(application) as client:  # one event loop for the whole session
        yield client


@pytest.fixture(params=["", "/fastapi"], ids=["django", "fastapi"])
def prefix(request: pytest.FixtureRequest) -> str:
    """Where the contract is served: Django at /, FastAPI at /fastapi."""
    return request.param
