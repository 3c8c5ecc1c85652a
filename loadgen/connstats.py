"""What a run's connections were: how long each took to set up (the TCP connect and the
TLS handshake, timed apart from any request), what each negotiated (the protocol, TLS
version, cipher and ALPN answer), and the HTTP/2 events of the connection (GOAWAY,
RST_STREAM, the server's stream limit). Mergeable exactly, like :class:`~loadgen.stats.Stats`
that holds it, and written to and read from an agent's JSON state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .histogram import Histogram

__all__ = ["ConnStats"]

# the keys of ConnStats.counts: each a count per value seen
PROTOCOL = "protocol"  # what each connection spoke: "http/1.1", "h2" (by ALPN), "h2c"
TLS_VERSION = "tls_version"
CIPHER = "cipher"
ALPN = "alpn"  # the server's ALPN answer per TLS connection ("none": it chose nothing)
GOAWAY = "goaway"  # GOAWAY frames received, by error code name
RST_STREAM = "rst_stream"  # RST_STREAM frames received, by error code name
MAX_STREAMS = "max_concurrent_streams"  # the server's SETTINGS_MAX_CONCURRENT_STREAMS
H2 = "h2"  # connection events: "not_h2", "protocol_error", "limited" (below --streams)


@dataclass
class ConnStats:
    tcp: Histogram = field(default_factory=Histogram)  # TCP connect, every connection (ns)
    tls: Histogram = field(default_factory=Histogram)  # TLS handshake, every one done (ns)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, what: str, value: str, n: int = 1) -> None:
        c = self.counts.setdefault(what, {})
        c[value] = c.get(value, 0) + n

    def of(self, what: str) -> dict[str, int]:
        return dict(sorted(self.counts.get(what, {}).items()))

    @property
    def handshakes(self) -> int:
        return self.tls.count

    def merge(self, o: ConnStats) -> None:
        self.tcp.merge(o.tcp)
        self.tls.merge(o.tls)
        for what, values in o.counts.items():
            for value, n in values.items():
                self.count(what, value, n)

    def to_state(self) -> dict[str, Any]:
        return {"tcp": self.tcp.to_dict(), "tls": self.tls.to_dict(), "counts": self.counts}

    @classmethod
    def from_state(cls, d: dict[str, Any] | None) -> ConnStats:
        """``to_state``'s ConnStats; an empty one from a report written before it existed."""
        if not d:
            return cls()
        counts = {w: {v: int(n) for v, n in vs.items()} for w, vs in d["counts"].items()}
        return cls(Histogram.from_dict(d["tcp"]), Histogram.from_dict(d["tls"]), counts)

    def protocol(self, config: Config) -> dict[str, Any]:
        """The report's ``protocol``: what was asked, what each connection negotiated (TLS:
        versions, ciphers, ALPN answers), HTTP/2's connection events (--h2)."""
        tls = {
            "versions": self.of(TLS_VERSION),
            "ciphers": self.of(CIPHER),
            "alpn": self.of(ALPN),
            "verified": not config.insecure,
        }
        h2 = self.of(H2)
        events = {
            "streams_per_connection": config.streams,
            "server_max_concurrent_streams": self.of(MAX_STREAMS),
            "limited_connections": h2.get("limited", 0),
            "goaway": self.of(GOAWAY),
            "rst_stream": self.of(RST_STREAM),
            "protocol_errors": h2.get("protocol_error", 0),
            "not_h2": h2.get("not_h2", 0),
        }
        return {
            "requested": "h2" if config.h2 else "http/1.1",
            "scheme": config.target.scheme,
            "negotiated": self.of(PROTOCOL),
            "tls": tls if config.target.tls else None,
            "h2": events if config.h2 else None,
        }
