"""The virtual user of a flow scenario (``async def flow(user)``) and the
:class:`Response` its requests return."""

from __future__ import annotations

import json as _json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from .protocol import FullConn
from .stats import Stats


class UserDriver(Protocol):
    """What a :class:`User` needs from the driver that runs it
    (:class:`loadgen.flows.FlowRun`)."""

    stats: Stats

    async def user_request(
        self,
        user: User,
        method: str,
        path: str,
        hdrs: list[tuple[str, str]],
        data: bytes,
        name: str,
        expect: frozenset[int] | None,
    ) -> Response: ...


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

    conn: FullConn  # its connection, set by the driver right after construction

    def __init__(
        self,
        run: UserDriver,
        uid: int,
        rng: random.Random,
        options: Mapping[str, str],
        base_url: str,
    ) -> None:
        self.run = run
        self.id = uid
        self.rng = rng
        self.options = options
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self.state: dict[str, Any] = {}
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
