"""What a server answers in the protocol a bench asked for, before the load: one
connection, the TLS handshake and its ALPN answer read from the client's socket, the
HTTP/2 connection preface and the server's SETTINGS, then one GET and its status line
(HTTP/1.1) or ``:status`` (HTTP/2). Independent of loadgen, which reports the same per
connection under load (its ``protocol`` block, read by stackbench/judge.py)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from stackbench.servers import H1, H1_TLS, H2, HTTP2, NEGOTIATED, TLS


@dataclass(frozen=True)
class Spoken:
    """What one connection spoke: its protocol as loadgen names it ("http/1.1", "h2",
    "h2c"), and over TLS the version, cipher and ALPN answer; the GET's status (0: none)."""

    protocol: str
    tls_version: str | None
    cipher: str | None
    alpn: str | None
    status: int


class ProtocolMismatch(Exception):
    """The server did not speak the protocol asked for; the message says what it did."""


def client_context(protocol: str, cafile: Path | str | None) -> ssl.SSLContext:
    """The TLS context of a client of ``protocol``: ``cafile`` trusted, ALPN offered."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2", "http/1.1"] if protocol == H2 else ["http/1.1"])
    return context


def speak(
    base_url: str,
    protocol: str,
    cafile: Path | str | None,
    path: str = "/health",
    timeout: float = 5.0,
) -> Spoken:
    """One GET of ``path`` at ``base_url`` in ``protocol``; what the connection spoke.
    Raises ProtocolMismatch when the server did not speak it, OSError when it could not
    be reached."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if protocol in TLS else 80)
    target = (url.path.rstrip("/") or "") + path
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        tls_version = cipher = alpn = None
        if protocol in TLS:
            context = client_context(protocol, cafile)
            sock = context.wrap_socket(raw, server_hostname=host)
            assert isinstance(sock, ssl.SSLSocket)
            tls_version, alpn = sock.version(), sock.selected_alpn_protocol()
            cipher = (sock.cipher() or ("",))[0]
            if protocol == H2 and alpn != "h2":
                said = f"chose {alpn!r}" if alpn else "chose no protocol"
                raise ProtocolMismatch(f"asked {protocol}: by ALPN the server {said}, not 'h2'")
        authority = f"{host}:{port}"
        if protocol in HTTP2:
            status = _h2_get(sock, authority, target, protocol)
        else:
            status = _h1_get(sock, authority, target)
        return Spoken(NEGOTIATED[protocol], tls_version, cipher, alpn, status)


def _h1_get(sock: socket.socket, authority: str, target: str) -> int:
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    line = head.split(b"\r\n", 1)[0]
    version, _, rest = line.partition(b" ")
    if version != b"HTTP/1.1":
        raise ProtocolMismatch(f"asked HTTP/1.1: the server answered {line[:60]!r}")
    return int(rest[:3]) if rest[:3].isdigit() else 0


def _h2_get(sock: socket.socket, authority: str, target: str, protocol: str) -> int:
    """The preface and SETTINGS, the server's SETTINGS back, then one request's status."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    scheme = "https" if protocol == H2 else "http"
    conn.send_headers(
        stream,
        [(":method", "GET"), (":scheme", scheme), (":authority", authority), (":path", target)],
        end_stream=True,
    )
    sock.sendall(conn.data_to_send())
    settings, status = False, 0
    while True:
        data = sock.recv(65536)
        if not data:
            break
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            raise ProtocolMismatch(
                f"asked {protocol}: the server did not answer in HTTP/2 ({data[:40]!r})"
            ) from None
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                settings = True
            elif isinstance(event, h2.events.ResponseReceived):
                status = int(dict(event.headers).get(b":status", b"0"))
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                sock.sendall(conn.data_to_send())
                return _answered(settings, status, protocol)
        sock.sendall(conn.data_to_send())
    return _answered(settings, status, protocol)


def _answered(settings: bool, status: int, protocol: str) -> int:
    if not settings:
        raise ProtocolMismatch(f"asked {protocol}: the server sent no HTTP/2 SETTINGS")
    return status


def check(base_url: str, protocol: str, cafile: Path | str | None, path: str) -> Spoken | str:
    """``speak``'s answer, or one line saying why the server did not speak ``protocol``."""
    try:
        spoken = speak(base_url, protocol, cafile, path)
    except ProtocolMismatch as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"asked {protocol}: {exc}"
    if spoken.status != 200:
        return f"asked {protocol}: GET {path} answered {spoken.status or 'nothing'}"
    return spoken


__all__ = ["H1", "H1_TLS", "ProtocolMismatch", "Spoken", "check", "client_context", "speak"]
