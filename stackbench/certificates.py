"""A test CA and a server certificate, made per run with trustme for the TLS protocols
(``bench --protocol h1-tls|h2``): never committed, the key readable only by this user,
everything removed when the block ends, whatever happened."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import trustme

from stackbench.servers import Certificates

# The names a loopback server is reached by; serve adds the address it binds.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _write(path: Path, data: bytes, mode: int) -> None:
    """``data`` in a new file created with ``mode`` (never widened, never overwritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


@contextlib.contextmanager
def certificates(directory: Path, names: Sequence[str] = LOOPBACK_NAMES) -> Iterator[Certificates]:
    """A CA made now and a certificate it signed for ``names``, in a new 0700 directory
    ``directory/tls`` (the key 0600), removed when the block ends."""
    tls = directory / "tls"
    tls.mkdir(mode=0o700)
    try:
        ca = trustme.CA(organization_name="stackbench test CA (made for one run)")
        leaf = ca.issue_cert(*dict.fromkeys(names))
        made = Certificates(cert=tls / "server.pem", key=tls / "server.key", ca=tls / "ca.pem")
        _write(made.key, leaf.private_key_pem.bytes(), 0o600)
        _write(made.cert, b"".join(pem.bytes() for pem in leaf.cert_chain_pems), 0o644)
        _write(made.ca, ca.cert_pem.bytes(), 0o644)
        yield made
    finally:
        shutil.rmtree(tls, ignore_errors=True)
