"""One bench job of the workflow: its pairs side by side in ONE run directory.

    python .github/scripts/bench_shard.py install PAIRS --venv .venv
    .venv/bin/python .github/scripts/bench_shard.py run PAIRS -- [bench options]

PAIRS is ``app@server,app@server,...`` from bench_matrix.py (the reference pair first).
``install`` builds one venv with uv holding the harness, every app and every server of
the job, as the noxfile's ``bench`` session does for one pair. ``run`` measures exactly
those pairs in one run directory (``bench.many_pairs``); ``python -m stackbench bench
--app a,b --server c,d`` would run every valid combination of the names instead, and the
reference app under every server of the job. Options after ``--`` are ``python -m
stackbench bench``'s (``--duration``, ``--output``, ...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stackbench.apps import get_app  # noqa: E402  (stdlib-only registries)
from stackbench.servers import get_server  # noqa: E402


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        app, sep, server = item.strip().partition("@")
        if not sep or not app or not server:
            raise SystemExit(f"not app@server: {item!r} (in {text!r})")
        pairs.append((app, server))
    return pairs


def requirements(pairs: list[tuple[str, str]]) -> list[str]:
    """uv pip install arguments: the harness, each app's requirements, each server's."""
    apps = dict.fromkeys(str(get_app(app).requirements) for app, _ in pairs)
    servers = dict.fromkeys(req for _, server in pairs for req in get_server(server).requirements)
    return ["-e", ".[harness,fast]", *(a for path in apps for a in ("-r", path)), *servers]


def install(pairs: list[tuple[str, str]], venv: Path, python: str) -> int:
    for command in (
        ["uv", "venv", "--python", python, str(venv)],
        ["uv", "pip", "install", "--python", str(venv / "bin" / "python"), *requirements(pairs)],
    ):
        print("+", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)
    return 0


def run(pairs: list[tuple[str, str]], bench_args: list[str]) -> int:
    # Imported here: only the job's venv has the harness installed.
    from stackbench import bench, cli, matrix

    parser = argparse.ArgumentParser(prog="bench_shard.py run PAIRS --")
    cli.add_load_options(parser)
    try:
        options = cli.options_from(parser.parse_args(bench_args))
        report = bench.many_pairs(
            [matrix.Pair(app, server) for app, server in pairs],
            options,
            progress=cli.LiveProgress(),
        )
    except ValueError as exc:  # an invalid pair or option: one line, before anything ran
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cli.console.print(cli.summary_table(report.rows, f"run {report.run_dir.name}"))
    cli.console.print(f"results: {report.run_dir}")
    return 0 if report.status == "ok" else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_shard.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install", help="one venv for every pair of the job")
    setup.add_argument("pairs")
    setup.add_argument("--venv", type=Path, required=True)
    setup.add_argument("--python", default="3.11")
    measure = commands.add_parser("run", help="the pairs side by side in one run directory")
    measure.add_argument("pairs")
    measure.add_argument("bench_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    pairs = parse_pairs(args.pairs)
    if args.command == "install":
        return install(pairs, args.venv, args.python)
    bench_args = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    return run(pairs, bench_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
