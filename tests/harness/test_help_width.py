"""Every command's --help fits an 80- and a 100-column terminal: stackbench, each of its
subcommands and experiments, and loadgen. argparse wraps what it formats to COLUMNS; the
usage lines, examples and epilogs written by hand are what can overflow. (The parsers are
the commands' own, formatted in-process: each sets its program name, so the text is what
`python -m … --help` prints.)"""

from __future__ import annotations

import argparse

import pytest

from loadgen.cli import build_parser as loadgen_parser
from loadgen.merge import merge_main
from stackbench.cli import build_parser


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command under ``parser`` by its path, itself first."""
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action._name_parser_map.items():
                found |= _subcommands(sub, (*path, name))
    return found


COMMANDS = {("stackbench", *path): p for path, p in _subcommands(build_parser()).items()}
COMMANDS[("loadgen",)] = loadgen_parser()


def _help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    if command == ("loadgen", "merge"):  # its parser lives inside the command
        with pytest.raises(SystemExit) as exit_:
            merge_main(["--help"])
        assert exit_.value.code == 0
        return capsys.readouterr().out
    return COMMANDS[command].format_help()


def test_every_subcommand_is_seen() -> None:
    assert ("stackbench", "experiment", "protocol-costs") in COMMANDS
    assert ("stackbench", "capacity") in COMMANDS
    assert len(COMMANDS) > 15


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("command", [*COMMANDS, ("loadgen", "merge")], ids=" ".join)
def test_help_fits_the_terminal(
    command: tuple[str, ...],
    width: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))  # read by argparse's formatter, per help
    text = _help(command, capsys)
    assert text.startswith("usage: ")
    wide = [line for line in text.splitlines() if len(line) > width]
    assert not wide, f"{' '.join(command)} --help over {width} columns:\n" + "\n".join(wide)
