"""What a person reads in a terminal fits it: the run table, the changes against a baseline
and the matrix, at 80 and 100 columns, with no figure cut (rich cuts a cell with "…") and
every path or command printed whole on a line of its own.

Widths come from where rich takes them: COLUMNS for output that is not a terminal, and the
terminal's own size under a pseudo-terminal (no COLUMNS). Figures are chosen wide (five-digit
req/s, four-digit latencies, long pair names, a long failure reason) so that a table that
simply printed every column would not fit.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any, cast

import pytest
from rich.console import Console

from stackbench.apps import APPS
from stackbench.report.compare import compare
from stackbench.report.load import load_run
from stackbench.terminal_tables import changes_table, matrix_grid, summary_table
from tests.report import synthetic

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

WIDE = [
    ("django_fastapi", "gunicorn-gevent-blocking", 12345.6, 1234.56, "ok"),
    ("gino_style", "uvicorn", 98765.4, 4.21, "ok"),
    ("django_async", "gunicorn-uvicorn", 488.7, 3456.78, "degraded"),
    ("fastapi_sqla", "hypercorn", None, 10.0, "failed"),
]
CPU = {"server": 1279.0, "database": 142.0, "client": 88.0}


def _documents(run_id: str = "run") -> list[dict[str, Any]]:
    documents = []
    for app, server, rps, p99, status in WIDE:
        document = synthetic.result(run_id, app, server, rps, p99_ms=p99, status=status, cpu_us=CPU)
        if status == "degraded":  # flags are words a person must read whole
            document["flags"].update(noisy=True, worker_restarted=True)
        if status != "ok":
            document["reason"] = (
                "3.2% of responses were errors (limit 1%): 412 connect timeouts, "
                "97 resets by peer while the server restarted a worker"
            )
        documents.append(document)
    return documents


@pytest.fixture
def wide_run(tmp_path: Path) -> Path:
    return synthetic.write_run(tmp_path, "20260101T000000Z-4-pairs-abcd", _documents())


def _figures() -> list[str]:
    """Every figure the table must show whole, as the table formats it."""
    out = ["1279+142+88"]
    for _, _, rps, p99, _ in WIDE:
        if rps is not None:
            out += [f"{rps:.1f}", f"{p99:.2f}"]
    return out


def _check(text: str, width: int, whole: list[str]) -> list[str]:
    """The lines of ``text``; asserts none is wider than ``width`` but those in ``whole``
    (a path, a command), which must be there whole, and that rich cut nothing."""
    lines = [ANSI.sub("", line).rstrip("\r") for line in text.splitlines()]
    assert "…" not in text, "a cell was cut:\n" + text
    for expected in whole:
        assert expected in lines, f"{expected!r} is not whole on a line of its own:\n{text}"
    too_wide = [line for line in lines if len(line) > width and line not in whole]
    assert not too_wide, f"wider than {width}:\n" + "\n".join(too_wide)
    return lines


def _show(run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "show", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("width", [80, 100])
def test_show_prints_the_run_table_within_columns(wide_run: Path, width: int) -> None:
    env = {**os.environ, "COLUMNS": str(width)}
    result = _show(wide_run, env)
    assert result.returncode == 0, result.stderr
    whole = [str(wide_run), f"nox -s report -- {wide_run}"]
    text = _check(result.stdout, width, whole)
    joined = "\n".join(text)
    for figure in _figures():
        assert figure in joined, f"{figure} is not whole in:\n{joined}"
    assert "gunicorn-gevent-blocking" in joined and "degraded (noisy," in joined
    assert re.search(r"\bworker_restarted\)", joined)  # a flag is never folded


def test_the_same_table_without_fitting_would_not_fit(wide_run: Path) -> None:
    """The planted input is wide enough to matter: every column in one row is over 100."""
    from stackbench import results
    from stackbench.terminal_tables import SUMMARY_LAYOUTS, _summary_layout

    rows = [
        results.row_of(results.read_result(path), path.name)
        for path in sorted(wide_run.glob("*--*.json"))
    ]
    assert not _fits(_summary_layout(rows, "run", SUMMARY_LAYOUTS[0]), 100)
    assert _fits(summary_table(rows, "run", 100), 100)


def _fits(renderable: Any, width: int) -> bool:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    text = captured.get()
    return "…" not in text and max(len(line) for line in text.splitlines()) <= width


def test_show_in_a_terminal_of_80_columns(wide_run: Path) -> None:
    """Under a pseudo-terminal 80 columns wide, without COLUMNS: rich reads the terminal."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "stackbench", "show", str(wide_run)],
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env={**env, "TERM": "xterm"},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    _check(text, 80, [str(wide_run), f"nox -s report -- {wide_run}"])
    assert "1279+142+88" in text


def test_show_refuses_what_is_not_a_run_directory(tmp_path: Path) -> None:
    result = _show(tmp_path / "nope", dict(os.environ))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: not a run directory (no such directory)"
    ]


@pytest.mark.parametrize("width", [80, 100])
def test_changes_against_a_baseline_fit(tmp_path: Path, width: int) -> None:
    base = synthetic.write_run(tmp_path, "base", _documents("base"))
    new = synthetic.write_run(tmp_path, "new", _documents("new"))
    changes = compare(load_run(base).results, load_run(new).results)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    with console.capture() as captured:
        console.print(changes_table(changes, width))
    text = captured.get()
    _check(text, width, [])
    assert "12,346 → 12,346" in text and "1,234.6 → 1,234.6" in text


@pytest.mark.parametrize("width", [80, 100])
def test_the_matrix_is_a_grid_in_one_screen(width: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stackbench", "matrix"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(width)},
    )
    assert result.returncode == 0, result.stderr
    lines = _check(result.stdout, width, [])
    assert len(lines) <= 30, "more than one screen:\n" + result.stdout
    # Columns in the apps' order (reference_apps/, by name); green threads need the switch.
    row = next(line for line in lines if line.startswith("gunicorn-gevent-blocking"))
    switch = ["✓" if APPS[app].driver_switch else "·" for app in APPS]
    assert row.split()[1:] == switch and switch.count("✓") == 2  # django_sync, django_fastapi
    granian = next(line for line in lines if line.startswith("granian"))
    assert granian.split()[1:] == ["✓"] * 6
    # the protocol dimension under the grid: what each server speaks, why not the rest
    said = " ".join(result.stdout.split())
    assert "protocols (bench --protocol): h1, h1-tls: every server" in said
    assert "uvicorn: uvicorn has no HTTP/2" in said and "h2 (no h2c): daphne: " in said


def test_the_matrix_grid_alone_at_any_width() -> None:
    console = Console(file=io.StringIO(), width=60, color_system=None)
    with console.capture() as captured:
        console.print(matrix_grid(60))
    _check(captured.get(), 60, [])


def _timed_lines(argv: list[str], env: dict[str, str]) -> tuple[int, list[tuple[float, str]]]:
    """Run ``argv`` with stdout a pipe (not a terminal); each line with when it arrived."""
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    lines = []
    began = time.monotonic()
    for line in process.stdout:
        lines.append((time.monotonic() - began, line.rstrip("\n")))
    return process.wait(timeout=120), lines


@pytest.mark.slow
def test_a_run_says_each_step_as_it_happens_and_ends_with_the_next_command(
    tmp_path: Path,
) -> None:
    """Two pairs, output to a pipe as in CI: each setup step on a line as it begins, the
    'pair k of n · scenario k of n' line of each repeat, the table within 80 columns, the
    run directory whole on its own line, then the command to type next."""
    output = tmp_path / "results"
    argv = [
        sys.executable, "-m", "stackbench", "bench",
        "--pairs", "gino_style@uvicorn,gino_style@gunicorn-uvicorn",
        "--scenarios", "json,db", "--duration", "1s", "--warmup", "0.3s", "-c", "4",
        "--workers", "1", "--output", str(output),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    code, timed = _timed_lines(argv, {**env, "COLUMNS": "80"})
    text = "\n".join(line for _, line in timed)
    assert code == 0, text
    (run_dir,) = output.iterdir()
    expected = [
        "database: starting",
        "seed: checking scale 1 at postgresql://",
        "pair 1 of 2 · server: starting gino_style under uvicorn",
        "pair 1 of 2 · smoke check at http://127.0.0.1:",
        "pair 1 of 2 · scenario 1 of 2: gino_style @ uvicorn: json (1.3 s)",
        "pair 1 of 2 · scenario 2 of 2: gino_style @ uvicorn: db (1.3 s)",
        "pair 2 of 2 · server: starting gino_style under gunicorn-uvicorn",
        "pair 2 of 2 · scenario 2 of 2: gino_style @ gunicorn-uvicorn: db",
        "results:",
        str(run_dir),
        f"nox -s report -- {run_dir}",
    ]
    flat = " ".join(line.strip() for _, line in timed)  # a step wrapped at a word reads whole
    at = [flat.find(step) for step in expected]
    missing = [step for step, position in zip(expected, at, strict=True) if position < 0]
    assert not missing, f"no line says {missing}:\n{text}"
    assert at == sorted(at), f"out of order:\n{text}"
    # As they happen: the first step arrived while the run still had seconds to go.
    assert "database: starting" in timed[0][1]
    assert timed[-1][0] - timed[0][0] > 3.0, text
    assert "\x1b[" not in text, "terminal codes in a log"
    _check(text, 80, [str(run_dir), f"nox -s report -- {run_dir}"])


def test_plain_progress_says_how_far_a_long_repeat_is() -> None:
    from stackbench.console import PlainProgress, console

    progress = PlainProgress(every=5.0)
    with console.capture() as captured:
        tick = progress.start("pair 1 of 1 · scenario 1 of 1: a @ b: db", 12.0)
        for elapsed in (0.5, 4.9, 5.0, 7.5, 10.1, 12.0):
            tick(elapsed)
        progress.done()
    lines = [line.strip() for line in captured.get().splitlines()]
    assert lines[0].endswith("scenario 1 of 1: a @ b: db (12 s)")
    assert lines[1:] == ["… 5 of 12 s", "… 10 of 12 s"]


def _text(renderable: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def test_a_pair_via_nginx_shows_the_proxys_cpu_and_what_was_held() -> None:
    """A row through nginx is named so and its CPU split has the proxy's part after the
    server's ('–' for a row without one in the same table); a row that held misbehaving
    clients says how many were held and closed. A table without either has neither."""
    from stackbench import results
    from stackbench.documents import ResultDocument

    proxied = synthetic.result(
        "run", "gino_style", "uvicorn", 4_000.0,
        cpu_us={"server": 200.0, "proxy": 61.0, "database": 90.0, "client": 40.0},
    )  # fmt: skip
    proxied["proxy"] = {"name": "nginx", "upstream": "unix"}
    proxied["summary"]["misbehaving"] = {
        "idle": {"asked": 25, "opened": 25, "failed": 0, "closed": 3, "held": 22,
                 "answered": {}, "closed_after_s": None},
    }  # fmt: skip
    direct = synthetic.result("run", "tortoise", "uvicorn", 5_000.0, cpu_us=CPU)
    rows = [results.row_of(cast(ResultDocument, d), "x.json") for d in (proxied, direct)]
    text = _text(summary_table(rows, "run", 250), 250)
    assert "gino_style @ uvicorn via nginx (unix)" in text
    assert "srv+prx+db+cli" in text and "200+61+90+40" in text and "1279+–+142+88" in text
    assert "idle 25: 22 held, 3 closed" in text
    plain = _text(summary_table(rows[1:], "run", 250), 250)
    assert "srv+db+cli" in plain and "srv+prx" not in plain and "1279+142+88" in plain
    assert "misbehaving" not in plain and "via" not in plain
