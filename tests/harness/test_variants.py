"""Bench variants (stackbench/variants): the server really runs the changed settings, the
results say which variant ran, and a bad variant is one line and exit 2 before anything
starts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from shared_fixtures.db import Database
from shared_fixtures.processes import processes_owned_by
from stackbench import results
from stackbench.apps import get_app
from stackbench.measure import BIN_DIR
from stackbench.nox_command import SessionArgs
from stackbench.server_process import Served, app_env, serve
from stackbench.servers import Knobs, get_server
from stackbench.variants import OVERLAYS, VARIANTS, VariantError, get_variant, requirements_for
from tests.harness.runs import bench_process, only_run_dir, result_documents

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
SERVER_OF = {"django_sync": "gunicorn-gthread", "django_async": "uvicorn"}
SEVEN = [
    "SecurityMiddleware",
    "SessionMiddleware",
    "CommonMiddleware",
    "CsrfViewMiddleware",
    "AuthenticationMiddleware",
    "MessageMiddleware",
    "XFrameOptionsMiddleware",
]
# What each variant must take out of the app's MIDDLEWARE, written down independently of
# the overlays; persistent-conns takes out the pool instead.
REMOVED = {
    "no-security-mw": {"SecurityMiddleware"},
    "no-session-mw": {"SessionMiddleware", "AuthenticationMiddleware", "MessageMiddleware"},
    "no-common-mw": {"CommonMiddleware"},
    "no-csrf-mw": {"CsrfViewMiddleware"},
    "no-auth-mw": {"AuthenticationMiddleware"},
    "no-messages-mw": {"MessageMiddleware"},
    "no-xframe-mw": {"XFrameOptionsMiddleware"},
    "no-middleware": set(SEVEN),
    "persistent-conns": set(),
    "psycopg2": set(),
    "no-middleware-psycopg2": set(SEVEN),
}
ON_PSYCOPG2 = ("psycopg2", "no-middleware-psycopg2")  # django_sync only: its own driver path
_SHOW = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; print(json.dumps({'module': s.SETTINGS_MODULE, "
    "'middleware': [m.rpartition('.')[2] for m in s.MIDDLEWARE], "
    "'pool': 'pool' in d['OPTIONS'], 'conn_max_age': d['CONN_MAX_AGE'], "
    "'driver': __import__('django.db').db.connection.Database.__name__}))"
)


def _server_env(app_id: str, variant: str | None) -> dict[str, str]:
    """The environment a server of ``app_id`` would get, with ``variant``."""
    return app_env(
        get_app(app_id),
        get_server(SERVER_OF[app_id]),
        UNREACHABLE,
        "http://127.0.0.1:9",
        Knobs(),
        variant=get_variant(variant) if variant else None,
    )


def _show(app_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Django's settings as the app's Python sees them in ``env``, printed as JSON."""
    return subprocess.run(
        [str(BIN_DIR / "python"), "-c", _SHOW],
        cwd=get_app(app_id).directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _settings(app_id: str, variant: str | None) -> dict[str, Any]:
    """The settings the app's Python sees with the environment a server would get."""
    done = _show(app_id, _server_env(app_id, variant))
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


DJANGO_VARIANTS = [name for name, variant in VARIANTS.items() if variant.settings]


def test_every_variant_is_tested_here() -> None:
    """Django's here; fastapi_sqla's in test_fastapi_variants.py."""
    assert set(REMOVED) == set(DJANGO_VARIANTS)
    for name in DJANGO_VARIANTS:
        variant = VARIANTS[name]
        assert variant.module_file == OVERLAYS / f"{variant.settings}.py"
        assert variant.module_file.is_file(), name
        apps = ("django_sync",) if name in ON_PSYCOPG2 else tuple(SERVER_OF)
        assert variant.apps == apps and variant.entry is None
    others = {name for name in VARIANTS if name not in DJANGO_VARIANTS}
    assert all(VARIANTS[name].apps == ("fastapi_sqla",) for name in others)


@pytest.mark.parametrize(
    ("app_id", "name"),
    [(app_id, name) for name in DJANGO_VARIANTS for app_id in VARIANTS[name].apps],
)
def test_a_variant_changes_exactly_its_feature(app_id: str, name: str) -> None:
    shipped, changed = _settings(app_id, None), _settings(app_id, name)
    assert shipped["module"] == "project.settings" and shipped["middleware"] == SEVEN
    assert (shipped["pool"], shipped["driver"]) == (True, "psycopg")
    assert changed["module"] == VARIANTS[name].settings
    assert changed["middleware"] == [m for m in SEVEN if m not in REMOVED[name]]
    if name in ("persistent-conns", *ON_PSYCOPG2):
        assert changed["pool"] is False and changed["conn_max_age"] is None
        assert changed["driver"] == ("psycopg2" if name in ON_PSYCOPG2 else "psycopg")
    else:
        assert (changed["pool"], changed["conn_max_age"]) == (True, shipped["conn_max_age"])
        assert changed["driver"] == "psycopg"


@pytest.mark.parametrize("name", ON_PSYCOPG2)
def test_the_psycopg2_overlay_refuses_an_app_still_on_psycopg3(name: str) -> None:
    """Without the app's own switch (DJANGO_DB_DRIVER) the overlay would price psycopg 3
    without its pool under psycopg2's name; it refuses instead."""
    env = _server_env("django_sync", name)
    assert env["DJANGO_DB_DRIVER"] == "psycopg2"
    del env["DJANGO_DB_DRIVER"]
    done = _show("django_sync", env)
    assert done.returncode != 0
    assert "variant psycopg2: the app is still on psycopg 3" in done.stderr


@pytest.mark.parametrize("name", ON_PSYCOPG2)
def test_psycopg2_applies_to_django_sync_only(name: str) -> None:
    with pytest.raises(VariantError, match="does not apply to django_async"):
        get_variant(name, ["django_async"])


@pytest.mark.parametrize(
    ("argv", "needs"),
    [
        (["--variant", "psycopg2"], ["psycopg2-binary>=2.9,<3"]),
        (["--scenarios", "db", "--variant=psycopg2"], ["psycopg2-binary>=2.9,<3"]),
        (["--variant", "no-csrf-mw"], []),
        (["--variant", "nope"], []),
        (["--scenarios", "psycopg2"], []),
    ],
)
def test_a_sessions_posargs_name_what_its_variant_needs(argv: list[str], needs: list[str]) -> None:
    """The noxfile installs these beside the app for `bench` and `serve`."""
    assert requirements_for(SessionArgs.parse(argv).variants) == needs


def test_an_overlay_refuses_to_remove_what_the_app_lacks() -> None:
    """A renamed middleware must fail the variant, not measure the baseline twice."""
    spec = importlib.util.spec_from_file_location("sb_overlay", OVERLAYS / "sb_overlay.py")
    assert spec is not None and spec.loader is not None
    overlay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overlay)
    assert overlay.without(["a.B", "c.D"], "a.B") == ["c.D"]
    with pytest.raises(ImproperlyConfigured, match=r"no a\.X"):
        overlay.without(["a.B"], "a.X")


# ------------------------------------------------------------------ served, end to end


def _served(db: Database, upstream_url: str, logs: Path, variant: str) -> Any:
    return serve(
        get_app("django_sync"),
        get_server("gunicorn-gthread"),
        database_url=db.url,
        upstream_url=upstream_url,
        bin_dir=BIN_DIR,
        log_dir=logs,
        knobs=Knobs(workers=1, pool_size=4),
        cpus=1,
        variant=get_variant(variant),
    )


def _security_headers(served: Served) -> dict[str, str | None]:
    headers = httpx.get(f"{served.base_url}/json", timeout=30).headers
    return {name: headers.get(name) for name in ("x-frame-options", "x-content-type-options")}


@pytest.mark.slow
def test_the_served_app_runs_without_the_removed_middleware(
    db: Database, upstream_url: str, app_servers: Any, tmp_path: Path
) -> None:
    """As shipped, every response carries XFrameOptionsMiddleware's and SecurityMiddleware's
    headers. The server of no-xframe-mw answers without the first; the server of
    no-middleware without either. (CSRF cannot be told apart this way: the API is
    csrf_exempt and the admin's views are csrf_protect-ed with or without the middleware;
    the settings test above covers it.)"""
    shipped = app_servers.get("django_sync", "gunicorn-gthread")
    assert _security_headers(shipped) == {
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
    }
    with _served(db, upstream_url, tmp_path, "no-xframe-mw") as served:
        assert served.env["DJANGO_SETTINGS_MODULE"] == "sb_no_xframe"
        assert _security_headers(served) == {
            "x-frame-options": None,
            "x-content-type-options": "nosniff",
        }
    with _served(db, upstream_url, tmp_path, "no-middleware") as served:
        assert _security_headers(served) == {
            "x-frame-options": None,
            "x-content-type-options": None,
        }


@pytest.mark.slow
def test_a_variants_results_and_manifest_name_it(tmp_path: Path) -> None:
    owner = uuid.uuid4().hex
    process = bench_process(
        "django_sync",
        "gunicorn-gthread",
        tmp_path,
        "--scenarios",
        "json",
        "--variant",
        "no-xframe-mw",
        owner=owner,
    )
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr + stdout
    run_dir = only_run_dir(tmp_path)
    (document,) = result_documents(run_dir)
    assert (run_dir / "django_sync--gunicorn-gthread--json--no-xframe-mw.json").is_file()
    assert document["label"] == "no-xframe-mw" and document["status"] == "ok"
    assert document["server_env"]["DJANGO_SETTINGS_MODULE"] == "sb_no_xframe"
    manifest = results.read_json(run_dir / "manifest.json", "manifest")
    (job,) = manifest["options"]["jobs"]
    assert (job["label"], job["variant"]) == ("no-xframe-mw", "no-xframe-mw")
    assert processes_owned_by(owner) == []


# ------------------------------------------------------------------ refused at the edge


def _stackbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": UNREACHABLE},
    )


REFUSED = [
    (["bench", "--app", "django_sync", "--server", "gunicorn-gthread", "--variant", "nope"],
     "unknown variant 'nope'"),
    (["bench", "--app", "gino_style", "--server", "uvicorn", "--variant", "no-csrf-mw"],
     "does not apply to gino_style"),
    (["bench", "--pairs", "django_sync@gunicorn-gthread,fastapi_sqla@uvicorn",
      "--variant", "persistent-conns"], "does not apply to fastapi_sqla"),
    (["bench", "--target", "http://127.0.0.1:1", "--target-stats", "http://127.0.0.1:1",
      "--variant", "no-csrf-mw"], "--variant is serve's option"),
    (["experiment", "django-features", "--variants", "no-csrf-mw,nope"],
     "unknown variant 'nope'"),
    (["experiment", "django-features", "--pairs", "gino_style@uvicorn"],
     "no bench variant applies to gino_style"),
    (["experiment", "django-features", "--pairs", "gino_style@uvicorn", "--variants",
      "no-csrf-mw"], "does not apply to gino_style"),
    (["bench", "--app", "fastapi_sqla", "--server", "uvicorn", "--variant", "no-csrf-mw"],
     "does not apply to fastapi_sqla"),
    (["bench", "--app", "django_async", "--server", "uvicorn", "--variant", "core-queries"],
     "does not apply to django_async"),
    (["bench", "--pairs", "fastapi_sqla@uvicorn,tortoise@uvicorn", "--variant",
      "no-templates"], "does not apply to tortoise"),
    (["experiment", "fastapi-features", "--variants", "core-queries,nope"],
     "unknown variant 'nope'"),
    (["experiment", "fastapi-features", "--variants", "persistent-conns"],
     "does not apply to fastapi_sqla"),
    (["experiment", "django-features", "--variants", "autocommit-session"],
     "does not apply to django_sync"),
    (["experiment", "fastapi-features", "--pairs", "gino_style@uvicorn"],
     "no bench variant applies to gino_style"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_a_bad_variant_is_one_line_and_exit_2(argv: list[str], says: str, tmp_path: Path) -> None:
    output = tmp_path / "results"
    result = _stackbench(*argv, "--output", str(output))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not output.exists()


SERVE_REFUSED = [
    (["--app", "fastapi_sqla", "--server", "uvicorn", "--variant", "nope"],
     "unknown variant 'nope'"),
    (["--app", "fastapi_sqla", "--server", "uvicorn", "--variant", "no-csrf-mw"],
     "does not apply to fastapi_sqla"),
    (["--app", "django_sync", "--server", "gunicorn-gthread", "--variant", "core-queries"],
     "does not apply to django_sync"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), SERVE_REFUSED, ids=[a[-1] for a, _ in SERVE_REFUSED])
def test_serve_refuses_a_bad_variant_in_one_line(
    argv: list[str], says: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready.json"
    result = _stackbench("serve", *argv, "--ready-file", str(ready))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert result.stdout == "" and not ready.exists()  # nothing was started


def _loaded_libraries(pgid: int) -> str:
    """The shared objects mapped by every process of the group (the server and workers)."""
    maps = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getpgid(int(proc.name)) == pgid:
                maps.append((proc / "maps").read_text())
        except (OSError, ProcessLookupError):
            continue
    return "".join(maps)


@pytest.mark.slow
def test_the_served_psycopg2_variant_queries_through_psycopg2(
    db: Database, upstream_url: str, tmp_path: Path
) -> None:
    with _served(db, upstream_url, tmp_path, "psycopg2") as served:
        assert served.env["DJANGO_DB_DRIVER"] == "psycopg2"
        world = httpx.get(f"{served.base_url}/db", timeout=30).json()
        with db.connect() as conn:
            row = conn.execute("SELECT randomnumber FROM world WHERE id = %s", (world["id"],))
            assert row.fetchone() == (world["randomNumber"],)
        libraries = _loaded_libraries(os.getpgid(served.process.popen.pid))
        assert "psycopg2" in libraries and "psycopg_binary" not in libraries
