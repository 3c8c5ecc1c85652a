"""Every option error is one line and exit 2, before anything is started.

DATABASE_URL points at a port where nothing listens: a command that started anything
would fail on the database with exit 1, so exit 2 and no output directory at all prove
the option was refused first (a good command makes the output directory; a database that
cannot be had leaves it empty: test_an_unusable_database_leaves_no_run_directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen import cli as loadgen_cli
from stackbench.cli import build_parser
from stackbench.loadrun import aimed, loadgen_argv
from stackbench.options import BENCH_LOAD, load_from, options_from

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def _stackbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": UNREACHABLE},
    )


BENCH_ERRORS = [
    (["--duration", "0"], "--duration"),
    (["--duration", "-3s"], "--duration"),
    (["--duration", "soon"], "--duration"),
    (["--timeout", "0"], "--timeout"),
    (["--warmup", "-1"], "--warmup"),
    (["--connections", "0"], "--connections"),
    (["--rate", "nan"], "--rate"),
    (["--repeats", "0"], "--repeats"),
    (["--scenarios", "nope"], "unknown scenario 'nope'"),
    (["--scenarios", "db,nope"], "unknown scenario 'nope'"),
    (
        ["--scenarios", "slow-db", "--scenario-option", "seconds=abc"],
        "slow-db: scenario option 'seconds' must be a number, got 'abc' "
        "(slow-db takes sample, seconds)",
    ),
    (
        ["--scenarios", "slow-db", "--scenario-option", "secs=0.1"],
        "secs=0.1: scenario option 'secs' is read by no scenario of this run "
        "(slow-db takes sample, seconds)",
    ),
    (
        ["--scenarios", "db,json", "--scenario-option", "seconds=1"],
        "'seconds' is read by no scenario of this run (db takes sample; json takes sample)",
    ),
    (
        ["--scenarios", "mix", "--scenario-option", "db.secs=1"],
        "(mix takes ids, n, page_size, pages, queries, sample, seconds, weights, ENDPOINT.KEY)",
    ),
    (["--scenario-option", "novalue"], "KEY=VALUE"),
    (["--server-cpus", "99"], "no CPU 99 here"),
    (["--client-cpus", "1-0"], "not a CPU range"),
    (["--scale", "0"], "--scale"),
    # checked as loadgen checks the load, but before anything starts
    (["--processes", "4", "-c", "2"], "--processes (4) cannot exceed -c (2)"),
]


@pytest.mark.parametrize(
    ("extra", "says"), BENCH_ERRORS, ids=[" ".join(e) for e, _ in BENCH_ERRORS]
)
def test_a_bad_bench_option_is_one_line_and_exit_2(
    extra: list[str], says: str, tmp_path: Path
) -> None:
    output = tmp_path / "results"
    result = _stackbench(
        "bench", "--app", "gino_style", "--server", "uvicorn", "--output", str(output), *extra
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not output.exists()


def test_an_unknown_name_among_several_apps_is_refused(tmp_path: Path) -> None:
    result = _stackbench(
        "bench", "--app", "gino_style,nope", "--server", "uvicorn", "--output", str(tmp_path / "r")
    )
    assert result.returncode == 2 and "unknown app 'nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["under-a-file", "in-proc"])
def test_an_unusable_output_is_exit_2(kind: str, tmp_path: Path) -> None:
    if kind == "under-a-file":
        (tmp_path / "a-file").write_text("")
        output = tmp_path / "a-file" / "results"
    else:  # root may write anywhere a mode allows; nobody may create files in /proc
        output = Path("/proc/stackbench-results")
    result = _stackbench(
        "bench", "--app", "gino_style", "--server", "uvicorn", "--output", str(output)
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--output: cannot write results in" in lines[0], result.stderr


EXPERIMENT_ERRORS = [
    (["django-features", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["gevent-patching", "--pool-size", "0"], "--pool-size"),
    (["no-such-experiment"], "no-such-experiment"),
]


@pytest.mark.parametrize(
    ("extra", "says"), EXPERIMENT_ERRORS, ids=[" ".join(e) for e, _ in EXPERIMENT_ERRORS]
)
def test_a_bad_experiment_option_is_one_line_and_exit_2(
    extra: list[str], says: str, tmp_path: Path
) -> None:
    output = tmp_path / "results"
    result = _stackbench("experiment", *extra, "--output", str(output))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not output.exists()


def test_the_bench_hands_loadgen_the_load_it_was_given(tmp_path: Path) -> None:
    """bench's load options → BenchOptions.load → loadgen's command line → loadgen's own
    parser: the same Config, whatever was typed, and the bench's defaults for the rest."""
    # A scenario file without OPTIONS reads any option: a value with "=" in it goes through.
    scenario = tmp_path / "echo.py"
    scenario.write_text('from loadgen.scenario import Endpoint\nENDPOINTS = [Endpoint("e", "/")]\n')
    typed = ["--duration", "2.5s", "-c", "7", "--rate", "33.3", "--warmup", "0"]
    typed += ["--timeout", "3s", "--processes", "2", "--scenario-option", "seconds=0.5=x"]
    typed += ["--scenarios", str(scenario)]
    args = build_parser().parse_args(
        ["bench", "--app", "gino_style", "--server", "uvicorn", "--output", str(tmp_path), *typed]
    )
    load = aimed(options_from(args).load, str(scenario), "http://127.0.0.1:9/")
    argv = loadgen_argv(load, tmp_path / "r.json", None)
    assert argv[:3] == [sys.executable, "-m", "loadgen"]
    back = loadgen_cli.config_from_args(loadgen_cli.build_parser().parse_args(argv[3:]))
    assert back == load
    assert (back.duration, back.concurrency, back.rate, back.warmup) == (2.5, 7, 33.3, 0.0)
    assert (back.timeout, back.processes) == (3.0, 2)
    assert dict(back.scenario_options) == {"seconds": "0.5=x"} and back.scenario == str(scenario)
    for duration in ([], ["--duration", "3s"]):  # a count: no duration, its warm-up stays
        counting = ["bench", "--app", "a", "--server", "b", "-n", "9", *duration]
        counted = load_from(build_parser().parse_args(counting))
        assert (counted.requests, counted.duration, counted.warmup) == (9, None, BENCH_LOAD.warmup)


def test_the_bench_hands_loadgen_its_misbehaving_clients(tmp_path: Path) -> None:
    """bench --misbehaving (loadgen's options, declared once in its Config) → loadgen's
    command line → the same Config; a bad one is loadgen's one line, exit 2."""
    typed = ["--misbehaving", "idle=3", "--misbehaving", "slow-headers=2"]
    typed += ["--misbehaving-pace", "0.5s", "--misbehaving-path", "/api/troupes"]
    args = build_parser().parse_args(
        ["bench", "--app", "gino_style", "--server", "uvicorn", "--output", str(tmp_path), *typed]
    )
    load = aimed(options_from(args).load, "db", "http://127.0.0.1:9/")
    argv = loadgen_argv(load, tmp_path / "r.json", None)
    back = loadgen_cli.config_from_args(loadgen_cli.build_parser().parse_args(argv[3:]))
    assert back == load and back.misbehaving == (("idle", 3), ("slow-headers", 2))
    assert (back.misbehaving_pace, back.misbehaving_path) == (0.5, "/api/troupes")
    assert options_from(args).as_dict()["misbehaving"] == {"idle": 3, "slow-headers": 2}


def test_each_scenario_gets_and_records_only_the_options_it_reads() -> None:
    from loadgen.scenario import options_for
    from stackbench.options import check_scenarios

    given = {"seconds": "0.5", "sample": "2", "page_size": "5"}
    check_scenarios(("db", "slow-db", "colleges", "mix"), given.items())  # each key read by one
    load = BENCH_LOAD.replace(scenario_options=given)
    at = "http://127.0.0.1:9/"
    assert dict(aimed(load, "db", at).scenario_options) == {"sample": "2"}
    assert dict(aimed(load, "slow-db", at).scenario_options) == {"seconds": "0.5", "sample": "2"}
    assert options_for("mix", {"db.sample": "1", "nope": "1"}) == {"db.sample": "1"}


def test_a_scenario_file_says_which_options_it_reads(tmp_path: Path) -> None:
    from loadgen.scenario import option_names

    declared = tmp_path / "declared.py"
    declared.write_text('OPTIONS = {"path": "/json"}\nENDPOINTS = []\n')
    open_ended = tmp_path / "open.py"
    open_ended.write_text("def endpoints(options):\n    return []\n")
    assert option_names(str(declared)) == {"path"}
    assert option_names(str(open_ended)) is None  # it may read any key: none is refused
    assert option_names("slow-fanout") == {"sample", "seconds", "n"}


def test_an_unusable_database_leaves_no_run_directory(tmp_path: Path) -> None:
    """Good options, a DATABASE_URL nothing answers: one line, exit 1, and no run directory
    holding only a manifest (nothing ran, so there is nothing to record)."""
    output = tmp_path / "results"
    result = _stackbench(
        "bench", "--app", "gino_style", "--server", "uvicorn", "--scenarios", "json",
        "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to DATABASE_URL" in lines[0], result.stderr
    assert output.is_dir() and list(output.iterdir()) == []
