"""The protocol's parts of the harness's documents (bench --protocol): the protocol
asked, what the load's connections negotiated, what the harness's own check saw.
stackbench/documents.py, their one definition's home, takes them from here (it would be
over the line limit with them). (No ``from __future__ import annotations``: TypedDict
reads the evaluated annotations.)
"""

from typing import Literal, TypedDict, get_args

Protocol = Literal["h1", "h1-tls", "h2", "h2c"]  # stackbench/servers.py's PROTOCOLS


def protocol_name(name: str) -> Protocol:
    """``name`` as a result's ``protocol``; anything else is a bug, said here."""
    for known in get_args(Protocol):
        if name == known:
            return known  # typed Any: get_args cannot say it is one of Protocol
    raise ValueError(f"not a protocol: {name!r}")


class Negotiated(TypedDict):
    """What the load's connections negotiated, over every repeat, as loadgen counted them:
    connections per protocol ("http/1.1", "h2", "h2c"), per TLS version and per cipher."""

    protocols: dict[str, int]
    tls_versions: dict[str, int]
    ciphers: dict[str, int]


class ProtocolCheck(TypedDict):
    """What one connection of the harness's own (stackbench/protocol_check.py) spoke
    before the load: the protocol, and over TLS its version, cipher and ALPN answer."""

    protocol: str
    tls_version: str | None
    cipher: str | None
    alpn: str | None
