"""``serve``'s read-only stats endpoint: what a bench on another host needs from this one.

    GET /info          the served pair as a result document records it (command, settings,
                       interpreter, database, seed, this machine)
    GET /stats         a reading now and the server's state; ?since=SEQ adds the window from
                       reading SEQ to now (CPU, peaks, exited server processes)
    GET /statements    pg_stat_statements of the benchmark database: calls and rows per
                       statement, to count on the serving side what the clients sent

Every other method is 405 (HEAD included: its answer without a body), any malformed request
a JSON 4xx, and a connection idle for IDLE_TIMEOUT seconds is closed; nothing here starts,
stops or changes anything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from stackbench.watch import ServerWatch

STATEMENTS_QUERY = (
    "SELECT s.query, sum(s.calls)::bigint, sum(s.rows)::bigint FROM pg_stat_statements s "
    "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
    "GROUP BY s.query ORDER BY 2 DESC LIMIT 500"
)


# A reading's seq counts readings taken four times a second: 18 digits outlast any serve,
# and a longer number (say, 4,301 digits: more than int() reads) names no reading.
MAX_SEQ_DIGITS = 18
IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing before it is closed


class StatsServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that never reads cannot hold the exit

    def __init__(
        self,
        address: tuple[str, int],
        watch: ServerWatch,
        info: dict[str, Any],
        db_url: str,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        super().__init__(address, StatsHandler)
        self.watch, self.info, self.db_url = watch, info, db_url
        self.idle_timeout = idle_timeout


class StatsHandler(BaseHTTPRequestHandler):
    server: StatsServer
    protocol_version = "HTTP/1.1"
    # The version of an answer to a request whose own version could not be read: http.server's
    # default, HTTP/0.9, would send the error's body bare, which no HTTP/1 client can read.
    default_request_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # a silent client is let go

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> with an HTML 501: here every
        # method but GET is the read-only refusal (HEAD, OPTIONS, and tokens no one uses).
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/info":
            self._send(200, self.server.info)
        elif url.path == "/stats":
            self._stats(parse_qs(url.query, keep_blank_values=True).get("since", []))
        elif url.path == "/statements":
            self._statements()
        else:
            self._send(404, {"error": f"no {url.path}: try /info, /stats or /statements"})

    def _stats(self, since: list[str]) -> None:
        if since and not (len(since) == 1 and since[0].isascii() and since[0].isdigit()):
            self._send(400, {"error": "since must be one reading's seq (an integer ≥ 0)"})
            return
        digits = (since[0].lstrip("0") or "0") if since else None
        if digits is not None and len(digits) > MAX_SEQ_DIGITS:
            self._send(410, {"error": f"no reading has a seq of {len(digits)} digits"})
            return
        try:
            self._send(200, self.server.watch.stats(int(digits) if digits else None))
        except KeyError as exc:
            self._send(410, {"error": str(exc.args[0])})

    def _statements(self) -> None:
        try:
            with psycopg.connect(self.server.db_url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute(STATEMENTS_QUERY).fetchall()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unavailable"
            self._send(503, {"error": f"pg_stat_statements: {reason}"})
            return
        statements = [{"query": q, "calls": int(c), "rows": int(r)} for q, c, r in rows]
        self._send(200, {"statements": statements})

    def _refuse(self) -> None:
        self._send(405, {"error": "read-only: GET only"}, allow="GET")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or header, a line too
        long, too many headers) as JSON, like every other answer here, on a closed
        connection (what follows a request it could not read is not a request)."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("error",))[0]
        self._send(code, {"error": reason})

    def _has_body(self) -> bool:
        """The request declares a body, which nothing here reads (no int(): any length)."""
        headers = getattr(self, "headers", None)
        if headers is None:  # refused before its headers were read
            return False
        length = headers.get("Content-Length", "").strip().lstrip("0")
        return bool(length) or "Transfer-Encoding" in headers

    def _send(self, status: int, document: dict[str, Any], allow: str | None = None) -> None:
        body = json.dumps(document, indent=1).encode()
        if self._has_body():  # unread, it would be taken for the next request: close
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a bench polls every window: the terminal is for serve's own lines


@contextmanager
def stats_endpoint(
    address: tuple[str, int],
    watch: ServerWatch,
    info: dict[str, Any],
    db_url: str,
    idle_timeout: float = IDLE_TIMEOUT,
) -> Iterator[StatsServer]:
    """Answer on ``address`` in a thread until the block ends."""
    server = StatsServer(address, watch, info, db_url, idle_timeout)
    thread = threading.Thread(target=server.serve_forever, name="stats-endpoint", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
