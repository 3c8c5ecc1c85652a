"""The protocol axis (``bench --protocol h1|h1-tls|h2|h2c``): each server family speaks
what stackbench/servers.py says it speaks, on a real server, seen from the client's TLS
socket, its ALPN answer and the server's answer (the harness's own check and httpx's);
a server that does not is refused before anything starts, one line, exit 2."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stackbench import matrix, nox_command, nox_sessions
from stackbench.apps import get_app
from stackbench.certificates import certificates
from stackbench.protocol_check import speak
from stackbench.servers import H1, H1_TLS, H2, H2C, PROTOCOLS, SERVERS, TLS, Knobs, get_server

ROOT = Path(__file__).resolve().parents[2]

# One pair per server family, each with every protocol its server speaks (the test
# session installs every protocol's extras for these servers).
FAMILIES = {
    "gunicorn": ("django_sync", "gunicorn-gthread"),
    "uvicorn": ("gino_style", "uvicorn"),
    "hypercorn": ("gino_style", "hypercorn"),
    "daphne": ("gino_style", "daphne"),
    "granian": ("gino_style", "granian"),
}
SPOKEN = [
    (family, app, server, protocol)
    for family, (app, server) in FAMILIES.items()
    for protocol in get_server(server).protocols()
    if protocol != H1
]


# ---------------------------------------------------------------- the registry, as data


def test_every_missing_protocol_says_why() -> None:
    for server in SERVERS.values():
        for protocol in PROTOCOLS:
            reason = server.why_not(protocol)
            assert reason is None or len(reason) > 10, (server.id, protocol, reason)
        assert H1 in server.protocols() and H1_TLS in server.protocols(), server.id


def test_the_matrix_says_what_the_field_says() -> None:
    """facts.md, "Measured 2026-12-07": uvicorn has no HTTP/2; gunicorn's is for gthread,
    gevent and asgi workers, its h2c for trusted peers; daphne has no h2c."""
    assert "uvicorn has no HTTP/2" in (get_server("uvicorn").why_not(H2) or "")
    assert get_server("daphne").why_not(H2C) is not None
    assert get_server("daphne").why_not(H2) is None
    http2 = {s.id for s in SERVERS.values() if s.why_not(H2) is None}
    assert http2 == {
        "gunicorn-gthread", "gunicorn-gevent", "gunicorn-gevent-blocking", "gunicorn-asgi",
        "hypercorn", "daphne", "granian",
    }  # fmt: skip
    assert "forwarded_allow_ips" in get_server("gunicorn-gthread").speaks.notes[H2C]
    rows = {(s, p): (reason, note) for s, p, reason, note in matrix.protocol_rows()}
    assert rows[("gunicorn-sync", H2)][0] == get_server("gunicorn-sync").why_not(H2)
    assert len(rows) == len(SERVERS) * len(PROTOCOLS)


def test_each_protocol_is_on_the_command_line(tmp_path: Path) -> None:
    with certificates(tmp_path) as tls:
        gthread = get_server("gunicorn-gthread").argv(
            get_app("django_sync"), 8000, Knobs(), 1, protocol=H2, certificates=tls
        )
        daphne = get_server("daphne").argv(
            get_app("gino_style"), 8000, Knobs(), 1, protocol=H1_TLS, certificates=tls
        )
    h2c = get_server("gunicorn-gthread").argv(
        get_app("django_sync"), 8000, Knobs(), 1, protocol=H2C
    )
    assert gthread[-7:-1] == [
        "--certfile", str(tls.cert), "--keyfile", str(tls.key), "--http-protocols", "h2,h1",
    ]  # fmt: skip
    assert "--certfile" not in h2c and h2c[-5:-1] == [
        "--http-protocols", "h2,h1", "--http2-cleartext", "both",
    ]  # fmt: skip
    # daphne's TLS is a Twisted endpoint that binds instead of -b/-p
    assert daphne[1] == "-e" and daphne[2].startswith("ssl:8000:privateKey=") and "-b" not in daphne
    with pytest.raises(ValueError, match="needs a certificate"):
        get_server("granian").argv(get_app("gino_style"), 8000, Knobs(), 1, protocol=H2)
    with pytest.raises(ValueError, match="uvicorn has no HTTP/2"):
        get_server("uvicorn").argv(get_app("gino_style"), 8000, Knobs(), 1, protocol=H2C)


def test_a_protocol_brings_its_extras() -> None:
    assert "gunicorn[http2]>=25.1" in get_server("gunicorn-gthread").requirements_for(H2)
    assert "gunicorn[http2]>=25.1" not in get_server("gunicorn-gthread").requirements_for(H1)
    assert "twisted[http2,tls]" in get_server("daphne").requirements_for(H2)
    assert "twisted[tls]" in get_server("daphne").requirements_for(H1_TLS)
    both = matrix.requirements([matrix.Pair("gino_style", "daphne")], [H1, H2])
    assert "twisted[http2,tls]" in both and "daphne>=4" in both


def test_certificates_are_private_and_removed(tmp_path: Path) -> None:
    with certificates(tmp_path) as tls:
        assert stat.S_IMODE(tls.key.stat().st_mode) == 0o600
        assert stat.S_IMODE(tls.key.parent.stat().st_mode) == 0o700
        assert b"PRIVATE KEY" in tls.key.read_bytes()
        assert tls.ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert not (tmp_path / "tls").exists()
    with pytest.raises(RuntimeError), certificates(tmp_path):
        raise RuntimeError("whatever happened")
    assert not (tmp_path / "tls").exists()


# ------------------------------------------------------- bad input: one line, exit 2


def _stackbench(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackbench", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("server", "protocol", "said"),
    [
        (
            "uvicorn",
            H2,
            "error: uvicorn does not speak h2: uvicorn has no HTTP/2; servers that do:",
        ),
        ("daphne", H2C, "error: daphne does not speak h2c: Twisted speaks HTTP/2 only when ALPN"),
        ("gunicorn-sync", H2, "error: gunicorn-sync does not speak h2: gunicorn's sync worker"),
    ],
)
def test_a_protocol_the_server_cannot_speak_is_refused_before_anything(
    tmp_path: Path, server: str, protocol: str, said: str
) -> None:
    app = "django_sync" if server.startswith("gunicorn") else "gino_style"
    out = tmp_path / "out"
    done = _stackbench("bench", "--app", app, "--server", server, "--protocol", protocol,
                       "--output", str(out))  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(said) and done.stderr.count("\n") == 1, done.stderr
    assert not out.exists()  # nothing started, not even the results directory
    serve = _stackbench("serve", "--app", app, "--server", server, "--protocol", protocol)
    assert serve.returncode == 2 and serve.stderr.startswith(said), serve.stderr


def test_streams_without_http2_and_a_cacert_that_is_not_one_are_refused(tmp_path: Path) -> None:
    streams = _stackbench("bench", "--app", "gino_style", "--server", "granian",
                          "--streams", "8", "--output", str(tmp_path / "a"))  # fmt: skip
    assert streams.returncode == 2
    assert "--streams needs --protocol h2 or h2c" in streams.stderr, streams.stderr
    assert streams.stderr.count("\n") == 1 and not (tmp_path / "a").exists()
    target = ["bench", "--target", "https://127.0.0.1:9", "--target-stats", "http://127.0.0.1:9",
              "--protocol", H2, "--output", str(tmp_path / "b")]  # fmt: skip
    for cacert, said in (
        (tmp_path / "missing.pem", "no such file"),
        (tmp_path / "garbage.pem", "holds no PEM CA certificate"),
        (tmp_path, "cannot read"),  # a directory: unreadable as a file, even as root
    ):
        if cacert.name == "garbage.pem":
            cacert.write_text("not a certificate\n")
        done = _stackbench(*target, "--cacert", str(cacert))
        assert done.returncode == 2, (cacert, done.stderr)
        assert "--cacert" in done.stderr and said in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and not (tmp_path / "b").exists(), done.stderr
    missing = _stackbench(*target)
    assert missing.returncode == 2
    assert "--protocol h2 with --target needs --cacert FILE" in missing.stderr, missing.stderr


def test_nox_refuses_a_protocol_before_building_anything() -> None:
    def said(*argv: str) -> str | None:
        command = nox_command.NoxCommand.parse(["nox", *argv], environ={}, stdin_is_terminal=False)
        return nox_command.unspoken_protocol(command)

    uvicorn = said("-s", "bench(app='gino_style', server='uvicorn')", "--", "--protocol", "h2")
    assert uvicorn is not None and uvicorn.startswith("uvicorn does not speak h2"), uvicorn
    assert said("-s", "bench(app='gino_style', server='granian')", "--", "--protocol=h2c") is None
    unknown = said("-s", "serve(app='gino_style', server='granian')", "--", "--protocol", "h3")
    assert "protocols are h1, h1-tls, h2, h2c" in (unknown or "")
    # and the venv gets what the protocol needs (gunicorn's h2 extra for h2c)
    args = nox_command.SessionArgs.parse(["--protocol", "h2c"])
    assert "gunicorn[http2]>=25.1" in nox_sessions.pair_requirements(
        "django_sync", "gunicorn-gthread", args
    )


# ------------------------------------- real servers: each speaks what it says it speaks


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "app", "server", "protocol"),
    SPOKEN,
    ids=[f"{family}-{server}-{protocol}" for family, _, server, protocol in SPOKEN],
)
def test_each_family_negotiates_what_it_claims(
    app_servers, family: str, app: str, server: str, protocol: str
) -> None:
    served = app_servers.get(app, server, protocol=protocol)
    assert served.base_url.startswith("https://" if protocol in TLS else "http://")
    spoken = speak(served.base_url, protocol, served.cafile, "/json")  # the harness's check
    assert spoken.status == 200
    assert spoken.protocol == {H1_TLS: "http/1.1", H2: "h2", H2C: "h2c"}[protocol]
    if protocol in TLS:
        assert spoken.tls_version in ("TLSv1.2", "TLSv1.3") and spoken.cipher
        # HTTP/1.1 over TLS needs no ALPN: gunicorn without HTTP/2 sets none (no answer)
        assert spoken.alpn in (("h2",) if protocol == H2 else (None, "http/1.1")), spoken
    # and an independent client: httpx's HTTP/2 (prior knowledge for h2c)
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(served.cafile)) if served.cafile else True,
        http1=protocol not in (H2C,),
        http2=protocol in (H2, H2C),
        timeout=10,
    ) as client:
        response = client.get(served.base_url + "/json")
    assert response.status_code == 200 and response.json() == {"message": "Hello, World!"}
    assert response.http_version == ("HTTP/2" if protocol in (H2, H2C) else "HTTP/1.1")


@pytest.mark.slow
def test_a_server_without_its_http2_switch_does_not_pass_for_http2(app_servers) -> None:
    """The planted fault: gunicorn serving TLS without --http-protocols h2,h1 (its h1-tls
    command line). Asked h2, ALPN chooses no h2: the check says so, never HTTP/1.1."""
    from stackbench.protocol_check import ProtocolMismatch, check

    served = app_servers.get("django_sync", "gunicorn-gthread", protocol=H1_TLS)
    with pytest.raises(ProtocolMismatch, match="by ALPN the server chose"):
        speak(served.base_url, H2, served.cafile, "/json")
    said = check(served.base_url, H2, served.cafile, "/json")
    assert isinstance(said, str) and said.startswith("asked h2: by ALPN the server chose"), said
    # h2c at a server that speaks HTTP/1.1 only: no SETTINGS, no HTTP/2
    plain = app_servers.get("gino_style", "uvicorn")
    said = check(plain.base_url, H2C, None, "/json")
    assert isinstance(said, str) and "asked h2c" in said and "HTTP/2" in said, said


@pytest.mark.slow
def test_gunicorn_h2c_is_only_for_trusted_peers(app_servers, db, upstream_url, tmp_path) -> None:
    """gunicorn's h2c answers peers in forwarded_allow_ips (loopback by default): the
    matrix's note holds on a real server. Trusted, h2c; the same command line with a trust
    list that leaves loopback out, no HTTP/2 (gunicorn answers the preface as HTTP/1.1)."""
    from stackbench.protocol_check import check
    from stackbench.server_process import serve

    served = app_servers.get("django_sync", "gunicorn-gthread", protocol=H2C)
    assert speak(served.base_url, H2C, None, "/json").protocol == "h2c"
    with serve(
        get_app("django_sync"),
        get_server("gunicorn-gthread"),
        database_url=db.url,
        upstream_url=upstream_url,
        bin_dir=Path(sys.executable).parent,
        log_dir=tmp_path,
        knobs=Knobs(workers=1, pool_size=2),
        cpus=1,
        settings={"GUNICORN_CMD_ARGS": "--forwarded-allow-ips 192.0.2.1"},
        prepared=True,
        protocol=H2C,
    ) as untrusting:
        said = check(untrusting.base_url, H2C, None, "/json")
    assert isinstance(said, str) and said.startswith("asked h2c:"), said


@pytest.mark.slow
def test_a_bench_asked_h2_of_a_server_started_without_it_is_not_ok(tmp_path, monkeypatch) -> None:
    """End to end, the planted fault: granian started with --http 1 where its HTTP/2
    switch belongs. The bench asked h2: the result is failed before any load, its reason
    says what the server chose, the run is not ok, and the CA made for it is gone."""
    import dataclasses

    from stackbench import bench, results
    from stackbench.options import BENCH_LOAD, BenchOptions
    from tests.harness.runs import result_documents

    granian = get_server("granian")
    planted = dataclasses.replace(granian.speaks, h2=("--http", "1"))
    monkeypatch.setitem(SERVERS, "granian", dataclasses.replace(granian, speaks=planted))
    options = BenchOptions(
        scenarios=("json",),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=4, h2=True),
        workers=1,
        protocol=H2,
        output=tmp_path / "out",
    )
    report = bench.single_pair("gino_style", "granian", options)
    (document,) = result_documents(report.run_dir)
    assert report.status == "failed" and document["status"] == "failed"
    assert document["protocol"] == H2
    assert document["reason"] == (
        "protocol check failed: asked h2: by ALPN the server chose 'http/1.1', not 'h2'"
    ), document["reason"]
    assert "--http" in document["server_command"] and "1" in document["server_command"]
    manifest = results.read_json(report.run_dir / "manifest.json", "manifest")
    assert manifest["protocols"] == [
        {"app": "gino_style", "server": "granian", "label": None, "protocol": "h2",
         "negotiated": None},
    ]  # fmt: skip
    key = Path(document["server_command"][document["server_command"].index("--ssl-keyfile") + 1])
    assert not key.exists() and not key.parent.exists()  # the run's certificates are removed


@pytest.mark.slow
def test_a_bench_over_h2_records_what_it_negotiated(tmp_path) -> None:
    """End to end, the bench --protocol h2 that works: granian over TLS with ALPN h2,
    loadgen with 2 streams per connection. The result and the manifest say what was asked
    and what every connection negotiated (protocol, TLS version, cipher), the harness's
    own check before the load too; the run's CA is gone afterwards."""
    from stackbench import bench, results
    from stackbench.options import BENCH_LOAD, BenchOptions
    from tests.harness.runs import result_documents

    options = BenchOptions(
        scenarios=("json",),
        load=BENCH_LOAD.replace(duration=1.0, warmup=0.5, concurrency=2, h2=True, streams=2),
        workers=1,
        protocol=H2,
        output=tmp_path / "out",
    )
    report = bench.single_pair("gino_style", "granian", options)
    (document,) = result_documents(report.run_dir)
    assert document["protocol"] == H2 and document["flags"]["protocol_mismatch"] is False
    check = document["protocol_check"]
    assert (check["protocol"], check["alpn"]) == ("h2", "h2") and check["tls_version"]
    negotiated = document["summary"]["negotiated"]
    connections = sum(negotiated["protocols"].values())
    assert connections >= 2 and negotiated["protocols"] == {"h2": connections}
    assert sum(negotiated["tls_versions"].values()) == connections
    assert set(negotiated["tls_versions"]) <= {"TLSv1.2", "TLSv1.3"} and negotiated["ciphers"]
    manifest = results.read_json(report.run_dir / "manifest.json", "manifest")
    (job,) = manifest["protocols"]
    assert job["protocol"] == H2 and job["negotiated"] == negotiated
    command = document["server_command"]
    key = Path(command[command.index("--ssl-keyfile") + 1])
    assert not key.exists() and not key.parent.exists()  # the run's certificates are removed


@pytest.mark.slow
def test_serve_speaks_h2_with_its_own_ca_and_bench_target_checks_it(tmp_path) -> None:
    """serve --protocol h2: an https:// app URL, the CA it made (serve prints its path,
    the bench takes it as --cacert), h2 by ALPN; bench --target refuses another protocol
    than the one served; the CA is gone once serve stops."""
    import uuid

    from tests.harness.serving import serving, target_argv

    owner = uuid.uuid4().hex
    with serving("gino_style", "granian", tmp_path, "--protocol", H2, owner=owner) as target:
        info = target.info
        assert info["protocol"] == H2 and target.app_url.startswith("https://")
        cacert = Path(info["ca_cert"])
        assert stat.S_IMODE(cacert.parent.stat().st_mode) == 0o700
        spoken = speak(target.app_url, H2, cacert, "/json")
        assert (spoken.protocol, spoken.alpn, spoken.status) == ("h2", "h2", 200)
        # a bench asking h2c of a serve that serves h2: one line, exit 2, nothing measured
        plain = target.app_url.replace("https://", "http://")
        out = tmp_path / "out"
        asked = subprocess.run(
            [*target_argv(plain, target.stats_url, "--protocol", H2C), "--output", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert asked.returncode == 2, asked.stderr
        assert (
            asked.stderr == "error: --protocol h2c: the target serves h2 (serve --protocol h2c)\n"
        )
        assert not list(out.glob("*/manifest.json"))
    assert not cacert.exists() and not cacert.parent.exists()


def test_a_cacert_without_target_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    with certificates(tmp_path) as tls:
        pem.write_bytes(tls.ca.read_bytes())
    done = _stackbench("bench", "--app", "gino_style", "--server", "granian", "--protocol", H2,
                       "--cacert", str(pem), "--output", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "error: --cacert goes with --target: a local run trusts the CA it makes\n"
    ), done.stderr
    assert not (tmp_path / "out").exists()
