"""--h2 against real HTTP/2 servers (hypercorn and granian, two of the noxfile's
TEST_SERVERS): the requests the app counted are exactly loadgen's, over h2c (prior
knowledge) and over TLS with ALPN. Each server also speaks HTTP/1.1 on the same port
(hypercorn always, granian with ``--http auto``), which the test asks for the count."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import loadgen
from loadgen import Config

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """``asgi_count:app`` under a real server, in its own process group (stopped whole)."""

    def __init__(self, server: str, pem: str | None, ca: str | None) -> None:
        self.port = _free_port()
        if server == "hypercorn":
            argv = ["-m", "hypercorn", "-b", f"127.0.0.1:{self.port}", "-w", "1"]
            argv += ["--certfile", pem, "--keyfile", pem] if pem else []
        else:
            argv = ["-m", "granian", "--interface", "asgi", "--http", "auto", "--workers", "1"]
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
            argv += ["--ssl-certificate", pem, "--ssl-keyfile", pem] if pem else []
        self.proc = subprocess.Popen(
            [sys.executable, *argv, "asgi_count:app"],
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.base = f"{'https' if pem else 'http'}://127.0.0.1:{self.port}"
        self.context = ssl.create_default_context(cafile=ca) if pem else None

    def count(self, timeout: float = 30) -> int:
        """The app's count so far (over HTTP/1.1); waits for the server to answer."""
        end = time.monotonic() + timeout
        while True:
            try:
                url = self.base + "/__count"
                with urllib.request.urlopen(url, timeout=5, context=self.context) as r:
                    return int(r.read())
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(params=["hypercorn", "granian"])
def real_server(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(request.param, reason="the noxfile's TEST_SERVERS install it")
    return str(request.param)


@pytest.fixture(params=["h2c", "h2"])
def served(request, real_server: str, tls_files) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    tls = request.param == "h2"
    s = Served(real_server, tls_files.server if tls else None, tls_files.ca if tls else None)
    try:
        yield s
    finally:
        s.stop()


def test_the_server_counts_exactly_what_loadgen_sent(served: Served, tls_files, engine) -> None:
    """On both HTTP/2 engines (the conftest's engine: [fast] the lean one, [pure] h2)."""
    before = served.count()
    cacert = tls_files.ca if served.context else None
    r = loadgen.run_sync(
        Config(url=served.base + "/x", h2=True, requests=600, concurrency=3, streams=4,
               cacert=cacert, **engine)
    )  # fmt: skip
    assert r.requests == r.responses == 600 and r.errors == {}
    assert served.count() - before == 600
    proto = r.to_dict()["protocol"]
    assert proto["negotiated"] == {("h2" if cacert else "h2c"): 3}
    if cacert:
        assert proto["tls"]["alpn"] == {"h2": 3} and r.stats.conn.handshakes == 3


def test_the_open_model_counts_exactly_too(served: Served, tls_files) -> None:
    before = served.count()
    cacert = tls_files.ca if served.context else None
    r = loadgen.run_sync(
        Config(url=served.base + "/x", h2=True, rate=300.0, requests=300, concurrency=2,
               streams=8, cacert=cacert)
    )  # fmt: skip
    assert r.requests == r.responses == 300 and r.stats.sent == 300
    assert served.count() - before == 300
