"""https://: TLS from the standard ssl module against a real TLS server (servers.py --tls,
a certificate from a CA made for the session): exact counts, one handshake per connection,
the set-up timed apart from the requests, and every way the options or the handshake can
go wrong said in one line (exit 2) or counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import loadgen
from loadgen import Config

SCHEMA = json.loads((Path(loadgen.__file__).parent / "report.schema.json").read_text())
REPO = Path(__file__).resolve().parents[2]


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("loadgen: error: ") and p.stdout == ""
    return lines[0]


def test_https_counts_exactly_with_one_handshake_per_connection(
    tls_server, tls_files, engine
) -> None:
    before = tls_server.served()
    r = loadgen.run_sync(
        Config(
            url=tls_server.url("/fast"), requests=300, concurrency=4, cacert=tls_files.ca
        ).replace(**engine)
    )
    assert tls_server.served() - before == 300
    assert r.requests == r.responses == 300 and r.errors == {}
    d = r.to_dict()
    jsonschema.validate(d, SCHEMA)
    setup, proto = d["connection_setup"], d["protocol"]
    assert setup["connections"] == setup["handshakes"] == 4
    assert setup["tls_handshake"]["count"] == setup["tcp_connect"]["count"] == 4
    assert setup["tls_handshake"]["min_ns"] > 0
    assert proto["requested"] == "http/1.1" and proto["scheme"] == "https"
    assert proto["negotiated"] == {"http/1.1": 4} and proto["tls"]["alpn"] == {"http/1.1": 4}
    assert proto["tls"]["versions"] == {"TLSv1.3": 4} and proto["tls"]["verified"] is True
    assert sum(proto["tls"]["ciphers"].values()) == 4
    # the connections were opened before the start: no request waited for a set-up
    assert d["phases"]["connect"]["count"] == 0
    text = r.text()
    assert "TLS handshake:" in text and "TLSv1.3 x4" in text


def test_a_connection_per_request_is_a_handshake_per_request(tls_server, tls_files) -> None:
    r = loadgen.run_sync(
        Config(
            url=tls_server.url("/fast"),
            requests=20,
            concurrency=2,
            keepalive=False,
            cacert=tls_files.ca,
        )
    )
    assert r.responses == 20 and r.errors == {}
    setup = r.to_dict()["connection_setup"]
    assert setup["connections"] == setup["handshakes"] == 20
    # the 2 opened before the start served the first 2 requests; 18 waited for theirs
    assert r.phases["connect"].count == 18
    assert r.phases["connect"].min >= r.stats.conn.tls.min  # the wait covers a handshake


def test_insecure_skips_verification_and_says_so(tls_server) -> None:
    r = loadgen.run_sync(Config(url=tls_server.url("/fast"), requests=10, insecure=True))
    assert r.responses == 10
    assert r.to_dict()["protocol"]["tls"]["verified"] is False


def test_an_untrusted_certificate_is_one_line_before_the_run(cli, tls_server) -> None:
    line = one_line_error(cli("-n", "5", tls_server.url("/fast")))
    assert "TLS handshake with 127.0.0.1" in line and "--cacert" in line
    assert "certificate" in line


def test_a_failing_handshake_is_counted_not_a_hang(tls_server) -> None:
    r = loadgen.run_sync(
        Config(url=tls_server.url("/fast"), requests=12, concurrency=3, check_target=False)
    )
    assert r.requests == 12 and r.responses == 0
    assert r.errors == {"tls_error": 12}
    assert r.stats.conn.handshakes == 0 and r.stats.conn.tcp.count >= 12


def test_http_to_a_tls_port_is_counted_as_a_bad_response(tls_server) -> None:
    url = tls_server.url("/fast").replace("https://", "http://")
    r = loadgen.run_sync(Config(url=url, requests=4, concurrency=1, timeout=2))
    assert r.requests == 4 and r.responses == 0 and set(r.errors) <= {"bad_response", "reset"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cacert", "/no/such/ca.pem"], "--cacert: no such file '/no/such/ca.pem'"),
        (["--cacert", __file__], "holds no PEM CA certificate"),
        (["--cacert", str(Path(__file__).parent)], "cannot read"),
        (["--cacert", "CA", "--insecure"], "--cacert or --insecure, not both"),
        (["--streams", "4"], "--streams needs --h2"),
        (["--h2", "--disable-keepalive"], "--disable-keepalive"),
    ],
)
def test_bad_tls_options_exit_2_before_anything_starts(
    cli, tls_files, closed_port, args, says
) -> None:
    # a closed port: had anything started, the line would say it cannot connect
    args = [tls_files.ca if a == "CA" else a for a in args]
    line = one_line_error(cli("-n", "5", *args, f"https://127.0.0.1:{closed_port}/"))
    assert says in line, line


@pytest.mark.parametrize("option", [["--insecure"], ["--cacert", "CA"]])
def test_tls_options_with_a_cleartext_url_are_refused(cli, tls_files, closed_port, option):
    option = [tls_files.ca if a == "CA" else a for a in option]
    line = one_line_error(cli("-n", "5", *option, f"http://127.0.0.1:{closed_port}/"))
    assert f"{option[0]} needs an https:// URL" in line


def test_h2_without_the_h2_package_is_one_line(closed_port) -> None:
    # the package hidden as if not installed: `--h2` says what to install, exit 2
    code = (
        "import sys; sys.modules['h2'] = None\n"
        "from loadgen.cli import main\n"
        f"sys.exit(main(['--h2', '-n', '5', 'http://127.0.0.1:{closed_port}/']))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO
    )
    assert "--h2 needs the h2 package" in one_line_error(p)


def test_validate_refuses_the_same_combinations(tls_files) -> None:
    base = Config(url="https://127.0.0.1:8443/", requests=5)
    base.replace(cacert=tls_files.ca).validate()
    base.replace(h2=True, streams=8).validate()
    for changes, says in (
        ({"cacert": "/no/such.pem"}, "--cacert no such file"),
        ({"insecure": True, "url": "http://127.0.0.1/"}, "--insecure needs an https://"),
        ({"streams": 2}, "--streams needs --h2"),
        ({"streams": 0, "h2": True}, "--streams must be positive"),
    ):
        with pytest.raises(loadgen.ConfigError, match=says):
            base.replace(**changes).validate()
