"""Every command's --help fits an 80- and a 100-column terminal: stackbench, each of its
subcommands and experiments, and loadgen. argparse wraps what it formats to COLUMNS; the
usage lines, examples and epilogs written by hand are what can overflow."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from stackbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command path under ``parser``, itself first."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action._name_parser_map.items():
                found += _subcommands(sub, (*path, name))
    return found


COMMANDS = [("stackbench", *path) for path in _subcommands(build_parser())]
COMMANDS += [("loadgen",), ("loadgen", "merge")]


def test_every_subcommand_is_seen() -> None:
    assert ("stackbench", "experiment", "protocol-costs") in COMMANDS
    assert ("stackbench", "capacity") in COMMANDS


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_fits_the_terminal(command: tuple[str, ...], width: int) -> None:
    program, *rest = command
    result = subprocess.run(
        [sys.executable, "-m", program, *rest, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": str(width), "LANG": "C.UTF-8"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    wide = [line for line in result.stdout.splitlines() if len(line) > width]
    assert not wide, f"{' '.join(command)} --help over {width} columns:\n" + "\n".join(wide)
