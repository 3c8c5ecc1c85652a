"""Run configuration: a validated, immutable dataclass plus URL and loopback checks."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, LoadgenError, TargetUnreachable
from .thresholds import parse_threshold

__all__ = [
    "Config",
    "ConfigError",
    "LoadgenError",
    "Target",
    "TargetUnreachable",
    "mask_secrets",
    "parse_duration",
    "parse_header",
    "parse_url",
]


_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """'10s', '1.5m', '250ms', '2h', '3' (seconds) -> seconds (float)."""
    if not isinstance(text, str):
        return float(text)
    s: str = str(text).strip()
    neg = s.startswith("-")
    m = _DURATION_RE.match(s[1:] if neg else s)
    if not m:
        raise ConfigError(f"invalid {what} {text!r} (use e.g. 10s, 500ms, 2m)")
    v = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return -v if neg else v


def is_loopback_host(host: str) -> bool:
    """True if ``host`` is a loopback address or resolves only to loopback addresses."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    if h.lower() in ("localhost", "localhost.localdomain") or h.lower().endswith(".localhost"):
        return True
    try:
        infos = socket.getaddrinfo(h, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addrs = {str(info[4][0]) for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


@dataclass(frozen=True)
class Target:
    """A parsed http:// URL."""

    host: str  # as given (for the Host header)
    port: int
    base_path: str  # path without trailing slash for scenarios ("" for root)
    path_qs: str  # request target for plain mode ("/path?query")
    connect_host: str  # host to connect to (IPv6 brackets removed)

    @property
    def host_header(self) -> str:
        return self.host if self.port == 80 else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host_header}{self.base_path}"


def parse_url(url: str) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("missing URL")
    url = url.strip()
    if "://" not in url:
        raise ConfigError(f"malformed URL {url!r}: expected http://HOST[:PORT]/PATH")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"malformed URL {url!r}: {e}") from None
    if parts.scheme == "https":
        raise ConfigError(f"https is not supported (plain HTTP/1.1 only): {url!r}")
    if parts.scheme != "http":
        raise ConfigError(f"malformed URL {url!r}: scheme must be http")
    if not parts.hostname:
        raise ConfigError(f"malformed URL {url!r}: no host")
    if any(c.isspace() for c in url):
        raise ConfigError(f"malformed URL {url!r}: contains whitespace")
    host = parts.hostname
    netloc_host = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    path_qs = path + (f"?{parts.query}" if parts.query else "")
    return Target(
        host=netloc_host,
        port=port or 80,
        base_path=path.rstrip("/"),
        path_qs=path_qs,
        connect_host=host,
    )


def _env_pure() -> bool:
    return os.environ.get("LOADGEN_PURE", "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Config:
    """Everything one run needs.  Construct it, then :meth:`validate` (``run`` does).

    Exactly one stopping rule applies: ``duration`` (``-z``) if set, else ``requests``
    (``-n``, default 200 like hey).  ``rate`` (``-R``, total requests/s) selects the
    open model; without it the model is closed (``concurrency`` connections each
    sending the next request when the previous response is read).
    """

    url: str
    requests: int | None = None  # -n
    duration: float | None = None  # -z, seconds
    concurrency: int = 50  # -c
    rate: float | None = None  # -R, total req/s (open model)
    method: str = "GET"  # -m
    headers: tuple[tuple[str, str], ...] = ()  # -H
    body: bytes = b""  # -d / -D
    timeout: float = 20.0  # -t, per request, seconds (0 = none)
    connect_timeout: float | None = None  # default: timeout
    warmup: float = 0.0  # --warmup seconds (not recorded)
    grace: float | None = None  # drain time after the end (default min(timeout, 5 s))
    deadline: float | None = None  # hard wall-time limit of the whole run (s)
    processes: int = 1  # --processes
    scenario: str | None = None  # --scenario NAME or FILE (URL is then a base URL)
    scenario_options: Mapping[str, str] = field(default_factory=dict)
    thresholds: tuple[str, ...] = ()  # --threshold 'p99<50ms'
    allow_remote: bool = False  # --allow-remote
    csv_path: str | None = None  # --csv FILE (one row per request)
    keepalive: bool = True  # --disable-keepalive sets False
    max_queue: int = 100_000  # open model: queued sends beyond this are dropped
    use_uvloop: bool | None = None  # None: auto (off if LOADGEN_PURE=1)
    use_httptools: bool | None = None  # None: auto (off if LOADGEN_PURE=1)
    seed: int | None = None  # scenario randomness (weights, ids)
    check_target: bool = True  # probe one TCP connect before the run
    agent: tuple[int, int] | None = None  # --agent I/N: (I, N), I 0-based (loadgen.agent)
    start_at: float | None = None  # --start-at: Unix seconds; start the run then

    # -- derived ---------------------------------------------------------------------
    @property
    def open_model(self) -> bool:
        return self.rate is not None

    @property
    def n_total(self) -> int | None:
        if self.duration is not None:
            return None
        return 200 if self.requests is None else self.requests

    @property
    def target(self) -> Target:
        return parse_url(self.url)

    @property
    def effective_connect_timeout(self) -> float:
        ct = self.connect_timeout if self.connect_timeout is not None else self.timeout
        return ct if ct and ct > 0 else 10.0

    @property
    def effective_grace(self) -> float:
        if self.grace is not None:
            return self.grace
        t = self.timeout if self.timeout and self.timeout > 0 else 5.0
        return min(t + 0.5, 5.0)

    @property
    def uvloop_enabled(self) -> bool:
        if self.use_uvloop is not None:
            return self.use_uvloop
        return not _env_pure()

    @property
    def httptools_enabled(self) -> bool:
        if self.use_httptools is not None:
            return self.use_httptools
        return not _env_pure()

    def replace(self, **kw: Any) -> Config:
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["body_bytes"] = len(self.body)
        del d["body"]
        d["headers"] = [list(h) for h in self.headers]
        d["scenario_options"] = mask_secrets(self.scenario_options)
        d["thresholds"] = list(self.thresholds)
        d["model"] = "open" if self.open_model else "closed"
        d["agent"] = f"{self.agent[0]}/{self.agent[1]}" if self.agent else None
        return d

    # -- validation ------------------------------------------------------------------
    def validate(self) -> Config:
        """Raise :class:`ConfigError` with a one-line message if anything is wrong."""
        t = parse_url(self.url)
        if not self.allow_remote and not is_loopback_host(t.connect_host):
            raise ConfigError(
                f"refusing non-loopback target {t.connect_host!r} (pass --allow-remote)"
            )
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(f"-c must be a positive integer, got {self.concurrency!r}")
        if self.requests is not None and (not isinstance(self.requests, int) or self.requests < 1):
            raise ConfigError(f"-n must be a positive integer, got {self.requests!r}")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise ConfigError(f"-z must be a positive duration, got {self.duration!r}")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError(f"-R must be a positive rate, got {self.rate!r}")
        if not (self.timeout >= 0 and math.isfinite(self.timeout)):
            raise ConfigError(f"-t must be >= 0, got {self.timeout!r}")
        if self.connect_timeout is not None and not self.connect_timeout > 0:
            raise ConfigError(f"connect timeout must be > 0, got {self.connect_timeout!r}")
        if not (self.warmup >= 0 and math.isfinite(self.warmup)):
            raise ConfigError(f"--warmup must be >= 0, got {self.warmup!r}")
        if self.grace is not None and not self.grace >= 0:
            raise ConfigError(f"grace must be >= 0, got {self.grace!r}")
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError(f"deadline must be > 0, got {self.deadline!r}")
        if not isinstance(self.processes, int) or self.processes < 1:
            raise ConfigError(f"--processes must be a positive integer, got {self.processes!r}")
        if self.processes > self.concurrency:
            raise ConfigError(
                f"--processes ({self.processes}) cannot exceed -c ({self.concurrency})"
            )
        n = self.n_total
        if n is not None and self.processes > n:
            raise ConfigError(f"--processes ({self.processes}) cannot exceed -n ({n})")
        self._validate_agent()
        if not re.fullmatch(r"[A-Z]+", self.method or ""):
            raise ConfigError(f"invalid method {self.method!r}")
        for k, v in self.headers:
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k) or "\r" in v or "\n" in v:
                raise ConfigError(f"invalid header {k!r}: {v!r}")
        if self.max_queue < 0:
            raise ConfigError("max_queue must be >= 0")
        if self.scenario is not None and not self.scenario.strip():
            raise ConfigError("empty --scenario")
        for th in self.thresholds:
            parse_threshold(th)
        return self

    def _validate_agent(self) -> None:
        if self.agent is not None:
            i, count = self.agent
            if not (isinstance(count, int) and isinstance(i, int) and 0 <= i < count):
                raise ConfigError(f"--agent must be I/N with 0 <= I < N, got {self.agent!r}")
            slots = count * self.processes
            if slots > self.concurrency:
                raise ConfigError(
                    f"agents x processes ({slots}) cannot exceed -c ({self.concurrency})"
                )
            n = self.n_total
            if n is not None and slots > n:
                raise ConfigError(f"agents x processes ({slots}) cannot exceed -n ({n})")
        if self.start_at is not None:
            ahead = self.start_at - time.time()
            if not math.isfinite(ahead) or ahead > MAX_START_AHEAD:
                raise ConfigError(
                    f"--start-at is {ahead:.0f} s away (at most {MAX_START_AHEAD:.0f} s)"
                )
            if ahead < -1.0:
                raise ConfigError(f"--start-at is {-ahead:.1f} s in the past")


MAX_START_AHEAD = 600.0  # --start-at: refuse a start further away than this (s)

_SECRET_WORDS = ("password", "secret", "token", "passwd")


def mask_secrets(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Options with secret-looking values replaced (for reports)."""
    return {
        k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) and v else v)
        for k, v in opts.items()
    }


def parse_header(text: str) -> tuple[str, str]:
    if ":" not in text:
        raise ConfigError(f"invalid header {text!r}: expected 'Name: value'")
    k, v = text.split(":", 1)
    k = k.strip()
    if not k:
        raise ConfigError(f"invalid header {text!r}: empty name")
    return k, v.strip()
