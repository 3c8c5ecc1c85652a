"""Benchmark targets that are not nginx (run as ``python targets.py KIND``).

``sleep``: a thread-per-connection HTTP/1.1 keep-alive server whose every response
takes a known service time (``time.sleep``, precise to tens of microseconds, unlike an
event loop's millisecond timers).  It records the service time it really spent, so the
comparison can say how far the *server* was from 10 ms.

``fast``: a minimal asyncio server (uvloop if importable) answering ``Hello, World!``,
the fallback when nginx is not installed.

Prints ``PORT <n>`` when listening; exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time

RESP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"


def sleep_server(service_s: float) -> None:
    served: list[int] = []
    lock = threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)

    def conn_loop(c: socket.socket) -> None:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                if head.startswith(b"GET /__stats"):
                    with lock:
                        vals = sorted(served)
                        served.clear()
                    n = len(vals)
                    body = json.dumps(
                        {
                            "count": n,
                            "mean_ns": sum(vals) // n if n else 0,
                            "p50_ns": vals[(n + 1) // 2 - 1] if n else 0,
                            "p99_ns": vals[max(0, -(-99 * n // 100) - 1)] if n else 0,
                        }
                    ).encode()
                    c.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    continue
                t = time.perf_counter_ns()
                time.sleep(service_s)
                dt = time.perf_counter_ns() - t
                with lock:
                    served.append(dt)
                c.sendall(RESP)
        except OSError:
            pass
        finally:
            c.close()

    def accept_loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=conn_loop, args=(c,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    print(f"PORT {srv.getsockname()[1]}", flush=True)
    sys.stdin.read()


class _Fast(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4 :]
            self.t.write(RESP * n)  # type: ignore[attr-defined]


async def _fast_main() -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(_Fast, "127.0.0.1", 0, backlog=1024)
    print(f"PORT {srv.sockets[0].getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    kind = sys.argv[1]
    if kind == "sleep":
        sleep_server(float(sys.argv[2]) if len(sys.argv) > 2 else 0.010)
    elif kind == "fast":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(_fast_main())
    else:
        raise SystemExit(f"unknown target {kind!r}")


if __name__ == "__main__":
    main()
