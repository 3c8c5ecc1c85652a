"""A proxy in front (``bench --proxy nginx``, stackbench/proxy.py): the configuration it
writes (checked by nginx itself), nginx in front of a planted server (ready through it, its
workers unprivileged when root, found by the leak check, its CPU sampled and split out per
request), bad input refused before anything starts, and one real bench through it for each
upstream (slow)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from shared_fixtures.db import Database
from shared_fixtures.processes import ManagedProcess, ProcessError, processes_owned_by
from stackbench import cli, proxy, servers
from stackbench.apps import App, get_app
from stackbench.certificates import certificates
from stackbench.judge import judge
from stackbench.matrix import ProtocolError
from stackbench.measure import LocalSubject
from stackbench.options import DEFAULTS, OptionError
from stackbench.options import check_protocol as check_load_protocol
from stackbench.protocol_check import check as check_protocol
from stackbench.sampler import Sampler
from stackbench.server_process import Served
from tests.harness.runs import ROOT, bench_process, only_run_dir, result_documents
from tests.harness.serving import bench_target, serving
from tests.harness.test_judge import _repeat

NO_NGINX = shutil.which("nginx") is None
needs_nginx = pytest.mark.skipif(NO_NGINX, reason=f"nginx is not installed ({proxy.INSTALL})")
NOWHERE = "postgresql://127.0.0.1:1/none"  # the sampler's connection count: refused at once


# ---------------------------------------------------------------- the configuration


def _layout(tmp_path: Path) -> proxy.Layout:
    return proxy.Layout(tmp_path / "prefix", tmp_path / "runtime")


def test_the_configuration_is_production_shaped(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    text = proxy.nginx_conf(
        title="t", port=8123, upstream="unix:/tmp/x/app.sock", layout=layout, workers=2
    )
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    for line in (
        "daemon off;",
        "worker_processes 2;",
        "listen 127.0.0.1:8123;",  # loopback only
        "server unix:/tmp/x/app.sock;",
        "keepalive 64;",  # HTTP/1.1 keep-alive to the app server ...
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',  # ... which a "Connection: close" would end
        "proxy_request_buffering on;",  # whole requests before the app sees them
        "proxy_buffering on;",
        "client_header_timeout 60s;",
        f"pid {layout.pid};",
        f"error_log {layout.error_log} warn;",
        f"client_body_temp_path {layout.runtime / 'client_body'};",
        f"proxy_temp_path {layout.runtime / 'proxy'};",
    ):
        assert line in lines, line
    assert not any(line.startswith("user ") for line in lines)  # not root: nginx runs as us
    rooted = proxy.nginx_conf(
        title="t", port=1, upstream="127.0.0.1:2", layout=layout, user=("nobody", "nogroup")
    )
    assert "user nobody nogroup;" in rooted.splitlines()


def test_tls_and_http2_slot_in_as_client_protocols(tmp_path: Path) -> None:
    tls = proxy.Tls(tmp_path / "cert.pem", tmp_path / "key.pem")
    assert proxy.listen_lines(443, "h1", None) == ["listen 127.0.0.1:443;"]
    assert proxy.listen_lines(443, "h1-tls", tls)[0] == "listen 127.0.0.1:443 ssl;"
    h2 = proxy.listen_lines(443, "h2", tls)
    assert h2[0] == "listen 127.0.0.1:443 ssl http2;"  # nginx 1.22: not `http2 on;`
    assert f"ssl_certificate {tls.certificate};" in h2
    with pytest.raises(ValueError, match="needs a certificate"):
        proxy.listen_lines(443, "h2", None)
    with pytest.raises(ValueError, match="unknown client protocol"):
        proxy.listen_lines(443, "h3", tls)


def _nginx_accepts(text: str, layout: proxy.Layout) -> subprocess.CompletedProcess[str]:
    layout.prefix.mkdir(parents=True, exist_ok=True)
    layout.runtime.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(text)
    return subprocess.run(
        ["nginx", "-t", "-p", str(layout.prefix), "-c", str(layout.config), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_nginx
def test_nginx_itself_accepts_each_client_protocol(tmp_path: Path) -> None:
    """``nginx -t`` on the configuration written for h1, h1-tls and h2 (a throwaway
    self-signed certificate for the TLS ones), and refuses a planted broken one."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS configurations")
    tls = proxy.Tls(tmp_path / "cert.pem", tmp_path / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(tls.key), "-out", str(tls.certificate)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    user = ("nobody", "nogroup") if os.geteuid() == 0 else None
    for protocol in ("h1", "h1-tls", "h2"):
        layout = _layout(tmp_path / protocol)
        text = proxy.nginx_conf(
            title=protocol,
            port=8443,
            upstream="127.0.0.1:9",
            layout=layout,
            client_protocol=protocol,
            tls=tls if protocol != "h1" else None,
            user=user,
        )
        checked = _nginx_accepts(text, layout)
        assert checked.returncode == 0, checked.stderr
    broken = _nginx_accepts(text.replace("proxy_buffering on;", "proxy_buffering maybe;"), layout)
    assert broken.returncode != 0 and "proxy_buffering" in broken.stderr


# ---------------------------------------------------------------- in front of a planted server


class _Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class _App:
    id: str = "planted"
    health: str = "/health"


@contextlib.contextmanager
def planted_server() -> Iterator[Served]:
    """An HTTP server in this process that answers /health, as a Served (the process field
    is this process: nothing to stop)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield Served(_App(), servers.get_server("uvicorn"), url, [], {}, None)  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()


def _uid(pid: int) -> int:
    line = next(
        line
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    return int(line.split()[1])


@needs_nginx
def test_nginx_in_front_answers_runs_unprivileged_and_is_found_by_the_leak_check(
    tmp_path: Path,
) -> None:
    with planted_server() as served, proxy.runtime_dir() as runtime:
        layout = proxy.Layout(tmp_path / "proxy", runtime)
        with proxy.front(served, proxy.Spec(workers=2), layout) as proxied:
            with urllib.request.urlopen(proxied.base_url + "/health", timeout=5) as answer:
                assert answer.status == 200
            master = proxied.process.pid
            owned = {pid for pid, _ in processes_owned_by()}
            group = [
                int(p.name)
                for p in Path("/proc").iterdir()
                if p.name.isdigit() and _pgid(int(p.name)) == master
            ]
            workers = [pid for pid in group if pid != master]
            assert master in owned and len(workers) == 2 and set(workers) <= owned
            expected = 65534 if os.geteuid() == 0 else os.geteuid()  # nobody when root
            assert {_uid(pid) for pid in workers} == {expected}
            assert proxied.upstream_address == served.base_url.split("//")[1]
            assert layout.config.read_text().startswith("# nginx in front of planted @ uvicorn")
        assert not any(Path(f"/proc/{pid}").exists() for pid in group)
    assert not runtime.exists()  # its temporary files and sockets went with it
    assert "HTTP/1.1 200" in layout.access_log.read_text()  # the readiness probe, through it


@needs_nginx
@pytest.mark.parametrize(("protocol", "negotiated"), [("h1-tls", "http/1.1"), ("h2", "h2")])
def test_nginx_ends_tls_and_http2_toward_clients_with_the_runs_ca(
    tmp_path: Path, protocol: str, negotiated: str
) -> None:
    """``--proxy nginx --protocol h1-tls|h2``: nginx terminates TLS (and HTTP/2, by ALPN)
    with the run's certificate, ready through it over TLS, and the harness's own protocol
    check sees what the load would negotiate; the planted server behind it speaks plain
    HTTP/1.1."""
    with (
        planted_server() as served,
        proxy.runtime_dir() as runtime,
        certificates(tmp_path) as made,
    ):
        layout = proxy.Layout(tmp_path / "proxy", runtime)
        spec = proxy.Spec(client_protocol=protocol)
        with proxy.front(served, spec, layout, certificates=made) as proxied:
            assert proxied.base_url.startswith("https://127.0.0.1:")
            assert proxied.cafile == made.ca
            assert served.base_url.startswith("http://")  # behind it: cleartext HTTP/1.1
            spoken = check_protocol(proxied.base_url, protocol, proxied.cafile, "/health")
            assert not isinstance(spoken, str), spoken
            assert (spoken.protocol, spoken.status) == (negotiated, 200)
            assert spoken.tls_version in ("TLSv1.2", "TLSv1.3")
            assert f"ssl_certificate {made.cert};" in layout.config.read_text()
    # HTTP/2 from the client, HTTP/1.1 (the readiness probe's) beside it on the same port
    assert f"{'HTTP/2.0' if protocol == 'h2' else 'HTTP/1.1'} 200" in layout.access_log.read_text()


def test_a_tls_client_protocol_without_certificates_starts_nothing(tmp_path: Path) -> None:
    with (
        planted_server() as served,
        pytest.raises(ValueError, match="needs a certificate"),
        proxy.front(served, proxy.Spec(client_protocol="h2"), _layout(tmp_path)),
    ):
        pass  # pragma: no cover


def test_behind_a_proxy_the_server_speaks_http1_whatever_the_load_speaks() -> None:
    """The proxy ends --protocol: its Spec carries it, the server behind it speaks h1, and
    so any server may be benched over h2 through nginx (uvicorn has no HTTP/2 of its own);
    h2c is refused with a proxy (nginx 1.22's cleartext HTTP/2 port answers no HTTP/1.1)."""
    proxied = replace(DEFAULTS, proxy="nginx", protocol="h2")
    assert proxied.front is not None and proxied.front.client_protocol == "h2"
    assert proxied.server_protocol == "h1"
    assert replace(DEFAULTS, protocol="h2").server_protocol == "h2"
    check_load_protocol("h2", ["uvicorn"], proxied=True)
    with pytest.raises(ProtocolError, match="uvicorn does not speak h2"):
        check_load_protocol("h2", ["uvicorn"], proxied=False)
    with pytest.raises(OptionError, match="--protocol h2c with --proxy"):
        check_load_protocol("h2c", ["hypercorn"], proxied=True)


@needs_nginx  # --proxy nginx is checked to be there first
def test_h2c_through_a_proxy_is_refused_before_anything_starts(tmp_path: Path) -> None:
    _one_line(
        _bench(tmp_path, "--proxy", "nginx", "--protocol", "h2c"),
        "--protocol h2c with --proxy: nginx ends h1, h1-tls, h2 toward clients",
    )
    assert not (tmp_path / "out").exists()


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie holds nothing: its parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _gone(pids: set[int], within: float = 5.0) -> bool:
    """True once none of ``pids`` runs (a SIGKILLed process dies when next scheduled)."""
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _nginx_group(config: Path) -> set[int]:
    """The live nginx master started with ``config`` and its process group (its workers)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    masters = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if str(config).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                masters.add(pid)
    return {pid for pid in pids if (pid in masters or _pgid(pid) in masters) and _alive(pid)}


@contextlib.contextmanager
def _watching(config: Path) -> Iterator[set[int]]:
    """Every process of the nginx started with ``config``, seen while the block runs."""
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            seen.update(_nginx_group(config))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(timeout=5)


@needs_nginx
def test_nginx_that_cannot_listen_fails_in_one_error_and_leaves_nothing(tmp_path: Path) -> None:
    """Planted: nginx's port is taken. It exits, the error says why (nginx's own words),
    and neither a process nor its runtime directory is left."""
    config = tmp_path / "proxy" / "nginx.conf"
    with (
        socket.socket() as taken,
        planted_server() as served,
        _watching(config) as seen,
        pytest.raises(ProcessError) as caught,
        proxy.runtime_dir() as runtime,
    ):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        layout = proxy.Layout(config.parent, runtime)
        with proxy.front(served, proxy.Spec(), layout, port=taken.getsockname()[1]):
            pytest.fail("nginx answered on a port that was taken")
    first, *tail = str(caught.value).splitlines()
    assert first.startswith("nginx (in front of uvicorn) exited with code 1 before answering")
    assert any("Address already in use" in line for line in tail), tail
    assert seen  # it did start ...
    assert _gone(seen) and _nginx_group(config) == set()  # ... and nothing of it is left
    assert not runtime.exists() and proxy.runtime_dirs() == []


@needs_nginx
def test_nginx_never_ready_is_stopped_with_its_workers(tmp_path: Path) -> None:
    """Planted: the server behind nginx is gone (nginx answers 502). Readiness gives up
    after its timeout, says so with nginx's error log, and stops nginx's master and
    workers; its runtime directory goes too."""
    with planted_server() as gone:
        pass  # its port now refuses connections
    config = tmp_path / "proxy" / "nginx.conf"
    with (
        _watching(config) as seen,
        pytest.raises(ProcessError) as caught,
        proxy.runtime_dir() as runtime,
    ):
        layout = proxy.Layout(config.parent, runtime)
        with proxy.front(gone, proxy.Spec(workers=2), layout, ready_timeout=3):
            pytest.fail("nginx was ready in front of nothing")
    first, *tail = str(caught.value).splitlines()
    assert first.startswith("nginx (in front of uvicorn) not answering /health through it after 3")
    assert any("Connection refused" in line for line in tail), tail
    assert len(seen) == 3  # the master and its two workers were up ...
    assert _gone(seen)  # ... and none is now
    assert not runtime.exists() and proxy.runtime_dirs() == []


@needs_nginx
def test_a_killed_nginx_is_said_and_its_orphaned_workers_are_stopped(tmp_path: Path) -> None:
    """Planted: nginx's master is SIGKILLed mid-run. The run says nginx stopped (the
    subject's reason and log tail are nginx's), and leaving the block still stops the
    workers it left behind: they keep its process group."""
    with planted_server() as served, proxy.runtime_dir() as runtime:
        layout = proxy.Layout(tmp_path / "proxy", runtime)
        with proxy.front(served, proxy.Spec(workers=2), layout) as proxied:
            group = _nginx_group(layout.config)
            master = proxied.process.pid
            assert master in group and len(group) == 3
            os.kill(master, signal.SIGKILL)
            proxied.process.popen.wait(timeout=10)
            subject = LocalSubject(served, cast(Database, None), NOWHERE, proxied=proxied)
            assert subject.stopped() == "nginx exited with code -9 during the run"
            assert subject.log_tail() == proxied.log_tail()
        assert _gone(group)
    assert not runtime.exists() and proxy.runtime_dirs() == []


@needs_nginx
def test_the_proxys_cpu_is_sampled_apart_from_the_servers(tmp_path: Path) -> None:
    """The server's group is a process that does nothing; nginx's CPU for 400 requests is
    the proxy's figure, and a sampler without a proxy has none."""
    idle = ManagedProcess(["sleep", "60"], name="idle", log_path=tmp_path / "idle.log")
    with (
        idle,
        planted_server() as served,
        proxy.runtime_dir() as runtime,
        proxy.front(served, proxy.Spec(), proxy.Layout(tmp_path / "p", runtime)) as proxied,
    ):
        sampler = Sampler(idle.pid, NOWHERE, proxy_pgid=proxied.process.pid).start()
        direct = Sampler(idle.pid, NOWHERE).start()
        sampler.mark()
        direct.mark()
        for _ in range(400):
            with urllib.request.urlopen(proxied.base_url + "/health", timeout=5) as answer:
                answer.read()
        figures, without = sampler.stop(), direct.stop()
    assert figures.proxy_cpu_s is not None and figures.proxy_cpu_s > 0
    assert figures.proxy_cpu_read is not None
    assert figures.cpu_s is not None and figures.cpu_s < figures.proxy_cpu_s  # sleep's
    assert without.proxy_cpu_s is None and without.proxy_cpu_read is None


def test_cpu_per_request_names_the_proxy_only_when_there_is_one() -> None:
    proxied = _repeat(cpu_s=1.0)
    proxied["proxy"] = {"cpu_s": 0.25, "cpu_read": {"source": "cpu-clock", "resolution_s": 1e-9}}
    summary = judge([proxied], None)["summary"]
    assert summary is not None
    split = summary["cpu_us_per_request"]
    assert split is not None and split["proxy"] == 250.0 and split["server"] == 1000.0
    assert summary["proxy_cpu_s"] == 0.25
    plain = judge([_repeat(cpu_s=1.0)], None)["summary"]
    assert plain is not None and "proxy" not in (plain["cpu_us_per_request"] or {})
    assert "proxy_cpu_s" not in plain


# ---------------------------------------------------------------- bad input: one line, exit 2


def _bench(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", "bench", "--app", "gino_style",
         "--server", "uvicorn", "--output", str(tmp_path / "out"), *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_proxy_is_refused_before_anything_starts(tmp_path: Path) -> None:
    _one_line(_bench(tmp_path, "--proxy", "haproxy"), "unknown proxy 'haproxy'; proxies: nginx")
    assert not (tmp_path / "out").exists()


def test_a_missing_nginx_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """PATH without nginx (only the venv's tools, and no /usr/sbin)."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = _bench(tmp_path, "--proxy", "nginx", env=env)
    _one_line(done, f"nginx is not installed here, or not on PATH ({proxy.INSTALL})")
    assert not (tmp_path / "out").exists()
    serve = subprocess.run(
        [sys.executable, "-m", "stackbench", "serve", "--app", "gino_style", "--server",
         "uvicorn", "--proxy", "nginx"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    _one_line(serve, "nginx is not installed here")


def test_upstream_without_a_proxy_is_refused(tmp_path: Path) -> None:
    _one_line(_bench(tmp_path, "--upstream", "unix"), "--upstream says how a proxy reaches")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", [["--proxy", "nginx"], ["--upstream", "unix"]])
def test_a_proxy_beside_target_is_serves_option(
    given: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """bench --target measures what serve runs: the proxy in front is serve's to start."""
    argv = ["bench", "--target", "http://127.0.0.1:1", "--target-stats", "http://127.0.0.1:1"]
    assert cli.main([*argv, *given]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {given[0]} is serve's option: give it to serve on the serving host"
    ]


@needs_nginx
def test_a_server_that_cannot_bind_a_unix_socket_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planted server definition without a unix-socket bind: bench and serve refuse
    ``--upstream unix`` for it in one line (exit 2), and start nothing."""
    tcp_only = replace(
        servers.SERVERS["uvicorn"], listen=servers.Listen(("--port", "{port}"), None)
    )
    monkeypatch.setitem(servers.SERVERS, "uvicorn", tcp_only)
    owner = uuid.uuid4().hex
    monkeypatch.setenv("STACKBENCH_OWNER", owner)
    out = tmp_path / "out"
    argv = ["--app", "gino_style", "--server", "uvicorn", "--proxy", "nginx", "--upstream", "unix"]
    assert cli.main(["bench", *argv, "--output", str(out)]) == 2
    assert cli.main(["serve", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --upstream unix: uvicorn cannot listen on a unix socket"] * 2
    assert not out.exists() and processes_owned_by(owner) == []
    with pytest.raises(ValueError, match="cannot listen on a unix socket"):
        tcp_only.argv(_asgi_app(), 1, servers.Knobs(), 1, unix_socket=tmp_path / "s")


def _asgi_app() -> App:
    return get_app("gino_style")


def test_every_server_declares_how_it_binds_a_unix_socket() -> None:
    """Each registered server's unix-socket bind, as its command line says it."""
    app = _asgi_app()
    socket = Path("/tmp/s.sock")
    words = {
        "uvicorn": ["--uds", str(socket)],
        "hypercorn": ["-b", f"unix:{socket}"],
        "daphne": ["-u", str(socket)],
        "granian": ["--uds", str(socket)],
        "gunicorn-uvicorn": ["-b", f"unix:{socket}"],
    }
    for server_id, expected in words.items():
        argv = servers.get_server(server_id).argv(app, 8000, servers.Knobs(), 1, unix_socket=socket)
        assert _contains(argv, expected), (server_id, argv)
        assert "8000" not in " ".join(argv), server_id  # no TCP port beside it
    assert all(server.binds_unix for server in servers.SERVERS.values())


def _contains(argv: list[str], words: list[str]) -> bool:
    return any(argv[i : i + len(words)] == words for i in range(len(argv)))


# ---------------------------------------------------------------- one real bench through it


@pytest.mark.slow
@needs_nginx
@pytest.mark.parametrize(
    ("app", "server", "upstream"),
    [("gino_style", "uvicorn", "unix"), ("django_sync", "gunicorn-sync", "tcp")],
)
def test_bench_through_nginx(tmp_path: Path, app: str, server: str, upstream: str) -> None:
    """The load reached the server through nginx (its access log has every response), the
    result names the proxy and splits out its CPU, the manifest lists its configuration,
    and nothing is left running (nginx's process group, its runtime directory)."""
    owner = uuid.uuid4().hex
    process = bench_process(
        app, server, tmp_path, "--scenarios", "db", "--proxy", "nginx", "--upstream", upstream,
        owner=owner,
    )  # fmt: skip
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    run_dir = only_run_dir(tmp_path)
    (document,) = result_documents(run_dir)
    front = document["proxy"]
    assert (front["name"], front["upstream"], front["client_protocol"]) == ("nginx", upstream, "h1")
    assert front["upstream_address"].startswith("unix:" if upstream == "unix" else "127.0.0.1:")
    summary = document["summary"]
    assert summary is not None and summary["proxy_cpu_s"] and summary["proxy_cpu_s"] > 0
    split = summary["cpu_us_per_request"]
    assert split is not None and split["proxy"] and split["server"]
    config = run_dir / front["config"]
    assert config.is_file() and f"server {front['upstream_address']};" in config.read_text()
    manifest = results_manifest(run_dir)
    assert manifest["proxy_configs"] == [front["config"]]
    logged = (config.parent / "access.log").read_text().splitlines()
    answered = sum(r["loadgen"]["summary"]["responses"] for r in document["repeats"])
    assert sum(line.startswith("HTTP/1.1 200") for line in logged) >= answered
    assert "nginx" in out  # the summary names the proxy beside the pair (rich may wrap it)
    assert processes_owned_by(owner) == [] and proxy.runtime_dirs(owner) == []


@pytest.mark.slow
@needs_nginx
def test_bench_over_h2_through_nginx_to_a_server_without_http2(tmp_path: Path) -> None:
    """``--proxy nginx --protocol h2``: nginx ends TLS and HTTP/2 with the run's CA, the
    server behind it (uvicorn, which has no HTTP/2 of its own) speaks HTTP/1.1 on its unix
    socket; the result and the manifest say what every connection negotiated with nginx,
    and nothing is left: nginx, its runtime directory, the run's certificates."""
    owner = uuid.uuid4().hex
    process = bench_process(
        "gino_style", "uvicorn", tmp_path, "--scenarios", "json", "--proxy", "nginx",
        "--upstream", "unix", "--protocol", "h2", "--streams", "2", owner=owner,
    )  # fmt: skip
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    run_dir = only_run_dir(tmp_path)
    (document,) = result_documents(run_dir)
    front = document["proxy"]
    assert (front["client_protocol"], front["upstream"]) == ("h2", "unix")
    assert document["protocol"] == "h2" and document["flags"]["protocol_mismatch"] is False
    check = document["protocol_check"]
    assert (check["protocol"], check["alpn"]) == ("h2", "h2") and check["tls_version"]
    negotiated = document["summary"]["negotiated"]
    assert set(negotiated["protocols"]) == {"h2"}
    command = document["server_command"]
    assert "--uds" in command and not any("ssl" in word for word in command)  # h1 behind
    config = run_dir / front["config"]
    text = config.read_text()
    assert " ssl http2;" in text
    certificate = Path(text.split("ssl_certificate ", 1)[1].split(";", 1)[0])
    assert not certificate.exists()  # the run's CA and certificate are removed with it
    logged = (config.parent / "access.log").read_text().splitlines()
    assert any(line.startswith("HTTP/2.0 200") for line in logged)
    manifest = results_manifest(run_dir)
    assert manifest["protocols"][0]["negotiated"] == negotiated
    assert processes_owned_by(owner) == [] and proxy.runtime_dirs(owner) == []


def results_manifest(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "manifest.json").read_text()))


@pytest.mark.slow
@needs_nginx
def test_serve_through_nginx_and_bench_it_as_a_target(tmp_path: Path) -> None:
    """serve --proxy nginx: its app URL is nginx's, its stats windows carry nginx's CPU, and
    a bench --target records the proxy (its configuration copied into the run directory);
    Ctrl-C (SIGTERM here) stops nginx with everything else."""
    owner = uuid.uuid4().hex
    with serving(
        "gino_style",
        "uvicorn",
        tmp_path,
        "--proxy",
        "nginx",
        "--upstream",
        "unix",
        "--ready-timeout",
        "90s",
        owner=owner,
    ) as target:
        front = target.info["proxy"]
        assert front["upstream"] == "unix" and front["config_text"].startswith("# nginx in front")
        assert any(cmd.startswith("nginx: master") for _, cmd in processes_owned_by(owner))
        done = bench_target(target, tmp_path / "out", "--scenarios", "db", owner=owner)
        assert done.returncode == 0, done.stdout + done.stderr
        target.process.terminate()
        target.process.communicate(timeout=60)
    run_dir = only_run_dir(tmp_path / "out")
    (document,) = result_documents(run_dir)
    assert document["proxy"]["upstream_address"] == front["upstream_address"]
    assert (run_dir / document["proxy"]["config"]).read_text() == front["config_text"]
    assert results_manifest(run_dir)["proxy_configs"] == [document["proxy"]["config"]]
    summary = document["summary"]
    assert summary is not None and summary["proxy_cpu_s"] and summary["proxy_cpu_s"] > 0
    assert processes_owned_by(owner) == [] and proxy.runtime_dirs(owner) == []


@pytest.mark.slow
@needs_nginx
def test_serve_through_nginx_over_tls_with_its_own_ca(tmp_path: Path) -> None:
    """serve --proxy nginx --protocol h1-tls: nginx ends TLS with the CA serve made (its
    /info's ca_cert, which bench --target takes as --cacert), the server behind it speaks
    HTTP/1.1; the CA is gone when serve stops."""
    owner = uuid.uuid4().hex
    with serving(
        "gino_style", "hypercorn", tmp_path, "--proxy", "nginx", "--protocol", "h1-tls",
        "--ready-timeout", "90s", owner=owner,
    ) as target:  # fmt: skip
        info = target.info
        assert target.app_url.startswith("https://") and info["protocol"] == "h1-tls"
        assert info["proxy"]["client_protocol"] == "h1-tls"
        assert not any("cert" in word for word in info["server_command"])  # h1 behind nginx
        cacert = Path(info["ca_cert"])
        done = bench_target(
            target, tmp_path / "out", "--scenarios", "json", "--protocol", "h1-tls",
            "--cacert", str(cacert), owner=owner,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        target.process.terminate()
        target.process.communicate(timeout=60)
    (document,) = result_documents(only_run_dir(tmp_path / "out"))
    assert document["protocol"] == "h1-tls" and document["proxy"]["client_protocol"] == "h1-tls"
    assert document["protocol_check"]["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert not cacert.exists()
    assert processes_owned_by(owner) == [] and proxy.runtime_dirs(owner) == []
