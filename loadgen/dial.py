"""Opening a connection to the target: TCP, then TLS for an ``https://`` URL.

The two are timed apart (a TCP connect, then a handshake: ``loop.start_tls`` on the open
socket) and recorded per connection in :class:`~loadgen.connstats.ConnStats`, with what the
handshake negotiated (TLS version, cipher, the server's ALPN answer). The TLS context comes
from the standard ``ssl`` module: TLS 1.2 or 1.3, the system's CA certificates or
``--cacert``'s, no verification with ``--insecure``; ALPN offers ``h2`` (and ``http/1.1``,
so that a server without HTTP/2 can say so) with ``--h2``, ``http/1.1`` without it.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from . import connstats
from .config import Config
from .connstats import ConnStats
from .errorkinds import (
    CONNECT_ERROR,
    CONNECT_REFUSED,
    CONNECT_TIMEOUT,
    H2_REFUSED,
    TLS_ERROR,
)

__all__ = ["Dialer", "NotHTTP2", "describe_failure", "failure_kind", "tls_context"]

_pc = time.perf_counter_ns


class NotHTTP2(ConnectionError):
    """The server does not speak HTTP/2 on this connection (ALPN, or no h2c)."""


def tls_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=config.cacert)  # cafile: instead of the system's
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"] if config.h2 else ["http/1.1"])
    return ctx


class Dialer:
    """How every connection of a run reaches the target; records each set-up in ``stats``."""

    __slots__ = ("context", "h2", "host", "port", "stats", "timeout")

    def __init__(self, config: Config, stats: ConnStats) -> None:
        t = config.target
        self.host = t.connect_host
        self.port = t.port
        self.timeout = config.effective_connect_timeout
        self.context = tls_context(config) if t.tls else None
        self.h2 = config.h2
        self.stats = stats

    async def open(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol
    ) -> asyncio.Transport:
        """Connect ``protocol`` (its ``connection_made`` called) within the connect timeout.
        Raises OSError: TimeoutError, ConnectionRefusedError, ssl.SSLError, NotHTTP2 (ALPN
        did not choose h2 for --h2), other OSErrors."""
        return await asyncio.wait_for(self._open(loop, protocol), self.timeout)

    async def _open(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol
    ) -> asyncio.Transport:
        st = self.stats
        t0 = _pc()
        if self.context is None:
            tr, _ = await loop.create_connection(lambda: protocol, self.host, self.port)
            st.tcp.record(_pc() - t0)
            if not self.h2:  # h2c is known once the server's SETTINGS arrive
                st.count(connstats.PROTOCOL, "http/1.1")
            return tr
        raw, _ = await loop.create_connection(asyncio.Protocol, self.host, self.port)
        t1 = _pc()
        st.tcp.record(t1 - t0)
        tls = await loop.start_tls(
            raw, protocol, self.context, server_hostname=self.host,
            ssl_handshake_timeout=self.timeout,
        )  # fmt: skip
        st.tls.record(_pc() - t1)
        assert tls is not None
        sock = tls.get_extra_info("ssl_object")
        alpn = sock.selected_alpn_protocol() if sock is not None else None
        if sock is not None:
            st.count(connstats.TLS_VERSION, sock.version() or "unknown")
            st.count(connstats.CIPHER, (sock.cipher() or ("unknown",))[0])
        st.count(connstats.ALPN, alpn or "none")
        if self.h2 and alpn != "h2":
            st.count(connstats.H2, "not_h2")
            tls.close()
            said = f"chose {alpn!r}" if alpn else "chose no protocol"
            raise NotHTTP2(f"by ALPN the server {said}, not 'h2'")
        st.count(connstats.PROTOCOL, "h2" if self.h2 else "http/1.1")
        protocol.connection_made(tls)  # start_tls does not call it
        return tls


def failure_kind(exc: BaseException) -> str:
    """The error kind of a connection that could not be opened."""
    if isinstance(exc, TimeoutError):
        return CONNECT_TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return CONNECT_REFUSED
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TLS_ERROR
    if isinstance(exc, NotHTTP2):
        return H2_REFUSED
    return CONNECT_ERROR


def describe_failure(exc: BaseException, host: str, port: int) -> str:
    """One line on why a connection to ``host:port`` could not be opened."""
    where = f"{host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"cannot connect to {where}: timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason
        return (
            f"TLS handshake with {where} failed: {why}"
            " (trust its CA with --cacert FILE, or pass --insecure)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, NotHTTP2):
        return f"{where} does not speak HTTP/2: {exc}"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return f"cannot connect to {where}: {reason}"
