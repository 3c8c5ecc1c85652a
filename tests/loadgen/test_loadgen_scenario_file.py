"""Scenario files (TOML, --scenario-file): every key read, every mistake refused in one
line naming where it is, and the scenarios run against a real server: templated ids
drawn within their range or list, weights honoured, statuses and each kind of check
counted, the exact request count served, open and closed model, processes and agents."""

from __future__ import annotations

import json
import random
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import loadgen
from loadgen import Config
from loadgen.config import ConfigError
from loadgen.merge import merge_reports
from loadgen.scenario_file import read

FULL = """
[scenarios.shop]
description = "browse, then buy"

[[scenarios.shop.requests]]
name = "item"
path = "/items/{id}"
ids = {range = [3, 9]}
weight = 3
headers = {Accept = "application/json", X-Token = "abc"}
status = [200, 304]
check.json = {path = "item.tags.0", equals = "new"}
check.regex = "sku-\\\\d+"

[[scenarios.shop.requests]]
name = "buy"
method = "post"
path = "/cart?user={user}&sku={sku}"
ids = {user = {list = ["a b", "x/y", 7]}, sku = {range = [1, 1]}}
json = {sku = 1, gift = true, note = "ok"}
status = 201
check.schema = {type = "object", required = ["order"]}

[[scenarios.shop.requests]]
path = "/raw"
body = "a=1&b=2"
headers = {Content-Type = "application/x-www-form-urlencoded"}
weight = 0.5
"""


def write(tmp_path: Path, text: str, name: str = "scenarios.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run(path: str, scenario: str, url: str, **kw) -> loadgen.Result:  # type: ignore[no-untyped-def]
    config = Config(url=url, scenario_file=path, scenario=scenario, **kw)
    return loadgen.run_sync(config)


def checks(r: loadgen.Result) -> dict[str, tuple[int, int]]:
    return {c["name"]: (c["passes"], c["fails"]) for c in r.checks}


# -- reading --------------------------------------------------------------------------------
def test_every_key_is_read(tmp_path: Path) -> None:
    file = read(write(tmp_path, FULL))
    assert file.names == ["shop"] and file.descriptions == {"shop": "browse, then buy"}
    assert len(file.sha256) == 64
    scenario = file.scenario("shop", {"sample": "4"})
    item, buy, raw = scenario.endpoints
    assert (scenario.kind, scenario.options, scenario.file_sha256) == (
        "endpoints", {"sample": "4"}, file.sha256,
    )  # fmt: skip
    assert (item.name, item.method, item.weight, item.expect) == (
        "item", "GET", 3.0, frozenset({200, 304}),
    )  # fmt: skip
    assert item.headers == (("Accept", "application/json"), ("X-Token", "abc"))
    assert item.sample_every == 4 and item.variants > 100 and item.body == b""
    assert item.check == "body at item.tags.0 is \"new\" and body matches 'sku-\\\\d+'"
    assert item.validate is not None
    assert item.validate(200, b'{"item": {"tags": ["new"]}, "s": "sku-12"}')
    assert not item.validate(200, b'{"item": {"tags": ["old"]}, "s": "sku-12"}')
    assert not item.validate(200, b'{"item": {"tags": ["new"]}, "s": "sku-x"}')
    assert (buy.method, buy.expect, buy.weight) == ("POST", frozenset({201}), 1.0)
    assert json.loads(buy.body) == {"sku": 1, "gift": True, "note": "ok"}
    assert buy.headers == (("Content-Type", "application/json"),)
    assert buy.validate is not None and buy.validate(201, b'{"order": 1}')
    assert not buy.validate(201, b'{"cart": 1}')
    assert callable(buy.path)
    drawn = {buy.path(random.Random(seed)) for seed in range(60)}
    assert drawn == {f"/cart?user={u}&sku=1" for u in ("a%20b", "x%2Fy", "7")}
    assert (raw.name, raw.path, raw.body, raw.weight, raw.validate) == (
        "GET /raw", "/raw", b"a=1&b=2", 0.5, None,
    )  # fmt: skip


def test_the_readme_example_reads(tmp_path: Path) -> None:
    readme = (Path(loadgen.__file__).parent / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = read(write(tmp_path, example)).scenario("browse", {})
    assert [e.name for e in scenario.endpoints] == ["item", "page", "search", "buy", "contact"]


def test_json_equality_is_json_s(tmp_path: Path) -> None:
    """1 is 1.0, true is not 1, a missing path is no value, arrays count from 0 (or -1)."""
    cases = [
        ("a", "1", b'{"a": 1.0}', True),
        ("a", "1", b'{"a": true}', False),
        ("a", "true", b'{"a": 1}', False),
        ("a.1", "2", b'{"a": [1, 2]}', True),
        ("a.-1", "2", b'{"a": [1, 2]}', True),
        ("a.2", "2", b'{"a": [1, 2]}', False),
        ("a.b", "[1, {c = 'd'}]", b'{"a": {"b": [1, {"c": "d"}]}}', True),
        ("a.b", "[1, {c = 'd'}]", b'{"a": {"b": [1, {"c": "d", "e": 1}]}}', False),
        ("", "{m = 'x'}", b'{"m": "x"}', True),
        ("a", '"1"', b'{"a": 1}', False),
    ]
    for at, value, body, same in cases:
        text = f"""
        [[scenarios.s.requests]]
        path = "/"
        check.json = {{path = "{at}", equals = {value}}}
        """
        (endpoint,) = read(write(tmp_path, text)).scenario("s", {}).endpoints
        assert endpoint.validate is not None
        assert endpoint.validate(200, body) is same, (at, value, body)


REQUEST = '[[scenarios.s.requests]]\npath = "/x"\n'
REFUSED = [
    # unknown keys, at every level, each named with where it is
    ('wieght = 1\n[[scenarios.s.requests]]\npath = "/"', "'wieght'"),
    ('[scenarios.s]\ndescripton = "x"\n' + REQUEST, "scenario 's': unknown key 'descripton'"),
    (
        REQUEST + "wieght = 2",
        "scenario 's', request 1: unknown key 'wieght' (did you mean weight?)",
    ),
    (REQUEST + 'name = "n"\ncheck.jsn = {}', "request 1 ('n'): unknown key 'check.jsn'"),
    (
        REQUEST + "check.json = {path = 'a', equals = 1, equal = 2}",
        "unknown key 'check.json.equal'",
    ),
    (REQUEST + "ids = {rang = [1, 2]}", "unknown key 'ids.rang'"),
    ('[[scenarios.s.requests]]\npath = "/{a}"\nids = {a = {lst = [1]}}', "unknown key 'ids.a.lst'"),
    # what a scenario and a request must be
    ("", "no [scenarios.NAME] table"),
    ("[scenarios.s]", "scenario 's': no requests"),
    ('[[scenarios."a/b".requests]]\npath = "/"', "scenario 'a/b': a name is"),
    ("[[scenarios.s.requests]]\nmethod = 'GET'", "request 1: no path"),
    (REQUEST + REQUEST, "two requests are named 'GET /x'"),
    ("[[scenarios.s.requests]]\npath = 'x'", "path: must start with '/'"),
    ("[[scenarios.s.requests]]\npath = '/a b'", "visible ASCII only"),
    ("[[scenarios.s.requests]]\npath = '/é'", "visible ASCII only"),
    ("[[scenarios.s.requests]]\npath = '/{'", "a lone '{'"),
    ("[[scenarios.s.requests]]\npath = '/{0}'", "{0} is not a placeholder"),
    ("[[scenarios.s.requests]]\npath = '/{id:>3}'\nids = {range = [1, 2]}", "is not a placeholder"),
    ("[[scenarios.s.requests]]\npath = '/{id}'", "{id} has no values in ids"),
    (REQUEST + "ids = {range = [1, 2]}", "ids: the path has no {id}"),
    (
        "[[scenarios.s.requests]]\npath = '/{a}'\nids = {a = {range = [1, 2]}, b = {list = [1]}}",
        "ids.b: the path has no {b}",
    ),
    ("[[scenarios.s.requests]]\npath = '/{id}'\nids = {range = [5, 1]}", "ids.range: must be"),
    ("[[scenarios.s.requests]]\npath = '/{id}'\nids = {range = [1, 2.5]}", "ids.range: must be"),
    ("[[scenarios.s.requests]]\npath = '/{id}'\nids = {list = []}", "ids.list: must be"),
    ("[[scenarios.s.requests]]\npath = '/{id}'\nids = {list = [true]}", "ids.list: must be"),
    ("[[scenarios.s.requests]]\npath = '/{id}'\nids = {range = [1, 2], list = [3]}", "give one of"),
    (REQUEST + "method = 'GE T'", "method: invalid method"),
    (REQUEST + "weight = 0", "weight: must be above 0"),
    (REQUEST + "weight = 'heavy'", "weight: must be a number"),
    (REQUEST + "weight = inf", "weight: must be above 0"),
    (REQUEST + "status = 99", "status: a status is 100..599"),
    (REQUEST + "status = [200, '201']", "status: a status is 100..599"),
    (REQUEST + "status = []", "status: an empty list"),
    (REQUEST + "headers = {'X A' = 'b'}", "headers.X A: invalid header"),
    (REQUEST + "headers = {X = 1}", "headers.X: must be a str"),
    (REQUEST + "headers = {X = '✓'}", "headers.X: not Latin-1 text"),
    (REQUEST + "body = 'a'\njson = 1", "body and json: give one"),
    (REQUEST + "json = {at = 1979-05-27}", "json: a TOML date or time has no JSON form"),
    (REQUEST + "json = nan", "has no JSON form"),
    (REQUEST + "check = {}", "check: must be a table"),
    (REQUEST + "check.json = {path = 'a'}", "check.json: needs path and equals"),
    (REQUEST + "check.regex = '('", "check.regex: missing )"),
    (REQUEST + "check.schema = {type = 'nonsense'}", "check.schema: not a JSON Schema"),
    (REQUEST + "check.schema = 3", "check.schema: must be a table"),
    # not a scenario file at all
    ("[[scenarios.s.requests]\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "says"), REFUSED, ids=[s for _, s in REFUSED])
def test_a_mistake_is_one_line_naming_where_it_is(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        read(path)
    message = str(refused.value)
    assert message.startswith(path) and says in message and "\n" not in message, message


def test_unreadable_files_and_unknown_names_and_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario file"):
        read(str(tmp_path / "none.toml"))
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read(str(tmp_path / "bin.toml"))
    file = read(write(tmp_path, REQUEST))
    with pytest.raises(ConfigError, match=r"has no scenario 'x' \(it has: s\)"):
        file.scenario("x", {})
    with pytest.raises(ConfigError, match="'seconds': a file's scenarios take sample"):
        file.scenario("s", {"seconds": "1"})
    with pytest.raises(ConfigError, match="'sample' must be positive"):
        file.scenario("s", {"sample": "0"})


def test_a_schema_without_jsonschema_says_to_install_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="needs the jsonschema package: pip install jsonschema"):
        read(write(tmp_path, REQUEST + "check.schema = {type = 'object'}"))
    read(write(tmp_path, REQUEST + "check.json = {path = 'a', equals = 1}"))  # others need none


# -- running --------------------------------------------------------------------------------
def test_ids_are_drawn_within_their_range_and_list(fresh_server, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[scenarios.s.requests]]
        path = "/api/colleges/{id}"
        ids = {range = [3, 9]}
        [[scenarios.s.requests]]
        path = "/fast?k={key}"
        ids = {key = {list = ["a b", "x/y", 7]}}
        """,
    )
    r = run(path, "s", fresh_server.base, requests=700, concurrency=4, processes=2)
    served = fresh_server.targets()
    assert sum(served.values()) == 700 == r.requests and r.failed == 0
    colleges = {t: n for t, n in served.items() if t.startswith("/api/colleges/")}
    assert {int(t.rsplit("/", 1)[1]) for t in colleges} == set(range(3, 10))
    keys = {t: n for t, n in served.items() if t.startswith("/fast")}
    assert set(keys) == {"/fast?k=a%20b", "/fast?k=x%2Fy", "/fast?k=7"}
    assert min(keys.values()) > sum(keys.values()) / 3 * 0.6  # each about a third


def test_weights_are_honoured(fresh_server, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[scenarios.s.requests]]
        path = "/fast?w=1"
        [[scenarios.s.requests]]
        path = "/fast?w=3"
        weight = 3
        [[scenarios.s.requests]]
        path = "/fast?w=half"
        weight = 0.5
        """,
    )
    n = 2250
    run(path, "s", fresh_server.base, requests=n, concurrency=4, seed=7)
    served = fresh_server.targets()
    assert sum(served.values()) == n
    for target, weight in (("/fast?w=1", 1), ("/fast?w=3", 3), ("/fast?w=half", 0.5)):
        share = weight / 4.5
        expected = n * share
        bound = 5 * (n * share * (1 - share)) ** 0.5  # five standard deviations
        assert abs(served[target] - expected) < bound, (target, served[target], expected)


# (check, right path, wrong path): each kind of check passes on the right answer and
# fails on the wrong one (the test server's /wrong/ prefix), counted on every response
KINDS = {
    "json": ('check.json = {path = "message", equals = "Hello, World!"}', "/json", "/wrong/json"),
    "regex": ('check.regex = "^Hello, W.rld!$"', "/plaintext", "/wrong/plaintext"),
    "schema": (
        'check.schema = {type = "object", properties = {randomNumber = {type = "integer"}},'
        ' required = ["id", "randomNumber"]}',
        "/db",
        "/wrong/db",
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_check_passes_on_the_right_body_and_fails_on_a_wrong_one(
    server, tmp_path: Path, kind: str
) -> None:
    check, right, wrong = KINDS[kind]
    text = f'[[scenarios.right.requests]]\nname = "r"\npath = "{right}"\n{check}\n'
    text += f'[[scenarios.wrong.requests]]\nname = "w"\npath = "{wrong}"\n{check}\n'
    path = write(tmp_path, text)
    every = {"requests": 40, "concurrency": 2, "scenario_options": {"sample": "1"}}
    good, bad = run(path, "right", server.base, **every), run(path, "wrong", server.base, **every)
    (good_check,) = [name for name in checks(good) if name.startswith("r: body")]
    assert checks(good)[good_check] == (40, 0) and checks(good)["r: status is 200"] == (40, 0)
    (bad_check,) = [name for name in checks(bad) if name.startswith("w: body")]
    assert checks(bad)[bad_check] == (0, 40) and checks(bad)["w: status is 200"] == (40, 0)
    assert good.failed == bad.failed == 0  # a wrong body is a failed check, not a failure


def test_a_sampled_check_runs_on_about_one_in_sample(server, tmp_path: Path) -> None:
    path = write(tmp_path, REQUEST.replace("/x", "/json") + 'check.regex = "Hello"')
    r = run(path, "s", server.base, requests=800, concurrency=2)  # sample: 16 by default
    passes, fails = checks(r)["GET /json: body matches 'Hello'"]
    assert fails == 0 and 800 / 16 / 2 < passes < 800 / 16 * 2


def test_a_wrong_status_fails_the_request(server, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[scenarios.s.requests]]
        name = "created"
        path = "/json"
        status = 201
        [[scenarios.s.requests]]
        name = "either"
        path = "/status/404"
        status = [200, 404]
        """,
    )
    r = run(path, "s", server.base, requests=200, concurrency=2)
    c = checks(r)
    created, either = c["created: status is 201"], c["either: status is 200/404"]
    assert created[0] == 0 and either[1] == 0 and created[1] + either[0] == 200
    assert r.failed == created[1] > 0 and r.errors == {}


def test_headers_and_bodies_are_sent_as_declared(server, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[scenarios.s.requests]]
        name = "json"
        method = "PUT"
        path = "/echo"
        headers = {X-Token = "abc"}
        json = {a = [1, 2]}
        check.json = {path = "body", equals = '{"a":[1,2]}'}
        [[scenarios.s.requests]]
        name = "token"
        method = "PUT"
        path = "/echo"
        headers = {X-Token = "abc"}
        json = {a = [1, 2]}
        check.json = {path = "headers.x-token", equals = "abc"}
        [[scenarios.s.requests]]
        name = "type"
        method = "PUT"
        path = "/echo"
        json = {a = [1, 2]}
        check.json = {path = "headers.content-type", equals = "application/json"}
        [[scenarios.s.requests]]
        name = "form"
        method = "POST"
        path = "/echo"
        body = "a=1&b=é"
        check.json = {path = "body", equals = "a=1&b=é"}
        """,
    )
    r = run(path, "s", server.base, requests=100, concurrency=2, scenario_options={"sample": "1"})
    assert r.failed == 0 and r.errors == {}
    body_checks = {k: v for k, v in checks(r).items() if ": body" in k}
    assert len(body_checks) == 4 and all(f == 0 and p > 0 for p, f in body_checks.values())


def test_an_open_model_run_sends_its_schedule(fresh_server, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[scenarios.s.requests]]
        path = "/api/troupes/{id}"
        ids = {list = [1, 2, 3]}
        check.json = {path = "members.5.kind", equals = "clown"}
        """,
    )
    r = run(path, "s", fresh_server.base, requests=150, rate=500.0, concurrency=8)
    assert sum(fresh_server.targets().values()) == 150 == r.requests
    assert r.stats.sent == r.stats.scheduled == 150 and r.corrected.count == 150
    assert r.to_dict()["model"] == "open" and all(f == 0 for _p, f in checks(r).values())


def test_agents_merge_only_reports_of_the_same_file(server, tmp_path: Path) -> None:
    one = write(tmp_path, REQUEST.replace("/x", "/fast"), "one.toml")
    copy = write(tmp_path, REQUEST.replace("/x", "/fast"), "copy.toml")
    edited = write(tmp_path, "# edited\n" + REQUEST.replace("/x", "/fast"), "edited.toml")
    start = time.time() + 0.5

    def agent(args: tuple[int, str]) -> tuple[str, dict]:
        i, path = args
        r = run(path, "s", server.base, requests=60, concurrency=4, agent=(i, 2), start_at=start)
        return f"agent{i}.json", json.loads(r.to_json())

    with ThreadPoolExecutor(3) as pool:
        a0, a1, e1 = pool.map(agent, [(0, one), (1, copy), (1, edited)])
    _result, merged = merge_reports([a0, a1])  # the same file's bytes at another path
    assert merged["summary"]["requests"] == 60
    assert merged["scenario"]["file_sha256"] == read(one).sha256
    with pytest.raises(ConfigError, match="not agents of the same run"):
        merge_reports([a0, e1])


def test_the_command_line(cli, server, tmp_path: Path) -> None:
    path = write(tmp_path, '[scenarios.s]\ndescription = "one"\n' + REQUEST.replace("/x", "/json"))
    listed = cli("--scenario-file", path, "--list-scenarios")
    assert listed.returncode == 0 and listed.stdout.split() == ["s", "one"]
    ran = cli("--scenario-file", path, "--scenario", "s", "-n", "30", "--json", "-", server.base)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["summary"]["requests"] == 30 and report["scenario"]["name"] == "s"
    assert report["config"]["scenario_file"] == path
    for argv, says in [
        (["--scenario-file", path, "-n", "5", server.base], "name one of its scenarios with"),
        (["--scenario-file", path, "--scenario", "t", server.base], "has no scenario 't'"),
    ]:
        refused = cli(*argv)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and says in lines[0], refused.stderr
    broken = write(tmp_path, REQUEST + "wieght = 1", "broken.toml")
    refused = cli("--scenario-file", broken, "--scenario", "s", server.base)
    assert refused.returncode == 2 and "unknown key 'wieght'" in refused.stderr
