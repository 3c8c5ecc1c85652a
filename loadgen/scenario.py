"""Scenarios: what requests to send.

Two kinds, both loaded by :func:`load_scenario`:

* **Endpoint scenarios** (a list of :class:`Endpoint`): every iteration is ONE request
  picked by weight.  They run on the fast callback-driven path, exactly like a plain
  URL, and check bodies on a sample of responses (``sample_every``).  Every built-in
  endpoint scenario and ``mix`` are of this kind.
* **Flow scenarios** (weighted ``async def flow(user)`` functions): every iteration
  runs one flow for one virtual :class:`User`, which has its own keep-alive
  connection, a cookie jar (reset at the start of each iteration, as k6 does), value
  extraction helpers and named checks.  ``django-admin-login`` is one.

A scenario file is a Python file that defines any of:

* ``FLOWS = [(weight, async_fn), ...]`` or functions decorated with ``@flow(weight=..)``;
* ``ENDPOINTS = [Endpoint(...), ...]`` or ``def endpoints(options) -> list[Endpoint]``;
* ``OPTIONS = {"name": "default", ...}`` defaults for ``--scenario-option``.
"""

from __future__ import annotations

import importlib.util
import json as _json
import os
import random
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from .config import ConfigError

if TYPE_CHECKING:
    from .requester import FlowRun

FlowFn = Callable[["User"], Awaitable[Any]]


@dataclass
class Endpoint:
    """One request of an endpoint scenario.

    ``path`` is relative to the base URL's path; a callable ``path(rng)`` generates
    ``variants`` distinct paths up front (e.g. random ids).  ``expect`` is the set of
    statuses that count as success (None: any 2xx/3xx).  ``validate(status, body)``
    runs on every ``sample_every``-th response and is counted as the named check
    ``check``.
    """

    name: str
    path: str | Callable[[random.Random], str]
    method: str = "GET"
    weight: float = 1.0
    expect: frozenset[int] | None = frozenset({200})
    validate: Callable[[int, bytes], bool] | None = None
    check: str = "body shape"
    sample_every: int = 16
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    variants: int = 1


@dataclass
class Scenario:
    name: str
    endpoints: list[Endpoint] = field(default_factory=list)
    flows: list[tuple[float, FlowFn]] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def kind(self) -> str:
        return "flows" if self.flows else "endpoints"


def flow(weight: float = 1.0) -> Callable[[FlowFn], FlowFn]:
    """Decorator marking an ``async def f(user)`` as a weighted flow of a scenario file."""

    def deco(fn: FlowFn) -> FlowFn:
        fn.__loadgen_weight__ = float(weight)  # type: ignore[attr-defined]
        return fn

    return deco


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------
def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'slow-db?seconds=1&x=2' -> ('slow-db', {'seconds': '1', 'x': '2'})."""
    if "?" in spec and not os.path.exists(spec):
        name, qs = spec.split("?", 1)
        return name, dict(parse_qsl(qs, keep_blank_values=True))
    return spec, {}


def parse_option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"invalid --scenario-option {text!r}: expected KEY=VALUE")
    k, v = text.split("=", 1)
    if not k.strip():
        raise ConfigError(f"invalid --scenario-option {text!r}: empty key")
    return k.strip(), v


def load_scenario(spec: str, options: Mapping[str, str] | None = None) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    from .scenarios import BUILTINS

    name, opts = split_spec(spec)
    opts.update(options or {})
    if name in BUILTINS:
        factory, defaults = BUILTINS[name]
        merged = {**defaults, **opts}
        sc = factory(merged)
        if not sc.options:
            sc.options = merged
        return sc
    if os.path.isfile(name):
        return _load_file(name, opts)
    if name.endswith(".py") or os.sep in name:
        raise ConfigError(f"cannot read scenario file {name!r}")
    known = ", ".join(sorted(BUILTINS))
    raise ConfigError(f"unknown scenario {name!r} (built-ins: {known}; or a .py file)")


def _load_file(path: str, opts: dict[str, str]) -> Scenario:
    modname = "loadgen_scenario_" + re.sub(r"\W", "_", os.path.abspath(path))
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot read scenario file {path!r}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"cannot load scenario {path!r}: {type(e).__name__}: {e}") from None
    defaults = {str(k): str(v) for k, v in dict(getattr(mod, "OPTIONS", {}) or {}).items()}
    merged = {**defaults, **opts}
    flows: list[tuple[float, FlowFn]] = []
    if hasattr(mod, "FLOWS"):
        for item in mod.FLOWS:
            if callable(item):
                flows.append((getattr(item, "__loadgen_weight__", 1.0), item))
            else:
                w, fn = item
                flows.append((float(w), fn))
    else:
        for v in vars(mod).values():
            if callable(v) and hasattr(v, "__loadgen_weight__"):
                flows.append((v.__loadgen_weight__, v))
    endpoints: list[Endpoint] = []
    eps = getattr(mod, "ENDPOINTS", None)
    if eps is None and callable(getattr(mod, "endpoints", None)):
        eps = mod.endpoints(merged)
    if eps:
        endpoints = list(eps)
    if flows and endpoints:
        raise ConfigError(f"scenario {path!r} defines both flows and endpoints")
    if not flows and not endpoints:
        raise ConfigError(f"scenario {path!r} defines no FLOWS, @flow functions or ENDPOINTS")
    for w, _ in flows:
        if not w > 0:
            raise ConfigError(f"scenario {path!r}: flow weights must be > 0")
    doc = (mod.__doc__ or "").strip().splitlines()
    return Scenario(
        name=os.path.basename(path),
        endpoints=endpoints,
        flows=flows,
        options=merged,
        description=doc[0] if doc else "",
    )


# --------------------------------------------------------------------------------------
# Flow runtime
# --------------------------------------------------------------------------------------
class Response:
    """What ``await user.get(...)`` returns.  ``error`` is a transport error kind (then
    ``status`` is 0), kept apart from HTTP statuses and from checks."""

    __slots__ = ("body", "elapsed", "error", "headers", "name", "status")

    def __init__(
        self,
        name: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        elapsed: float,
        error: str | None = None,
    ) -> None:
        self.name = name
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed  # seconds, uncorrected
        self.error = error

    def header(self, name: str, default: str | None = None) -> str | None:
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 400

    def __repr__(self) -> str:
        return f"<Response {self.name} {self.error or self.status} {len(self.body)}B>"


def parse_set_cookie(value: str) -> tuple[str, str, bool]:
    """'name=value; Path=/; Max-Age=0' -> (name, value, deleted?)."""
    parts = value.split(";")
    name, _, val = parts[0].partition("=")
    deleted = False
    for attr in parts[1:]:
        k, _, v = attr.strip().partition("=")
        k = k.lower()
        if k == "max-age":
            if v.strip().lstrip("-").isdigit():
                deleted = deleted or int(v) <= 0
        elif k == "expires" and "1970" in v:
            deleted = True
    val = val.strip()
    if len(val) >= 2 and val[0] == val[-1] == '"':
        val = val[1:-1]
    return name.strip(), val, deleted


class User:
    """A virtual user of a flow scenario (one connection, one cookie jar).

    Flow code uses: ``await user.get(path, ...)``, ``user.post(...)``,
    ``user.request(method, path, ...)``, ``user.check(name, cond)``,
    ``user.cookies`` (dict), ``user.options`` (scenario options), ``user.state`` (a
    dict kept across iterations), ``user.rng`` (``random.Random``), ``user.base_url``,
    ``user.extract(regex, text)``.
    """

    def __init__(self, run: FlowRun, uid: int, rng: random.Random) -> None:
        self.run = run
        self.id = uid
        self.rng = rng
        self.options: Mapping[str, str] = run.scenario.options
        self.base_url = run.target.base_url
        self.cookies: dict[str, str] = {}
        self.state: dict[str, Any] = {}
        self.conn = run.make_user_conn(self)
        # per-iteration
        self.measured = False
        self.iter_delay = 0  # ns the iteration started after its intended time

    # -- flow API -----------------------------------------------------------------------
    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        return await self.request("POST", path, **kw)

    async def request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        expect: Sequence[int] | frozenset[int] | None = None,
    ) -> Response:
        """Send one request; never raises on HTTP or transport errors (see
        ``Response.error``).  ``expect``: statuses counted as success (default 2xx/3xx);
        ``name``: the stats name (default ``"METHOD /path"`` without the query)."""
        hdrs: list[tuple[str, str]] = []
        if headers:
            hdrs.extend(headers.items() if isinstance(headers, Mapping) else headers)
        data = b""
        if json is not None:
            data = _json.dumps(json, separators=(",", ":")).encode()
            hdrs.append(("Content-Type", "application/json"))
        elif form is not None:
            data = urlencode(form).encode()
            hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif body is not None:
            data = body.encode() if isinstance(body, str) else body
        if self.cookies:
            hdrs.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        if name is None:
            name = f"{method} {path.split('?', 1)[0]}"
        exp = frozenset(expect) if expect is not None else None
        return await self.run.user_request(self, method, path, hdrs, data, name, exp)

    def check(self, name: str, cond: Any) -> bool:
        ok = bool(cond)
        if self.measured:
            self.run.stats.check(name, ok)
        return ok

    @staticmethod
    def extract(pattern: str, text: str, group: int = 1) -> str | None:
        m = re.search(pattern, text)
        return m.group(group) if m else None

    # -- runtime (called by the driver) ------------------------------------------------------
    def absorb_cookies(self, headers: list[tuple[str, str]]) -> None:
        for k, v in headers:
            if k.lower() == "set-cookie":
                n, val, deleted = parse_set_cookie(v)
                if not n:
                    continue
                if deleted:
                    self.cookies.pop(n, None)
                else:
                    self.cookies[n] = val
