"""The slow upstream service (contract section 3), standard library only.

``GET /delay?seconds=S`` sleeps S seconds (0..10) without blocking other requests, then
answers ``{"delay": S, "served_at": <unix time>}``; ``GET /health`` answers at once.
HTTP/1.1 keep-alive, so apps can reuse their connections to it.

    python -m shared_fixtures upstream --port 0     # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from shared_fixtures.net import LOOPBACK, free_port, port_open
from shared_fixtures.processes import ManagedProcess, ProcessError

MAX_DELAY = 10.0
MAX_HEADER_BYTES = 16_384


def parse_delay(query: str) -> float | None:
    """The ``seconds`` parameter as a float in 0..MAX_DELAY, or None when invalid."""
    values = parse_qs(query, keep_blank_values=True).get("seconds", ["0"])
    try:
        seconds = float(values[-1])
    except ValueError:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DELAY:
        return None
    return seconds


def route(method: str, target: str) -> tuple[int, dict[str, object]] | float:
    """A response (status, body), or the delay to sleep before answering /delay."""
    url = urlsplit(target)
    if method != "GET":
        return 405, {"detail": "Method not allowed."}
    if url.path == "/health":
        return 200, {"status": "ok"}
    if url.path != "/delay":
        return 404, {"detail": "Not found."}
    seconds = parse_delay(url.query)
    if seconds is None:
        return 422, {"detail": f"seconds must be a number in 0..{MAX_DELAY:g}"}
    return seconds


def _response(status: int, body: dict[str, object], keep_alive: bool) -> bytes:
    payload = json.dumps(body).encode()
    reason = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        422: "Unprocessable Entity",
    }[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + payload


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                writer.write(_response(400, {"detail": "Bad request."}, keep_alive=False))
                return
            method, target, version = parts
            keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)  # bodies are not used; drain them
            outcome = route(method, target)
            if isinstance(outcome, float):
                await asyncio.sleep(outcome)
                outcome = 200, {"delay": outcome, "served_at": time.time()}
            writer.write(_response(*outcome, keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, ValueError):
        return
    finally:
        writer.close()


async def serve(host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    return await asyncio.start_server(handle, host, port, limit=MAX_HEADER_BYTES, backlog=1024)


async def serve_forever(host: str, port: int) -> None:
    server = await serve(host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def start_upstream(log_dir: Path, timeout: float = 10.0) -> tuple[ManagedProcess, str]:
    """Run the service in its own process on a free loopback port; returns (process, URL)."""
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "shared_fixtures", "upstream", "--port", str(port)],
        name="upstream",
        log_path=log_dir / "upstream.log",
    )
    try:
        process.wait_until(lambda: port_open(port), timeout, "listening")
    except ProcessError:
        process.stop()
        raise
    return process, f"http://{LOOPBACK}:{port}"
