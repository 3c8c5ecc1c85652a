"""Verifying a response once so that its exact repeats skip the parser.

A server answering the same request again and again (nginx, a ``/json`` or
``/plaintext`` endpoint) sends the same bytes in every response but for its ``Date``
header, which changes once a second.  The parser's verdict on a read depends only on
the bytes read and on the parser's state; so a read that repeats, byte for byte, a
read the parser accepted from the state between two messages, read again in that
state, gets the same verdict: the same status, the same body length, the connection
kept open, the parser between messages again.  :class:`~loadgen.fastpath._FastConn`
keeps the last such read of each connection and compares each new read with it
(one ``bytes`` comparison) before it parses anything.

:func:`verify` decides, once per distinct read, whether a read can be remembered: a
fresh parser of the same engine must find in it exactly one message, a final response
(status 200 or more) that keeps the connection open, completed by the read's last byte
(so nothing of a next message is in it), with a head within ``MAX_HEAD``.  Anything
else (split reads, two responses in one read, 1xx, ``Connection: close``, a parse
error) is parsed every time, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .httpparse import MAX_HEAD


class _Probe:
    """Counts what a parser found in one read."""

    __slots__ = ("begun", "done", "keep", "nbody", "parser", "status")

    def __init__(self) -> None:
        self.begun = 0
        self.done = 0
        self.nbody = 0
        self.status = 0
        self.keep = False
        self.parser: Any = None

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_body(self, body: bytes) -> None:
        self.nbody += len(body)

    def on_message_complete(self) -> None:
        self.done += 1
        self.status = self.parser.get_status_code()
        self.keep = self.parser.should_keep_alive()


def _parse(factory: Callable[[Any], Any], data: bytes) -> _Probe:
    pr = _Probe()
    pr.parser = factory(pr)
    try:
        pr.parser.feed_data(data)
    except Exception:
        pr.begun = -1  # a parse error (or a 101 upgrade): never remembered
    return pr


def verify(factory: Callable[[Any], Any], data: bytes) -> tuple[int, int] | None:
    """``(status, body length)`` if ``data``, read from a parser between messages, is
    exactly one complete keep-alive final response ending at its last byte; else None.
    ``factory`` makes a parser of the engine in use (``httptools.HttpResponseParser``
    or ``PyResponseParser``), so the verdict is that engine's."""
    if not data or len(data) > MAX_HEAD:
        return None
    whole = _parse(factory, data)
    if whole.begun != 1 or whole.done != 1 or whole.status < 200 or not whole.keep:
        return None
    if _parse(factory, data[:-1]).done:  # complete before the last byte: bytes follow it
        return None
    return whole.status, whole.nbody
