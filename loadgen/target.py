"""The target: an ``http://`` or ``https://`` URL parsed once (:class:`Target`), and the
check that it is on this machine (:func:`is_loopback_host`)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["DEFAULT_PORTS", "Target", "is_loopback_host", "parse_url"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """True if ``host`` is a loopback address or resolves only to loopback addresses."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    if h.lower() in ("localhost", "localhost.localdomain") or h.lower().endswith(".localhost"):
        return True
    try:
        infos = socket.getaddrinfo(h, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addrs = {str(info[4][0]) for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


@dataclass(frozen=True)
class Target:
    """A parsed http:// or https:// URL."""

    host: str  # as given (for the Host header and :authority)
    port: int
    base_path: str  # path without trailing slash for scenarios ("" for root)
    path_qs: str  # request target for plain mode ("/path?query")
    connect_host: str  # host to connect to (IPv6 brackets removed; the TLS server name)
    scheme: str = "http"  # "http" or "https"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        return self.host if self.port == DEFAULT_PORTS[self.scheme] else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.base_path}"


def parse_url(url: str) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("missing URL")
    url = url.strip()
    if "://" not in url:
        raise ConfigError(f"malformed URL {url!r}: expected http(s)://HOST[:PORT]/PATH")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"malformed URL {url!r}: {e}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError(f"malformed URL {url!r}: scheme must be http or https")
    if not parts.hostname:
        raise ConfigError(f"malformed URL {url!r}: no host")
    if any(c.isspace() for c in url):
        raise ConfigError(f"malformed URL {url!r}: contains whitespace")
    host = parts.hostname
    netloc_host = f"[{host}]" if ":" in host else host
    path = parts.path or "/"
    path_qs = path + (f"?{parts.query}" if parts.query else "")
    return Target(
        host=netloc_host,
        port=port or DEFAULT_PORTS[parts.scheme],
        base_path=path.rstrip("/"),
        path_qs=path_qs,
        connect_host=host,
        scheme=parts.scheme,
    )
