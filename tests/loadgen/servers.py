"""Small real HTTP/1.1 servers for the loadgen tests (stdlib asyncio only).

Run as a subprocess: ``python servers.py`` prints ``PORT <n>`` once listening on
127.0.0.1 (``--host ADDRESS`` to listen elsewhere, e.g. a network namespace's own
address) and serves until killed (or stdin closes).  Routes:

* ``/fixed`` — 10 ms service time (``?ms=N`` to change), body ``ok``.
* ``/fast`` — immediate ``ok``.
* ``/chunked`` — a chunked body of several chunks written separately.
* ``/close`` — ``Connection: close``, then the server closes the connection.
* ``/eof`` — no Content-Length, body delimited by closing the connection.
* ``/reset`` — reads the request, then resets the connection (RST).
* ``/garbage`` — answers bytes that are not HTTP.
* ``/hang`` — never answers.
* ``/status/NNN`` — an empty response with that status.
* ``/raw/NAME`` — the canned, often malformed, response ``RAW[NAME]``: its pieces are
  written as separate reads, then the connection is kept, closed or reset.
* ``/__stall?after=S&for=D`` — arm a ONE-OFF stall: the first request arriving S
  seconds from now blocks the whole server (``time.sleep``) for D seconds.
* ``/__stats`` — JSON counters (requests served).
* ``/__targets`` — JSON: how many times each request target (path and query) was served,
  ``/__`` routes aside.
* ``/echo`` — JSON of the request: ``method``, ``target``, ``headers`` (names lower-cased)
  and ``body`` (text).
* A fake of the contract endpoints (``/json``, ``/plaintext``, ``/health``, ``/db``,
  ``/queries``, ``/updates``, ``/fortunes``, ``/api/colleges[/{id}]``,
  ``/api/troupes[/{id}]``, ``/slow/*``); under the prefix ``/wrong`` they answer with
  wrong bodies (same status).
* A Django-like admin login that enforces CSRF: ``GET /admin/login/`` sets the
  ``csrftoken`` cookie; ``POST /admin/login/`` requires the cookie, an equal
  ``csrfmiddlewaretoken`` form field and the credentials ``admin``/``secret``, then
  302s to ``/admin/`` with a ``sessionid`` cookie; otherwise 403.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import struct
import sys
import time
from urllib.parse import parse_qs, urlsplit

ADMIN_USER = "admin"
ADMIN_PASSWORD = "secret"

STATE = {"requests": 0, "stall_at": None, "stall_for": 0.0, "stalled": 0}
TARGETS: dict[str, int] = {}  # request target -> times served (/__targets)

FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
    (0, "Additional fortune added at request time."),
]


def _resp(
    status: int,
    body: bytes = b"",
    ctype: str = "text/plain",
    extra: list[tuple[str, str]] | None = None,
    close: bool = False,
) -> bytes:
    reason = {200: "OK", 302: "Found", 403: "Forbidden", 404: "Not Found"}.get(status, "X")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        "Date: Thu, 01 Jan 2026 00:00:00 GMT",
    ]
    for k, v in extra or []:
        lines.append(f"{k}: {v}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# The response head limit loadgen enforces (loadgen.protocol.MAX_HEAD; the tests check
# that the two agree).  This file imports nothing from loadgen: it is a separate server.
HEAD_LIMIT = 80 * 1024
_OK2 = b"Content-Length: 2\r\n\r\nok"


def _head_of(size: int, split: int = 0) -> list[bytes]:
    """A 200 response whose head is exactly ``size`` bytes (a padding header), in one
    piece or split ``split`` bytes before the end of the head (inside the blank line)."""
    base = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: \r\n\r\n"
    head = base.replace(b"X-Pad: ", b"X-Pad: " + b"a" * (size - len(base)))
    assert len(head) == size
    whole = head + b"ok"
    if not split:
        return [whole]
    cut = size - split
    return [whole[:cut], whole[cut:]]


# name -> (pieces written as separate reads, then "keep" | "close" | "reset")
RAW: dict[str, tuple[list[bytes], str]] = {
    # head size limit: exactly at it, one byte over (whole and split), far over
    "head_at_limit": (_head_of(HEAD_LIMIT), "keep"),
    "head_at_limit_split": (_head_of(HEAD_LIMIT, split=3), "keep"),
    "head_over_limit": (_head_of(HEAD_LIMIT + 1), "keep"),
    "head_over_limit_split": (_head_of(HEAD_LIMIT + 1, split=2), "keep"),
    "head_1mb": (_head_of(1024 * 1024), "keep"),
    # status line
    "status_2000": ([b"HTTP/1.1 2000 OK\r\n" + _OK2], "keep"),
    "status_no_reason": ([b"HTTP/1.1 200\r\n" + _OK2], "keep"),
    "status_below_100": ([b"HTTP/1.1 099 X\r\n" + _OK2], "keep"),
    "version_1_2": ([b"HTTP/1.2 200 OK\r\n" + _OK2], "keep"),
    "version_2_0": ([b"HTTP/2.0 200 OK\r\n" + _OK2], "keep"),
    "lowercase_http": ([b"http/1.1 200 OK\r\n" + _OK2], "keep"),
    "bare_lf": ([b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"], "keep"),
    "leading_crlf": ([b"\r\nHTTP/1.1 200 OK\r\n" + _OK2], "keep"),
    "split_status_line": ([b"HTT", b"P/1.1 2", b"00 OK\r", b"\n" + _OK2], "keep"),
    # header lines
    "nul_in_header": ([b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n" + _OK2], "keep"),
    "obs_fold": ([b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n" + _OK2], "keep"),
    "space_before_colon": ([b"HTTP/1.1 200 OK\r\nX : a\r\n" + _OK2], "keep"),
    "value_whitespace": ([b"HTTP/1.1 200 OK\r\nX:\t a b \t\r\n" + _OK2], "keep"),
    # Content-Length
    "cl_duplicate_equal": ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + _OK2], "keep"),
    "cl_and_te": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + _OK2], "keep"),
    "cl_negative": ([b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"], "keep"),
    "cl_overflow": ([b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"], "keep"),
    "cl_body_longer": ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello"], "keep"),
    "cl_body_shorter_close": ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"], "close"),
    "cl_body_shorter_reset": ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"], "reset"),
    # chunked
    "chunked_split": (
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r",
            b"\nhel",
            b"lo\r\n0\r\n\r\n",
        ],
        "keep",
    ),
    "chunked_trailers": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0\r\nT: v\r\n\r\n"],
        "keep",
    ),
    "chunk_size_not_hex": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        "keep",
    ),
    "chunk_size_space": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n"],
        "keep",
    ),
    "chunk_size_overflow": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nok"],
        "keep",
    ),
    "chunk_no_crlf": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n"],
        "keep",
    ),
    "chunked_cut_close": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe"],
        "close",
    ),
    # bodies delimited by EOF, and what is not
    "eof_split_head": (
        [b"HTTP/1.1 200 OK\r\nContent-", b"Type: text/plain\r\n\r\n", b"until eof"],
        "close",
    ),
    "eof_te_not_chunked": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzzz"],
        "close",
    ),
    "http10_eof": ([b"HTTP/1.0 200 OK\r\n\r\nbody"], "close"),
    "head_cut_close": ([b"HTTP/1.1 200 OK\r\nContent-"], "close"),
    "nothing_close": ([], "close"),
    # no body whatever Content-Length says: 1xx, 204, 304
    "no_body_204": ([b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"], "keep"),
    "no_body_304": ([b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"], "keep"),
    "continue_100": ([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + _OK2], "keep"),
    "early_hints_103": (
        [b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\n" + _OK2],
        "keep",
    ),
    "switching_101": ([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nnot http"], "keep"),
    # keep-alive rules
    "http10_keepalive": ([b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n" + _OK2], "keep"),
    "http10_default_close": ([b"HTTP/1.0 200 OK\r\n" + _OK2], "keep"),
    "close_and_keepalive": (
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\n" + _OK2],
        "keep",
    ),
}


async def _raw(writer: asyncio.StreamWriter, name: str) -> bool:
    """Serve RAW[name]; False if the connection is done."""
    pieces, end = RAW[name]
    for i, piece in enumerate(pieces):
        if i:
            await asyncio.sleep(0.005)  # let the previous piece arrive as its own read
        writer.write(piece)
        await writer.drain()
    if end == "keep":
        return True
    if end == "reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()
    return False


def _json(obj: object, status: int = 200, extra: list[tuple[str, str]] | None = None) -> bytes:
    return _resp(status, json.dumps(obj).encode(), "application/json", extra)


def _college(i: int) -> dict:
    return {
        "id": i,
        "name": f"College {i}",
        "location": {"id": i, "line_1": "a", "line_2": "b", "line_3": "c", "zipcode": "1"},
        "troupe": {"id": i, "name": f"T{i}"},
    }


def _troupe(i: int) -> dict:
    return {
        "id": i,
        "name": f"T{i}",
        "members": [
            {"id": k, "stage_name": f"S{k}", "kind": "clown", "concentration": "x"}
            for k in range(6)
        ],
    }


def contract(path: str, qs: dict[str, list[str]], wrong: bool) -> bytes | None:
    def q(name: str, default: str) -> str:
        return qs.get(name, [default])[0]

    if path == "/json":
        return _json({"message": "Hello, World?" if wrong else "Hello, World!"})
    if path == "/plaintext":
        return _resp(200, b"Hello, World?" if wrong else b"Hello, World!")
    if path == "/health":
        return _json({"status": "bad" if wrong else "ok"})
    if path == "/db":
        return _json({"id": 5, "randomnumber": 7} if wrong else {"id": 5, "randomNumber": 7})
    if path in ("/queries", "/updates"):
        try:
            n = min(max(int(q("queries", "1")), 1), 500)
        except ValueError:
            n = 1
        if wrong:
            n = max(n - 1, 0)
        return _json([{"id": k + 1, "randomNumber": 3} for k in range(n)])
    if path == "/fortunes":
        rows = "".join(
            f"<tr><td>{i}</td><td>{m if wrong else _esc(m)}</td></tr>" for i, m in FORTUNES
        )
        return _resp(200, f"<table>{rows}</table>".encode(), "text/html; charset=utf-8")
    for kind, make in (("colleges", _college), ("troupes", _troupe)):
        base = f"/api/{kind}"
        if path == base:
            size = int(q("page_size", "20"))
            results = [make(i) for i in range(1, size + 1)]
            if wrong:
                results = [{"id": r["id"]} for r in results]
            return _json({"count": 1000, "next": None, "previous": None, "results": results})
        if path.startswith(base + "/"):
            try:
                i = int(path[len(base) + 1 :])
            except ValueError:
                return _json({"detail": "Not found."}, 404)
            obj = make(i)
            if wrong:
                del obj["name"]
            return _json(obj)
    if path.startswith("/slow/"):
        s = float(q("seconds", "1"))
        up = {"delay": s, "served_at": time.time()}
        if path == "/slow/db":
            return _json({"slept": s + (1 if wrong else 0)})
        if path == "/slow/http":
            return _json({"upstream": None if wrong else up})
        if path == "/slow/both":
            return _json({"upstream": up, "slept": s + (1 if wrong else 0)})
        if path == "/slow/fanout":
            n = int(q("n", "10"))
            return _json({"results": [up] * (n - 1 if wrong else n)})
    return None


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k:
            out[k] = v
    return out


def admin(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes | None:
    if path == "/admin/login/" and method == "GET":
        token = _cookies(headers).get("csrftoken") or secrets.token_hex(16)
        page = (
            '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
            f'value="{token}"></form>'
        ).encode()
        return _resp(200, page, "text/html", [("Set-Cookie", f"csrftoken={token}; Path=/")])
    if path == "/admin/login/" and method == "POST":
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        cookie = _cookies(headers).get("csrftoken")
        if not cookie or form.get("csrfmiddlewaretoken") != cookie:
            return _resp(403, b"CSRF verification failed.")
        if form.get("username") != ADMIN_USER or form.get("password") != ADMIN_PASSWORD:
            return _resp(200, b"wrong credentials")  # Django re-renders the form
        return _resp(
            302,
            b"",
            extra=[("Location", "/admin/"), ("Set-Cookie", "sessionid=s3ss10n; Path=/")],
        )
    return None


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = b""
            n = int(headers.get("content-length", "0") or 0)
            if n:
                body = await reader.readexactly(n)
            STATE["requests"] += 1
            _maybe_stall()
            u = urlsplit(target)
            path, qs = u.path, parse_qs(u.query)
            if not path.startswith("/__"):
                TARGETS[target] = TARGETS.get(target, 0) + 1
            keep = headers.get("connection", "").lower() != "close"
            if path == "/fixed":
                await asyncio.sleep(float(qs.get("ms", ["10"])[0]) / 1000)
                writer.write(_resp(200, b"ok"))
            elif path == "/fast" or path == "/":
                out = _resp(200, b"ok")
                if method == "HEAD":  # same headers, no body
                    out = out.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                writer.write(out)
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for part in (b"hello ", b"chunked ", b"world"):
                    writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.001)
                writer.write(b"0\r\n\r\n")
            elif path == "/close":
                writer.write(_resp(200, b"bye", close=True))
                await writer.drain()
                writer.close()
                return
            elif path == "/eof":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil eof")
                await writer.drain()
                writer.close()
                return
            elif path == "/reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            elif path == "/garbage":
                writer.write(b"THIS IS NOT HTTP\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.close()
                return
            elif path == "/hang":
                await asyncio.sleep(3600)
            elif path.startswith("/raw/"):
                if not await _raw(writer, path[5:]):
                    return
            elif path.startswith("/status/"):
                writer.write(_resp(int(path[8:]), b""))
            elif path == "/__stall":
                after = float(qs.get("after", ["0"])[0])
                STATE["stall_at"] = time.monotonic() + after
                STATE["stall_for"] = float(qs.get("for", ["1"])[0])
                writer.write(_resp(200, b"armed"))
            elif path == "/__targets":
                writer.write(_json(TARGETS))
            elif path == "/echo":
                echoed = {"method": method, "target": target, "headers": headers}
                writer.write(_json({**echoed, "body": body.decode("utf-8", "replace")}))
            elif path == "/__stats":
                writer.write(_json({k: STATE[k] for k in ("requests", "stalled")}))
            else:
                wrong = path.startswith("/wrong/")
                p = path[len("/wrong") :] if wrong else path
                out = contract(p, qs, wrong) or admin(method, p, headers, body)
                writer.write(out if out is not None else _json({"detail": "Not found."}, 404))
            if not keep:
                await writer.drain()
                writer.close()
                return
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if not writer.is_closing():
            writer.close()


def _maybe_stall() -> None:
    at = STATE["stall_at"]
    if at is not None and time.monotonic() >= at:
        STATE["stall_at"] = None
        STATE["stalled"] += 1
        time.sleep(STATE["stall_for"])  # block the whole server: a real stall


async def main(host: str = "127.0.0.1") -> None:
    server = await asyncio.start_server(handle, host, 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    # exit when the parent closes our stdin (never outlive the test session)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="HTTP/1.1 test servers for loadgen's tests")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host))
