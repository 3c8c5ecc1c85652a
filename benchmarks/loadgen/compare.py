"""Compare loadgen with wrk and hey on the same loopback target, and write BENCHMARKS.md.

    python -m benchmarks.loadgen.compare [--trials 5] [--duration 10] [-c 50] [--out FILE]
                                         [--baseline DIR]

1. Efficiency: nginx (``nginx-light``; a small uvloop server if nginx is missing), one
   worker pinned to CPU 1; each client pinned to CPU 0; wrk, loadgen (uvloop +
   httptools), loadgen --pure and hey run ALTERNATELY ``--trials`` times with the same
   ``-c`` and duration.  Client CPU = user + sys of the client process (getrusage of
   the child; for loadgen also its own in-run count, which excludes interpreter
   start-up).  Reported: medians of requests per client CPU-second and their ratio to
   wrk's, throughput and p50 versus wrk's and hey's.  ``--baseline DIR`` adds the
   loadgen in ``DIR/loadgen`` (e.g. an older commit: ``git archive HEAD loadgen | tar
   -x -C DIR``), both engines, to every trial, and a table of this versus the baseline.
2. Accuracy: a server with a known 10 ms service time (``time.sleep`` per request in a
   thread per connection, which also reports what it really slept); loadgen (closed and
   open model), wrk and hey measure it; errors of p50 and p99 against 10 ms.
3. HTTP/2: ``loadgen --h2`` against h2load on nginx, h2c and h2 over TLS (:mod:`.h2`),
   ``--h2-connections`` x ``--h2-streams``; with ``--baseline`` before and after.
   ``--only-h2`` measures this section alone and keeps sections 1 and 2 as the raw file
   beside BENCHMARKS.md has them (each section says when and how it was measured).

wrk/hey missing -> said clearly in the output and in the file, their rows skipped.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import h2 as h2_section
from .markdown import write_markdown
from .tools import (
    HERE,
    REPO,
    SATURATED,
    _pin,
    loadgen_cmd,
    parse,
    run_measured,
    start_fast_target,
    start_python_target,
)


def clients(
    url: str, c: int, dur: float, have: dict[str, bool], baseline: bool = False
) -> dict[str, list[str]]:
    cmds: dict[str, list[str]] = {}
    if have["wrk"]:
        cmds["wrk"] = [*_pin(0), "wrk", "-t1", f"-c{c}", f"-d{dur:g}s", "--latency", url]
    if baseline:
        cmds["loadgen (baseline)"] = loadgen_cmd(url, c, dur)
    cmds["loadgen"] = loadgen_cmd(url, c, dur)
    if baseline:
        cmds["loadgen --pure (baseline)"] = loadgen_cmd(url, c, dur, "--pure")
    cmds["loadgen --pure"] = loadgen_cmd(url, c, dur, "--pure")
    if have["hey"]:
        cmds["hey"] = [*_pin(0), "hey", "-c", str(c), "-z", f"{dur:g}s", url]
    return cmds


def efficiency(url: str, args: argparse.Namespace, have: dict[str, bool]) -> dict[str, Any]:
    cmds = clients(url, args.c, args.duration, have, bool(args.baseline))
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in cmds}
    for trial in range(args.trials):
        for tool, argv in cmds.items():
            cwd = args.baseline if tool.endswith("(baseline)") else REPO
            out, cpu, wall, busy = run_measured(argv, args.duration * 3 + 30, cwd)
            r = parse(tool, out)
            r["cpu"] = cpu
            r["wall"] = wall
            r["busy"] = busy["busy"] if busy else None
            r["on_cpu"] = busy["on_cpu"] if busy else None
            r["saturated"] = bool(busy and busy["busy"] >= SATURATED)
            r["loadavg"] = os.getloadavg()[0]
            r["per_cpu"] = r["requests"] / cpu
            if "inrun_cpu" in r:
                r["per_cpu_inrun"] = r["requests"] / r["inrun_cpu"]
            rows[tool].append(r)
            print(
                f"  trial {trial + 1} {tool:<26} {r['requests']:>8} req  {r['rps']:>9.0f} req/s"
                f"  {r['per_cpu']:>8.0f} req/CPU-s  p50 {r['p50'] * 1e3:.3f} ms"
                f"  busy {r['busy'] or 0:.2f}{'' if r['saturated'] else ' (not saturated)'}",
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
            out, _cpu, _wall, _busy = run_measured(argv, dur * 3 + 30)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--acc-duration", type=float, default=5.0)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("--out", default=str(HERE / "BENCHMARKS.md"))
    ap.add_argument("--from-json", help="only re-render the markdown from a raw JSON file")
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the loadgen in DIR/loadgen, alternating with this one",
    )
    ap.add_argument("--h2-connections", type=int, default=10, metavar="C")
    ap.add_argument("--h2-streams", type=int, default=10, metavar="S")
    ap.add_argument(
        "--only-h2",
        action="store_true",
        help="measure section 3 (HTTP/2) only; sections 1 and 2 from the raw file beside --out",
    )
    args = ap.parse_args(argv)
    command = ["python", "-m", "benchmarks.loadgen.compare", *(argv or sys.argv[1:])]
    if args.from_json or args.only_h2:
        raw = json.loads(Path(args.from_json or Path(args.out).with_suffix(".json")).read_text())
        have = {t: t in raw["efficiency"]["rows"] for t in ("wrk", "hey")}
        h2 = raw.get("h2")
        if args.only_h2:
            h2 = _measure_h2(args, command)
        old = ap.parse_args(raw["env"]["command"][3:])  # the arguments sections 1-2 ran with
        write_markdown(
            Path(args.out), raw["env"], raw["efficiency"], raw["accuracy"], old, have, h2
        )
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

    # Byte-compile the loadgen packages that run, as an installed package is: with
    # PYTHONDONTWRITEBYTECODE set, every run would otherwise compile them from source
    # (~0.1 CPU-s of its start-up).
    for d in [REPO, *([args.baseline] if args.baseline else [])]:
        compileall.compile_dir(str(Path(d) / "loadgen"), quiet=1)
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
            "bytecode": "loadgen packages byte-compiled before the trials (compileall)",
            "command": command,
        }
        try:
            print(f"efficiency against {target} at {url}", flush=True)
            eff = efficiency(url, args, have)
        finally:
            pr.stop()
    print("accuracy against a 10 ms service time", flush=True)
    acc = accuracy(args, have)
    h2 = _measure_h2(args, command)
    env["loadavg_after"] = os.getloadavg()
    out = Path(args.out)
    write_markdown(out, env, eff, acc, args, have, h2)
    print(f"wrote {out}")
    return 0


def _measure_h2(args: argparse.Namespace, command: list[str]) -> dict[str, Any] | None:
    if not shutil.which("h2load"):
        print("NOTE: h2load is not installed (apt-get install -y nghttp2-client): no section 3")
        return None
    for d in [REPO, *([args.baseline] if args.baseline else [])]:
        compileall.compile_dir(str(Path(d) / "loadgen"), quiet=1)
    before = os.getloadavg()
    print("HTTP/2 against nginx (h2c, h2 over TLS)", flush=True)
    h2 = h2_section.measure(args)
    h2.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        command=command,
        loadavg_before=before,
        loadavg_after=os.getloadavg(),
    )
    return h2


if __name__ == "__main__":
    raise SystemExit(main())
