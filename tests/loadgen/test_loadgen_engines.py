"""One table, both engines: every kind of response the test servers can produce goes
through httptools and through the pure-Python parser (``--pure``), and the two must
report the same outcome (status counts, error kinds, failures, bytes, connections,
checks) and the outcome the table expects.

The table is keyed by what ``servers.py`` serves: a new ``RAW`` response or route that
is not in it fails ``test_table_covers_every_server_response``.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import pytest

import loadgen
from loadgen import Config
from loadgen.protocol import HAVE_HTTPTOOLS, MAX_HEAD

pytestmark = pytest.mark.skipif(not HAVE_HTTPTOOLS, reason="needs httptools to compare")

_spec = importlib.util.spec_from_file_location("servers", Path(__file__).with_name("servers.py"))
assert _spec is not None and _spec.loader is not None
servers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(servers)

N, C = 4, 2  # requests and connections of every run: two requests per connection
OK = {"errors": {}}


def bad(kind: str = "bad_response", n: int = N) -> dict[str, Any]:
    return {"status_codes": {}, "errors": {kind: n}}


# path -> expected outcome of N requests over C connections (keys compared: only those
# given; "connections" is the number of TCP connections opened)
CASES: dict[str, dict[str, Any]] = {
    # the head size limit, decided once (loadgen.protocol.MAX_HEAD) for both engines
    "/raw/head_at_limit": {"status_codes": {200: N}, "errors": {}, "connections": C},
    "/raw/head_at_limit_split": {"status_codes": {200: N}, "errors": {}, "connections": C},
    "/raw/head_over_limit": bad(),
    "/raw/head_over_limit_split": bad(),
    "/raw/head_1mb": bad(),
    # status line
    "/raw/status_2000": bad(),
    "/raw/status_no_reason": {"status_codes": {200: N}, "errors": {}},
    "/raw/status_below_100": {"status_codes": {99: N}, "errors": {}, "failed": N},
    "/raw/version_1_2": bad(),
    "/raw/version_2_0": {"status_codes": {200: N}, "errors": {}, "connections": N},
    "/raw/lowercase_http": bad(),
    "/raw/bare_lf": bad(),
    "/raw/leading_crlf": {"status_codes": {200: N}, "errors": {}, "bytes": 2 * N},
    "/raw/split_status_line": {"status_codes": {200: N}, "errors": {}, "connections": C},
    # header lines
    "/raw/nul_in_header": bad(),
    "/raw/obs_fold": bad(),
    "/raw/space_before_colon": bad(),
    "/raw/value_whitespace": {"status_codes": {200: N}, "errors": {}},
    # Content-Length
    "/raw/cl_duplicate_equal": bad(),
    "/raw/cl_and_te": bad(),
    "/raw/cl_negative": bad(),
    "/raw/cl_overflow": bad(),
    # the extra bytes are read as the start of the next response, as wrk does: the
    # request sent on that connection right after the 1st response fails, the 4th
    # goes out on a new connection; the 2nd response's extra bytes are dropped with its
    # connection (no request is left to blame)
    "/raw/cl_body_longer": {
        "status_codes": {200: 3},
        "errors": {"bad_response": 1},
        "connections": 3,
    },
    "/raw/cl_body_shorter_close": bad("reset"),
    "/raw/cl_body_shorter_reset": bad("reset"),
    # chunked
    "/raw/chunked_split": {"status_codes": {200: N}, "bytes": 5 * N, "connections": C},
    "/raw/chunked_trailers": {"status_codes": {200: N}, "bytes": 2 * N, "connections": C},
    "/raw/chunk_size_not_hex": bad(),
    "/raw/chunk_size_space": bad(),
    "/raw/chunk_size_overflow": bad(),
    "/raw/chunk_no_crlf": bad(),
    "/raw/chunked_cut_close": bad("reset"),
    # bodies delimited by EOF
    "/raw/eof_split_head": {"status_codes": {200: N}, "errors": {}, "bytes": 9 * N},
    "/raw/eof_te_not_chunked": {"status_codes": {200: N}, "errors": {}, "bytes": 3 * N},
    "/raw/http10_eof": {"status_codes": {200: N}, "errors": {}, "bytes": 4 * N},
    "/raw/head_cut_close": bad("reset"),
    "/raw/nothing_close": bad("reset"),
    # no body whatever Content-Length says; interim responses are not the response
    "/raw/no_body_204": {"status_codes": {204: N}, "bytes": 0, "connections": C},
    "/raw/no_body_304": {"status_codes": {304: N}, "bytes": 0, "connections": C},
    "/raw/continue_100": {"status_codes": {200: N}, "bytes": 2 * N, "connections": C},
    "/raw/early_hints_103": {"status_codes": {201: N}, "bytes": 2 * N, "connections": C},
    "/raw/switching_101": bad(),
    # keep-alive rules
    "/raw/http10_keepalive": {"status_codes": {200: N}, "connections": C},
    "/raw/http10_default_close": {"status_codes": {200: N}, "connections": N},
    "/raw/close_and_keepalive": {"status_codes": {200: N}, "connections": N},
    # the plain routes
    "/fixed?ms=1": {"status_codes": {200: N}, "bytes": 2 * N, "connections": C},
    "/fast": {"status_codes": {200: N}, "bytes": 2 * N, "connections": C},
    "HEAD /fast": {"status_codes": {200: N}, "bytes": 0, "connections": C},
    "/chunked": {"status_codes": {200: N}, "bytes": 19 * N, "connections": C},
    "/close": {"status_codes": {200: N}, "bytes": 3 * N, "connections": N},
    "/eof": {"status_codes": {200: N}, "bytes": 9 * N, "connections": N},
    "/reset": bad("reset"),
    "/garbage": bad(),
    "/hang": bad("read_timeout"),
    "/status/100": bad("read_timeout"),  # an interim response and nothing after it
    "/status/204": {"status_codes": {204: N}, "connections": C},
    "/status/302": {"status_codes": {302: N}, "failed": 0},
    "/status/404": {"status_codes": {404: N}, "failed": N},
    "/status/500": {"status_codes": {500: N}, "failed": N},
    "/__stats": {"status_codes": {200: N}, "errors": {}},
    "/admin/login/": {"status_codes": {200: N}, "errors": {}},
    "/no/such/route": {"status_codes": {404: N}, "failed": N},
}


def _run(url: str, pure: bool, **kw: Any) -> loadgen.Result:
    kw.setdefault("requests", N)
    kw.setdefault("concurrency", C)
    kw.setdefault("timeout", 0.5)
    on = not pure
    return loadgen.run_sync(Config(url=url, use_uvloop=on, use_httptools=on, **kw))


def _outcome(r: loadgen.Result) -> dict[str, Any]:
    return {
        "status_codes": r.status_codes,
        "errors": r.errors,
        "failed": r.failed,
        "bytes": r.bytes,
        "connections": r.stats.connections,
        "checks": r.checks,
    }


def _plain(server, case: str, pure: bool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    method, _, path = case.rpartition(" ")
    return _outcome(_run(server.url(path), pure, method=method or "GET"))


@pytest.mark.parametrize("case", list(CASES))
def test_both_engines_agree_on_every_response(server, case: str) -> None:
    fast = _plain(server, case, pure=False)
    pure = _plain(server, case, pure=True)
    assert fast == pure, f"httptools and --pure disagree on {case}"
    want = CASES[case]
    assert {k: fast[k] for k in want} == want


# The flow path (FullConn: headers collected, body kept) on the same responses: every
# response is turned into a check whose name is what the flow saw, so that equal
# ``checks`` mean equal statuses, errors, headers and bodies.
FLOW = textwrap.dedent(
    '''
    """Request options['path'] and describe the response as a check name."""
    from loadgen import flow

    @flow()
    async def once(user):
        method, _, path = user.options["path"].rpartition(" ")
        r = await user.request(method or "GET", path)
        user.check(repr((r.status, r.error, r.headers, r.body)), True)
    '''
)


# responses whose body changes from one request to the next (a counter, a random CSRF
# token): their status and errors are compared, not their content
VOLATILE = {"/__stats", "/admin/login/"}


def test_both_engines_agree_in_flows(server, tmp_path: Path) -> None:
    scenario = tmp_path / "describe.py"
    scenario.write_text(FLOW)
    differ = []
    for case in CASES:
        seen = []
        for pure in (False, True):
            r = _run(server.base, pure, scenario=str(scenario), scenario_options={"path": case})
            got = _outcome(r)
            if case in VOLATILE:
                got = {k: got[k] for k in ("status_codes", "errors", "failed")}
            seen.append((got, r.stats.flow_errors))
        if seen[0] != seen[1]:
            differ.append((case, seen))
    assert differ == []


def test_value_whitespace_is_trimmed_alike(server, tmp_path: Path) -> None:
    # llhttp keeps a value's trailing whitespace, the pure parser does not: the flow
    # must see "a b" from both (the agreement test above would pass on any equal value)
    scenario = tmp_path / "describe.py"
    scenario.write_text(FLOW)
    for pure in (False, True):
        r = _run(
            server.base,
            pure,
            requests=1,
            concurrency=1,
            scenario=str(scenario),
            scenario_options={"path": "/raw/value_whitespace"},
        )
        (check,) = r.checks
        assert "('X', 'a b')" in check["name"], check["name"]


def test_head_limit_is_the_one_loadgen_enforces() -> None:
    assert servers.HEAD_LIMIT == MAX_HEAD


def test_table_covers_every_server_response() -> None:
    raw = {f"/raw/{name}" for name in servers.RAW}
    assert raw - set(CASES) == set()
    # the plain routes, as the server's docstring lists them
    for route in ("/fixed", "/fast", "/chunked", "/close", "/eof", "/reset", "/garbage"):
        assert any(c.split("?")[0].endswith(route) for c in CASES), route
    for route in ("/hang", "/status/", "/__stats", "/admin/login/"):
        assert any(route in c for c in CASES), route


# Contract endpoints and their checks (status and body shape), right and wrong
ENDPOINTS = [
    "health",
    "json",
    "plaintext",
    "db",
    "queries",
    "updates",
    "fortunes",
    "colleges",
    "college-detail",
    "troupes",
    "troupe-detail",
    "slow-db",
    "slow-http",
    "slow-both",
    "slow-fanout",
]


@pytest.mark.parametrize("wrong", [False, True], ids=["right", "wrong"])
def test_both_engines_agree_on_checks(server, wrong: bool) -> None:
    base = server.url("/wrong") if wrong else server.base
    for name in ENDPOINTS:
        opts = {"sample": "1", "seconds": "0"}
        got = [
            _outcome(_run(base, pure, scenario=name, scenario_options=opts))
            for pure in (False, True)
        ]
        if name.startswith("slow-"):  # their bodies carry a timestamp of varying length
            for g in got:
                del g["bytes"]
        assert got[0] == got[1], name
        body_checks = [c for c in got[0]["checks"] if "status is" not in c["name"]]
        assert body_checks, name
        # every response was sampled: the body check passes on all or fails on all
        want = (0, N) if wrong else (N, 0)
        assert [(c["passes"], c["fails"]) for c in body_checks] == [want], name
