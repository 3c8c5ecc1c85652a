"""``python -m loadgen``: hey-like command line.

Exit codes: 0 ok, 2 bad input or unreachable target (one line on stderr), 99 a
threshold failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from . import scenario_file
from .api import run_sync
from .config import (
    ENGINE,
    LOAD,
    MISBEHAVING,
    OPTIONS,
    OUTPUT,
    PROTOCOL,
    REQUEST,
    SCENARIOS,
    Config,
    LoadgenError,
    add_arguments,
    given,
)
from .hgrm import write_hgrm
from .merge import merge_main
from .report import Result
from .scenarios import BUILTINS
from .version import __version__

USAGE = """python -m loadgen [options] URL
       python -m loadgen merge A.json B.json ... [--json OUT]"""

EPILOG = """\
models:
  closed (default): -c connections, each sends its next request when the
    previous response is read; stops after -n requests (default 200) or -z
    duration (-z wins).
  open (-R RATE): RATE is the TOTAL request rate, from one global schedule of
    intended send times; latency is reported corrected (from the intended time,
    the headline) and uncorrected (from the actual send), side by side.

scenarios:
  --scenario NAME makes URL a BASE URL (http://127.0.0.1:8000 or .../fastapi).
  Built-ins: health json plaintext db queries updates fortunes colleges
  college-detail troupes troupe-detail slow-db slow-http slow-both slow-fanout
  mix django-admin-login.
  Options: --scenario-option seconds=2 or 'slow-db?seconds=2'.
  A .py file path loads a Python scenario (see loadgen/README.md).
  --scenario-file FILE --scenario NAME runs the scenario NAME of a TOML
  scenario file (named requests, templated ids, weights, expected statuses,
  body checks: README).

thresholds (repeatable, exit 99 if any fails):
  'p99<50ms' 'p99.9<200ms' 'uncorrected.p50<5ms' 'mean<10ms' 'max<1s'
  'errors<1%' 'errors<5' 'checks>99%' 'rps>1000'

environment: LOADGEN_PURE=1 is --pure (no uvloop, no httptools, no h2wire);
LOADGEN_NO_MEMO=1 is --no-memo.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _die(message)


def _die(message: str) -> NoReturn:
    msg = " ".join(str(message).split())
    sys.stderr.write(f"loadgen: error: {msg}\n")
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """Config's options (loadgen/config.py), by section, and what only this command does
    with a run: -D and -T, the reports it writes, the engines' shortcuts."""
    p = _Parser(
        prog="loadgen",
        usage=USAGE,
        description="A pure-asyncio HTTP/1.1 and HTTP/2 load generator (hey/wrk2-like).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, ["url"])
    sections = {}
    for section in (LOAD, REQUEST, PROTOCOL, SCENARIOS, MISBEHAVING, OUTPUT, ENGINE):
        sections[section] = p.add_argument_group(section)
        add_arguments(
            sections[section], [o.name for o in OPTIONS.values() if o.group == section and o.flags]
        )
    r = sections[REQUEST]
    r.add_argument("-D", metavar="FILE", help="request body from FILE")
    r.add_argument("-T", metavar="TYPE", help="Content-Type of the body")
    sections[SCENARIOS].add_argument(
        "--list-scenarios",
        action="store_true",
        help="list built-in scenarios (with --scenario-file: the file's)",
    )
    o = sections[OUTPUT]
    o.add_argument("--json", metavar="FILE", help="write the JSON report ('-' = stdout)")
    o.add_argument(
        "--hgrm",
        metavar="PREFIX",
        help="write PREFIX.uncorrected.hgrm (and PREFIX.corrected.hgrm in the open model):"
        " HdrHistogram percentile distributions, in ms",
    )
    o.add_argument("-q", "--quiet", action="store_true", help="no text report")
    e = sections[ENGINE]
    e.add_argument("--pure", action="store_true", help="--no-uvloop --no-httptools --no-h2wire")
    e.add_argument(
        "--no-memo",
        action="store_true",
        help="parse every response, even an exact repeat of the last one verified on its "
        "connection (same results; also LOADGEN_NO_MEMO=1)",
    )
    p.add_argument("--version", action="version", version=f"loadgen {__version__}")
    return p


def config_from_args(a: argparse.Namespace) -> Config:
    changes = given(a)
    if not changes.get("url"):
        _die("missing URL (usage: " + USAGE + ")")
    if a.D is not None:
        if "body" in changes:
            _die("use -d or -D, not both")
        try:
            with open(a.D, "rb") as f:
                changes["body"] = f.read()
        except OSError as ex:
            _die(f"cannot read -D {a.D!r}: {ex.strerror or ex}")
    if a.T:
        changes["headers"] = (*changes.get("headers", ()), ("Content-Type", a.T))
    if a.pure:
        changes.update(use_uvloop=False, use_httptools=False, use_h2wire=False)
    if a.no_memo:
        os.environ["LOADGEN_NO_MEMO"] = "1"  # read by the fast path, here and in workers
    return Config(**changes)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["merge"]:
        return merge_main(args[1:])
    p = build_parser()
    a = p.parse_args(args)
    if a.list_scenarios:
        listed = given(a).get("scenario_file")
        if listed is not None:
            try:
                declared = scenario_file.read(listed)
            except LoadgenError as ex:
                _die(str(ex))
            for name in declared.names:
                print(f"{name:<20} {declared.descriptions[name]}".rstrip())
            return 0
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
