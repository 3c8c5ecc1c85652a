"""Each FastAPI / Starlette app's OpenAPI schema tells the truth: schemathesis finds nothing.

The app is served by a real uvicorn with API_DOCS=1 (its documentation routes are off
otherwise, and the shared servers keep them off), and schemathesis's CLI runs against it:
generated requests, valid and invalid, each response checked against the schema (status,
content type, body, headers, Allow). Two hooks (``schemathesis_hooks.py``) keep it fast
and drop the one contract decision a JSON Schema cannot state, each with its reason there.
A planted liar (an app whose schema says what it does not do) must fail the same run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared_fixtures.net import free_port
from shared_fixtures.processes import ManagedProcess
from stackbench.apps import get_app
from stackbench.server_process import Served, answers_health, serve
from stackbench.servers import Knobs, get_server

BIN_DIR = Path(sys.executable).parent
HOOKS_DIR = Path(__file__).parent  # schemathesis_hooks.py
# Per operation; the run is seeded, so a failure found once is found again.
MAX_EXAMPLES = "25"
TARGETS = [
    ("fastapi_sqla", ""),
    ("tortoise", ""),
    ("django_fastapi", "/fastapi"),
    ("gino_style", ""),
]
# FastAPI serves pages for the schema too; gino_style (Starlette's SchemaGenerator) does not.
PAGES = {"fastapi_sqla": ("/docs", "/redoc"), "tortoise": ("/docs", "/redoc")}
PAGES["django_fastapi"] = PAGES["fastapi_sqla"]


def run_schemathesis(schema_url: str, work_dir: Path) -> subprocess.CompletedProcess[str]:
    """`schemathesis run --checks all` against a live schema, as a user would run it."""
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(HOOKS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    work_dir.mkdir(parents=True, exist_ok=True)  # its .schemathesis cache goes here
    return subprocess.run(
        [
            str(BIN_DIR / "schemathesis"),
            "run",
            schema_url,
            "--checks",
            "all",
            # One worker: hypothesis's lambda descriptions are not thread-safe on 3.11
            # ("AST constructor recursion depth mismatch" under --workers 2).
            "--workers",
            "1",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "26",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        cwd=work_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture
def documented(
    request: pytest.FixtureRequest,
    db,  # type: ignore[no-untyped-def]
    upstream_url: str,
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    """The app under uvicorn with API_DOCS=1, for this test only."""
    monkeypatch.setenv("API_DOCS", "1")  # the server's environment is this process's
    app_id = request.param
    with serve(
        get_app(app_id),
        get_server("uvicorn"),
        database_url=db.url,
        upstream_url=upstream_url,
        bin_dir=BIN_DIR,
        log_dir=work_dir / f"openapi-{app_id}",
        knobs=Knobs(workers=1, pool_size=4),
        cpus=1,
    ) as served:
        yield served


@pytest.mark.slow
@pytest.mark.timeout(600)  # 3-4 minutes a target on a busy 2-core machine (CI's 300 s cut one)
@pytest.mark.parametrize(
    ("documented", "prefix"), TARGETS, indirect=["documented"], ids=[a for a, _ in TARGETS]
)
def test_schemathesis_finds_nothing(documented: Served, prefix: str, work_dir: Path) -> None:
    base = documented.base_url + prefix
    for page in PAGES.get(documented.app.id, ()):  # API_DOCS=1 turns the documentation on
        assert httpx.get(base + page).status_code == 200, page
    done = run_schemathesis(f"{base}/openapi.json", work_dir / f"st-{documented.app.id}")
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary + done.stderr[-2000:]
    # "N generated, N passed": every case generated was checked and passed.
    counted = re.search(r"(\d+) generated, \1 passed", done.stdout)
    assert counted, summary
    dropped = re.search(r"Filtered: \d+", done.stdout)
    print(f"{documented.app.id}: {counted.group(0)}; {dropped.group(0) if dropped else ''}")


LIAR = """
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/items", response_model=dict[str, int])
def items(limit: int = Query(1, ge=1, le=10)):
    # The schema says an integer comes back for any limit in 1..10: not past 5.
    if limit > 5:
        return JSONResponse({"items": "too many"})
    return {"items": limit}
"""


def test_a_schema_that_lies_fails_the_run(work_dir: Path) -> None:
    """The verdict's planted fault: the same run against an app whose schema is wrong."""
    app_dir = work_dir / "liar"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "liar.py").write_text(textwrap.dedent(LIAR))
    port = free_port("127.0.0.1")
    process = ManagedProcess(
        [str(BIN_DIR / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "liar:app"],
        name="uvicorn (liar)",
        log_path=app_dir / "uvicorn.log",
        cwd=app_dir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(lambda: answers_health(base, path="/openapi.json"), 30, "up")
        done = run_schemathesis(f"{base}/openapi.json", app_dir / "st")
    finally:
        process.stop()
    assert done.returncode != 0, done.stdout[-3000:]
    assert "Response violates schema" in done.stdout or "ST108" in done.stdout, done.stdout[-3000:]
