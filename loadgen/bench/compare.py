"""Compare loadgen with wrk and hey on the same loopback target, and write BENCHMARKS.md.

    python -m loadgen.bench.compare [--trials 5] [--duration 10] [-c 50] [--out FILE]

1. Efficiency: nginx (``nginx-light``; a small uvloop server if nginx is missing), one
   worker pinned to CPU 1; each client pinned to CPU 0; wrk, loadgen (uvloop +
   httptools), loadgen --pure and hey run ALTERNATELY ``--trials`` times with the same
   ``-c`` and duration.  Client CPU = user + sys of the client process (getrusage of
   the child; for loadgen also its own in-run count, which excludes interpreter
   start-up).  Reported: medians of requests per client CPU-second and their ratio to
   wrk's, throughput and p50 versus wrk's and hey's.
2. Accuracy: a server with a known 10 ms service time (``time.sleep`` per request in a
   thread per connection, which also reports what it really slept); loadgen (closed and
   open model), wrk and hey measure it; errors of p50 and p99 against 10 ms.

wrk/hey missing -> said clearly in the output and in the file, their rows skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGETS = HERE / "targets.py"

NGINX_CONF = """\
worker_processes 1;
daemon off;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
}}
"""


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() != 1 else []


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, argv: list[str], stdin: bool = True) -> None:
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def stop(self) -> None:
        if self.p.poll() is None:
            if self.p.stdin:
                self.p.stdin.close()
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_python_target(kind: str, *args: str) -> tuple[Proc, str]:
    pr = Proc([*_pin(1), sys.executable, str(TARGETS), kind, *args])
    assert pr.p.stdout is not None
    line = pr.p.stdout.readline()
    if not line.startswith("PORT "):
        pr.stop()
        raise SystemExit(f"target {kind} did not start")
    return pr, f"http://127.0.0.1:{int(line.split()[1])}/"


def start_fast_target(tmp: str) -> tuple[Proc, str, str]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx:
        port = _free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        pr = Proc([*_pin(1), nginx, "-c", str(conf), "-p", tmp], stdin=False)
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                ver = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
                return pr, url, f"nginx ({ver}), 1 worker"
            except OSError:
                time.sleep(0.05)
        pr.stop()
    pr, url = start_python_target("fast")
    return pr, url, "python asyncio/uvloop server (nginx not installed)"


def run_measured(argv: list[str], timeout: float) -> tuple[str, float, float]:
    """Run a client; return (stdout, its CPU seconds, wall seconds)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 99):
        raise RuntimeError(f"{argv[0:4]}... failed: {p.stderr.strip()[-300:]}")
    return p.stdout, cpu, wall


_UNIT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk_time(s: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", s.strip())
    assert m, s
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {m.group(1): _wrk_time(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\S+)", out, re.M)}
    errs = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": n,
        "rps": rps,
        "p50": pct.get("50"),
        "p99": pct.get("99"),
        "errors": errs.group(1) if errs else "",
    }


def parse_hey(out: str) -> dict[str, Any]:
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    n = sum(int(x) for x in re.findall(r"\[\d+\]\s+(\d+) responses", out))
    pct = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\d+)%+ in ([0-9.]+) secs", out)}
    return {"requests": n, "rps": rps, "p50": pct.get("50"), "p99": pct.get("99")}


def parse_loadgen(out: str) -> dict[str, Any]:
    d = json.loads(out)
    lat = d["latency"]
    h = lat[lat["headline"]]["percentiles_ns"]
    u = lat["uncorrected"]["percentiles_ns"]
    cpu = d["self_checks"]["client_cpu"]
    return {
        "requests": d["summary"]["requests"],
        "rps": d["summary"]["rps"],
        "p50": h["50"] / 1e9,
        "p99": h["99"] / 1e9,
        "u_p50": u["50"] / 1e9,
        "u_p99": u["99"] / 1e9,
        "errors": d["summary"]["errors"],
        "inrun_cpu": cpu["user_s"] + cpu["sys_s"],
    }


def loadgen_cmd(url: str, c: int, dur: float, *extra: str) -> list[str]:
    return [
        *_pin(0),
        sys.executable,
        "-m",
        "loadgen",
        "-c",
        str(c),
        "-z",
        f"{dur:g}s",
        "--json",
        "-",
        "-q",
        *extra,
        url,
    ]


def clients(url: str, c: int, dur: float, have: dict[str, bool]) -> dict[str, list[str]]:
    cmds: dict[str, list[str]] = {}
    if have["wrk"]:
        cmds["wrk"] = [*_pin(0), "wrk", "-t1", f"-c{c}", f"-d{dur:g}s", "--latency", url]
    cmds["loadgen"] = loadgen_cmd(url, c, dur)
    cmds["loadgen --pure"] = loadgen_cmd(url, c, dur, "--pure")
    if have["hey"]:
        cmds["hey"] = [*_pin(0), "hey", "-c", str(c), "-z", f"{dur:g}s", url]
    return cmds


def parse(tool: str, out: str) -> dict[str, Any]:
    if tool == "wrk":
        return parse_wrk(out)
    if tool == "hey":
        return parse_hey(out)
    return parse_loadgen(out)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def efficiency(url: str, args: argparse.Namespace, have: dict[str, bool]) -> dict[str, Any]:
    cmds = clients(url, args.c, args.duration, have)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in cmds}
    for trial in range(args.trials):
        for tool, argv in cmds.items():
            out, cpu, wall = run_measured(argv, args.duration * 3 + 30)
            r = parse(tool, out)
            r["cpu"] = cpu
            r["wall"] = wall
            r["per_cpu"] = r["requests"] / cpu
            if "inrun_cpu" in r:
                r["per_cpu_inrun"] = r["requests"] / r["inrun_cpu"]
            rows[tool].append(r)
            print(
                f"  trial {trial + 1} {tool:<15} {r['requests']:>8} req  {r['rps']:>9.0f} req/s"
                f"  {r['per_cpu']:>8.0f} req/CPU-s  p50 {r['p50'] * 1e3:.3f} ms",
                flush=True,
            )
    return {"commands": cmds, "rows": rows}


def accuracy(args: argparse.Namespace, have: dict[str, bool]) -> dict[str, Any]:
    pr, url = start_python_target("sleep", "0.010")
    try:
        c, dur = 10, args.acc_duration
        cmds: dict[str, list[str]] = {
            "loadgen (closed)": loadgen_cmd(url, c, dur),
            "loadgen -R 200 (open)": loadgen_cmd(url, c, dur, "-R", "200"),
            "loadgen --pure (closed)": loadgen_cmd(url, c, dur, "--pure"),
        }
        if have["wrk"]:
            cmds["wrk"] = [*_pin(0), "wrk", "-t1", f"-c{c}", f"-d{dur:g}s", "--latency", url]
        if have["hey"]:
            cmds["hey"] = [*_pin(0), "hey", "-c", str(c), "-z", f"{dur:g}s", url]
        res = {}
        for tool, argv in cmds.items():
            urllib.request.urlopen(url + "__stats", timeout=5).read()  # reset the server's log
            out, _cpu, _wall = run_measured(argv, dur * 3 + 30)
            server = json.loads(urllib.request.urlopen(url + "__stats", timeout=5).read())
            r = parse(tool.split()[0], out)
            r["server"] = server
            res[tool] = r
            print(
                f"  {tool:<25} p50 {r['p50'] * 1e3:.3f} ms  p99 {r['p99'] * 1e3:.3f} ms "
                f"(server slept p50 {server['p50_ns'] / 1e6:.3f} ms)",
                flush=True,
            )
        return {"commands": cmds, "results": res, "connections": c}
    finally:
        pr.stop()


def write_markdown(
    path: Path,
    env: dict[str, Any],
    eff: dict[str, Any],
    acc: dict[str, Any],
    args: argparse.Namespace,
    have: dict[str, bool],
) -> None:
    rows = eff["rows"]
    L: list[str] = []
    w = L.append
    w("# loadgen versus wrk and hey")
    w("")
    w(
        f"Generated by `python -m loadgen.bench.compare --trials {args.trials} --duration "
        f"{args.duration:g} -c {args.c}` on {env['date']}. Re-run it to refresh this file."
    )
    w("")
    w("## Environment")
    w("")
    for k in (
        "machine",
        "cpus",
        "python",
        "target",
        "wrk",
        "hey",
        "loadavg_before",
        "loadavg_after",
        "pinning",
    ):
        w(f"- {k}: {env[k]}")
    for tool in ("wrk", "hey"):
        if not have[tool]:
            w(f"- **{tool} is not installed**: its rows are missing (`apt-get install -y {tool}`).")
    w("")
    w("## 1. Requests per client CPU-second (same target, same -c, alternating runs)")
    w("")
    w(
        f"Each tool ran {args.trials} times for {args.duration:g} s with -c {args.c}, in turn "
        "(wrk, loadgen, loadgen --pure, hey, then again). Client CPU is user + sys of the "
        "client process from getrusage (includes Python's start-up, ~0.15 CPU-s, for "
        "loadgen); the in-run column is loadgen's own count from its start to its end. "
        "Medians."
    )
    w("")
    w(
        "| client | requests/s | p50 | req per client CPU-s | ratio to wrk | in-run req/CPU-s "
        "| in-run ratio to wrk |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|")
    wrk_pc = med([r["per_cpu"] for r in rows.get("wrk", [])])
    for tool, rs in rows.items():
        pc = med([r["per_cpu"] for r in rs])
        inrun = med([r["per_cpu_inrun"] for r in rs]) if rs and "per_cpu_inrun" in rs[0] else None
        rps, p50 = med([r["rps"] for r in rs]), med([r["p50"] for r in rs])
        w(
            f"| {tool} | {rps:,.0f} | {p50 * 1e3:.3f} ms"
            f" | {pc:,.0f} | {pc / wrk_pc:.2f} | "
            + (f"{inrun:,.0f} | {inrun / wrk_pc:.2f} |" if inrun else "– | – |")
        )
    w("")
    w("Per trial (req per client CPU-s):")
    w("")
    w("| trial | " + " | ".join(rows) + " |")
    w("|---|" + "---:|" * len(rows))
    for i in range(args.trials):
        w(f"| {i + 1} | " + " | ".join(f"{rows[t][i]['per_cpu']:,.0f}" for t in rows) + " |")
    w("")
    w("### Agreement (same target, same -c): throughput and p50 relative to wrk and hey")
    w("")
    w("| client | throughput / wrk | throughput / hey | p50 / wrk | p50 / hey |")
    w("|---|---:|---:|---:|---:|")
    ref = {
        t: (med([r["rps"] for r in rows[t]]), med([r["p50"] for r in rows[t]]))
        for t in ("wrk", "hey")
        if t in rows
    }
    for tool, rs in rows.items():
        rps, p50 = med([r["rps"] for r in rs]), med([r["p50"] for r in rs])
        cells = [
            f"{rps / ref['wrk'][0]:.2f}" if "wrk" in ref else "–",
            f"{rps / ref['hey'][0]:.2f}" if "hey" in ref else "–",
            f"{p50 / ref['wrk'][1]:.2f}" if "wrk" in ref else "–",
            f"{p50 / ref['hey'][1]:.2f}" if "hey" in ref else "–",
        ]
        w(f"| {tool} | " + " | ".join(cells) + " |")
    w("")
    w(
        "Note: against nginx the single-core *client* is the bottleneck, so throughput and "
        "p50 there measure each client's own capacity (a client that sends fewer requests "
        "sees shorter queues); agreement between clients on the *server's* numbers is "
        "what section 2 shows, where the server is the bottleneck."
    )
    w("")
    w("## 2. Accuracy against a known 10 ms service time")
    w("")
    w(
        f"Target: `loadgen/bench/targets.py sleep 0.010` (a thread per connection, "
        f"`time.sleep(0.010)` per request; it also reports what it really slept). "
        f"-c {acc['connections']}, {args.acc_duration:g} s each. Error = measured − 10 ms. "
        "The open-model row is loadgen -R 200 (well below the 1000 req/s capacity); its "
        "headline is the corrected latency, the uncorrected one is in brackets."
    )
    w("")
    w("| client | requests/s | p50 | p50 error | p99 | p99 error | server slept p50 / p99 |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for tool, r in acc["results"].items():
        s = r["server"]
        extra50 = f" ({r['u_p50'] * 1e3:.3f})" if "open" in tool else ""
        extra99 = f" ({r['u_p99'] * 1e3:.3f})" if "open" in tool else ""
        w(
            f"| {tool} | {r['rps']:,.0f} | {r['p50'] * 1e3:.3f} ms{extra50} "
            f"| {(r['p50'] - 0.010) * 1e3:+.3f} ms"
            f" | {r['p99'] * 1e3:.3f} ms{extra99} | {(r['p99'] - 0.010) * 1e3:+.3f} ms"
            f" | {s['p50_ns'] / 1e6:.3f} / {s['p99_ns'] / 1e6:.3f} ms |"
        )
    w("")
    w("## Commands")
    w("")
    w("```")
    for argv in eff["commands"].values():
        w(" ".join(argv).replace(str(REPO) + "/", "").replace(sys.executable, "python"))
    for argv in acc["commands"].values():
        w(" ".join(argv).replace(sys.executable, "python"))
    w("```")
    w("")
    w("Raw numbers: `" + str(path.with_suffix(".json").name) + "` beside this file.")
    w("")
    path.write_text("\n".join(L))
    path.with_suffix(".json").write_text(
        json.dumps({"env": env, "efficiency": eff, "accuracy": acc}, indent=1, default=str)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--acc-duration", type=float, default=5.0)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("--out", default=str(HERE.parent / "BENCHMARKS.md"))
    ap.add_argument("--from-json", help="only re-render the markdown from a raw JSON file")
    args = ap.parse_args(argv)
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        have = {t: t in raw["efficiency"]["rows"] for t in ("wrk", "hey")}
        write_markdown(Path(args.out), raw["env"], raw["efficiency"], raw["accuracy"], args, have)
        return 0
    have = {t: shutil.which(t) is not None for t in ("wrk", "hey")}
    for t, ok in have.items():
        if not ok:
            print(
                f"NOTE: {t} is not installed (apt-get install -y {t}); its rows are skipped.",
                flush=True,
            )

    def ver(cmd: list[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            return "n/a"

    with tempfile.TemporaryDirectory() as tmp:
        pr, url, target = start_fast_target(tmp)
        env = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "target": target,
            "wrk": ver(["wrk", "-v"]) if have["wrk"] else "not installed",
            "hey": "installed (Debian package)" if have["hey"] else "not installed",
            "loadavg_before": os.getloadavg(),
            "pinning": "server on CPU 1, client on CPU 0 (taskset)" if _pin(0) else "none",
        }
        try:
            print(f"efficiency against {target} at {url}", flush=True)
            eff = efficiency(url, args, have)
        finally:
            pr.stop()
    print("accuracy against a 10 ms service time", flush=True)
    acc = accuracy(args, have)
    env["loadavg_after"] = os.getloadavg()
    out = Path(args.out)
    write_markdown(out, env, eff, acc, args, have)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
