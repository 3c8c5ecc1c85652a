"""Built-in scenarios, one per contract endpoint, plus ``mix`` and ``django-admin-login``.

Use ``--scenario NAME`` with a BASE URL (``http://127.0.0.1:8000`` or
``http://127.0.0.1:8000/fastapi``); the scenario appends its paths.  Options:
``--scenario-option KEY=VALUE`` (repeatable) or ``NAME?KEY=VALUE&KEY2=VALUE2``.

Common option: ``sample`` (check the body of every N-th response, default 16; 1 checks
all).  See each factory for the others.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..scenario_types import Endpoint, Scenario
from .admin_login import admin_login

Factory = Callable[[dict[str, str]], Scenario]

_FORTUNE_MARKERS = (
    b"<table",
    b"Additional fortune added at request time.",
    b"&lt;script&gt;",
    "フレームワークのベンチマーク".encode(),
)


def _int(opts: dict[str, str], key: str, lo: int | None = None, hi: int | None = None) -> int:
    try:
        v = int(opts[key])
    except (KeyError, ValueError):
        raise ConfigError(
            f"scenario option {key!r} must be an integer, got {opts.get(key)!r}"
        ) from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"scenario option {key!r} out of range: {v}")
    return v


def _num(opts: dict[str, str], key: str) -> float:
    try:
        return float(opts[key])
    except (KeyError, ValueError):
        raise ConfigError(
            f"scenario option {key!r} must be a number, got {opts.get(key)!r}"
        ) from None


# -- body validators (run on a sample of responses) ------------------------------------
def _j(body: bytes) -> Any:
    return json.loads(body)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _world(x: Any) -> bool:
    return (
        isinstance(x, dict)
        and _is_int(x.get("id"))
        and _is_int(x.get("randomNumber"))
        and 1 <= x["id"] <= 10000
    )


def _college(x: Any) -> bool:
    if not isinstance(x, dict) or not {"id", "name", "location", "troupe"} <= x.keys():
        return False
    loc, tr = x["location"], x["troupe"]
    return (
        isinstance(loc, dict)
        and {"id", "line_1", "line_2", "line_3", "zipcode"} <= loc.keys()
        and isinstance(tr, dict)
        and {"id", "name"} <= tr.keys()
    )


def _troupe(x: Any) -> bool:
    if not isinstance(x, dict) or not {"id", "name", "members"} <= x.keys():
        return False
    ms = x["members"]
    return isinstance(ms, list) and all(
        isinstance(m, dict) and {"id", "stage_name", "kind", "concentration"} <= m.keys()
        for m in ms
    )


def _page(item: Callable[[Any], bool], size: int) -> Callable[[int, bytes], bool]:
    def check(status: int, body: bytes) -> bool:
        d = _j(body)
        return (
            isinstance(d, dict)
            and {"count", "next", "previous", "results"} <= d.keys()
            and isinstance(d["results"], list)
            and 0 < len(d["results"]) <= size
            and all(item(x) for x in d["results"])
        )

    return check


def _single(
    name: str,
    path: Any,
    validate: Callable[[int, bytes], bool] | None,
    check: str,
    opts: dict[str, str],
    variants: int = 1,
) -> Scenario:
    ep = Endpoint(
        name=name,
        path=path,
        validate=validate,
        check=check,
        sample_every=_int(opts, "sample", 1),
        variants=variants,
    )
    return Scenario(name=name, endpoints=[ep])


# -- endpoint factories ------------------------------------------------------------------
def _health(o: dict[str, str]) -> Scenario:
    return _single(
        "health", "/health", lambda s, b: _j(b) == {"status": "ok"}, 'body is {"status": "ok"}', o
    )


def _json(o: dict[str, str]) -> Scenario:
    return _single(
        "json",
        "/json",
        lambda s, b: _j(b) == {"message": "Hello, World!"},
        'body is {"message": "Hello, World!"}',
        o,
    )


def _plaintext(o: dict[str, str]) -> Scenario:
    return _single(
        "plaintext", "/plaintext", lambda s, b: b == b"Hello, World!", "body is Hello, World!", o
    )


def _db(o: dict[str, str]) -> Scenario:
    return _single("db", "/db", lambda s, b: _world(_j(b)), "body is a world row", o)


def _queries_like(path: str) -> Factory:
    def factory(o: dict[str, str]) -> Scenario:
        n = _int(o, "queries")
        expect_n = min(max(n, 1), 500)

        def check(status: int, body: bytes) -> bool:
            d = _j(body)
            return isinstance(d, list) and len(d) == expect_n and all(_world(x) for x in d)

        name = path.strip("/")
        return _single(name, f"{path}?queries={n}", check, f"body is {expect_n} world rows", o)

    return factory


def _fortunes(o: dict[str, str]) -> Scenario:
    return _single(
        "fortunes",
        "/fortunes",
        lambda s, b: all(m in b for m in _FORTUNE_MARKERS),
        "body is the escaped fortunes table",
        o,
    )


def _colleges(o: dict[str, str]) -> Scenario:
    size = _int(o, "page_size", 1, 100)
    pages = _int(o, "pages", 1)

    def path(rng: random.Random) -> str:
        return f"/api/colleges?page={rng.randint(1, pages)}&page_size={size}"

    return _single(
        "colleges",
        path,
        _page(_college, size),
        "body is a page of colleges",
        o,
        variants=min(pages, 256),
    )


def _college_detail(o: dict[str, str]) -> Scenario:
    ids = _int(o, "ids", 1)
    return _single(
        "college-detail",
        lambda rng: f"/api/colleges/{rng.randint(1, ids)}",
        lambda s, b: _college(_j(b)),
        "body is a college",
        o,
        variants=256,
    )


def _troupes(o: dict[str, str]) -> Scenario:
    size = _int(o, "page_size", 1, 100)
    pages = _int(o, "pages", 1)

    def path(rng: random.Random) -> str:
        return f"/api/troupes?page={rng.randint(1, pages)}&page_size={size}"

    return _single(
        "troupes",
        path,
        _page(_troupe, size),
        "body is a page of troupes",
        o,
        variants=min(pages, 256),
    )


def _troupe_detail(o: dict[str, str]) -> Scenario:
    ids = _int(o, "ids", 1)
    return _single(
        "troupe-detail",
        lambda rng: f"/api/troupes/{rng.randint(1, ids)}",
        lambda s, b: _troupe(_j(b)),
        "body is a troupe",
        o,
        variants=256,
    )


def _slow(kind: str) -> Factory:
    def factory(o: dict[str, str]) -> Scenario:
        secs = _num(o, "seconds")
        if not 0 <= secs <= 10:
            raise ConfigError(f"scenario option 'seconds' must be in 0..10, got {secs:g}")
        s = o["seconds"]
        if kind == "db":
            return _single(
                "slow-db",
                f"/slow/db?seconds={s}",
                lambda st, b: float(_j(b)["slept"]) == secs,
                f'body is {{"slept": {s}}}',
                o,
            )
        if kind == "http":
            return _single(
                "slow-http",
                f"/slow/http?seconds={s}",
                lambda st, b: isinstance(_j(b).get("upstream"), dict),
                "body has the upstream JSON",
                o,
            )
        if kind == "both":

            def both(st: int, b: bytes) -> bool:
                d = _j(b)
                return isinstance(d.get("upstream"), dict) and float(d["slept"]) == secs

            return _single(
                "slow-both", f"/slow/both?seconds={s}", both, "body has upstream and slept", o
            )
        n = _int(o, "n", 1, 50)

        def fan(st: int, b: bytes) -> bool:
            r = _j(b).get("results")
            return isinstance(r, list) and len(r) == n and all(isinstance(x, dict) for x in r)

        return _single(
            "slow-fanout",
            f"/slow/fanout?n={n}&seconds={s}",
            fan,
            f"body has {n} upstream results",
            o,
        )

    return factory


_MIX_DEFAULT = (
    "json:2,plaintext:1,db:2,queries:1,fortunes:1,colleges:1,college-detail:2,"
    "troupes:1,troupe-detail:1"
)


def _mix(o: dict[str, str]) -> Scenario:
    eps: list[Endpoint] = []
    for item in o["weights"].split(","):
        item = item.strip()
        if not item:
            continue
        name, _, w = item.partition(":")
        name = name.strip()
        if name not in _ENDPOINTS or name == "mix":
            raise ConfigError(f"mix: unknown endpoint scenario {name!r}")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ConfigError(f"mix: invalid weight {w!r} for {name!r}") from None
        if weight <= 0:
            continue
        factory, defaults = _ENDPOINTS[name]
        generic = {k: v for k, v in o.items() if k != "weights" and "." not in k}
        prefixed = {k.split(".", 1)[1]: v for k, v in o.items() if k.startswith(name + ".")}
        sub = factory({**defaults, **generic, **prefixed})
        for ep in sub.endpoints:
            ep.weight = weight
            eps.append(ep)
    if not eps:
        raise ConfigError("mix: no endpoint with a positive weight")
    return Scenario(name="mix", endpoints=eps)


_SAMPLE = {"sample": "16"}
_ENDPOINTS: dict[str, tuple[Factory, dict[str, str]]] = {
    "health": (_health, _SAMPLE),
    "json": (_json, _SAMPLE),
    "plaintext": (_plaintext, _SAMPLE),
    "db": (_db, _SAMPLE),
    "queries": (_queries_like("/queries"), {**_SAMPLE, "queries": "20"}),
    "updates": (_queries_like("/updates"), {**_SAMPLE, "queries": "20"}),
    "fortunes": (_fortunes, _SAMPLE),
    "colleges": (_colleges, {**_SAMPLE, "page_size": "20", "pages": "1"}),
    "college-detail": (_college_detail, {**_SAMPLE, "ids": "1000"}),
    "troupes": (_troupes, {**_SAMPLE, "page_size": "20", "pages": "1"}),
    "troupe-detail": (_troupe_detail, {**_SAMPLE, "ids": "100"}),
    "slow-db": (_slow("db"), {**_SAMPLE, "seconds": "1"}),
    "slow-http": (_slow("http"), {**_SAMPLE, "seconds": "1"}),
    "slow-both": (_slow("both"), {**_SAMPLE, "seconds": "1"}),
    "slow-fanout": (_slow("fanout"), {**_SAMPLE, "seconds": "1", "n": "10"}),
}

MIXABLE = _ENDPOINTS  # what mix draws from: the endpoint scenarios

BUILTINS: dict[str, tuple[Factory, dict[str, str]]] = {
    **_ENDPOINTS,
    "mix": (_mix, {"sample": "16", "weights": _MIX_DEFAULT}),
    "django-admin-login": (admin_login, {"username": "", "password": "", "sample": "1"}),
}
