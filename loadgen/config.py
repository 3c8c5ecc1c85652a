"""The load specification: :class:`Config`, one immutable object for everything a run
needs, and its one table of options.

Each field of ``Config`` is declared once, with its default, its command-line flags, the
parser that reads and checks its value (:mod:`loadgen.values`) and its help. From that
table come loadgen's argparse options (:func:`add_arguments`, also used by the harness
for the options it passes on), the Config a command line asks for (:func:`given`),
:meth:`Config.validate` and :meth:`Config.to_argv`, the command line that reads back
into an equal Config. Adding an option is adding a field here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import options, values
from .errors import ConfigError, LoadgenError, TargetUnreachable
from .misbehave import IDLE, MAX_HELD
from .options import Option, option
from .target import Target, is_loopback_host, parse_url
from .values import parse_duration, parse_header

__all__ = [
    "OPTIONS",
    "Config",
    "ConfigError",
    "LoadgenError",
    "Option",
    "Target",
    "TargetUnreachable",
    "add_arguments",
    "given",
    "is_loopback_host",
    "mask_secrets",
    "parse_duration",
    "parse_header",
    "parse_url",
]


def _url(value: str) -> str:
    parse_url(value)
    return value


def _env_pure() -> bool:
    return os.environ.get("LOADGEN_PURE", "").strip().lower() not in ("", "0", "false", "no")


LOAD, REQUEST, SCENARIOS, OUTPUT, ENGINE = "load", "request", "scenarios", "output", "engine"
PROTOCOL = "TLS and HTTP/2"
MISBEHAVING = "clients that misbehave"


@dataclass(frozen=True)
class Config:
    """Everything one run needs.  Construct it, then :meth:`validate` (``run`` does).

    Exactly one stopping rule applies: ``duration`` (``-z``) if set, else ``requests``
    (``-n``, default 200 like hey).  ``rate`` (``-R``, total requests/s) selects the
    open model; without it the model is closed (``concurrency`` connections each
    sending the next request when the previous response is read).
    """

    # One field per option: its default, flags, parser (loadgen/values.py) and help.
    url: str = option(
        "", parse=_url, group=LOAD, metavar="URL", help="target URL (a base URL with --scenario)"
    )
    requests: int | None = option(
        None, "-n", "--requests", parse=values.positive_int, group=LOAD, metavar="N",
        help="number of requests: a count instead of a duration",
    )  # fmt: skip
    duration: float | None = option(
        None, "-z", "--duration", parse=values.positive_duration, write=values.seconds_text,
        group=LOAD, metavar="D", help="how long to send, e.g. 10s, 2m",
    )  # fmt: skip
    concurrency: int = option(
        50, "-c", "--connections", parse=values.positive_int, group=LOAD, metavar="N",
        help="concurrency: connections / virtual users",
    )  # fmt: skip
    rate: float | None = option(
        None, "-R", "--rate", parse=values.positive_number, group=LOAD, metavar="RATE",
        help="open model: TOTAL requests per second (default: the closed model)",
    )  # fmt: skip
    method: str = option(
        "GET", "-m", "--method", parse=values.method, group=REQUEST, metavar="METHOD",
        help="HTTP method",
    )  # fmt: skip
    headers: tuple[tuple[str, str], ...] = option(
        (), "-H", "--header", parse=values.header, repeated=True, group=REQUEST,
        write=lambda kv: f"{kv[0]}: {kv[1]}", metavar="HEADER",
        help="header 'Name: value' (repeatable)",
    )  # fmt: skip
    body: bytes = option(
        b"", "-d", "--body", parse=values.body, write=os.fsdecode, group=REQUEST,
        metavar="BODY", help="request body",
    )  # fmt: skip
    timeout: float = option(
        20.0, "-t", "--timeout", parse=values.duration, write=values.seconds_text,
        group=REQUEST, metavar="D", help="per-request timeout (0 = none)",
    )  # fmt: skip
    connect_timeout: float | None = option(
        None, "--connect-timeout", parse=values.positive_duration, write=values.seconds_text,
        group=REQUEST, metavar="D", help="connect timeout (default: -t)",
    )  # fmt: skip
    warmup: float = option(
        0.0, "--warmup", parse=values.duration, write=values.seconds_text, group=LOAD,
        metavar="D", help="run but do not record the first D (e.g. 2s)",
    )  # fmt: skip
    grace: float | None = option(
        None, "--grace", parse=values.duration, write=values.seconds_text, group=LOAD,
        metavar="D",
        help="drain time for in-flight requests after -z (default min(-t + 0.5s, 5s))",
    )  # fmt: skip
    deadline: float | None = option(
        None, "--deadline", parse=values.positive_duration, write=values.seconds_text,
        group=LOAD, metavar="D",
        help="hard wall-time limit of the run; in-flight requests are aborted",
    )  # fmt: skip
    processes: int = option(
        1, "--processes", parse=values.positive_int, group=LOAD, metavar="N",
        help="worker processes, one event loop each",
    )  # fmt: skip
    scenario: str | None = option(
        None, "--scenario", parse=values.text, group=SCENARIOS, metavar="NAME",
        help="built-in scenario NAME or a scenario .py FILE (the URL is then a base URL)",
    )  # fmt: skip
    scenario_file: str | None = option(
        None, "--scenario-file", parse=values.text, group=SCENARIOS, metavar="FILE",
        help="a TOML file of named requests (loadgen/README.md): the scenarios named are its",
    )  # fmt: skip
    scenario_options: Mapping[str, str] = option(
        {}, "--scenario-option", parse=values.key_value, repeated=True, group=SCENARIOS,
        write=lambda kv: f"{kv[0]}={kv[1]}", metavar="KEY=VALUE",
        help="scenario option (repeatable)",
    )  # fmt: skip
    thresholds: tuple[str, ...] = option(
        (), "--threshold", parse=values.threshold, repeated=True, group=OUTPUT, metavar="RULE",
        help="pass/fail rule, e.g. 'p99<50ms' (repeatable; failure exits 99)",
    )  # fmt: skip
    allow_remote: bool = option(
        False, "--allow-remote", sets=True, group=REQUEST, help="allow a non-loopback target"
    )
    csv_path: str | None = option(
        None, "--csv", parse=values.text, group=OUTPUT, metavar="FILE",
        help="write one CSV row per request",
    )  # fmt: skip
    keepalive: bool = option(
        True, "--disable-keepalive", sets=False, group=REQUEST,
        help="one connection per request (Connection: close)",
    )  # fmt: skip
    # -- TLS and HTTP/2 (loadgen/dial.py, loadgen/h2protocol.py) --------------------------
    h2: bool = option(
        False, "--h2", sets=True, group=PROTOCOL,
        help="HTTP/2: over TLS by ALPN for https://, by prior knowledge (h2c) for http://"
        " (needs the h2 package)",
    )  # fmt: skip
    streams: int = option(
        1, "--streams", parse=values.positive_int, group=PROTOCOL, metavar="N",
        help="--h2: concurrent streams per connection (-c connections x N in flight)",
    )  # fmt: skip
    cacert: str | None = option(
        None, "--cacert", parse=values.ca_file, group=PROTOCOL, metavar="FILE",
        help="https: trust the CA certificates in FILE (PEM) instead of the system's",
    )  # fmt: skip
    insecure: bool = option(
        False, "--insecure", sets=True, group=PROTOCOL,
        help="https: do not verify the server's certificate and name",
    )  # fmt: skip
    max_queue: int = option(
        100_000, "--max-queue", parse=values.non_negative_int, group=LOAD, metavar="N",
        help="open model: queued sends beyond this are dropped",
    )  # fmt: skip
    use_uvloop: bool | None = option(
        None, "--uvloop", toggle=True, group=ENGINE,
        help="uvloop's event loop (default: if importable and LOADGEN_PURE is unset)",
    )  # fmt: skip
    use_httptools: bool | None = option(
        None, "--httptools", toggle=True, group=ENGINE,
        help="httptools' parser (default: if importable and LOADGEN_PURE is unset)",
    )  # fmt: skip
    use_h2wire: bool | None = option(
        None, "--h2wire", toggle=True, group=ENGINE,
        help="--h2: loadgen's lean HTTP/2 engine; --no-h2wire: python-hyper's h2, the"
        " reference (default: the lean one unless LOADGEN_PURE is set)",
    )  # fmt: skip
    seed: int | None = option(
        None, "--seed", parse=values.integer, group=SCENARIOS, metavar="N",
        help="random seed for scenarios",
    )  # fmt: skip
    check_target: bool = option(
        True, "--no-check-target", sets=False, group=LOAD,
        help="skip the TCP connect that checks the target before the run",
    )  # fmt: skip
    agent: tuple[int, int] | None = option(
        None, "--agent", parse=values.parse_agent, write=lambda a: f"{a[0]}/{a[1]}",
        group=LOAD, metavar="I/N",
        help="be agent I of N (0-based) of one run split over hosts: its share of the"
        " schedule, of -c and of -n (merge the --json reports with 'loadgen merge')",
    )  # fmt: skip
    start_at: float | None = option(
        None, "--start-at", parse=values.start_time, write=repr, group=LOAD, metavar="TIME",
        help="start the run at TIME: +DELAY (+5s), Unix seconds or ISO-8601"
        " (at most 10 minutes away), to line up agents on several hosts",
    )  # fmt: skip
    # -- clients that misbehave, held beside the load (loadgen/misbehave.py) ---------------
    misbehaving: tuple[tuple[str, int], ...] = option(
        (), "--misbehaving", parse=values.misbehaving, repeated=True, group=MISBEHAVING,
        write=lambda kv: f"{kv[0]}={kv[1]}", metavar="KIND=N",
        help="beside the load, hold N connections of KIND from before the warm-up to the"
        " end: idle (sends nothing), slow-headers (its request head a byte at a time),"
        f" stalled-body (a head and half its body, then nothing); repeatable, at most"
        f" {MAX_HELD} in all, loopback targets only",
    )  # fmt: skip
    misbehaving_pace: float = option(
        1.0, "--misbehaving-pace", parse=values.positive_duration, write=values.seconds_text,
        group=MISBEHAVING, metavar="D", help="slow-headers: one byte every D",
    )  # fmt: skip
    misbehaving_path: str | None = option(
        None, "--misbehaving-path", parse=values.request_path, group=MISBEHAVING,
        metavar="PATH", help="the path the misbehaving requests name (default: the URL's)",
    )  # fmt: skip

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

    @property
    def h2wire_enabled(self) -> bool:
        if self.use_h2wire is not None:
            return self.use_h2wire
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

    def to_argv(self) -> list[str]:
        """This Config as loadgen's command line (without ``python -m loadgen``): every
        field that differs from its default, then the URL. ``python -m loadgen`` reads it
        back into an equal Config (a body holding a NUL byte cannot be an argument)."""
        if b"\0" in self.body:
            raise ConfigError("a body with a NUL byte cannot be written as -d: use -D FILE")
        return options.to_argv(self)

    # -- validation ------------------------------------------------------------------
    def validate(self, *, target: bool = True) -> Config:
        """Raise :class:`ConfigError` with a one-line message if anything is wrong.
        ``target=False``: all but the URL, for a load whose target is not known yet."""
        tls = None
        if target:
            t = parse_url(self.url)
            tls = t.tls
            if not self.allow_remote and not is_loopback_host(t.connect_host):
                raise ConfigError(
                    f"refusing non-loopback target {t.connect_host!r} (pass --allow-remote)"
                )
            if self.misbehaving and not is_loopback_host(t.connect_host):
                raise ConfigError(f"--misbehaving: loopback targets only, not {t.connect_host!r}")
        options.check(self)
        self._check_protocol(tls)
        if self.processes > self.concurrency:
            raise ConfigError(
                f"--processes ({self.processes}) cannot exceed -c ({self.concurrency})"
            )
        n = self.n_total
        if n is not None and self.processes > n:
            raise ConfigError(f"--processes ({self.processes}) cannot exceed -n ({n})")
        kinds = [kind for kind, _ in self.misbehaving]
        if len(set(kinds)) != len(kinds):
            raise ConfigError("--misbehaving: each KIND once (give its N as one number)")
        if sum(count for _, count in self.misbehaving) > MAX_HELD:
            raise ConfigError(f"--misbehaving: at most {MAX_HELD} connections in all")
        if self.misbehaving and self.agent is not None:
            raise ConfigError("--misbehaving holds connections from one host: not with --agent")
        talking = [kind for kind, _ in self.misbehaving if kind != IDLE]
        if talking and (tls or self.h2):
            raise ConfigError(
                f"--misbehaving {talking[0]} sends HTTP/1.1 in cleartext: not with https:// "
                "or --h2 (idle connections are held on any)"
            )
        if self.agent is not None:
            slots = self.agent[1] * self.processes
            if slots > self.concurrency:
                raise ConfigError(
                    f"agents x processes ({slots}) cannot exceed -c ({self.concurrency})"
                )
            if n is not None and slots > n:
                raise ConfigError(f"agents x processes ({slots}) cannot exceed -n ({n})")
        return self

    def _check_protocol(self, tls: bool | None) -> None:
        """TLS and HTTP/2 options that cannot work together (``tls`` None: no URL yet)."""
        if self.h2 and not _h2_installed():
            raise ConfigError("--h2 needs the h2 package (pip install h2: loadgen's h2 extra)")
        if self.streams != 1 and not self.h2:
            raise ConfigError("--streams needs --h2 (an HTTP/1.1 connection carries one)")
        if self.h2 and not self.keepalive:
            raise ConfigError("--disable-keepalive is HTTP/1.1's Connection: close, not --h2's")
        if self.cacert is not None and self.insecure:
            raise ConfigError("--cacert or --insecure, not both")
        for name, given_ in (("--cacert", self.cacert is not None), ("--insecure", self.insecure)):
            if given_ and tls is False:
                raise ConfigError(f"{name} needs an https:// URL (this one is cleartext)")


def _h2_installed() -> bool:
    try:
        import h2  # noqa: F401  (an optional dependency, as uvloop and httptools are)
    except ImportError:
        return False
    return True


_SECRET_WORDS = ("password", "secret", "token", "passwd")


def mask_secrets(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Options with secret-looking values replaced (for reports)."""
    return {
        k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) and v else v)
        for k, v in opts.items()
    }


OPTIONS = options.table(Config)  # the one table of options: field name -> Option


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    names: Iterable[str],
    base: Config | None = None,
) -> None:
    """Config's options ``names`` as argparse arguments; their defaults are ``base``'s
    (loadgen's own when None), shown in the help. ``base.replace(**given(args))`` is
    then the Config the command line asks for."""
    options.add_arguments(parser, names, base or Config())


def given(namespace: argparse.Namespace) -> dict[str, Any]:
    """The fields of Config a command line gave values to, by name."""
    return options.given(namespace, Config())
