"""stackbench/callgrind.py: a dump's totals read, and real counts of a tiny stdlib server run
under callgrind (the work of a path seen, a count repeated, a bad answer or a server not under
callgrind refused)."""

from __future__ import annotations

import http.client
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_fixtures.processes import ManagedProcess
from stackbench import callgrind
from stackbench.callgrind import CallgrindError

HEADER = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 42\npart: 1\n\n"
BODY = "\nfl=(1) main.c\nfn=(1) main\n16 3\n"

# /light answers at once; /heavy does the same plus a fixed amount of pure-Python work;
# /broken answers 500. HTTP/1.1, so one connection carries every request of a count.
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/light":
            self.answer(200, b"light")
        elif self.path == "/heavy":
            self.answer(200, str(sum(range(20000))).encode())
        else:
            self.answer(500, b"broken")

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
# Python 3.11+ specializes a code path only after it has run a few times: 20 uncounted
# requests leave the counted ones in the steady state (5 left the first count ~2 % high).
WARMUP = 20
REQUESTS = 20


def _dump(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callgrind.42.1"
    path.write_text(text)
    return path


def test_totals_reads_the_totals_line(tmp_path: Path) -> None:
    dump = _dump(tmp_path, HEADER + "events: Ir\nsummary: 1234\n" + BODY + "totals: 1234\n")
    assert callgrind.totals(dump) == 1234


def test_totals_prefers_totals_over_a_zero_summary(tmp_path: Path) -> None:
    # callgrind 3.19 writes "summary: 0" at the head of a dump toggled by --instr
    dump = _dump(tmp_path, HEADER + "events: Ir\nsummary: 0\n" + BODY + "totals: 98765\n")
    assert callgrind.totals(dump) == 98765


def test_totals_falls_back_on_the_summary(tmp_path: Path) -> None:
    dump = _dump(tmp_path, HEADER + "events: Ir\nsummary: 555\n" + BODY)
    assert callgrind.totals(dump) == 555


def test_a_dump_without_totals_is_refused(tmp_path: Path) -> None:
    dump = _dump(tmp_path, HEADER + "events: Ir\n" + BODY + "totals: not-a-number\n")
    with pytest.raises(CallgrindError, match=r"callgrind\.42\.1: no totals line"):
        callgrind.totals(dump)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/light")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _start(tmp_path: Path, name: str, wrap: list[str]) -> tuple[ManagedProcess, str]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = _free_port()
    process = ManagedProcess(
        [*wrap, sys.executable, str(script), str(port)],
        name=name,
        log_path=tmp_path / f"{name}.log",
    )
    try:
        process.wait_until(lambda: _answers(port), timeout=120, what="answering")
    except BaseException:
        process.stop()
        raise
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def counted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """The server under callgrind, instrumentation off, for the module's counts."""
    if callgrind.missing() is not None:
        pytest.skip(str(callgrind.missing()))
    tmp_path = tmp_path_factory.mktemp("callgrind")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    process, base_url = _start(tmp_path, "counted", callgrind.wrap(dumps))
    with process:  # stopped whatever happens
        yield process.pid, base_url


@pytest.mark.slow
def test_a_count_sees_the_work_a_path_does(counted_server: tuple[int, str]) -> None:
    pid, base_url = counted_server
    heavy = callgrind.count(pid, base_url, "/heavy", warmup=WARMUP, requests=REQUESTS)
    light = callgrind.count(pid, base_url, "/light", warmup=WARMUP, requests=REQUESTS)
    assert (heavy.path, heavy.requests) == ("/heavy", REQUESTS)
    assert light.per_request > 0
    # sum(range(20000)) on top of the same request: clearly more, whatever the machine does
    assert heavy.per_request > 1.5 * light.per_request, (heavy, light)
    assert heavy.processes == light.processes == 1  # the server forks no worker


@pytest.mark.slow
def test_two_counts_of_a_path_agree(counted_server: tuple[int, str]) -> None:
    pid, base_url = counted_server
    first = callgrind.count(pid, base_url, "/light", warmup=WARMUP, requests=REQUESTS)
    second = callgrind.count(pid, base_url, "/light", warmup=WARMUP, requests=REQUESTS)
    # a determinism property of the count (same code, same hash seed), not a speed
    assert abs(first.per_request - second.per_request) <= 0.02 * first.per_request, (
        first,
        second,
    )


@pytest.mark.slow
def test_a_path_that_does_not_answer_200_is_refused(counted_server: tuple[int, str]) -> None:
    pid, base_url = counted_server
    before = callgrind.count(pid, base_url, "/light", warmup=WARMUP, requests=REQUESTS)
    # no warm-up: the 500 comes while the counters are on
    with pytest.raises(CallgrindError, match="GET /broken answered 500, not 200"):
        callgrind.count(pid, base_url, "/broken", warmup=0, requests=2)
    # the refused window is not carried into the next count
    after = callgrind.count(pid, base_url, "/light", warmup=WARMUP, requests=REQUESTS)
    assert abs(after.per_request - before.per_request) <= 0.02 * before.per_request


@pytest.mark.slow
def test_a_server_not_under_callgrind_is_refused(tmp_path: Path) -> None:
    if callgrind.missing() is not None:
        pytest.skip(str(callgrind.missing()))
    process, base_url = _start(tmp_path, "plain", [])
    with process, pytest.raises(CallgrindError, match="does not run under callgrind"):
        callgrind.count(process.pid, base_url, "/light", warmup=1, requests=2)


@pytest.mark.slow
def test_callgrind_control_not_reaching_a_process_is_an_error(tmp_path: Path) -> None:
    # callgrind_control exits 0 even when it finds no callgrind at the pid: a switch that
    # never happened (counters not zeroed, not switched on) must not pass for one that did
    if callgrind.missing() is not None:
        pytest.skip(str(callgrind.missing()))
    process, _ = _start(tmp_path, "plain", [])
    with (
        process,
        pytest.raises(CallgrindError, match=rf"--zero {process.pid}: Error: .* not detected"),
    ):
        callgrind._control([process.pid], "--zero")


@pytest.mark.slow
def test_a_server_that_dies_on_its_dump_is_an_error(tmp_path: Path) -> None:
    """Planted: the dumps' directory removed under a running server. callgrind cannot write
    the dump and ends the server; the count says the server is gone, not what it was."""
    if callgrind.missing() is not None:
        pytest.skip(str(callgrind.missing()))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    process, base_url = _start(tmp_path, "undumped", callgrind.wrap(dumps))
    with process:
        shutil.rmtree(dumps)
        with pytest.raises(CallgrindError, match=rf"server process {process.pid} is gone"):
            callgrind.count(process.pid, base_url, "/light", warmup=1, requests=2)


@pytest.mark.slow
def test_dumps_not_where_they_are_looked_for_are_an_error(tmp_path: Path) -> None:
    """Planted: a relative --callgrind-out-file, so the server writes its dumps in its own
    working directory, not where the count looks: no count from missing dumps."""
    if callgrind.missing() is not None:
        pytest.skip(str(callgrind.missing()))
    elsewhere = tmp_path / "server-cwd"
    elsewhere.mkdir()
    wrap = [a for a in callgrind.wrap(tmp_path) if not a.startswith("--callgrind-out-file")]
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = _free_port()
    process = ManagedProcess(
        [*wrap, "--callgrind-out-file=callgrind.%p", sys.executable, str(script), str(port)],
        name="relative",
        log_path=tmp_path / "relative.log",
        cwd=elsewhere,
    )
    with process:
        process.wait_until(lambda: _answers(port), timeout=120, what="answering")
        with pytest.raises(CallgrindError, match="1 server processes, 0 callgrind dumps"):
            callgrind.count(process.pid, f"http://127.0.0.1:{port}", "/light", 1, 2)
    assert any(elsewhere.glob("callgrind.*.1"))  # the dump was written, where not looked for
