"""``python -m loadgen``: hey-like command line.

Exit codes: 0 ok, 2 bad input or unreachable target (one line on stderr), 99 a
threshold failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from .agent import parse_agent, parse_start_at
from .api import run_sync
from .config import Config, LoadgenError, parse_duration, parse_header
from .hgrm import write_hgrm
from .merge import merge_main
from .report import Result
from .scenario import parse_option
from .scenarios import BUILTINS
from .version import __version__

USAGE = "python -m loadgen [options] URL | python -m loadgen merge A.json B.json ... [--json OUT]"

EPILOG = """\
models:
  closed (default): -c connections, each sends its next request when the previous
    response is read; stops after -n requests (default 200) or -z duration.
  open (-R RATE): RATE is the TOTAL request rate, from one global schedule of
    intended send times; latency is reported corrected (from the intended time,
    the headline) and uncorrected (from the actual send), side by side.

scenarios:
  --scenario NAME makes URL a BASE URL (http://127.0.0.1:8000 or .../fastapi).
  Built-ins: health json plaintext db queries updates fortunes colleges
  college-detail troupes troupe-detail slow-db slow-http slow-both slow-fanout mix
  django-admin-login.  Options: --scenario-option seconds=2 or 'slow-db?seconds=2'.
  A .py file path loads a scenario file (see loadgen/README.md).

thresholds (repeatable, exit 99 if any fails):
  'p99<50ms' 'p99.9<200ms' 'uncorrected.p50<5ms' 'mean<10ms' 'max<1s'
  'errors<1%' 'errors<5' 'checks>99%' 'rps>1000'

environment: LOADGEN_PURE=1 disables uvloop and httptools (same as --pure);
LOADGEN_NO_MEMO=1 is --no-memo.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _die(message)


def _die(message: str) -> NoReturn:
    msg = " ".join(str(message).split())
    sys.stderr.write(f"loadgen: error: {msg}\n")
    raise SystemExit(2)


def _positive_int(what: str) -> Callable[[str], int]:
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{what} must be >= 1, got {v}")
        return v

    return conv


def _duration(what: str, positive: bool = True) -> Callable[[str], float]:
    def conv(s: str) -> float:
        try:
            v = parse_duration(s, what=what)
        except LoadgenError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if positive and not v > 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {s!r}")
        if not positive and v < 0:
            raise argparse.ArgumentTypeError(f"{what} must be >= 0, got {s!r}")
        return v

    return conv


def _rate(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"-R must be a number, got {s!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"-R must be a positive rate, got {s!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="loadgen",
        usage=USAGE,
        description="A pure-asyncio HTTP/1.1 load generator (hey/wrk2-like).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", nargs="?", help="target URL (a base URL with --scenario)")
    g = p.add_argument_group("load")
    g.add_argument("-n", type=_positive_int("-n"), help="number of requests (default 200)")
    g.add_argument("-z", type=_duration("-z"), help="duration, e.g. 10s, 2m (overrides -n)")
    g.add_argument(
        "-c",
        type=_positive_int("-c"),
        default=50,
        help="concurrency: connections / virtual users (default 50)",
    )
    g.add_argument("-R", type=_rate, help="open model: TOTAL requests per second")
    g.add_argument(
        "--warmup",
        type=_duration("--warmup", positive=False),
        default=0.0,
        help="run but do not record the first D (e.g. 2s)",
    )
    g.add_argument(
        "--processes",
        type=_positive_int("--processes"),
        default=1,
        help="worker processes, one event loop each (default 1)",
    )
    g.add_argument(
        "--agent",
        metavar="I/N",
        help="be agent I of N (0-based) of one run split over hosts: its share of the"
        " schedule, of -c and of -n (merge the --json reports with 'loadgen merge')",
    )
    g.add_argument(
        "--start-at",
        metavar="TIME",
        help="start the run at TIME: +DELAY (+5s), Unix seconds or ISO-8601"
        " (at most 10 minutes away), to line up agents on several hosts",
    )
    g.add_argument(
        "--grace",
        type=_duration("--grace", positive=False),
        help="drain time for in-flight requests after -z (default min(-t, 5s))",
    )
    g.add_argument(
        "--deadline",
        type=_duration("--deadline"),
        help="hard wall-time limit of the run; in-flight requests are aborted",
    )
    g.add_argument(
        "--max-queue",
        type=int,
        default=100_000,
        help="open model: queued sends beyond this are dropped",
    )
    r = p.add_argument_group("request")
    r.add_argument("-m", default="GET", help="HTTP method (default GET)")
    r.add_argument(
        "-H",
        action="append",
        default=[],
        metavar="HEADER",
        help="header 'Name: value' (repeatable)",
    )
    r.add_argument("-d", help="request body")
    r.add_argument("-D", help="request body from file")
    r.add_argument("-T", help="Content-Type of the body")
    r.add_argument(
        "-t",
        type=_duration("-t", positive=False),
        default=20.0,
        help="per-request timeout (default 20s; 0 = none)",
    )
    r.add_argument(
        "--connect-timeout",
        type=_duration("--connect-timeout"),
        help="connect timeout (default: -t)",
    )
    r.add_argument(
        "--disable-keepalive",
        action="store_true",
        help="one connection per request (Connection: close)",
    )
    r.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target")
    s = p.add_argument_group("scenarios")
    s.add_argument("--scenario", help="built-in scenario NAME or a scenario .py FILE")
    s.add_argument(
        "--scenario-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario option (repeatable)",
    )
    s.add_argument("--seed", type=int, help="random seed for scenarios")
    s.add_argument("--list-scenarios", action="store_true", help="list built-in scenarios")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write the JSON report ('-' = stdout)")
    o.add_argument("--csv", metavar="FILE", help="write one CSV row per request")
    o.add_argument(
        "--hgrm",
        metavar="PREFIX",
        help="write PREFIX.uncorrected.hgrm (and PREFIX.corrected.hgrm in the open model):"
        " HdrHistogram percentile distributions, in ms",
    )
    o.add_argument(
        "--threshold",
        action="append",
        default=[],
        help="pass/fail rule, e.g. 'p99<50ms' (repeatable; failure exits 99)",
    )
    o.add_argument("-q", "--quiet", action="store_true", help="no text report")
    e = p.add_argument_group("engine")
    e.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    e.add_argument("--no-httptools", action="store_true", help="use the pure-Python parser")
    e.add_argument("--pure", action="store_true", help="--no-uvloop --no-httptools")
    e.add_argument(
        "--no-memo",
        action="store_true",
        help="parse every response, even an exact repeat of the last one verified on its "
        "connection (same results; also LOADGEN_NO_MEMO=1)",
    )
    p.add_argument("--version", action="version", version=f"loadgen {__version__}")
    return p


def config_from_args(a: argparse.Namespace) -> Config:
    if not a.url:
        _die("missing URL (usage: " + USAGE + ")")
    if a.d is not None and a.D is not None:
        _die("use -d or -D, not both")
    body = b""
    if a.d is not None:
        body = a.d.encode()
    elif a.D is not None:
        try:
            with open(a.D, "rb") as f:
                body = f.read()
        except OSError as ex:
            _die(f"cannot read -D {a.D!r}: {ex.strerror or ex}")
    headers = [parse_header(h) for h in a.H]
    if a.T:
        headers.append(("Content-Type", a.T))
    opts = dict(parse_option(x) for x in a.scenario_option)
    pure = a.pure
    if a.no_memo:
        os.environ["LOADGEN_NO_MEMO"] = "1"  # read by the fast path, here and in workers
    agent = parse_agent(a.agent) if a.agent is not None else None
    start_at = parse_start_at(a.start_at) if a.start_at is not None else None
    return Config(
        url=a.url,
        requests=a.n,
        duration=a.z,
        concurrency=a.c,
        rate=a.R,
        method=a.m.upper(),
        headers=tuple(headers),
        body=body,
        timeout=a.t,
        connect_timeout=a.connect_timeout,
        warmup=a.warmup,
        grace=a.grace,
        deadline=a.deadline,
        processes=a.processes,
        scenario=a.scenario,
        scenario_options=opts,
        thresholds=tuple(a.threshold),
        allow_remote=a.allow_remote,
        csv_path=a.csv,
        keepalive=not a.disable_keepalive,
        max_queue=a.max_queue,
        use_uvloop=False if (pure or a.no_uvloop) else None,
        use_httptools=False if (pure or a.no_httptools) else None,
        seed=a.seed,
        agent=agent,
        start_at=start_at,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["merge"]:
        return merge_main(args[1:])
    p = build_parser()
    a = p.parse_args(args)
    if a.list_scenarios:
        for name, (_f, defaults) in BUILTINS.items():
            opts = " ".join(f"{k}={v}" for k, v in defaults.items())
            print(f"{name:<20} {opts}")
        return 0
    try:
        cfg = config_from_args(a)
        result = run_sync(cfg)
    except LoadgenError as ex:
        _die(str(ex))
    except KeyboardInterrupt:
        sys.stderr.write("loadgen: interrupted\n")
        return 130
    if a.json:
        text = result.to_json()
        if a.json == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                with open(a.json, "w") as f:
                    f.write(text + "\n")
            except OSError as ex:
                _die(f"cannot write --json {a.json!r}: {ex.strerror or ex}")
    if a.hgrm:
        _write_hgrm(a.hgrm, result)
    if not a.quiet:
        out = sys.stderr if a.json == "-" else sys.stdout
        out.write(result.text() + "\n")
        out.flush()
    return result.exit_code


def _write_hgrm(prefix: str, result: Result) -> None:
    hists = {"uncorrected": result.uncorrected}
    if result.open:
        hists["corrected"] = result.corrected
    try:
        write_hgrm(prefix, hists)
    except OSError as ex:
        _die(f"cannot write --hgrm {prefix!r}: {ex.strerror or ex}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
