"""The fields of a dataclass as command-line options: how each is written (:class:`Option`,
declared with the field by :func:`option`), the argparse arguments made from them, what
a command line gave, and the command line written back.

:class:`loadgen.config.Config` declares every field this way, so its flags, default,
parser and help are written once, beside the field. The harness adds the same arguments
to its own parsers (with its own defaults, in its own base Config) and hands the Config
on; :func:`to_argv` writes it as the command line that ``python -m loadgen`` reads back
into an equal Config.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["Option", "add_arguments", "check", "given", "option", "table", "to_argv"]


@dataclasses.dataclass(frozen=True)
class Option:
    """How one field is written on a command line."""

    flags: tuple[str, ...]  # the first is the one to_argv writes; none: a positional
    help: str
    group: str  # the section of a --help
    parse: Callable[[Any], Any] = str  # text, or a typed value, -> the checked value
    metavar: str | None = None
    repeated: bool = False  # the flag is given once per item (-H, --threshold)
    sets: bool | None = None  # a flag without a value that sets the field to this
    toggle: bool = False  # --X sets True, --no-X False; neither: None (automatic)
    write: Callable[[Any], str] = str  # a value (an item) as the text parse reads back
    name: str = ""  # the field's name, filled by table()
    default: Any = None  # the field's default, filled by table()

    @property
    def label(self) -> str:
        return "/".join(self.flags) or self.name

    def check(self, value: Any) -> None:
        """``value`` as a library caller typed it, through the command line's parser: it
        must pass and be what that parser makes of it (``'get'`` is not ``'GET'``)."""
        if self.sets is not None or self.toggle:
            if not (isinstance(value, bool) or (self.toggle and value is None)):
                raise ConfigError(f"{self.label} must be True or False, got {value!r}")
            return
        if value is None and self.default is None:
            return
        for item in _items(value) if self.repeated else (value,):
            try:
                normal = self.parse(item)
            except ConfigError as exc:
                raise ConfigError(f"{self.label} {exc}") from None
            if normal != item:
                raise ConfigError(f"{self.label}: {item!r} must be given as {normal!r}")

    def words(self, value: Any) -> list[str]:
        """The value as command-line words ([] for the default)."""
        if not self.flags or value == self.default:
            return []
        flag = self.flags[0]
        if self.sets is not None:
            return [flag]
        if self.toggle:
            return [flag if value else "--no-" + flag[2:]]
        words = []
        for item in _items(value) if self.repeated else (value,):
            text = self.write(item)
            if text.startswith("-"):  # would read as an option: --long=text
                words.append(next(f for f in self.flags if f.startswith("--")) + "=" + text)
            else:
                words += [flag, text]
        return words


def option(default: Any, *flags: str, **how: Any) -> Any:
    """A dataclass field with its :class:`Option` (``metadata["option"]``)."""
    meta = {"option": Option(flags, **how)}
    if isinstance(default, dict):  # a fresh one for each instance
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_TABLES: dict[type, dict[str, Option]] = {}


def table(cls: type) -> dict[str, Option]:
    """The options of a dataclass's fields, by field name, in declaration order."""
    if cls not in _TABLES:
        found = {}
        for f in dataclasses.fields(cls):
            default = f.default
            if callable(f.default_factory):
                default = f.default_factory()
            found[f.name] = dataclasses.replace(f.metadata["option"], name=f.name, default=default)
        _TABLES[cls] = found
    return _TABLES[cls]


def check(spec: Any) -> None:
    """Every field of ``spec`` with flags, through its option's parser."""
    for opt in table(type(spec)).values():
        if opt.flags:
            opt.check(getattr(spec, opt.name))


def to_argv(spec: Any) -> list[str]:
    """Every field of ``spec`` that differs from its default, as command-line words; the
    positional field (the URL) last."""
    options = table(type(spec)).values()
    words = [w for opt in options for w in opt.words(getattr(spec, opt.name))]
    return words + [str(getattr(spec, opt.name)) for opt in options if not opt.flags]


# Where add_arguments' options land on an argparse namespace: apart from the caller's
# own options, so that given() reads back only what was typed.
_DEST = "spec."


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, names: Iterable[str], base: Any
) -> None:
    """The options of ``base``'s fields ``names`` as argparse arguments, each help ending
    with the default in ``base``. An option not given is absent from the namespace."""
    options = table(type(base))
    for name in names:
        opt = options[name]
        default = getattr(base, name)
        shown = default not in (None, (), {}, b"", "") and opt.sets is None and not opt.toggle
        help_text = opt.help + (f" (default {opt.write(default)})" if shown else "")
        if not opt.flags:  # checked by validate (argparse would parse a SUPPRESS default)
            parser.add_argument(
                _DEST + name, nargs="?", default=argparse.SUPPRESS, metavar=opt.metavar,
                help=help_text,
            )  # fmt: skip
            continue
        how: dict[str, Any] = {"dest": _DEST + name, "default": argparse.SUPPRESS}
        if opt.sets is not None:
            how.update(action="store_const", const=opt.sets)
        elif opt.toggle:
            how.update(action=argparse.BooleanOptionalAction)
        else:
            how.update(type=_argument(opt.parse), metavar=opt.metavar or name.upper())
            if opt.repeated:
                how.update(action="append")
        parser.add_argument(*opt.flags, help=help_text, **how)


def given(namespace: argparse.Namespace, base: Any) -> dict[str, Any]:
    """The fields of ``base``'s kind a command line gave values to, by name, as
    ``base.replace(**given(...))`` takes them."""
    options = table(type(base))
    found = {}
    for key, value in vars(namespace).items():
        if key.startswith(_DEST):
            opt = options[key[len(_DEST) :]]
            found[opt.name] = type(opt.default)(value) if opt.repeated else value
    return found


def _items(value: Any) -> Iterable[Any]:
    return value.items() if isinstance(value, Mapping) else value


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser of loadgen.values as an argparse type: its message, one line."""

    def parse_argument(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument
