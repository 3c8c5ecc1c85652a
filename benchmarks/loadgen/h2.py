"""The HTTP/2 section: ``loadgen --h2`` against h2load (nghttp2's load generator, Debian's
``nghttp2-client``), the HTTP/2 anchor as wrk and hey are HTTP/1.1's.

nginx (one worker pinned to CPU 1) serves ``Hello, World!`` over HTTP/2 twice: h2c (prior
knowledge, cleartext: the client's HTTP/2 work alone) and h2 over TLS (ALPN; a certificate
from a CA made for the run with trustme, in a temporary directory). Each client, pinned to
CPU 0, runs in turn ``--trials`` times with the same connections and streams per
connection (h2load ``-c C -m S``, loadgen ``-c C --streams S``); with ``--baseline DIR``
the loadgen in ``DIR/loadgen`` alternates with this one, before and after side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .tools import REPO, SATURATED, Proc, _free_port, _pin, loadgen_cmd, med, parse, run_measured

NGINX_H2_CONF = """\
worker_processes 1;
daemon off;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  http2_max_concurrent_streams 256;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{h2c} http2;
    listen 127.0.0.1:{h2} ssl http2;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.pem;
    location / {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
}}
"""


def start_h2_target(tmp: str) -> tuple[Proc, dict[str, str], str, str]:
    """nginx serving h2c and h2 over TLS: (process, {"h2c": url, "h2": url}, CA file,
    what it is)."""
    import trustme  # the test extra's: a CA for this run only, never written elsewhere

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    ca = trustme.CA()
    ca.cert_pem.write_to_path(os.path.join(tmp, "ca.pem"))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        os.path.join(tmp, "server.pem")
    )
    ports = {"h2c": _free_port(), "h2": _free_port()}
    conf = Path(tmp) / "nginx-h2.conf"
    conf.write_text(NGINX_H2_CONF.format(dir=tmp, **ports))
    pr = Proc([*_pin(1), nginx, "-c", str(conf), "-p", tmp], stdin=False)
    urls = {"h2c": f"http://127.0.0.1:{ports['h2c']}/", "h2": f"https://127.0.0.1:{ports['h2']}/"}
    for _ in range(100):  # listening on both ports
        try:
            for port in ports.values():
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    ver = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    return pr, urls, os.path.join(tmp, "ca.pem"), f"nginx ({ver}), 1 worker, HTTP/2"


def parse_h2load(out: str) -> dict[str, Any]:
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    rps = re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)", out)
    assert done and rps and mean, out[-500:]
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[mean.group(2)]
    return {
        "requests": int(done.group(1)),
        "succeeded": int(done.group(2)),
        "rps": float(rps.group(1)),
        "mean": float(mean.group(1)) * unit,
    }


def _loadgen_mean(out: str) -> float:
    return float(json.loads(out)["latency"]["uncorrected"]["mean_ns"]) / 1e9


def clients(
    urls: dict[str, str], ca: str, args: argparse.Namespace
) -> dict[str, dict[str, list[str]]]:
    """Per target, per client: its command."""
    c, s, dur = args.h2_connections, args.h2_streams, args.duration
    out: dict[str, dict[str, list[str]]] = {}
    for target, url in urls.items():
        tls = ["--cacert", ca] if target == "h2" else []
        cmds = {"h2load": [*_pin(0), "h2load", "-c", str(c), "-m", str(s), "-D", f"{dur:g}", url]}
        if args.baseline:
            cmds["loadgen --h2 (baseline)"] = loadgen_cmd(
                url, c, dur, "--h2", "--streams", str(s), *tls
            )
        cmds["loadgen --h2"] = loadgen_cmd(url, c, dur, "--h2", "--streams", str(s), *tls)
        out[target] = cmds
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every client against both targets, in turn, ``args.trials`` times."""
    with tempfile.TemporaryDirectory() as tmp:
        pr, urls, ca, what = start_h2_target(tmp)
        try:
            cmds = clients(urls, ca, args)
            rows: dict[str, dict[str, list[dict[str, Any]]]] = {
                t: {k: [] for k in cc} for t, cc in cmds.items()
            }
            for trial in range(args.trials):
                for target, cc in cmds.items():
                    for tool, argv in cc.items():
                        cwd = args.baseline if tool.endswith("(baseline)") else REPO
                        out, cpu, wall, busy = run_measured(argv, args.duration * 3 + 30, cwd)
                        if tool == "h2load":
                            r = parse_h2load(out)
                        else:
                            r = parse("loadgen", out)
                            r["mean"] = _loadgen_mean(out)
                        r.update(cpu=cpu, wall=wall, loadavg=os.getloadavg()[0])
                        r["busy"] = busy["busy"] if busy else None
                        r["saturated"] = bool(busy and busy["busy"] >= SATURATED)
                        r["per_cpu"] = r["requests"] / cpu
                        if "inrun_cpu" in r:
                            r["per_cpu_inrun"] = r["requests"] / r["inrun_cpu"]
                        rows[target][tool].append(r)
                        print(
                            f"  trial {trial + 1} {target:<3} {tool:<24} {r['requests']:>8} req"
                            f"  {r['per_cpu']:>8.0f} req/CPU-s  busy {r['busy'] or 0:.2f}",
                            flush=True,
                        )
        finally:
            pr.stop()
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    return {
        "target": what,
        "h2load": h2load.strip().splitlines()[0] if h2load else "n/a",
        "connections": args.h2_connections,
        "streams": args.h2_streams,
        "duration": args.duration,
        "trials": args.trials,
        "commands": {t: {k: " ".join(v) for k, v in cc.items()} for t, cc in cmds.items()},
        "rows": rows,
    }


def write_section(w: Any, h2: dict[str, Any] | None, cpus: int | None = None) -> None:
    """Section 3 of BENCHMARKS.md (nothing when it was not measured)."""
    if not h2:
        return
    c, s = h2["connections"], h2["streams"]
    w("## 3. HTTP/2: loadgen --h2 versus h2load (requests per client CPU-second)")
    w("")
    w(
        f"Target: {h2['target']}, h2c (cleartext, prior knowledge) and h2 over TLS (ALPN). "
        f"Each client ran {h2['trials']} times for {h2['duration']:g} s with {c} connections "
        f"of {s} streams each (h2load `-c {c} -m {s}`, loadgen `-c {c} --streams {s}`), in "
        f"turn; {h2['h2load']}. Client CPU and saturation as in section 1; medians; the "
        "ratios are paired (each trial's over h2load's in the same trial)."
    )
    w("")
    loads = [r["loadavg"] for rows in h2["rows"].values() for rs in rows.values() for r in rs]
    if cpus and max(loads) > cpus:  # a shared machine: say so beside the figures
        w(
            f"**A shared machine.** The 1-minute load average was {min(loads):.1f} to "
            f"{max(loads):.1f} on {cpus} CPUs during these trials (other work ran beside "
            "them): each client got only part of CPU 0, so its requests per second and its "
            "latencies are far below what the same client does alone. Requests per client "
            "CPU-second count the client's own CPU time and hold better, but caches and "
            "the target shared the CPUs too: read them as orders of magnitude and the "
            "paired ratios as rough, not as section 1's figures."
        )
        w("")
    for target, rows in h2["rows"].items():
        ref = rows["h2load"]
        w(f"### {'h2c (cleartext)' if target == 'h2c' else 'h2 over TLS'}")
        w("")
        w(
            "| client | requests/s | mean latency | req per client CPU-s | ratio to h2load "
            "| in-run req/CPU-s | saturated trials | saturated: ratio |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for tool, rs in rows.items():
            pc = med([r["per_cpu"] for r in rs])
            ratios = [r["per_cpu"] / x["per_cpu"] for r, x in zip(rs, ref, strict=True)]
            sat = [q for q, r in zip(ratios, rs, strict=True) if r["saturated"]]
            inrun = med([r["per_cpu_inrun"] for r in rs]) if "per_cpu_inrun" in rs[0] else None
            w(
                f"| {tool} | {med([r['rps'] for r in rs]):,.0f} "
                f"| {med([r['mean'] for r in rs]) * 1e3:.3f} ms | {pc:,.0f} | {med(ratios):.3f} "
                f"| {f'{inrun:,.0f}' if inrun else '–'} | {len(sat)} of {len(rs)} "
                f"| {f'{med(sat):.3f}' if sat else '–'} |"
            )
        w("")
        w("Per trial (req per client CPU-s; busy in brackets; load: 1-minute load average):")
        w("")
        w("| trial | " + " | ".join(rows) + " | load |")
        w("|---|" + "---:|" * (len(rows) + 1))
        for i in range(h2["trials"]):
            cells = [f"{rows[t][i]['per_cpu']:,.0f} ({rows[t][i]['busy'] or 0:.2f})" for t in rows]
            w(f"| {i + 1} | " + " | ".join(cells) + f" | {ref[i]['loadavg']:.1f} |")
        w("")
        base, new = rows.get("loadgen --h2 (baseline)"), rows.get("loadgen --h2")
        if base and new:
            ratio = [b["per_cpu"] / a["per_cpu"] for a, b in zip(base, new, strict=True)]
            w(
                f"This loadgen over the baseline (before the HTTP/2 path's optimisations), paired: "
                f"median {med(ratio):.2f}x, {min(ratio):.2f}–{max(ratio):.2f}x."
            )
            w("")
    w(
        "The commands (the baseline's is the same command run in the baseline's directory: "
        "`python -m loadgen` imports the loadgen there):"
    )
    w("")
    w("```")
    for cc in h2["commands"].values():
        for argv in cc.values():
            w(argv.replace(str(REPO) + "/", "").replace(sys.executable, "python"))
    w("```")
    w("")
