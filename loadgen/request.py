"""Preformatted HTTP/1.1 request bytes (built once, before the run)."""

from __future__ import annotations

from .version import __version__


def build_request(
    method: str,
    target: str,
    host: str,
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    body: bytes,
    keepalive: bool = True,
) -> bytes:
    """Preformatted HTTP/1.1 request bytes."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    names = {k.lower() for k, _ in headers}
    if "user-agent" not in names:
        lines.append(f"User-Agent: loadgen/{__version__}")
    for k, v in headers:
        if k.lower() in ("host", "content-length"):
            if k.lower() == "host":
                lines[1] = f"Host: {v}"
            continue
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    if not keepalive and "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class H2Request:
    """A request as HTTP/2 sends it, built once before the run: its header block
    (pseudo-headers first, then the fields, names in lowercase, all bytes) and its body."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.headers = headers
        self.body = body


# HTTP/1.1's connection-specific fields have no meaning in HTTP/2 (RFC 9113 8.2.2): dropped.
_NOT_IN_H2 = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding"))
_NOT_IN_H2 |= {"upgrade", "content-length", "host"}  # the length is ours; Host is :authority


def build_h2_request(
    method: str,
    target: str,
    host: str,
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    body: bytes,
    scheme: str,
) -> H2Request:
    """The HTTP/2 form of :func:`build_request`'s request (a Host header given in
    ``headers`` becomes ``:authority``; ``TE`` is kept only as ``trailers``)."""
    authority = host
    fields = []
    names = {k.lower() for k, _ in headers}
    if "user-agent" not in names:
        fields.append(("user-agent", f"loadgen/{__version__}"))
    for k, v in headers:
        name = k.lower()
        if name == "host":
            authority = v
        elif name not in _NOT_IN_H2 and (name != "te" or v.lower() == "trailers"):
            fields.append((name, v))
    if body or method in ("POST", "PUT", "PATCH"):
        fields.append(("content-length", str(len(body))))
    pseudo = [(":method", method), (":scheme", scheme), (":authority", authority)]
    pseudo.append((":path", target))
    block = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pseudo + fields]
    return H2Request(block, body)
