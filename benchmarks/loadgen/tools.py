"""The benchmark's targets and clients: start nginx or a Python target, run a client
pinned to CPU 0 and measure its CPU, parse what wrk, hey and loadgen print."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent  # the checkout: the loadgen measured is REPO/loadgen
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


def _schedstat(pid: int) -> dict[str, tuple[int, int]] | None:
    """Per thread of ``pid``: (ns on a CPU, ns runnable but waiting for a CPU), from
    ``/proc/PID/task/*/schedstat``; None when it cannot be read."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                a, b, _ = f.read().split()
            out[tid] = (int(a), int(b))
    except (OSError, ValueError):
        return None
    return out


SATURATED = 0.9  # busy fraction from which a client counts as saturated


class Busy:
    """How busy a client was: the fraction of wall time its threads were on a CPU or
    waiting for one (runnable), sampled from ``/proc`` while it runs (the first and
    last samples bound the window: start-up and exit are at its edges).  A client that
    is the bottleneck never sleeps waiting for the server, so its fraction is about
    1 even when it shares its CPU; one waiting for the server is well below.  Threads
    are summed (a thread that exits keeps its last sample), and the fraction is capped
    at 1 (threads of one client waiting for the same CPU would count twice)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0 = self.t1 = 0.0
        self.first: dict[str, tuple[int, int]] = {}
        self.last: dict[str, tuple[int, int]] = {}

    def sample(self) -> None:
        st = _schedstat(self.pid)
        if not st:
            return
        now = time.perf_counter()
        if not self.t0:
            self.t0 = now
            self.first = dict(st)
        for tid in st:
            self.first.setdefault(tid, (0, 0))  # born in the window: from zero
        self.last.update(st)
        self.t1 = now

    def result(self) -> dict[str, float] | None:
        """``busy`` (on or waiting for a CPU) and ``on_cpu`` per wall second over the
        sampled window; None if it was too short to say."""
        if self.t1 - self.t0 < 0.2:
            return None
        dt = (self.t1 - self.t0) * 1e9
        run = sum(v[0] - self.first[t][0] for t, v in self.last.items())
        wait = sum(v[1] - self.first[t][1] for t, v in self.last.items())
        return {"busy": min(1.0, (run + wait) / dt), "on_cpu": min(1.0, run / dt)}


def run_measured(
    argv: list[str], timeout: float, cwd: Path | str = REPO
) -> tuple[str, float, float, dict[str, float] | None]:
    """Run a client (from ``cwd``: the loadgen it runs is ``cwd/loadgen``); return
    (stdout, its CPU seconds, wall seconds, how busy it was: :class:`Busy`)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, text=True, cwd=cwd)
        busy = Busy(p.pid)
        try:
            while p.poll() is None:
                busy.sample()
                if time.perf_counter() - t > timeout:
                    raise subprocess.TimeoutExpired(argv, timeout)
                time.sleep(0.05)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 99):
        raise RuntimeError(f"{argv[0:4]}... failed: {stderr.strip()[-300:]}")
    return stdout, cpu, wall, busy.result()


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


def parse(tool: str, out: str) -> dict[str, Any]:
    if tool == "wrk":
        return parse_wrk(out)
    if tool == "hey":
        return parse_hey(out)
    return parse_loadgen(out)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")
