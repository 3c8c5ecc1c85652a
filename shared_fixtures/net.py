"""Loopback ports: find a free one, tell whether one is taken."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


class PortError(RuntimeError):
    pass


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel just handed out on ``host``; the caller binds it right away."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            raise PortError(f"no free TCP port on {host}: {exc.strerror}") from None
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
