"""``python -m loadgen merge A.json B.json ... [--json OUT] [-q]``: the agents' JSON
reports (``--agent I/N``) merged exactly into the report of one run.

Each report's ``agent.state`` holds its complete raw statistics (times in Unix ns);
they are rebuilt as :class:`~loadgen.stats.Stats` and merged with
:meth:`Stats.merge`, as ``--processes`` merges its workers, then reported by the same
:class:`~loadgen.report.Result`.  Per-second series are aligned on wall-clock seconds:
agent i's seconds are moved by round((its start - the earliest start) / 1 s).  The
merged JSON adds ``agents`` (each agent's own figures, clock offset and window) and
``agent_windows`` (span and overlap of the measured windows).
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .agent import stats_from_state
from .config import Config, ConfigError
from .outcome import REPORT_VERSION
from .report import Result
from .stats import Stats

__all__ = ["load_report", "merge_main", "merge_reports"]

# config keys that must be equal in every agent of one run (the URL: its path)
_SAME = (
    "requests", "duration", "concurrency", "rate", "method", "headers", "body_bytes",
    "timeout", "warmup", "processes", "scenario", "scenario_options", "thresholds",
    "seed", "max_queue", "keepalive", "model",
)  # fmt: skip
_FIELDS = set(Config.__dataclass_fields__) - {"body", "agent", "start_at", "csv_path"}


def load_report(path: str) -> dict[str, Any]:
    """An agent's JSON report; ConfigError (one line) if it is not one."""
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {path!r}: {e.strerror or e}") from None
    except ValueError:
        raise ConfigError(f"{path!r} is not JSON") from None
    if not isinstance(d, dict) or (d.get("tool") or {}).get("name") != "loadgen":
        raise ConfigError(f"{path!r} is not a loadgen JSON report")
    if d.get("version") != REPORT_VERSION:
        raise ConfigError(f"{path!r}: report version {d.get('version')!r}, not {REPORT_VERSION}")
    ag = d.get("agent")
    if not isinstance(ag, dict) or not isinstance(ag.get("state"), dict):
        raise ConfigError(f"{path!r} is not an agent's report (run it with --agent I/N)")
    return d


def _run_key(d: dict[str, Any]) -> tuple[Any, ...]:
    c = d["config"]
    u = urlsplit(c["url"])
    return (u.path, u.query, d["model"], d["scenario"], *(json.dumps(c.get(k)) for k in _SAME))


def _check(reports: list[tuple[str, dict[str, Any]]]) -> int:
    """Validate that the reports are the N agents of one run; returns N."""
    (p0, d0), *_ = reports
    n = d0["agent"]["count"]
    seen: dict[int, str] = {}
    for path, d in reports:
        ag = d["agent"]
        if ag["count"] != n:
            raise ConfigError(f"{path!r} is agent {ag['index']}/{ag['count']}, {p0!r} of {n}")
        if _run_key(d) != _run_key(d0):
            raise ConfigError(f"{path!r} and {p0!r} are not agents of the same run")
        if ag["index"] in seen:
            raise ConfigError(f"agent {ag['index']}/{n} twice: {seen[ag['index']]!r}, {path!r}")
        seen[ag["index"]] = path
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        raise ConfigError(f"agents missing: {', '.join(f'{i}/{n}' for i in missing)}")
    return n


def _config(d: dict[str, Any], n: int) -> Config:
    c = {k: v for k, v in d["config"].items() if k in _FIELDS}
    c["headers"] = tuple(tuple(h) for h in c["headers"])
    c["thresholds"] = tuple(c["thresholds"])
    c["processes"] = c["processes"] * n
    return Config(**c)


def _scenario(d: dict[str, Any]) -> Any:
    sc = d["scenario"]
    if sc is None:
        return None
    endpoints = [True] if sc["kind"] == "endpoints" else []
    flows = [True] if sc["kind"] == "flows" else []
    return SimpleNamespace(
        name=sc["name"],
        kind=sc["kind"],
        options=sc["options"],
        endpoints=endpoints,
        flows=flows,
        file_sha256=sc.get("file_sha256"),
    )


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> tuple[Result, dict[str, Any]]:
    """The merged :class:`Result` and its JSON report (with ``agents``)."""
    if not reports:
        raise ConfigError("merge needs at least one agent report")
    n = _check(reports)
    reports = sorted(reports, key=lambda r: r[1]["agent"]["index"])
    first = min(d["agent"]["window_start_unix_ns"] for _p, d in reports)
    merged = Stats(open_model=reports[0][1]["model"] == "open")
    for _p, d in reports:
        shift = round((d["agent"]["window_start_unix_ns"] - first) / 1e9)
        st = stats_from_state(d["agent"]["state"], shift)
        if not merged.loop:
            merged.loop, merged.parser = st.loop, st.parser
        merged.merge(st)
    merged.processes = sum(d["agent"]["state"]["processes"] for _p, d in reports)
    d0 = reports[0][1]
    result = Result(_config(d0, n), merged, _scenario(d0))
    out = result.to_dict()
    out["config"] = dict(d0["config"], agent=None, start_at=None, csv_path=None)
    out["config"]["processes"] = result.config.processes
    starts = [d["agent"]["window_start_unix_ns"] for _p, d in reports]
    ends = [d["agent"]["window_end_unix_ns"] for _p, d in reports]
    out["agents"] = [_agent_figures(p, d, first) for p, d in reports]
    out["agent_windows"] = {
        "earliest_start_unix_ns": first,
        "span_s": (max(ends) - first) / 1e9,
        "overlap_s": max(0, min(ends) - max(starts)) / 1e9,
        "max_clock_offset_s": (max(starts) - first) / 1e9,
    }
    return result, out


def _agent_figures(path: str, d: dict[str, Any], first: int) -> dict[str, Any]:
    ag = d["agent"]
    lat = d["latency"][d["latency"]["headline"]]
    return {
        "index": ag["index"],
        "count": ag["count"],
        "host": ag["host"],
        "report": path,
        "start_at": ag["start_at"],
        "window_start_unix_ns": ag["window_start_unix_ns"],
        "window_end_unix_ns": ag["window_end_unix_ns"],
        "clock_offset_s": (ag["window_start_unix_ns"] - first) / 1e9,
        "summary": d["summary"],
        "percentiles_ns": lat["percentiles_ns"],
        "open_model": d["open_model"],
    }


def agents_text(out: dict[str, Any]) -> str:
    w = out["agent_windows"]
    lines = [
        "Agents:",
        f"  Windows:\tspan {w['span_s']:.4f} secs, overlap {w['overlap_s']:.4f} secs",
    ]
    for a in out["agents"]:
        s = a["summary"]
        lines.append(
            f"  [{a['index']}/{a['count']}] {a['host']}:"
            f" offset {a['clock_offset_s'] * 1e3:+.3f} ms,"
            f" {s['requests']} requests, {s['rps']:.4f} req/s, {s['elapsed_s']:.4f} secs"
        )
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def merge_main(argv: list[str]) -> int:
    p = _Parser(
        prog="loadgen merge", usage="python -m loadgen merge A.json B.json ... [--json OUT]"
    )
    p.add_argument("reports", nargs="+", metavar="REPORT")
    p.add_argument("--json", metavar="FILE", help="write the merged JSON report ('-' = stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="no text report")
    try:
        a = p.parse_args(argv)
        result, out = merge_reports([(f, load_report(f)) for f in a.reports])
        if a.json:
            text = json.dumps(out, indent=2) + "\n"
            if a.json == "-":
                sys.stdout.write(text)
            else:
                try:
                    with open(a.json, "w") as f:
                        f.write(text)
                except OSError as ex:
                    raise ConfigError(
                        f"cannot write --json {a.json!r}: {ex.strerror or ex}"
                    ) from None
    except ConfigError as e:
        msg = " ".join(str(e).split())
        sys.stderr.write(f"loadgen merge: error: {msg}\n")
        return 2
    if not a.quiet:
        o = sys.stderr if a.json == "-" else sys.stdout
        o.write(result.text() + "\n" + agents_text(out) + "\n")
    return result.exit_code
