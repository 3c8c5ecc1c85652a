"""fastapi_sqla's bench variants (stackbench/variants/fastapi_sqla): each changes what it
says and nothing the client can see, and one that cannot find what it changes refuses to
start.

In process (a probe run in the app's directory, on the real database): ORM objects built,
FastAPI's response serialization, Jinja2 renders and when the session closes. Served (a
real uvicorn, real HTTP): the bytes of /fortunes and /db, and the statements each request
runs, counted by pg_stat_statements."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_fixtures.conformance.target import AppTarget
from shared_fixtures.db import Database
from stackbench.apps import get_app
from stackbench.measure import BIN_DIR
from stackbench.server_process import Served, app_env, serve
from stackbench.servers import Knobs, get_server
from stackbench.variants import FASTAPI_SQLA, VARIANTS, get_variant

APP = get_app("fastapi_sqla")
PROBE = Path(__file__).with_name("fastapi_variant_probe.py")
FASTAPI_VARIANTS = [name for name, v in VARIANTS.items() if "fastapi_sqla" in v.apps]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def _env(db_url: str, variant: str | None) -> dict[str, str]:
    return app_env(
        APP,
        get_server("uvicorn"),
        db_url,
        "http://127.0.0.1:9",
        Knobs(pool_size=2),
        variant=get_variant(variant) if variant else None,
    )


def test_every_fastapi_variant_is_an_asgi_module_here() -> None:
    assert set(FASTAPI_VARIANTS) == {
        "core-queries",
        "no-response-model",
        "no-templates",
        "autocommit-session",
        "session-dependency",
    }
    for name in FASTAPI_VARIANTS:
        variant = VARIANTS[name]
        assert variant.settings is None and variant.directory == FASTAPI_SQLA
        assert variant.module_file.is_file(), name
        assert variant.entry == f"{variant.module_file.stem}:app"
        env = variant.env("/elsewhere")
        assert "DJANGO_SETTINGS_MODULE" not in env
        assert env["PYTHONPATH"].split(":") == [str(FASTAPI_SQLA), "/elsewhere"]


# ------------------------------------------------------------------ in process


def _probe(db: Database, variant: str | None) -> dict[str, Any]:
    module = VARIANTS[variant].module_file.stem if variant else "main"
    done = subprocess.run(
        [str(BIN_DIR / "python"), "-c", PROBE.read_text(), module],  # cwd on sys.path,
        cwd=APP.directory,
        env=_env(db.url, variant),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probed: dict[str, Any] = json.loads(done.stdout)
    for path, seen in probed.items():
        assert seen["status"] == 200, (path, seen)
    return probed


@pytest.fixture(scope="module")
def shipped(db: Database) -> dict[str, Any]:
    probed = _probe(db, None)
    # The app as shipped, as the variants' docstrings describe it.
    db_, fortunes = probed["/db"], probed["/fortunes"]
    assert (db_["orm_loads"], db_["serialized"], db_["renders"]) == (1, 1, 0)
    assert (fortunes["orm_loads"], fortunes["serialized"], fortunes["renders"]) == (12, 0, 1)
    for seen in (db_, fortunes):  # opened inline: closed before the response goes
        assert seen["order"] == ["session closed", "body sent"]
    return probed


def _same_except(shipped: dict[str, Any], probed: dict[str, Any], changed: dict[str, Any]) -> None:
    """``probed`` is ``shipped`` with the keys in ``changed`` (path → {key: value}) changed."""
    for path in ("/db", "/fortunes"):
        expected = {**shipped[path], **changed.get(path, {})}
        for key in ("orm_loads", "serialized", "renders", "order"):
            assert probed[path][key] == expected[key], (path, key, probed[path][key])
    assert probed["/fortunes"]["body"] == shipped["/fortunes"]["body"]
    assert set(json.loads(probed["/db"]["body"])) == {"id", "randomNumber"}


def test_core_queries_builds_no_orm_objects(db: Database, shipped: dict[str, Any]) -> None:
    probed = _probe(db, "core-queries")
    _same_except(shipped, probed, {"/db": {"orm_loads": 0}, "/fortunes": {"orm_loads": 0}})


def test_no_response_model_skips_fastapis_serialization(
    db: Database, shipped: dict[str, Any]
) -> None:
    probed = _probe(db, "no-response-model")
    _same_except(shipped, probed, {"/db": {"serialized": 0}})


def test_no_templates_renders_no_template(db: Database, shipped: dict[str, Any]) -> None:
    probed = _probe(db, "no-templates")
    _same_except(shipped, probed, {"/fortunes": {"renders": 0}})


def test_session_dependency_closes_after_the_response(
    db: Database, shipped: dict[str, Any]
) -> None:
    probed = _probe(db, "session-dependency")
    after = {"order": ["body sent", "session closed"]}
    _same_except(shipped, probed, {"/db": after, "/fortunes": after})


def test_autocommit_session_changes_nothing_the_probe_sees(
    db: Database, shipped: dict[str, Any]
) -> None:
    """Its change is in the database's statements: the served test below counts them."""
    _same_except(shipped, _probe(db, "autocommit-session"), {})


# ------------------------------------------------------------------ served


@pytest.fixture(scope="module")
def baseline(app_servers: Any) -> Served:
    served: Served = app_servers.get("fastapi_sqla", "uvicorn")
    return served


@pytest.fixture(params=FASTAPI_VARIANTS)
def variant(
    request: pytest.FixtureRequest, db: Database, upstream_url: str, tmp_path: Path
) -> Iterator[tuple[str, Served]]:
    with serve(
        APP,
        get_server("uvicorn"),
        database_url=db.url,
        upstream_url=upstream_url,
        bin_dir=BIN_DIR,
        log_dir=tmp_path,
        knobs=Knobs(workers=1, pool_size=4),
        cpus=1,
        variant=get_variant(request.param, ["fastapi_sqla"]),
    ) as served:
        yield request.param, served


def _statements(served: Served, db: Database, path: str) -> int:
    target = AppTarget(served.base_url, db.url)
    try:
        return target.statements(path)
    finally:
        target.close()


@pytest.mark.slow
def test_a_served_variant_answers_the_same_and_runs_its_statements(
    variant: tuple[str, Served], baseline: Served, db: Database
) -> None:
    """/fortunes byte for byte and header for header as the app as shipped; /db a row of
    the world table; BEGIN, SELECT, ROLLBACK per request (3 statements), but for
    autocommit-session: the SELECT alone."""
    name, served = variant
    assert served.argv[-1] == VARIANTS[name].entry
    shipped = httpx.get(f"{baseline.base_url}/fortunes", timeout=30)
    changed = httpx.get(f"{served.base_url}/fortunes", timeout=30)
    assert changed.status_code == shipped.status_code == 200
    assert changed.content == shipped.content
    assert changed.headers["content-type"] == shipped.headers["content-type"]
    answer = httpx.get(f"{served.base_url}/db", timeout=30)
    assert answer.headers["content-type"] == "application/json"
    world = answer.json()
    with db.connect() as conn:
        row = conn.execute("SELECT randomnumber FROM world WHERE id = %s", (world["id"],))
        assert row.fetchone() == (world["randomNumber"],)
    per_request = 1 if name == "autocommit-session" else 3
    assert _statements(baseline, db, "/db") == _statements(baseline, db, "/fortunes") == 3
    assert _statements(served, db, "/db") == _statements(served, db, "/fortunes") == per_request


# ------------------------------------------------------------------ refused


# What each variant changes, taken away from a copy of the app (pairs: text, its
# replacement): each must refuse to start.
FAULTS: dict[str, tuple[str, ...]] = {
    "core-queries": ('@get("/db",', '@get("/db2",'),
    "no-response-model": ('@get("/db",', '@get("/db", response_model=None,'),
    "no-templates": ('@get("/fortunes",', '@get("/fortune",'),
    # the endpoints open their session under another name: nothing named SessionLocal
    "autocommit-session": (
        "from db import DB_POOL_TIMEOUT, SessionLocal, engine, get_session",
        "from db import DB_POOL_TIMEOUT, SessionLocal as Sessions, engine, get_session",
        "SessionLocal()",
        "Sessions()",
    ),
    # /db takes its session from the dependency already: nothing to change
    "session-dependency": (
        "async def single_query() -> dict[str, int]:\n"
        "    async with SessionLocal() as session:\n"
        "        world = await fetch_world(session, random_id())",
        "async def single_query(session: Session) -> dict[str, int]:\n"
        "    if session:\n"
        "        world = await fetch_world(session, random_id())",
    ),
}


def _import_from_copy(tmp_path: Path, name: str, fault: tuple[str, ...] | None) -> Any:
    copy = tmp_path / "fastapi_sqla"
    shutil.copytree(APP.directory, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    main = copy / "main.py"
    source = main.read_text()
    pairs = zip(fault[::2], fault[1::2], strict=True) if fault else ()
    for was, now in pairs:  # every occurrence
        assert was in source, was
        source = source.replace(was, now)
    main.write_text(source)
    return subprocess.run(
        [str(BIN_DIR / "python"), "-c", f"import {VARIANTS[name].module_file.stem}"],
        cwd=copy,
        env=_env(UNREACHABLE, name),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_variant_has_a_planted_fault() -> None:
    assert set(FAULTS) == set(FASTAPI_VARIANTS)


@pytest.mark.parametrize("name", FASTAPI_VARIANTS)
def test_a_variant_refuses_to_start_without_what_it_changes(name: str, tmp_path: Path) -> None:
    intact = _import_from_copy(tmp_path / "intact", name, None)
    assert intact.returncode == 0, intact.stderr  # the copy itself imports
    faulty = _import_from_copy(tmp_path / "faulty", name, FAULTS[name])
    assert faulty.returncode != 0
    assert "sb_routes.VariantError: variant" in faulty.stderr, faulty.stderr
