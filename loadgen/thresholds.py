"""Pass/fail thresholds (k6-style): any failed threshold makes the CLI exit 99.

Syntax: ``METRIC OP VALUE[UNIT]`` with OP one of ``< <= > >=``.

* latency (headline: corrected in the open model, uncorrected in the closed model):
  ``p50``, ``p90``, ``p99``, ``p99.9`` (any ``pNN``), ``mean``, ``max``, ``min``; prefix
  ``uncorrected.`` or ``corrected.`` to choose; units ``ns us ms s m`` (default ms).
* ``errors``: transport errors + unexpected statuses + aborted; with ``%`` a rate of all
  requests, else a count.
* ``checks``: pass rate of all named checks (use ``%``, e.g. ``checks>99%``).
* ``rps``: responses per second (transport errors do not count); ``achieved_rate``
  (open model, req/s).

A threshold with nothing to evaluate (no request, no response for a latency, no check)
fails.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_RE = re.compile(
    r"^\s*(?P<metric>(?:(?:un)?corrected\.)?(?:p\d+(?:\.\d+)?|mean|max|min)|errors|checks|rps"
    r"|achieved_rate)\s*(?P<op><=|>=|<|>)\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<unit>ns|us|µs|ms|s|m|%)?\s*$"
)
_LAT_UNITS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}


@dataclass(frozen=True)
class Threshold:
    text: str
    metric: str  # e.g. "p99", "uncorrected.p99", "errors", "checks", "rps"
    op: str
    value: float  # latency in ns, rates as fractions, else plain numbers
    percent: bool

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.value)


def parse_threshold(text: str) -> Threshold:
    m = _RE.match(text)
    if not m:
        raise ConfigError(
            f"invalid --threshold {text!r} (e.g. 'p99<50ms', 'errors<1%', 'checks>99%', 'rps>1000')"
        )
    metric, op, value, unit = m.group("metric", "op", "value", "unit")
    v = float(value)
    base = metric.split(".", 1)[-1] if metric.startswith(("corrected.", "uncorrected.")) else metric
    is_latency = base.startswith("p") or base in ("mean", "max", "min")
    if is_latency:
        if unit == "%":
            raise ConfigError(f"invalid --threshold {text!r}: latency needs a time unit")
        v *= _LAT_UNITS[unit or "ms"]
        if base.startswith("p") and not 0 <= float(base[1:]) <= 100:
            raise ConfigError(f"invalid --threshold {text!r}: percentile out of range")
        return Threshold(text, metric, op, v, False)
    if metric == "checks" and unit != "%":
        raise ConfigError(f"invalid --threshold {text!r}: use a percentage, e.g. checks>99%")
    if unit not in (None, "%"):
        raise ConfigError(f"invalid --threshold {text!r}: unexpected unit {unit!r}")
    if unit == "%":
        return Threshold(text, metric, op, v / 100.0, True)
    return Threshold(text, metric, op, v, False)
