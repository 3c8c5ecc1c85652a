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
