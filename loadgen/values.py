"""Option values, each checked by one parser: the text of a command line, or a value a
library caller typed, becomes a checked value or a :class:`ConfigError`.

One parser per kind of value. :class:`~loadgen.config.Config`'s table of options names
the parser of each field: loadgen's command line reads its text through it,
``Config.validate`` re-checks a typed value through it, and the harness uses the same
parsers for its own options. A parser's message does not name the option; argparse and
``Config.validate`` put the option's flags in front of it.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import ssl
import time
from typing import Any

from .errors import ConfigError
from .misbehave import KINDS
from .thresholds import parse_threshold

__all__ = [
    "MAX_START_AHEAD",
    "body",
    "ca_file",
    "duration",
    "header",
    "integer",
    "key_value",
    "method",
    "misbehaving",
    "non_negative_int",
    "parse_agent",
    "parse_duration",
    "parse_header",
    "parse_option",
    "parse_start_at",
    "positive_duration",
    "positive_int",
    "positive_number",
    "request_path",
    "seconds_text",
    "start_time",
    "text",
    "threshold",
]

MAX_START_AHEAD = 600.0  # --start-at: refuse a start further away than this (s)

_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_AGENT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """'10s', '1.5m', '250ms', '2h', '3' (seconds) -> seconds (float), any sign."""
    if not isinstance(text, str):
        return float(text)
    s: str = str(text).strip()
    neg = s.startswith("-")
    m = _DURATION_RE.match(s[1:] if neg else s)
    if not m:
        raise ConfigError(f"invalid {what} {text!r} (use e.g. 10s, 500ms, 2m)")
    v = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return -v if neg else v


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            wanted = "an integer" if kind is int else "a number"
            raise ConfigError(f"must be {wanted}, got {value!r}") from None
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"must be an integer, got {value!r}")
    if not isinstance(value, (int, float)):
        raise ConfigError(f"must be a number, got {value!r}")
    return value


def seconds_text(value: float) -> str:
    """A duration as the shortest text parse_duration reads back exactly: 6.0 -> '6s'."""
    short = f"{value:g}"
    return f"{short if float(short) == value else repr(value)}s"


def duration(value: str | float) -> float:
    """A duration that may be 0 ('0', '2s', '500ms'): warm-up, grace, a timeout."""
    if not isinstance(value, str):
        _number(value, float)
    seconds = parse_duration(value)
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ConfigError(f"must be a duration >= 0, got {value!r}")
    return seconds


def positive_duration(value: str | float) -> float:
    """A duration longer than 0: a 0 s measurement measures nothing."""
    seconds = duration(value)
    if not seconds > 0:
        raise ConfigError(f"must be longer than 0, got {value!r}")
    return seconds


def integer(value: str | int) -> int:
    return int(_number(value, int))


def positive_int(value: str | int) -> int:
    number = integer(value)
    if number < 1:
        raise ConfigError(f"must be positive, got {value!r}")
    return number


def non_negative_int(value: str | int) -> int:
    number = integer(value)
    if number < 0:
        raise ConfigError(f"must be 0 or more, got {value!r}")
    return number


def positive_number(value: str | float) -> float:
    """A finite number above 0 (a rate in requests per second; nan and inf refused)."""
    number = float(_number(value, float))
    if not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"must be positive, got {value!r}")
    return number


def text(value: str) -> str:
    """Any text but an empty one (a scenario, a file name)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"must not be empty, got {value!r}")
    return value


def method(value: str) -> str:
    """An HTTP method: 'get' on a command line is GET."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]+", value):
        raise ConfigError(f"invalid method {value!r}")
    return value.upper()


def parse_header(value: str | tuple[str, str]) -> tuple[str, str]:
    """'Name: value' -> (name, value), or a (name, value) pair checked."""
    if isinstance(value, str):
        if ":" not in value:
            raise ConfigError(f"invalid header {value!r}: expected 'Name: value'")
        name, _, field_value = value.partition(":")
        name, field_value = name.strip(), field_value.strip(" \t")
    else:
        name, field_value = value
    if not _TOKEN.fullmatch(name):
        raise ConfigError(f"invalid header {value!r}: the name is not a token")
    if "\r" in field_value or "\n" in field_value or field_value != field_value.strip(" \t"):
        raise ConfigError(f"invalid header {value!r}: CR, LF or surrounding blanks in the value")
    return name, field_value


header = parse_header


def parse_option(value: str | tuple[str, str]) -> tuple[str, str]:
    """A scenario option: 'KEY=VALUE' -> (KEY, VALUE); the value may hold anything."""
    if isinstance(value, str):
        if "=" not in value:
            raise ConfigError(f"expected KEY=VALUE, got {value!r}")
        key, _, option_value = value.partition("=")
        key = key.strip()
    else:
        key, option_value = value
    if not key or "=" in key or key != key.strip() or not isinstance(option_value, str):
        raise ConfigError(f"expected KEY=VALUE with a KEY, got {value!r}")
    return key, option_value


key_value = parse_option


def misbehaving(value: str | tuple[str, int]) -> tuple[str, int]:
    """Misbehaving connections: 'KIND=N' -> (KIND, N), KIND one of loadgen.misbehave's."""
    count: str | int
    if isinstance(value, str):
        kind, sep, count = value.partition("=")
        if not sep:
            raise ConfigError(f"expected KIND=N (KIND: {', '.join(KINDS)}), got {value!r}")
        kind, count = kind.strip(), count.strip()
    else:
        kind, count = value
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} in {value!r}; kinds: {', '.join(KINDS)}")
    return kind, positive_int(count)


def request_path(value: str) -> str:
    """An origin-form request target: '/' then no blank or control character."""
    if not isinstance(value, str) or not re.fullmatch(r"/[\x21-\x7e]*", value):
        raise ConfigError(f"must be a path starting with '/', no blanks, got {value!r}")
    return value


def body(value: str | bytes) -> bytes:
    """A request body: command-line text as the bytes it was typed as (os.fsencode)."""
    if isinstance(value, bytes):
        return value
    return os.fsencode(value)


def ca_file(value: str) -> str:
    """A readable PEM file of CA certificates (--cacert), kept as named once it loads."""
    text(value)
    try:
        ssl.create_default_context().load_verify_locations(cafile=value)
    except FileNotFoundError:
        raise ConfigError(f"no such file {value!r}") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"{value!r} holds no PEM CA certificate ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {value!r}: {exc.strerror or exc}") from None
    return value


def threshold(value: str) -> str:
    """A threshold such as 'p99<50ms', kept as written once it parses."""
    parse_threshold(value)
    return value


def parse_agent(value: str | tuple[int, int]) -> tuple[int, int]:
    """'I/N' (0-based: 0 <= I < N) -> (I, N)."""
    if isinstance(value, str):
        m = _AGENT_RE.match(value)
        if not m:
            raise ConfigError(f"must be I/N (0-based, e.g. 0/2 and 1/2), got {value!r}")
        i, n = int(m.group(1)), int(m.group(2))
    else:
        i, n = value
    if not (isinstance(i, int) and isinstance(n, int)) or n < 1 or not 0 <= i < n:
        raise ConfigError(f"must be I/N with 0 <= I < N (0-based), got {value!r}")
    return i, n


def parse_start_at(text: str, now: float | None = None) -> float:
    """'+5s' (a delay), '1767225600.5' (Unix seconds) or ISO-8601 ('2026-01-01T12:00:00Z';
    without a zone: local time) -> Unix seconds."""
    s = text.strip()
    now = time.time() if now is None else now
    if s.startswith("+"):
        return now + parse_duration(s[1:], what="--start-at delay")
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"must be +DELAY, Unix seconds or ISO-8601, got {text!r}") from None
    return dt.timestamp()


def start_time(value: str | float) -> float:
    """A start time (Unix seconds) at most MAX_START_AHEAD away and at most 1 s past."""
    at = parse_start_at(value) if isinstance(value, str) else float(_number(value, float))
    ahead = at - time.time()
    if not math.isfinite(ahead) or ahead > MAX_START_AHEAD:
        raise ConfigError(f"must be at most {MAX_START_AHEAD:.0f} s away, is {ahead:.0f} s")
    if ahead < -1.0:
        raise ConfigError(f"must not be in the past, is {-ahead:.1f} s past")
    return at
