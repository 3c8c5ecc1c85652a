"""Experiment definitions are valid data; one real cell runs end to end."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench import experiments
from stackbench.cli import build_parser
from stackbench.experiments import Cell, Experiment, UnknownExperimentError
from stackbench.experiments.report import cells_markdown
from stackbench.experiments.run import run_cells
from stackbench.matrix import get_pair
from stackbench.options import BENCH_LOAD
from stackbench.options import load_from as options_from_args
from stackbench.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_every_definition_is_valid(name: str) -> None:
    experiment = experiments.get_experiment(name)
    assert experiment.question.endswith("?")
    if name == "python-versions":  # pairs, not cells: each must be a valid pair
        assert {(p.app, p.server) for p in experiments.VERSIONS_PAIRS} == set(
            experiments.requirements(experiment)
        )
    elif name in experiments.FEATURES_PAIRS:  # pairs whose apps the bench variants apply to
        pairs = experiments.FEATURES_PAIRS[name]
        assert {(p.app, p.server) for p in pairs} == set(experiments.requirements(experiment))
        assert all(any(p.app in v.apps for v in VARIANTS.values()) for p in pairs)
    elif name == "techempower":  # the nox session installs the pairs with a counterpart
        from stackbench.experiments.techempower import COUNTERPARTS

        assert {(c.ours.app, c.ours.server) for c in COUNTERPARTS.values()} == set(
            experiments.requirements(experiment)
        )
    elif name == "protocol-costs":  # one pair per server family, each over every protocol
        assert {(p.app, p.server) for p in experiments.PROTOCOL_PAIRS} == set(
            experiments.requirements(experiment)
        )
    elif name in ("slow-clients", "tls-termination"):  # pairs: each valid and installed
        pairs = {
            "slow-clients": experiments.SLOW_CLIENTS_PAIRS,
            "tls-termination": experiments.TLS_TERMINATION_PAIRS,
        }[name]
        assert {(p.app, p.server) for p in pairs} == set(experiments.requirements(experiment))
        for pair in pairs:
            get_pair(pair.app, pair.server)
    else:
        assert experiment.cells and all(cell.why for cell in experiment.cells)


def test_gevent_patching_reproduces_the_blog_posts_grid() -> None:
    cells = experiments.get_experiment("gevent-patching").cells
    grid = {(c.server, c.endpoint): c.predicted_s for c in cells}
    assert grid[("gunicorn-sync", "slow-both")] == 20.0  # patch nothing: ≈ 20.9 s in the blog
    assert grid[("gunicorn-gevent-blocking", "slow-db")] == 10.0  # unpatched driver: ≈ 10.2 s
    assert grid[("gunicorn-gevent", "slow-db")] == 1.0  # patched: ≈ 1.1 s
    assert grid[("gunicorn-gevent", "slow-both")] == 2.0  # patched: ≈ 2.1 s
    assert {c.endpoint for c in cells} == {"slow-http", "slow-db", "slow-both", "slow-fanout"}
    assert all(c.workers == 1 for c in cells)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (Cell("nope", "uvicorn", "slow-db", 1.0, "x"), "unknown app 'nope'; valid apps:"),
        (Cell("gino_style", "nope", "slow-db", 1.0, "x"), "unknown server 'nope'; valid servers:"),
        (Cell("gino_style", "gunicorn-sync", "slow-db", 1.0, "x"), "serves WSGI; gino_style"),
        (Cell("gino_style", "uvicorn", "slow-db", 0.0, "x"), "needs a positive prediction"),
    ],
)
def test_invalid_definition_is_one_clear_line(cell: Cell, message: str) -> None:
    with pytest.raises(UnknownExperimentError) as error:
        experiments.validate(Experiment("broken", "Broken?", (cell,)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_experiment_lists_the_valid_ones() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stackbench", "experiment", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown experiment 'nope'; valid experiments: gevent-patching, "
        "wsgi-mounted-asgi, django-async-orm, python-versions, django-features, "
        "fastapi-features, techempower, protocol-costs, slow-clients, tls-termination"
    )


def test_the_retired_shootout_says_where_it_went() -> None:
    with pytest.raises(UnknownExperimentError, match="server-shootout is now the capacity command"):
        experiments.get_experiment("server-shootout")
    error = experiments.check_requested_sessions(["experiment(name='server-shootout')"])
    assert error is not None and 'nox -s "capacity(app=' in error


def _features_cli(
    output: Path, *args: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) if path is None else {**os.environ, "PATH": path}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stackbench",
            "experiment",
            "fastapi-features",
            "--instructions",
            "--output",
            str(output),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_instructions_refuse_a_scenario_without_one_fixed_path(tmp_path: Path) -> None:
    output = tmp_path / "results"
    result = _features_cli(output, "--scenarios", "db,colleges")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "error: --instructions counts one fixed path per scenario (json, db, fortunes), "
        "not colleges"
    )
    assert not output.exists()  # refused before anything starts, the results folder included


def test_instructions_without_valgrind_is_one_line(tmp_path: Path) -> None:
    only_python = tmp_path / "bin"  # a PATH where valgrind and callgrind_control are not
    only_python.mkdir()
    (only_python / "python").symlink_to(sys.executable)
    output = tmp_path / "results"
    result = _features_cli(output, "--scenarios", "db", path=str(only_python))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "error: valgrind and callgrind_control not found: install valgrind "
        "(Debian: apt-get install valgrind)"
    )
    assert not output.exists()


def test_noxfile_names_an_unknown_experiment_session() -> None:
    error = experiments.check_requested_sessions(["experiment(name='x')"])
    assert error is not None and "experiment(name='gevent-patching')" in error
    assert experiments.check_requested_sessions(["experiment(name='gevent-patching')"]) is None


@pytest.mark.slow
def test_one_cell_runs_end_to_end(tmp_path: Path) -> None:
    """10 requests of 1 s at concurrency 10 on an async app: measured, never below physics."""
    experiment = Experiment(
        "mini",
        "Does one async worker overlap ten 1 s queries?",
        (Cell("gino_style", "uvicorn", "slow-db", 1.0, "asyncpg awaits: overlap"),),
    )
    outcome = run_cells(experiment, output=tmp_path)
    (row,) = outcome.rows
    assert row.status == "ok" and row.measured_s is not None
    assert row.measured_s >= 1.0  # ten 1 s sleeps can't take less than 1 s in total
    table = cells_markdown(outcome)
    assert "| gino_style @ uvicorn | 1 | slow-db | 1.0 |" in table


def _experiment_help(*argv: str) -> str:
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", *argv, "--help"])
    return " ".join(out.getvalue().split())  # argparse wraps lines where it likes


EXPERIMENT_OPTIONS = {
    # name: options its --help shows, options it must not (another experiment's)
    "gevent-patching": ({"--pool-size", "--output"}, {"--duration", "--budget-ms", "--pairs"}),
    "python-versions": (
        {"--interpreter", "--pairs", "--duration", "--repeats", "--server-cpus"},
        {"--budget-ms", "--variants", "--instructions", "--techempower"},
    ),
    "django-features": (
        {"--variants", "--instructions", "--requests", "--warmup-requests", "--client-cpus"},
        {"--interpreter", "--budget-ms", "--techempower"},
    ),
    "techempower": (
        {"--techempower", "--their-venv", "--apps", "--instructions", "--duration"},
        {"--pairs", "--variants", "--interpreter", "--budget-ms"},
    ),
}


@pytest.mark.parametrize("name", list(EXPERIMENT_OPTIONS))
def test_each_experiment_shows_only_its_own_options(name: str) -> None:
    shown, absent = EXPERIMENT_OPTIONS[name]
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", _experiment_help(name)))
    assert shown <= flags and not absent & flags, flags


def test_experiment_defaults_are_the_benchs_options_with_their_own_values() -> None:
    # the same options as bench (loadgen's table), each experiment's default shown
    assert "(default 5s)" in _experiment_help("python-versions")  # DUETS
    assert "(default db,fortunes)" in _experiment_help("django-features")
    bench = build_parser().parse_args(["bench", "--app", "a", "--server", "b"])
    assert options_from_args(bench) == BENCH_LOAD  # nothing typed: the bench's own load
