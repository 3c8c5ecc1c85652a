"""``nox -l`` as a page a person scans in one screen.

nox lists every parametrization on a line of its own with the same description: 41 bench
and 41 serve lines that differ in their pair. This page lists each session once, and a
parametrized session's values after it (its pairs one line per app, the servers beside).
Standard library only: the noxfile calls it before any virtualenv exists.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

# nox's own marks: * runs with a bare `nox`, - only when named.
DEFAULT, NAMED = "*", "-"


def page(registry: Mapping[str, Any], defaults: Iterable[str], width: int) -> str:
    """Each session of ``registry`` (nox's, name → function) once, described by its
    docstring's first line, with its parametrizations grouped; at most ``width`` columns."""
    defaults = set(defaults)
    plain: list[tuple[str, str]] = []
    grouped: list[tuple[str, str, list[tuple[Any, ...]]]] = []
    for name, func in registry.items():
        summary = _first_line(func)
        params = getattr(func, "parametrize", None)
        if params:
            arg_names = params[0].arg_names
            signature = f"{name}({', '.join(f'{arg}=…' for arg in arg_names)})"
            grouped.append((signature, summary, [tuple(p.args) for p in params]))
            continue
        pythons = func.python if isinstance(func.python, list | tuple) else [None]
        for python in pythons:
            session = name if python is None else f"{name}-{python}"
            mark = DEFAULT if name in defaults or session in defaults else NAMED
            plain.append((f"{mark} {session}", summary))
    lines = [
        _fill(
            "Sessions (* run by a bare `nox`; nox -s NAME runs one, options after --):",
            width,
            "",
            "",
        ),
        "",
    ]
    column = min(max((len(left) for left, _ in plain), default=0) + 2, width // 3)
    lines += [_row(left, summary, column, width) for left, summary in plain]
    # Sessions parametrized alike (bench and serve: the pairs) share one list of values.
    by_values: dict[tuple[tuple[Any, ...], ...], list[tuple[str, str]]] = {}
    for signature, summary, values in grouped:
        by_values.setdefault(tuple(values), []).append((signature, summary))
    for shared, sessions in by_values.items():
        lines.append("")
        lines += [
            _row(f"{NAMED} {signature}", summary, 0, width) for signature, summary in sessions
        ]
        lines += _values(list(shared), width)
    return "\n".join(lines)


def _first_line(func: Any) -> str:
    """The docstring's first paragraph, as one line."""
    doc = (getattr(func, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _row(left: str, text: str, column: int, width: int) -> str:
    """``left`` then ``text`` wrapped in a column of its own (under ``left`` when it is 0)."""
    if not column:
        return _fill(f"{left}  {text}", width, "", "    ")
    head = left.ljust(column) if len(left) < column else left + "  "
    return _fill(text, width, head, " " * column)


def _values(values: list[tuple[Any, ...]], width: int) -> list[str]:
    """One value: a wrapped list. Two (app, server): the firsts that share their seconds on
    one line, the seconds under it, so a pair is found by its app."""
    if len(values[0]) == 1:
        return [_fill(", ".join(str(v[0]) for v in values), width, "    ", "    ")]
    seconds: dict[str, list[str]] = {}
    for first, *others in values:
        seconds.setdefault(str(first), []).append(", ".join(map(str, others)))
    firsts: dict[tuple[str, ...], list[str]] = {}
    for first, its_seconds in seconds.items():
        firsts.setdefault(tuple(its_seconds), []).append(first)
    lines = []
    for shared, names in firsts.items():
        lines.append(_fill(", ".join(names) + ":", width, "    ", "    "))
        lines.append(_fill(" ".join(shared), width, "        ", "        "))
    return [*lines, f"    ({len(values)} in all; nox -s matrix prints them as a grid)"]


def _fill(text: str, width: int, first: str, rest: str) -> str:
    # Names hold hyphens (gunicorn-gevent-blocking): a line breaks between names only.
    return textwrap.fill(
        text,
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
