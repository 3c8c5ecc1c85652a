"""The text report: hey's layout, extended (p99.9/p99.99/max, errors by kind, checks,
corrected vs uncorrected side by side in the open model, self-checks)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .config import mask_secrets
from .result import PERCENTILES

if TYPE_CHECKING:
    from .result import Result

NS = 1e9


def _s(ns: float, dec: int = 4) -> str:
    return f"{ns / NS:.{dec}f} secs"


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f} ms"


def text_report(r: Result) -> str:
    st = r.stats
    cfg = r.config
    out: list[str] = []
    w = out.append
    h = r.latency
    w("")
    w("Summary:")
    w(f"  Total:\t{r.elapsed:.4f} secs")
    w(f"  Slowest:\t{_s(h.max)}")
    w(f"  Fastest:\t{_s(h.min)}")
    w(f"  Average:\t{_s(h.mean)}")
    w(f"  Requests/sec:\t{r.rps:.4f}")
    w("")
    w(f"  Total data:\t{r.bytes} bytes")
    w(f"  Size/request:\t{(r.bytes // r.responses) if r.responses else 0} bytes")
    w(f"  Requests:\t{r.requests} ({r.ok} ok, {r.failed} bad status, {r.n_errors} errors)")
    if r.scenario is not None:
        sc = r.scenario
        opts = ", ".join(f"{k}={v}" for k, v in mask_secrets(sc.options).items())
        w(f"  Scenario:\t{sc.name} ({sc.kind}{'; ' + opts if opts else ''})")
        if sc.flows:
            w(f"  Iterations:\t{st.iterations}")
    model = f"open, target {cfg.rate:g} req/s" if r.open else "closed"
    w(
        f"  Model:\t\t{model}, -c {cfg.concurrency}, {st.processes} process(es), "
        f"{st.loop} loop, {st.parser} parser"
    )

    if r.open:
        w("")
        w("Open model:")
        ach = r.achieved_rate
        w(f"  Target rate:\t{cfg.rate:g} req/s")
        w(f"  Achieved:\t{ach:.2f} req/s" if ach is not None else "  Achieved:\tn/a")
        w(f"  Sent:\t\t{st.sent} of {st.scheduled} scheduled, {st.dropped} dropped")
        w(f"  Queue:\t\tmax {st.max_queue}, mean {st.queue_mean:.2f}")
        lag = st.lag.percentiles((50, 99, 100))
        w(f"  Sched. lag:\tp50 {_ms(lag[50])}, p99 {_ms(lag[99])}, max {_ms(lag[100])}")

    if h.count:
        w("")
        w("Response time histogram:")
        bins = h.linear_bins(10)
        top = max(c for _, c in bins) or 1
        width = (h.max - h.min) / 10 / NS
        dec = 3 if width <= 0 else min(9, max(3, math.ceil(-math.log10(width)) + 1))
        for edge, c in bins:
            bar = "■" * round(40 * c / top)
            w(f"  {edge / NS:.{dec}f} [{c}]\t|{bar}")

        w("")
        w("Latency distribution:")
        if r.open:
            cp = r.corrected.percentiles(PERCENTILES)
            up = r.uncorrected.percentiles(PERCENTILES)
            w("  \t\tcorrected\tuncorrected")
            for p in PERCENTILES:
                label = "100% (max)" if p == 100 else f"{p:g}%"
                w(f"  {label:<10}\t{cp[p] / NS:.4f} secs\t{up[p] / NS:.4f} secs")
            cm, um = r.corrected.mean / NS, r.uncorrected.mean / NS
            w(f"  {'mean':<10}\t{cm:.4f} secs\t{um:.4f} secs")
        else:
            ps = h.percentiles(PERCENTILES)
            for p in PERCENTILES:
                label = "100% (max)" if p == 100 else f"{p:g}%"
                w(f"  {label} in {ps[p] / NS:.4f} secs")

        w("")
        w("Details (average, fastest, slowest):")
        names = {
            "connect": "DNS+dialup",
            "write": "req write",
            "wait": "resp wait",
            "read": "resp read",
        }
        for phase, label in names.items():
            ph = r.phases[phase]
            if ph.count:
                w(
                    f"  {label}:\t{_s(ph.mean, 6)}, {_s(ph.min, 6)}, {_s(ph.max, 6)}"
                    f"  ({ph.count} samples)"
                )
            else:
                w(f"  {label}:\tn/a (no sample)")

    w("")
    w("Status code distribution:")
    for code, n in sorted(r.status_codes.items()):
        w(f"  [{code}]\t{n} responses")
    if not r.status_codes:
        w("  (none)")

    if r.errors:
        w("")
        w("Error distribution:")
        for kind, n in sorted(r.errors.items(), key=lambda kv: -kv[1]):
            w(f"  [{n}]\t{kind}")

    if len(st.sinks) > 1:
        w("")
        w("By request name:")
        w(
            f"  {'name':<32} {'reqs':>8} {'bad':>6} {'err':>6} {'p50 ms':>9} {'p99 ms':>9} "
            f"{'max ms':>9}"
        )
        for name, s in sorted(st.sinks.items()):
            hh = s.h_clat if r.open else s.h_lat
            ps = hh.percentiles((50, 99))
            w(
                f"  {name[:32]:<32} {s.n_requests:>8} {s.failed:>6} {s.n_errors:>6} "
                f"{ps[50] / 1e6:>9.3f} {ps[99] / 1e6:>9.3f} {hh.max / 1e6:>9.3f}"
            )

    if r.checks:
        w("")
        w("Checks:")
        for chk in r.checks:
            npass, nfail = chk["passes"], chk["fails"]
            tot = npass + nfail
            if not tot:  # never evaluated: neither passed nor failed
                w(f"  {NOT_EVALUATED} {chk['name']} (not evaluated: no sample)")
                continue
            w(f"  {'✓' if nfail == 0 else '✗'} {chk['name']}")
            if nfail:
                w(f"     ↳ {100 * npass / tot:.2f}% — ✓ {npass} / ✗ {nfail}")
    if st.flow_errors:
        w("")
        w("Flow errors (exceptions raised by scenario code):")
        for k, n in st.flow_errors.items():
            w(f"  [{n}]\t{k}")
        if st.flow_error_example:
            w(f"  e.g. {st.flow_error_example}")

    sc = r.self_checks()
    w("")
    w("Self-checks:")
    cpu = sc["client_cpu"]
    rpc = cpu["requests_per_cpu_s"]
    w(
        f"  {_mark(cpu)} client CPU {cpu['cpu_per_wall_s_per_process']:.2f} s per wall "
        f"second per process ({rpc if rpc is not None else 'n/a'} req per CPU-second)" + _why(cpu)
    )
    if sc["rate"] is not None:
        rt = sc["rate"]
        ach = rt["achieved_rate"]
        w(
            f"  {_mark(rt)} achieved rate {ach if ach is not None else 'n/a'} of target "
            f"{rt['target_rate']:g} req/s" + _why(rt)
        )
    ll = sc["littles_law"]
    w(
        f"  {_mark(ll)} Little's law: mean concurrency {ll['mean_concurrency']} vs "
        f"throughput × mean latency {ll['throughput_x_mean_latency']}" + _why(ll)
    )
    if st.aborted or st.dropped:
        w(f"  ! {st.aborted} aborted in flight at the deadline, {st.dropped} sends dropped")

    if r.thresholds:
        w("")
        w("Thresholds:")
        for t in r.thresholds:
            mark = "✓" if t["ok"] else "✗"
            w(f"  {mark} {t['threshold']} (actual {_fmt_actual(t)})")
    w("")
    return "\n".join(out)


NOT_EVALUATED = "–"  # never ✓: a check with nothing to check did not pass


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
