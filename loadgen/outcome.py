"""The numbers of a run: derived counts, checks, self-checks, thresholds and the JSON
report (:class:`Outcome`; :class:`loadgen.report.Result` adds the text report)."""

from __future__ import annotations

import json
from typing import Any

from .agent import agent_block
from .config import Config, mask_secrets
from .errorkinds import ABORTED
from .histogram import Histogram
from .stats import PHASES, PhaseStat, Stats
from .thresholds import Threshold, parse_threshold
from .version import __version__

REPORT_VERSION = 1
PERCENTILES = (10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100)
NS = 1e9
# Little's law compares the sampled mean in-flight count with the latencies; from fewer
# samples (one each 0.1 s, per process) that mean is noise, not a check.
MIN_INFLIGHT_SAMPLES = 5


def _pkey(p: float) -> str:
    return f"{p:g}"


def latency_block(h: Histogram, with_buckets: bool = True) -> dict[str, Any]:
    ps = h.percentiles(PERCENTILES)
    d: dict[str, Any] = {
        "count": h.count,
        "min_ns": h.min,
        "max_ns": h.max,
        "mean_ns": round(h.mean),
        "stdev_ns": round(h.stdev()),
        "percentiles_ns": {_pkey(p): ps[p] for p in PERCENTILES},
    }
    if with_buckets:
        d["histogram"] = h.to_dict()
    return d


def scenario_block(sc: Any) -> dict[str, Any]:
    """The report's ``scenario``; a scenario file's carries the file's digest (``merge``
    refuses agents that ran different files)."""
    block = {"name": sc.name, "kind": sc.kind, "options": mask_secrets(sc.options)}
    if getattr(sc, "file_sha256", None):
        block["file_sha256"] = sc.file_sha256
    return block


class Outcome:
    """What a run measured and what follows from it (see :class:`loadgen.report.Result`,
    its subclass that :func:`loadgen.run` returns)."""

    def __init__(self, config: Config, stats: Stats, scenario: Any = None) -> None:
        self.config = config
        self.stats = stats
        self.scenario = scenario
        self.open = config.open_model
        self.uncorrected = Histogram()
        self.corrected = Histogram()
        self.phases = {p: PhaseStat() for p in PHASES}
        self.status_codes: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.failed = 0
        self.bytes = 0
        for s in stats.sinks.values():
            self.uncorrected.merge(s.h_lat)
            self.corrected.merge(s.h_clat)
            for p in PHASES:
                self.phases[p].merge(s.phases[p])
            for k, v in s.statuses.items():
                self.status_codes[k] = self.status_codes.get(k, 0) + v
            for k2, v in s.errors.items():
                self.errors[k2] = self.errors.get(k2, 0) + v
            self.failed += s.failed
            self.bytes += s.nbytes
        self.latency = self.corrected if self.open else self.uncorrected
        self.responses = self.uncorrected.count
        self.n_errors = sum(self.errors.values())
        self.requests = self.responses + self.n_errors
        self.ok = self.responses - self.failed
        end = max(stats.last_done_ns, stats.last_send_ns)
        if end <= stats.start_ns:
            end = stats.end_ns
        self.elapsed = max(end - stats.start_ns, 1) / NS
        self.rps = self.requests / self.elapsed if self.requests else 0.0
        self.checks = self._checks()
        self.thresholds = [self._eval(parse_threshold(t)) for t in config.thresholds]

    # -- derived -------------------------------------------------------------------------
    def percentile(self, p: float, corrected: bool | None = None) -> float:
        """Latency at percentile ``p`` in seconds (headline histogram by default)."""
        h = (
            self.latency
            if corrected is None
            else (self.corrected if corrected else self.uncorrected)
        )
        return h.percentile(p) / NS

    @property
    def error_rate(self) -> float:
        bad = self.n_errors + self.failed
        return bad / self.requests if self.requests else 0.0

    @property
    def achieved_rate(self) -> float | None:
        st = self.stats
        if not self.open or st.sent < 2 or st.last_send_ns <= st.first_send_ns:
            return None
        return (st.sent - 1) / ((st.last_send_ns - st.first_send_ns) / NS)

    def _checks(self) -> list[dict[str, Any]]:
        out = []
        sc = self.scenario
        if sc is not None and sc.endpoints:
            # k6-style status checks of endpoint scenarios, derived from the counts
            for name, s in self.stats.sinks.items():
                if s.expect is None:
                    continue
                good = sum(v for k, v in s.statuses.items() if k in s.expect)
                label = "/".join(str(x) for x in sorted(s.expect))
                out.append(
                    {
                        "name": f"{name}: status is {label}",
                        "passes": good,
                        "fails": s.n_requests - good,
                    }
                )
        for name, (p, f) in self.stats.checks.items():
            out.append({"name": name, "passes": p, "fails": f})
        return out

    @property
    def checks_rate(self) -> float | None:
        p = sum(c["passes"] for c in self.checks)
        f = sum(c["fails"] for c in self.checks)
        return p / (p + f) if p + f else None

    def self_checks(self) -> dict[str, Any]:
        """Each check: ``ok`` (passed), ``evaluated`` (False: there was nothing to check,
        and ``ok`` is False too, so that no reader takes it for a pass) and ``reason``
        (why it failed or was not evaluated; None when ok)."""
        st = self.stats
        cpu = st.cpu_user + st.cpu_sys
        per_wall = cpu / st.wall if st.wall > 0 else 0.0
        per_proc = per_wall / max(st.processes, 1)
        cpu_evaluated = st.wall > 0
        cpu_ok = cpu_evaluated and per_proc <= 0.9
        out: dict[str, Any] = {
            "client_cpu": {
                "user_s": round(st.cpu_user, 4),
                "sys_s": round(st.cpu_sys, 4),
                "wall_s": round(st.wall, 4),
                "cpu_per_wall_s": round(per_wall, 4),
                "cpu_per_wall_s_per_process": round(per_proc, 4),
                "requests_per_cpu_s": round(self.requests / cpu) if cpu > 0 else None,
                "ok": cpu_ok,
                "evaluated": cpu_evaluated,
                "reason": None
                if cpu_ok
                else "no wall time measured"
                if not cpu_evaluated
                else "above 0.9 CPU-s per wall second: the client may be the bottleneck",
            },
            "rate": None,
        }
        if self.open:
            ach = self.achieved_rate
            tgt = self.config.rate
            rate_evaluated = ach is not None and bool(tgt)
            rate_ok = bool(rate_evaluated and ach is not None and tgt and ach >= 0.95 * tgt)
            out["rate"] = {
                "target_rate": tgt,
                "achieved_rate": round(ach, 3) if ach is not None else None,
                "ratio": round(ach / tgt, 4) if ach is not None and tgt else None,
                "ok": rate_ok,
                "evaluated": rate_evaluated,
                "reason": None
                if rate_ok
                else "fewer than 2 measured sends"
                if not rate_evaluated
                else "below 95% of the target",
            }
        out["littles_law"] = self._littles_law()
        return out

    def _littles_law(self) -> dict[str, Any]:
        # L = λW over every measured request: a request that ended in an error (a
        # timeout, a reset, aborted at the deadline) was in flight too, so W includes
        # its time; λW is then the summed time in flight over the elapsed time.
        st = self.stats
        busy_ns = self.uncorrected.total + sum(s.error_ns for s in st.sinks.values())
        pred = busy_ns / NS / self.elapsed if self.requests else 0.0
        meas = st.inflight_mean
        ratio = meas / pred if pred > 0 else None
        reason = None
        if self.responses == 0:
            reason = "no response completed: no latency to check"
        elif st.inflight_samples < MIN_INFLIGHT_SAMPLES * max(st.processes, 1):
            reason = f"run too short ({st.inflight_samples} samples of the in-flight count)"
        evaluated = reason is None
        ok = evaluated and ratio is not None and 0.75 <= ratio <= 1.25
        if evaluated and not ok:
            reason = "they differ by more than 25%"
        return {
            "mean_concurrency": round(meas, 3),
            "throughput_x_mean_latency": round(pred, 3),
            "ratio": round(ratio, 3) if ratio is not None else None,
            "ok": ok,
            "evaluated": evaluated,
            "reason": reason,
        }

    # -- thresholds ------------------------------------------------------------------------
    def _eval(self, th: Threshold) -> dict[str, Any]:
        m = th.metric
        actual: float | None
        # actual None = nothing to evaluate (no request, no response, no check): the
        # threshold fails, whatever its direction
        if m == "errors":
            if not self.requests:
                actual = None
            else:
                actual = self.error_rate if th.percent else float(self.n_errors + self.failed)
        elif m == "checks":
            actual = self.checks_rate
        elif m == "rps":
            # responses per second: requests that ended in a transport error do not count
            actual = self.responses / self.elapsed if self.responses else None
        elif m == "achieved_rate":
            actual = self.achieved_rate
        else:
            h = self.latency
            if m.startswith("uncorrected."):
                h = self.uncorrected
            elif m.startswith("corrected."):
                h = self.corrected if self.open else self.uncorrected
            base = m.split(".", 1)[1] if m.startswith(("corrected.", "uncorrected.")) else m
            if not h.count:
                actual = None  # an empty histogram's mean, min and max read 0
            elif base == "mean":
                actual = h.mean
            elif base == "max":
                actual = float(h.max)
            elif base == "min":
                actual = float(h.min)
            else:
                actual = float(h.percentile(float(base[1:])))
        ok = actual is not None and th.holds(actual)
        return {"threshold": th.text, "actual": actual, "ok": bool(ok)}

    @property
    def passed(self) -> bool:
        return all(t["ok"] for t in self.thresholds)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 99

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        st = self.stats
        sc = self.scenario
        by_name = []
        for name, s in sorted(st.sinks.items()):
            h = s.h_clat if self.open else s.h_lat
            by_name.append(
                {
                    "name": name,
                    "requests": s.n_requests,
                    "responses": s.n_responses,
                    "failed": s.failed,
                    "errors": dict(s.errors),
                    "status_codes": {str(k): v for k, v in sorted(s.statuses.items())},
                    "bytes": s.nbytes,
                    "latency": latency_block(h, with_buckets=False),
                }
            )
        open_block = None
        if self.open:
            lag = st.lag.percentiles((50, 99, 100))
            open_block = {
                "target_rate": self.config.rate,
                "achieved_rate": self.achieved_rate,
                "scheduled": st.scheduled,
                "sent": st.sent,
                "dropped": st.dropped,
                "max_queue": st.max_queue,
                "mean_queue": round(st.queue_mean, 3),
                "scheduler_lag_ns": {"p50": lag[50], "p99": lag[99], "max": lag[100]},
            }
        d: dict[str, Any] = {
            "version": REPORT_VERSION,
            "tool": {
                "name": "loadgen",
                "version": __version__,
                "loop": st.loop,
                "parser": st.parser,
                "processes": st.processes,
            },
            "config": self.config.to_dict(),
            "model": "open" if self.open else "closed",
            "scenario": None if sc is None else scenario_block(sc),
            "summary": {
                "requests": self.requests,
                "responses": self.responses,
                "ok": self.ok,
                "failed": self.failed,
                "errors": self.n_errors,
                "aborted": st.aborted,
                "dropped": st.dropped,
                "error_rate": round(self.error_rate, 6),
                "elapsed_s": round(self.elapsed, 6),
                "rps": round(self.rps, 3),
                "bytes": self.bytes,
                "bytes_per_response": round(self.bytes / self.responses, 1)
                if self.responses
                else 0,
                "iterations": st.iterations if sc is not None and sc.flows else self.requests,
                "connections": st.connections,
            },
            "latency": {
                "headline": "corrected" if self.open else "uncorrected",
                "uncorrected": latency_block(self.uncorrected),
                "corrected": latency_block(self.corrected) if self.open else None,
            },
            "phases": {p: self.phases[p].to_dict() for p in PHASES},
            "connection_setup": self.connection_setup(),
            "protocol": st.conn.protocol(self.config),
            "status_codes": {str(k): v for k, v in sorted(self.status_codes.items())},
            "errors": dict(sorted(self.errors.items())),
            "checks": self.checks,
            "flow_errors": dict(st.flow_errors),
            "flow_error_example": st.flow_error_example or None,
            "by_name": by_name,
            "open_model": open_block,
            "series": [st.series[t].to_dict() for t in sorted(st.series)],
            "self_checks": self.self_checks(),
            "misbehaving": st.misbehaving,
            "thresholds": self.thresholds,
            "passed": self.passed,
        }
        if self.config.agent is not None:
            d["agent"] = agent_block(self.config.agent, self.config.start_at, st)
        return d

    def connection_setup(self) -> dict[str, Any]:
        """Every connection's set-up (TCP, then TLS), timed apart from the requests."""
        cs = self.stats.conn
        tls = latency_block(cs.tls, with_buckets=False) if self.config.target.tls else None
        return {
            "connections": self.stats.connections,
            "handshakes": cs.handshakes,
            "tcp_connect": latency_block(cs.tcp, with_buckets=False),
            "tls_handshake": tls,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @property
    def aborted(self) -> int:
        return self.errors.get(ABORTED, 0)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} requests={self.requests} rps={self.rps:.1f} "
            f"p50={self.percentile(50) * 1e3:.3f}ms p99={self.percentile(99) * 1e3:.3f}ms "
            f"errors={self.n_errors}>"
        )
