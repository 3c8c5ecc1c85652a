"""Scenarios: the CSRF login flow against a server that enforces it, built-in endpoint
scenarios (right and wrong answers), scenario files, options."""

from __future__ import annotations

import textwrap

import pytest

import loadgen
from loadgen import Config
from loadgen.config import ConfigError
from loadgen.scenarios import BUILTINS

CREDS = {"username": "admin", "password": "secret"}


def checks(r: loadgen.Result) -> dict[str, tuple[int, int]]:
    return {c["name"]: (c["passes"], c["fails"]) for c in r.checks}


def test_django_admin_login_flow(server, engine) -> None:
    r = loadgen.run_sync(
        Config(
            url=server.base,
            scenario="django-admin-login",
            scenario_options=CREDS,
            requests=12,
            concurrency=3,
            **engine,
        )
    )
    assert r.stats.iterations == 12
    assert r.errors == {} and r.failed == 0
    by_name = {s.name: s for s in r.stats.sinks.values()}
    assert set(by_name) == {
        "GET /admin/login/",
        "POST /admin/login/",
        "GET /api/colleges",
        "GET /api/troupes",
    }
    assert all(s.n_requests == 12 for s in by_name.values())
    assert by_name["POST /admin/login/"].statuses == {302: 12}
    c = checks(r)
    assert c["login: 302 to /admin/"] == (12, 0)
    assert c["login page: csrftoken cookie set"] == (12, 0)
    assert c["colleges: body is a page of colleges"] == (12, 0)
    assert all(f == 0 for _, f in c.values()), c
    d = r.to_dict()
    assert d["scenario"]["options"]["password"] == "***"  # never in a report


def test_login_with_wrong_password_fails_checks_not_transport(server, monkeypatch) -> None:
    monkeypatch.setenv("STACKBENCH_ADMIN_USER", "admin")
    monkeypatch.setenv("STACKBENCH_ADMIN_PASSWORD", "wrong")
    r = loadgen.run_sync(
        Config(url=server.base, scenario="django-admin-login", requests=4, concurrency=2)
    )
    assert r.errors == {}
    c = checks(r)
    assert c["login: 302 to /admin/"] == (0, 4)
    # the POST answered 200 where 302 was expected: a failed request, status kept
    post = r.stats.sinks["POST /admin/login/"]
    assert post.statuses == {200: 4} and post.failed == 4


def test_csrf_is_enforced_by_the_test_server(server, tmp_path) -> None:
    f = tmp_path / "nocsrf.py"
    f.write_text(
        textwrap.dedent('''
        """Posts the login form without the CSRF token."""
        from loadgen import flow

        @flow(weight=1)
        async def login(user):
            await user.get("/admin/login/")
            user.cookies.clear()
            r = await user.post("/admin/login/", form={"username": "admin",
                                "password": "secret"}, expect=[302])
            user.check("rejected", r.status == 403)
    ''')
    )
    r = loadgen.run_sync(Config(url=server.base, scenario=str(f), requests=3, concurrency=1))
    assert checks(r) == {"rejected": (3, 0)}
    assert r.stats.sinks["POST /admin/login/"].statuses == {403: 3}


ENDPOINT_SCENARIOS = [n for n in BUILTINS if n not in ("django-admin-login",)]


@pytest.mark.parametrize("name", ENDPOINT_SCENARIOS)
def test_builtin_endpoint_scenarios_pass_on_right_answers(server, name) -> None:
    opts = {"sample": "1"}
    if name.startswith("slow-"):
        opts["seconds"] = "0.01"
    r = loadgen.run_sync(
        Config(url=server.base, scenario=name, scenario_options=opts, requests=30, concurrency=3)
    )
    assert r.requests == 30 and r.errors == {} and r.failed == 0, r.status_codes
    c = checks(r)
    assert c and all(f == 0 for _, f in c.values()), c
    body = [v for k, v in c.items() if "status is" not in k]
    assert body and all(p > 0 for p, _ in body), c


@pytest.mark.parametrize(
    "name",
    [
        "json",
        "db",
        "queries",
        "fortunes",
        "colleges",
        "troupe-detail",
        "slow-db",
        "slow-fanout",
        "plaintext",
    ],
)
def test_wrong_answers_are_failed_checks(server, name) -> None:
    r = loadgen.run_sync(
        Config(
            url=server.url("/wrong"),
            scenario=f"{name}?sample=1&seconds=0",
            requests=10,
            concurrency=2,
        )
    )
    assert r.errors == {} and r.failed == 0  # right status, wrong body
    c = checks(r)
    body = [v for k, v in c.items() if "status is" not in k]
    assert body and all(v == (0, 10) for v in body), c


def test_mix_keeps_stats_per_name(server) -> None:
    r = loadgen.run_sync(
        Config(
            url=server.base,
            scenario="mix",
            scenario_options={"weights": "json:1,db:1,plaintext:2"},
            requests=400,
            concurrency=4,
            seed=1,
        )
    )
    names = {n: s.n_requests for n, s in r.stats.sinks.items()}
    assert set(names) == {"json", "db", "plaintext"}
    assert sum(names.values()) == 400
    assert 130 < names["plaintext"] < 270  # weight 2 of 4
    assert all(f == 0 for _, f in checks(r).values())


def test_scenario_file_with_weights_options_and_flow_errors(server, tmp_path) -> None:
    f = tmp_path / "s.py"
    f.write_text(
        textwrap.dedent("""
        OPTIONS = {"path": "/json"}

        async def ok(user):
            r = await user.get(user.options["path"], name="ok")
            user.check("json ok", r.json() == {"message": "Hello, World!"})

        async def broken(user):
            await user.get("/status/500", name="broken")
            raise RuntimeError("scenario bug")

        FLOWS = [(3, ok), (1, broken)]
    """)
    )
    r = loadgen.run_sync(
        Config(url=server.base, scenario=f"{f}", requests=200, concurrency=4, seed=3)
    )
    assert r.stats.iterations == 200
    ok = r.stats.sinks["ok"].n_requests
    broken = r.stats.sinks["broken"].n_requests
    assert ok + broken == 200 and 110 < ok < 190
    assert r.stats.flow_errors == {"RuntimeError": broken}
    assert r.errors == {}  # exceptions in flows are not transport errors
    assert r.stats.sinks["broken"].failed == broken  # a 500 is a failed request
    assert checks(r)["json ok"] == (ok, 0)
    r2 = loadgen.run_sync(
        Config(url=server.base, scenario=f"{f}?path=/plaintext", requests=20, concurrency=1, seed=3)
    )
    assert r2.stats.flow_errors.get("JSONDecodeError", 0) > 0  # the option took effect


def test_flow_scenario_open_model(server) -> None:
    r = loadgen.run_sync(
        Config(
            url=server.base,
            scenario="django-admin-login",
            scenario_options=CREDS,
            rate=100,
            requests=20,
            concurrency=5,
        )
    )
    assert r.stats.iterations == 20 and r.stats.scheduled == 20
    assert r.corrected.count == 80 and r.errors == {}


def test_bad_scenarios_are_config_errors(tmp_path) -> None:
    for spec, opts in [
        ("no-such-scenario", {}),
        (str(tmp_path / "missing.py"), {}),
        ("slow-db", {"seconds": "abc"}),
        ("slow-db", {"seconds": "11"}),
        ("mix", {"weights": "nope:1"}),
        ("django-admin-login", {}),
    ]:
        with pytest.raises(ConfigError):
            loadgen.load_scenario(spec, opts)
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def (:\n")
    for p in (empty, syntax):
        with pytest.raises(ConfigError):
            loadgen.load_scenario(str(p))
