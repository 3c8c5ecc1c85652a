"""Each app's own migration tool makes exactly the tables schema.sql makes.

For every app: a new empty database on the test PostgreSQL, the app's migrate command (the
one its README gives) run from its directory with only DATABASE_URL (and SECRET_KEY for
Django) set, then the catalog of the contract's tables compared with a database that had
schema.sql applied: tables, columns in order with their types, nullability and defaults,
every constraint as pg_get_constraintdef prints it (keys, ON DELETE, deferrability, CHECK),
every index as pg_get_indexdef prints it, and the sequences the tables own. Names are
compared too, so nothing is normalised: each tool is made to name things as PostgreSQL
names them in schema.sql. ``stackbench_seed`` is the harness's own table (the seed's
checksum), not the app's: it is left out of the comparison, and no app may create it.

The same tool then reports no pending change (Django's ``makemigrations --check``,
``alembic check``, Tortoise's ``makemigrations``), so the models and the migrations agree.
A planted difference (one NOT NULL dropped, one index added, one foreign key made
deferrable) proves the comparison fails and names what differs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from shared_fixtures.db import Database
from shared_fixtures.seed import schema_sql
from stackbench.apps import APPS, get_app

BIN_DIR = Path(sys.executable).parent
# schema.sql's tables, without stackbench_seed (the harness's own).
CONTRACT_TABLES = (
    "world",
    "fortune",
    "location",
    "performer",
    "troupe",
    "troupe_member",
    "college",
)
HARNESS_TABLE = "stackbench_seed"

# The command each app declares as its schema command (stackbench.toml's `schema`), run
# from the app's directory ("python" is this venv's); test_readme_gives_the_command holds
# it to the README's.
MIGRATE = {app_id: list(app.schema or ()) for app_id, app in APPS.items()}
# Models against migrations: nothing left for the tool to generate.
NO_CHANGES = {
    "django_sync": ["python", "manage.py", "makemigrations", "--check", "--dry-run"],
    "django_async": ["python", "manage.py", "makemigrations", "--check", "--dry-run"],
    "django_fastapi": ["python", "manage.py", "makemigrations", "--check", "--dry-run"],
    "fastapi_sqla": ["alembic", "check"],
    "gino_style": ["alembic", "check"],
    # Tortoise has no --check: makemigrations runs in a copy, where it must write nothing.
    "tortoise": ["tortoise", "-c", "db.TORTOISE_ORM", "makemigrations"],
}


def test_every_app_has_a_migrate_command() -> None:
    assert set(MIGRATE) == set(APPS) == set(NO_CHANGES)
    assert all(MIGRATE.values()), "an app declares no schema command"


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def new_database(db: Database) -> Iterator[Callable[[str], str]]:
    """Makes empty databases on the test PostgreSQL; drops them when the test ends."""
    made: list[str] = []

    def make(label: str) -> str:
        name = f"migrations_{label}_{uuid.uuid4().hex[:8]}"
        with db.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return database_url(db.url, name)

    yield make
    with db.connect() as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def schema_sql_url(new_database) -> str:
    url = new_database("schema_sql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql())
    return url


def run(app_id: str, argv: list[str], url: str, cwd: Path | None = None) -> str:
    """The app's tool in its directory, with only DATABASE_URL (and Django's SECRET_KEY)."""
    app = get_app(app_id)
    tool = sys.executable if argv[0] == "python" else str(BIN_DIR / argv[0])
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "DATABASE_URL": url}
    if "SECRET_KEY" in dict(app.environment):
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
    result = subprocess.run(
        [tool, *argv[1:]],
        cwd=cwd or app.directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"{' '.join(argv)} in {app_id}: exit {result.returncode}\n{output}"
    )
    return output


def catalog(url: str) -> dict[str, str]:
    """What the database says about the contract's tables, one line per fact."""
    facts: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relkind, c.relpersistence FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
            [list(CONTRACT_TABLES)],
        ).fetchall()
        for name, kind, persistence in tables:
            facts[name] = f"relkind {kind}, persistence {persistence}"
        for table, position, column, type_, not_null, default, identity in conn.execute(
            "SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),"
            "       a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s)"
            "   AND a.attnum > 0 AND NOT a.attisdropped",
            [list(CONTRACT_TABLES)],
        ):
            facts[f"{table}.{column}"] = (
                f"column {position} {type_} {'NOT NULL' if not_null else 'NULL'}"
                f" DEFAULT {default}" + (f" IDENTITY {identity}" if identity else "")
            )
        for table, name, definition in conn.execute(
            "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)"
            " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
            [list(CONTRACT_TABLES)],
        ):
            # The definition carries ON DELETE and DEFERRABLE [INITIALLY DEFERRED].
            facts[f"{table} constraint {name}"] = definition
        for table, name, definition in conn.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [list(CONTRACT_TABLES)],
        ):
            facts[f"{table} index {name}"] = definition
        for table, name, type_, start, increment, minimum, maximum, cache, cycle in conn.execute(
            "SELECT t.relname, s.relname, q.seqtypid::regtype::text, q.seqstart,"
            "       q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle"
            " FROM pg_sequence q JOIN pg_class s ON s.oid = q.seqrelid"
            " JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
            " JOIN pg_class t ON t.oid = d.refobjid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = 'public' AND t.relname = ANY(%s)",
            [list(CONTRACT_TABLES)],
        ):
            facts[f"{table} sequence {name}"] = (
                f"{type_} start {start} by {increment} in [{minimum}, {maximum}]"
                f" cache {cache}{' cycle' if cycle else ''}"
            )
    return facts


def differences(expected: dict[str, str], got: dict[str, str]) -> list[str]:
    """`what: expected X, got Y`, one line per fact that differs (absent on either side)."""
    return [
        f"{key}: expected {expected.get(key, '(absent)')}, got {got.get(key, '(absent)')}"
        for key in sorted(expected.keys() | got.keys())
        if expected.get(key) != got.get(key)
    ]


def has_table(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{name}"]).fetchone()[0]


def test_the_catalog_covers_every_contract_table(schema_sql_url: str) -> None:
    facts = catalog(schema_sql_url)
    assert set(CONTRACT_TABLES) <= facts.keys()
    assert facts["troupe_member constraint troupe_member_troupe_id_fkey"].endswith(
        "ON DELETE CASCADE"
    )
    assert "college index college_location_idx" in facts
    assert "performer constraint performer_kind_check" in facts
    assert facts["location sequence location_id_seq"].startswith("integer ")


@pytest.mark.parametrize("app_id", list(MIGRATE))
def test_migrations_make_the_tables_schema_sql_makes(
    app_id: str, new_database, schema_sql_url: str
) -> None:
    readme = (get_app(app_id).directory / "README.md").read_text()
    assert " ".join(MIGRATE[app_id]) in readme, f"{app_id}'s README lacks its migrate command"

    url = new_database(app_id)
    run(app_id, MIGRATE[app_id], url)

    found = differences(catalog(schema_sql_url), catalog(url))
    assert not found, f"{app_id}'s migrations differ from schema.sql:\n" + "\n".join(found)
    assert not has_table(url, HARNESS_TABLE), f"{app_id} created the harness's {HARNESS_TABLE}"

    # Run again: nothing to apply, nothing changes.
    run(app_id, MIGRATE[app_id], url)
    assert not differences(catalog(schema_sql_url), catalog(url))


@pytest.mark.parametrize("app_id", list(NO_CHANGES))
def test_models_and_migrations_agree(app_id: str, new_database, tmp_path: Path) -> None:
    url = new_database(app_id)
    run(app_id, MIGRATE[app_id], url)
    if app_id != "tortoise":
        run(app_id, NO_CHANGES[app_id], url)
        return
    copy = tmp_path / app_id
    shutil.copytree(get_app(app_id).directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    output = run(app_id, NO_CHANGES[app_id], url, cwd=copy)
    written = sorted(p.name for p in (copy / "migrations").glob("0*.py"))
    assert written == ["0001_initial.py"] and "No changes detected" in output, output


@pytest.mark.parametrize("app_id", [a for a, argv in MIGRATE.items() if "manage.py" in argv])
def test_django_migrate_on_the_harness_database_changes_nothing(
    app_id: str, new_database, schema_sql_url: str
) -> None:
    """The harness applies schema.sql, then runs `manage.py migrate`: IF NOT EXISTS holds."""
    url = new_database(f"{app_id}_harness")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql())
    run(app_id, MIGRATE[app_id], url)
    assert not differences(catalog(schema_sql_url), catalog(url))


def test_a_planted_difference_is_named(new_database, schema_sql_url: str) -> None:
    url = new_database("planted")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql())
        conn.execute("ALTER TABLE college ALTER COLUMN name DROP NOT NULL")
        conn.execute("CREATE INDEX world_randomnumber_idx ON world (randomnumber)")
        conn.execute(
            "ALTER TABLE troupe_member ALTER CONSTRAINT troupe_member_troupe_id_fkey"
            " DEFERRABLE INITIALLY DEFERRED"
        )
    found = set(differences(catalog(schema_sql_url), catalog(url)))
    planted = {
        "college.name: expected column 2 character varying(100) NOT NULL DEFAULT None,"
        " got column 2 character varying(100) NULL DEFAULT None",
        "troupe_member constraint troupe_member_troupe_id_fkey: expected FOREIGN KEY"
        " (troupe_id) REFERENCES troupe(id) ON DELETE CASCADE, got FOREIGN KEY (troupe_id)"
        " REFERENCES troupe(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
        "world index world_randomnumber_idx: expected (absent), got CREATE INDEX"
        " world_randomnumber_idx ON public.world USING btree (randomnumber)",
    }
    # PostgreSQL 18 also records each NOT NULL in pg_constraint (older versions do not).
    not_null = "college constraint college_name_not_null: expected NOT NULL name, got (absent)"
    assert planted <= found and found - planted <= {not_null}, sorted(found)
