"""The text report: hey's layout, extended (p99.9/p99.99/max, errors by kind, checks,
corrected vs uncorrected side by side in the open model, self-checks), and
:class:`Result`, what :func:`loadgen.run` returns: a run's numbers
(:class:`~loadgen.outcome.Outcome`) with this report as its ``text()``.

One function per section; each returns its lines (none when the section is empty).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .config import mask_secrets
from .histogram import Histogram
from .outcome import PERCENTILES, Outcome

NS = 1e9
NOT_EVALUATED = "–"  # never ✓: a check with nothing to check did not pass


def _s(ns: float, dec: int = 4) -> str:
    return f"{ns / NS:.{dec}f} secs"


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f} ms"


def summary(r: Outcome) -> list[str]:
    st = r.stats
    cfg = r.config
    h = r.latency
    out = [
        "Summary:",
        f"  Total:\t{r.elapsed:.4f} secs",
        f"  Slowest:\t{_s(h.max)}",
        f"  Fastest:\t{_s(h.min)}",
        f"  Average:\t{_s(h.mean)}",
        f"  Requests/sec:\t{r.rps:.4f}",
        "",
        f"  Total data:\t{r.bytes} bytes",
        f"  Size/request:\t{(r.bytes // r.responses) if r.responses else 0} bytes",
        f"  Requests:\t{r.requests} ({r.ok} ok, {r.failed} bad status, {r.n_errors} errors)",
    ]
    if r.scenario is not None:
        sc = r.scenario
        opts = ", ".join(f"{k}={v}" for k, v in mask_secrets(sc.options).items())
        out.append(f"  Scenario:\t{sc.name} ({sc.kind}{'; ' + opts if opts else ''})")
        if sc.flows:
            out.append(f"  Iterations:\t{st.iterations}")
    model = f"open, target {cfg.rate:g} req/s" if r.open else "closed"
    conns = f"-c {cfg.concurrency}" + (f" x {cfg.streams} streams (HTTP/2)" if cfg.h2 else "")
    out.append(
        f"  Model:\t\t{model}, {conns}, {st.processes} process(es), "
        f"{st.loop} loop, {st.parser} parser"
    )
    return out


def open_model(r: Outcome) -> list[str]:
    if not r.open:
        return []
    st = r.stats
    ach = r.achieved_rate
    lag = st.lag.percentiles((50, 99, 100))
    return [
        "Open model:",
        f"  Target rate:\t{r.config.rate:g} req/s",
        f"  Achieved:\t{ach:.2f} req/s" if ach is not None else "  Achieved:\tn/a",
        f"  Sent:\t\t{st.sent} of {st.scheduled} scheduled, {st.dropped} dropped",
        f"  Queue:\t\tmax {st.max_queue}, mean {st.queue_mean:.2f}",
        f"  Sched. lag:\tp50 {_ms(lag[50])}, p99 {_ms(lag[99])}, max {_ms(lag[100])}",
    ]


def histogram(r: Outcome) -> list[str]:
    h = r.latency
    if not h.count:
        return []
    out = ["Response time histogram:"]
    bins = h.linear_bins(10)
    top = max(c for _, c in bins) or 1
    width = (h.max - h.min) / 10 / NS
    dec = 3 if width <= 0 else min(9, max(3, math.ceil(-math.log10(width)) + 1))
    for edge, c in bins:
        bar = "■" * round(40 * c / top)
        out.append(f"  {edge / NS:.{dec}f} [{c}]\t|{bar}")
    return out


def distribution(r: Outcome) -> list[str]:
    if not r.latency.count:
        return []
    out = ["Latency distribution:"]
    if r.open:
        cp = r.corrected.percentiles(PERCENTILES)
        up = r.uncorrected.percentiles(PERCENTILES)
        out.append("  \t\tcorrected\tuncorrected")
        for p in PERCENTILES:
            label = "100% (max)" if p == 100 else f"{p:g}%"
            out.append(f"  {label:<10}\t{cp[p] / NS:.4f} secs\t{up[p] / NS:.4f} secs")
        cm, um = r.corrected.mean / NS, r.uncorrected.mean / NS
        out.append(f"  {'mean':<10}\t{cm:.4f} secs\t{um:.4f} secs")
    else:
        ps = r.latency.percentiles(PERCENTILES)
        for p in PERCENTILES:
            label = "100% (max)" if p == 100 else f"{p:g}%"
            out.append(f"  {label} in {ps[p] / NS:.4f} secs")
    return out


_PHASE_LABELS = {
    "connect": "DNS+dialup",
    "write": "req write",
    "wait": "resp wait",
    "read": "resp read",
}


def details(r: Outcome) -> list[str]:
    if not r.latency.count:
        return []
    out = ["Details (average, fastest, slowest):"]
    for phase, label in _PHASE_LABELS.items():
        ph = r.phases[phase]
        if ph.count:
            out.append(
                f"  {label}:\t{_s(ph.mean, 6)}, {_s(ph.min, 6)}, {_s(ph.max, 6)}"
                f"  ({ph.count} samples)"
            )
        else:
            out.append(f"  {label}:\tn/a (no sample)")
    return out


def _times(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in counts.items()) or "none"


def _spread(h: Histogram) -> str:
    ps = h.percentiles((50, 99))
    return (
        f"mean {_ms(h.mean)}, p50 {_ms(ps[50])}, p99 {_ms(ps[99])}, max {_ms(h.max)}"
        f"  ({h.count} samples)"
    )


def connections(r: Outcome) -> list[str]:
    """Set-up (timed apart from the requests) and what the connections negotiated."""
    setup, proto = r.connection_setup(), r.stats.conn.protocol(r.config)
    cs = r.stats.conn
    tls = proto["tls"]
    out = [
        "Connections (set-up timed apart from the requests):",
        f"  Opened:\t{setup['connections']}"
        + (f" ({setup['handshakes']} TLS handshakes)" if tls else ""),
        f"  Protocol:\t{_times(proto['negotiated'])} (asked: {proto['requested']})",
    ]
    if tls:
        out.append(f"  TLS:\t\t{_times(tls['versions'])}; {_times(tls['ciphers'])}")
        out.append(f"  ALPN answer:\t{_times(tls['alpn'])}")
    if cs.tcp.count:
        out.append(f"  TCP connect:\t{_spread(cs.tcp)}")
    if cs.tls.count:
        out.append(f"  TLS handshake:\t{_spread(cs.tls)}")
    return out


def http2(r: Outcome) -> list[str]:
    h2 = r.stats.conn.protocol(r.config)["h2"]
    if h2 is None:
        return []
    allowed = h2["server_max_concurrent_streams"]
    out = [
        "HTTP/2:",
        f"  Streams:\t{h2['streams_per_connection']} per connection asked; the server's "
        f"limit: {_times(allowed) if allowed else 'none said'}",
    ]
    if h2["limited_connections"]:
        out.append(
            f"  ! {h2['limited_connections']} connection(s) allowed fewer streams than asked:"
            " the requests beyond the limit waited for a stream"
        )
    for key, label in (("goaway", "GOAWAY received"), ("rst_stream", "RST_STREAM received")):
        if h2[key]:
            out.append(f"  {label}:\t{_times(h2[key])}")
    if h2["protocol_errors"]:
        out.append(f"  ! {h2['protocol_errors']} connection(s) closed: the server broke HTTP/2")
    if h2["not_h2"]:
        out.append(
            f"  ! {h2['not_h2']} connection(s) not HTTP/2: ALPN chose another protocol,"
            " or the server has no h2c"
        )
    return out


def status_codes(r: Outcome) -> list[str]:
    out = ["Status code distribution:"]
    for code, n in sorted(r.status_codes.items()):
        out.append(f"  [{code}]\t{n} responses")
    if not r.status_codes:
        out.append("  (none)")
    return out


def errors(r: Outcome) -> list[str]:
    if not r.errors:
        return []
    out = ["Error distribution:"]
    for kind, n in sorted(r.errors.items(), key=lambda kv: -kv[1]):
        out.append(f"  [{n}]\t{kind}")
    return out


def by_name(r: Outcome) -> list[str]:
    sinks = r.stats.sinks
    if len(sinks) <= 1:
        return []
    out = [
        "By request name:",
        f"  {'name':<32} {'reqs':>8} {'bad':>6} {'err':>6} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'max ms':>9}",
    ]
    for name, s in sorted(sinks.items()):
        hh = s.h_clat if r.open else s.h_lat
        ps = hh.percentiles((50, 99))
        out.append(
            f"  {name[:32]:<32} {s.n_requests:>8} {s.failed:>6} {s.n_errors:>6} "
            f"{ps[50] / 1e6:>9.3f} {ps[99] / 1e6:>9.3f} {hh.max / 1e6:>9.3f}"
        )
    return out


def checks(r: Outcome) -> list[str]:
    if not r.checks:
        return []
    out = ["Checks:"]
    for chk in r.checks:
        npass, nfail = chk["passes"], chk["fails"]
        tot = npass + nfail
        if not tot:  # never evaluated: neither passed nor failed
            out.append(f"  {NOT_EVALUATED} {chk['name']} (not evaluated: no sample)")
            continue
        out.append(f"  {'✓' if nfail == 0 else '✗'} {chk['name']}")
        if nfail:
            out.append(f"     ↳ {100 * npass / tot:.2f}% — ✓ {npass} / ✗ {nfail}")
    return out


def flow_errors(r: Outcome) -> list[str]:
    st = r.stats
    if not st.flow_errors:
        return []
    out = ["Flow errors (exceptions raised by scenario code):"]
    for k, n in st.flow_errors.items():
        out.append(f"  [{n}]\t{k}")
    if st.flow_error_example:
        out.append(f"  e.g. {st.flow_error_example}")
    return out


def misbehaving(r: Outcome) -> list[str]:
    held = r.stats.misbehaving
    if not held:
        return []
    pace = f", a byte every {r.config.misbehaving_pace:g} s" if "slow-headers" in held else ""
    out = [f"Misbehaving connections (held beside the load from before the warm-up{pace}):"]
    for kind, k in held.items():
        line = f"  {kind}:\t{k['opened']} of {k['asked']} opened, {k['held']} held to the end"
        if k["closed"]:
            after = k["closed_after_s"]
            line += (
                f", {k['closed']} closed by the server after {after['min']:g}-{after['max']:g} s"
            )
        if k["failed"]:
            line += f", {k['failed']} could not connect"
        if k["answered"]:
            line += " (answers: " + ", ".join(f"{s} x{n}" for s, n in k["answered"].items()) + ")"
        out.append(line)
    return out


def self_checks(r: Outcome) -> list[str]:
    st = r.stats
    sc = r.self_checks()
    cpu = sc["client_cpu"]
    rpc = cpu["requests_per_cpu_s"]
    out = [
        "Self-checks:",
        f"  {_mark(cpu)} client CPU {cpu['cpu_per_wall_s_per_process']:.2f} s per wall "
        f"second per process ({rpc if rpc is not None else 'n/a'} req per CPU-second)" + _why(cpu),
    ]
    if sc["rate"] is not None:
        rt = sc["rate"]
        ach = rt["achieved_rate"]
        out.append(
            f"  {_mark(rt)} achieved rate {ach if ach is not None else 'n/a'} of target "
            f"{rt['target_rate']:g} req/s" + _why(rt)
        )
    ll = sc["littles_law"]
    out.append(
        f"  {_mark(ll)} Little's law: mean concurrency {ll['mean_concurrency']} vs "
        f"throughput × mean latency {ll['throughput_x_mean_latency']}" + _why(ll)
    )
    if st.aborted or st.dropped:
        out.append(
            f"  ! {st.aborted} aborted in flight at the deadline, {st.dropped} sends dropped"
        )
    return out


def thresholds(r: Outcome) -> list[str]:
    if not r.thresholds:
        return []
    out = ["Thresholds:"]
    for t in r.thresholds:
        mark = "✓" if t["ok"] else "✗"
        out.append(f"  {mark} {t['threshold']} (actual {_fmt_actual(t)})")
    return out


SECTIONS: tuple[Callable[[Outcome], list[str]], ...] = (
    summary,
    open_model,
    histogram,
    distribution,
    details,
    connections,
    http2,
    status_codes,
    errors,
    by_name,
    checks,
    flow_errors,
    misbehaving,
    self_checks,
    thresholds,
)


def text_report(r: Outcome) -> str:
    """The sections, each after a blank line, and a final blank line."""
    out: list[str] = []
    for section in SECTIONS:
        lines = section(r)
        if lines:
            out.append("")
            out.extend(lines)
    out.append("")
    return "\n".join(out)


class Result(Outcome):
    """What :func:`loadgen.run` returns.

    Main attributes: ``config``, ``stats`` (raw merged :class:`~loadgen.stats.Stats`),
    ``uncorrected`` / ``corrected`` / ``latency`` (headline) histograms, ``requests``,
    ``responses``, ``errors`` (dict kind -> count), ``elapsed`` (s), ``rps``.
    Methods: ``percentile(p, corrected=None)`` (seconds), ``to_dict()`` (the JSON
    report), ``to_json()``, ``text()`` (the hey-like report), ``passed`` /
    ``exit_code`` (thresholds: 0 or 99).
    """

    def text(self) -> str:
        return text_report(self)


def _mark(check: dict[str, object]) -> str:
    if check["ok"]:
        return "✓"
    return "✗" if check.get("evaluated", True) else NOT_EVALUATED


def _why(check: dict[str, object]) -> str:
    if check["ok"]:
        return ""
    prefix = "" if check.get("evaluated", True) else "not evaluated: "
    return f"  <- {prefix}{check['reason']}"


def _fmt_actual(t: dict[str, object]) -> str:
    a = t["actual"]
    if a is None:
        return "n/a: nothing to evaluate"
    assert isinstance(a, float | int)
    th = str(t["threshold"])
    if th.lstrip().startswith(("p", "mean", "max", "min", "corrected", "uncorrected")):
        return f"{a / 1e6:.3f}ms"
    if "%" in th:
        return f"{100 * a:.3f}%"
    return f"{a:g}"
