"""nox's command line, read once, and what is refused before any session starts.

* ``NoxCommand``: nox's own arguments (the sessions named, the interpreters forced,
  listing or not, the arguments after ``--``);
* ``SessionArgs``: the arguments after ``--`` a session passes on, as far as the noxfile
  must know them (pairs, a capacity run's servers, variants, ``--profile``, ``--json``);
  the harness parses them in full;
* ``enforce``: one line and an exit before anything starts, for a session nox would not
  find, an interpreter that is not installed, options that contradict a session's own
  pair or app, servers a capacity session's app does not have, or a bare ``nox -s
  bench`` (41 sessions) that nobody confirmed.

Standard library only: the noxfile imports it before any virtualenv exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stackbench import experiments, interpreters, matrix
from stackbench.apps import APPS, get_app

# nox's flags that name sessions, interpreters, a selection, or only list.
_SESSION_FLAGS = ("-s", "--session", "--sessions", "-e")
_PYTHON_FLAGS = ("-P", "--force-python", "--extra-python", "--extra-pythons")
_LIST_FLAGS = ("-l", "--list", "--list-sessions", "--usage", "-h", "--help", "--version")
_LIST_SESSIONS_FLAGS = ("-l", "--list", "--list-sessions")
_SELECT_FLAGS = ("-k", "--keywords", "-t", "--tags", "-p", "--python", "--pythons")

# A bare `nox -s bench` selects every parametrization; this runs them anyway.
CONFIRM_VAR = "STACKBENCH_ALL_SESSIONS"
# The README's minute for one pair with the default load, plus its venv: what a bench
# session costs, for the estimate a many-session selection prints before it starts.
BENCH_SESSION_MINUTES = 1.0

# The installed interpreter each session needs (FREE_THREADED_LANE: any free-threaded build).
CONFORMANCE_PYTHON = "3.13"  # the tests session runs the conformance suite on 3.11
INTERPRETER_NEEDS = {
    "conformance": CONFORMANCE_PYTHON,
    "freethreaded": interpreters.FREE_THREADED_LANE,
}


@dataclass(frozen=True)
class NoxCommand:
    """nox's command line as the checks need it (nox parses it again, in full)."""

    sessions: tuple[str, ...] = ()  # named with -s/-e (or $NOXSESSION)
    pythons: tuple[str, ...] = ()  # -P/--force-python/--extra-python(s) values
    listing: bool = False  # -l, --help...: nothing will run
    lists_sessions: bool = False  # a plain `nox -l`: every session, as text for a person
    selecting: bool = False  # -k/-t/-p: nox selects, the default sessions do not apply
    interactive: bool = False  # a person can answer a question (stdin a terminal)
    posargs: tuple[str, ...] = ()  # after --: each session passes them on

    @classmethod
    def parse(
        cls,
        argv: Sequence[str],
        environ: Mapping[str, str] | None = None,
        stdin_is_terminal: bool | None = None,
    ) -> NoxCommand:
        environ = os.environ if environ is None else environ
        own, posargs = _split(list(argv[1:]))
        names = [arg.partition("=")[0] for arg in own if arg.startswith("-")]
        sessions = _values(own, _SESSION_FLAGS)
        if not sessions and environ.get("NOXSESSION"):
            sessions = [s for s in environ["NOXSESSION"].split(",") if s]
        if stdin_is_terminal is None:
            stdin_is_terminal = sys.stdin is not None and sys.stdin.isatty()
        return cls(
            sessions=tuple(sessions),
            pythons=tuple(_values(own, _PYTHON_FLAGS)),
            listing=any(name in _LIST_FLAGS for name in names),
            lists_sessions=any(name in _LIST_SESSIONS_FLAGS for name in names)
            and not sessions
            and not any(name in (*_SELECT_FLAGS, "--json", "-h", "--help") for name in names),
            selecting=any(name in _SELECT_FLAGS for name in names),
            interactive=stdin_is_terminal and "--non-interactive" not in names,
            posargs=tuple(posargs),
        )

    def requested(self, defaults: Iterable[str]) -> list[str]:
        """The sessions named, else the default sessions unless nox selects by -k/-t/-p."""
        if self.sessions:
            return list(self.sessions)
        return [] if self.selecting else list(defaults)


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    if "--" in args:
        at = args.index("--")
        return args[:at], args[at + 1 :]
    return args, []


def _values(args: list[str], flags: tuple[str, ...]) -> list[str]:
    """Every value given to ``flags``: ``-s a b``, ``--session=a``."""
    values: list[str] = []
    taking = False
    for arg in args:
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            taking = name in flags and not eq
            if name in flags and eq:
                values.append(value)
            continue
        if taking:
            values.append(arg)
    return values


@dataclass(frozen=True)
class SessionArgs:
    """A session's arguments after ``--``, as far as the noxfile must know them."""

    app: tuple[str, ...] = ()  # every --app value (the last one wins in the harness)
    server: tuple[str, ...] = ()
    servers: str | None = None  # capacity's --servers a,b
    pairs: str | None = None
    target: str | None = None
    variants: tuple[str, ...] = ()
    profile: bool = False
    json: bool = False

    @classmethod
    def parse(cls, args: Sequence[str]) -> SessionArgs:
        found: dict[str, list[str]] = {}
        flags: set[str] = set()
        args = list(args)
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            name, eq, value = arg.partition("=")
            option = _option(name)
            if option is None:
                continue
            if option in ("--profile", "--json"):
                flags.add(option)
            elif eq:
                found.setdefault(option, []).append(value)
            elif i + 1 < len(args):
                found.setdefault(option, []).append(args[i + 1])
        return cls(
            app=tuple(found.get("--app", ())),
            server=tuple(found.get("--server", ())),
            servers=found.get("--servers", [None])[-1],
            pairs=found.get("--pairs", [None])[-1],
            target=found.get("--target", [None])[-1],
            variants=tuple(found.get("--variant", ())),
            profile="--profile" in flags,
            json="--json" in flags,
        )


_OPTIONS = ("--app", "--server", "--pairs", "--target", "--variant", "--profile", "--json")
# Taken whole only: every shorter spelling is --server itself or ambiguous beside
# --server-cpus, in capacity's parser as in bench's.
_WHOLE = ("--servers",)


def _option(name: str) -> str | None:
    """The option ``name`` spells, abbreviations included as the harness's argparse takes
    them (``--ap`` is ``--app``); a prefix argparse finds ambiguous it refuses itself."""
    if name in _OPTIONS or name in _WHOLE:
        return name
    if len(name) >= 4:
        matches = [option for option in _OPTIONS if option.startswith(name)]
        if len(matches) == 1:
            return matches[0]
    return None


@dataclass(frozen=True)
class Refusal:
    """One line for the user; exit 2 for a usage error, 1 for a broken checkout."""

    message: str
    code: int = 2


def refusal(
    command: NoxCommand, installed: list[interpreters.Interpreter], defaults: Iterable[str]
) -> Refusal | None:
    """Why nothing may start for this command line, or None (a selection of many sessions
    is ``confirm_many``'s to refuse: it may ask)."""
    try:
        matrix.check_apps()  # every session's installs are built from the registry
    except matrix.AppFilesMissingError as exc:
        return Refusal(str(exc), 1)
    for check in (matrix.check_requested_sessions, experiments.check_requested_sessions):
        if (error := check(command.sessions)) is not None:
            return Refusal(error)
    if command.listing:  # listing says why a lane is missing instead of refusing
        return None
    error = interpreters.check_requested(
        command.requested(defaults), command.pythons, installed, INTERPRETER_NEEDS
    )
    if error is not None:
        return Refusal(error)
    if (error := contradiction(command)) is not None:
        return Refusal(error)
    if (error := capacity_servers(command)) is not None:
        return Refusal(error)
    return None


def contradiction(command: NoxCommand) -> str | None:
    """One line when the options after ``--`` name another pair than a selected bench or
    serve session's own (the harness would take the last ``--app`` given: silently the
    user's), else None."""
    given = SessionArgs.parse(command.posargs)
    for name in command.sessions:
        kind, _, rest = name.partition("(")
        if kind == matrix.APP_SESSION:
            if (error := _capacity_contradiction(name, given)) is not None:
                return error
            continue
        if kind not in matrix.PAIR_SESSIONS:
            continue
        own = matrix.session_pair(name) if rest else None
        if given.pairs is not None or given.target is not None:
            option = "--pairs" if given.pairs is not None else "--target"
            return (
                f"{option} after -- contradicts the {kind} session's own pair: measure exact "
                f'pairs with nox -s bench_pairs -- --pairs app@server,... ("{name}" runs one)'
            )
        for option, values, mine in (
            ("--app", given.app, own.app if own else None),
            ("--server", given.server, own.server if own else None),
        ):
            wrong = [value for value in values if value != mine]
            if wrong:
                suggestion = _session_for(kind, given, own)
                return (
                    f"{option} {wrong[0]} after -- contradicts the session's own "
                    f"{option[2:]}: {kind} sessions name their pair, e.g. nox -s "
                    f'"{suggestion}" (nox -s matrix lists them)'
                )
    return None


def _capacity_contradiction(name: str, given: SessionArgs) -> str | None:
    """A capacity session names its app; its servers are --servers, and a served pair is
    searched with the harness's own --target (the load host has no session to build)."""
    own = matrix.session_app(name)
    wrong = [app for app in given.app if app != own]
    if wrong:
        return (
            f"--app {wrong[0]} after -- contradicts the session's own app: capacity sessions "
            f"name their app, e.g. nox -s \"capacity(app='{given.app[-1]}')\""
        )
    if given.server or given.pairs is not None:
        option = "--server" if given.server else "--pairs"
        return (
            f"{option} after -- is not capacity's: a capacity session searches its app's "
            "servers, or those of --servers a,b"
        )
    if given.target is not None:
        return (
            "--target after -- contradicts the capacity session's own app: search the pair "
            "serve runs with python -m stackbench capacity --target URL --target-stats URL "
            "(docs/distributed.md)"
        )
    return None


def capacity_servers(command: NoxCommand) -> str | None:
    """One line when --servers after -- names a server that a selected capacity session's
    app does not have (or no server), else None."""
    given = SessionArgs.parse(command.posargs)
    if given.servers is None:
        return None
    for name in command.sessions:
        if name.partition("(")[0] != matrix.APP_SESSION:
            continue
        own = matrix.session_app(name)
        for app in [own] if own else list(APPS):  # a bare `capacity`: every app's session
            try:
                matrix.app_servers(get_app(app), given.servers)
            except ValueError as exc:
                return str(exc)
    return None


def _session_for(kind: str, given: SessionArgs, own: matrix.Pair | None) -> str:
    """The session that measures what the options after -- asked for, as near as exists."""
    app = given.app[-1] if given.app else own.app if own else None
    server = given.server[-1] if given.server else own.server if own else None
    pairs = matrix.pairs(check_files=False)
    chosen = next((p for p in pairs if p.app == app and p.server == server), None)
    chosen = chosen or next((p for p in pairs if app in (p.app, None)), None)
    chosen = chosen or next((p for p in pairs if p.server == server), pairs[0])
    return chosen.session.replace("bench", kind, 1)


def many_sessions(command: NoxCommand) -> str | None:
    """What a selection of several bench, serve or experiment sessions by their bare name
    (``nox -s bench``: every parametrization) will run, or None when it names one each."""
    if command.listing:
        return None
    counts = {
        "bench": len(matrix.pairs(check_files=False)),
        "serve": len(matrix.pairs(check_files=False)),
        "experiment": len(experiments.EXPERIMENTS),
        matrix.APP_SESSION: len(APPS),
    }
    found = [(name, counts[name]) for name in command.sessions if counts.get(name, 1) > 1]
    if not found:
        return None
    parts = []
    for name, count in found:
        if name == "bench":
            minutes = count * BENCH_SESSION_MINUTES
            parts.append(
                f"`-s bench` selects {count} sessions, one per pair, each with its own venv: "
                f"about {minutes:.0f} minutes with the default load"
            )
        elif name == "serve":
            parts.append(f"`-s serve` selects {count} sessions, each serving until Ctrl-C")
        elif name == matrix.APP_SESSION:
            parts.append(
                f"`-s {name}` selects {count} sessions, one per app, each searching every "
                "server of its app: half an hour or more each with the defaults "
                "(docs/capacity.md)"
            )
        else:
            parts.append(
                f"`-s experiment` selects {count} sessions, every experiment "
                f"({', '.join(experiments.EXPERIMENTS)}): hours in all"
            )
    return "; ".join(parts)


def confirm_many(command: NoxCommand, environ: Mapping[str, str] | None = None) -> str | None:
    """None when the sessions may start; else the one line that refuses them.

    Several sessions by a bare name go on when $STACKBENCH_ALL_SESSIONS is 1, or when a
    person at the terminal answers yes; otherwise nothing starts."""
    environ = os.environ if environ is None else environ
    what = many_sessions(command)
    if what is None or environ.get(CONFIRM_VAR) == "1":
        return None
    if command.interactive:
        print(f"nox: {what}.", file=sys.stderr)
        try:
            answer = input("Start them all? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return None
        return "nothing was started"
    return (
        f"{what}. Name one session (nox -s matrix lists the pairs), or run them all on "
        f"purpose with {CONFIRM_VAR}=1"
    )


def enforce(
    command: NoxCommand, installed: list[interpreters.Interpreter], defaults: Iterable[str]
) -> None:
    """Exit with one line on stderr when nothing may start (see ``refusal`` and
    ``confirm_many``); return when the sessions may run."""
    found = refusal(command, installed, defaults)
    if found is None and (error := confirm_many(command)) is not None:
        found = Refusal(error)
    if found is not None:
        print(f"nox: error: {found.message}", file=sys.stderr)
        sys.exit(found.code)
