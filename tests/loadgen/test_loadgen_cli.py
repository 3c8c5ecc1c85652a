"""``python -m loadgen``: bad input exits 2 with one line, thresholds exit 99, JSON
report valid against the schema, CSV, engines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest

import loadgen
from loadgen import Config

SCHEMA = json.loads((Path(loadgen.__file__).parent / "report.schema.json").read_text())


def one_line_error(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("loadgen: error: ")
    assert p.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["not a url"], "malformed URL"),
        (["http://"], "malformed URL"),
        (["ftp://127.0.0.1/"], "scheme must be http or https"),
        (["http://127.0.0.1:99999/"], "malformed URL"),
        (["http://10.1.2.3/"], "non-loopback"),
        (["-R", "0", "http://127.0.0.1:1/"], "-R"),
        (["-c", "0", "http://127.0.0.1:1/"], "-c"),
        (["-n", "0", "http://127.0.0.1:1/"], "-n"),
        (["-z", "-1s", "http://127.0.0.1:1/"], "-z"),
        (["-z", "soon", "http://127.0.0.1:1/"], "-z"),
        (["--scenario", "/no/such/file.py", "http://127.0.0.1:1/"], "scenario"),
        (["--scenario", "nope", "http://127.0.0.1:1/"], "unknown scenario"),
        (["--threshold", "p99<<3", "http://127.0.0.1:1/"], "threshold"),
        (["--processes", "4", "-c", "2", "http://127.0.0.1:1/"], "--processes"),
        (["-H", "no colon", "http://127.0.0.1:1/"], "header"),
        ([], "missing URL"),
        (["--bogus-flag", "http://127.0.0.1:1/"], "unrecognized"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args, needle) -> None:
    assert needle in one_line_error(cli(*args))


def test_unreachable_target_exits_2(cli, closed_port) -> None:
    line = one_line_error(cli("-n", "5", f"http://127.0.0.1:{closed_port}/"))
    assert "cannot connect" in line


def test_thresholds_exit_99_on_failure(cli, server) -> None:
    ok = cli(
        "-n",
        "50",
        "-c",
        "2",
        "--threshold",
        "p99<5s",
        "--threshold",
        "errors<1%",
        server.url("/fast"),
    )
    assert ok.returncode == 0, ok.stderr
    assert "✓ p99<5s" in ok.stdout
    bad = cli(
        "-n",
        "20",
        "-c",
        "2",
        "--threshold",
        "p50<1us",
        "--threshold",
        "errors<1%",
        server.url("/status/500"),
    )
    assert bad.returncode == 99
    assert "✗ p50<1us" in bad.stdout and "✗ errors<1%" in bad.stdout


def test_json_report_validates_against_schema(cli, server, tmp_path) -> None:
    out = tmp_path / "r.json"
    p = cli("-n", "300", "-c", "3", "--json", str(out), "-H", "X-Test: 1", server.url("/fast"))
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    jsonschema.validate(d, SCHEMA)
    assert d["version"] == 1 and d["summary"]["requests"] == 300
    assert d["latency"]["headline"] == "uncorrected" and d["latency"]["corrected"] is None
    assert "Summary:" in p.stdout and "Latency distribution:" in p.stdout


def test_json_to_stdout_and_open_model_report(cli, server) -> None:
    p = cli("-R", "200", "-n", "100", "-c", "4", "--json", "-", server.url("/fixed?ms=2"))
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    jsonschema.validate(d, SCHEMA)
    assert d["model"] == "open" and d["open_model"]["scheduled"] == 100
    assert d["latency"]["corrected"]["count"] == 100
    assert "corrected\tuncorrected" in p.stderr  # the text report went to stderr


@pytest.mark.parametrize(
    "cfg",
    [
        {
            "scenario": "django-admin-login",
            "scenario_options": {"username": "admin", "password": "secret"},
        },
        {"scenario": "mix", "rate": 300.0},
        {"processes": 2, "concurrency": 4},
        {"rate": 300.0, "processes": 2, "concurrency": 4, "warmup": 0.1},
    ],
)
def test_library_reports_validate(server, cfg) -> None:
    url = server.base if "scenario" in cfg else server.url("/fast")
    cfg.setdefault("requests", 60)
    r = loadgen.run_sync(Config(url=url, **cfg))
    d = r.to_dict()
    jsonschema.validate(d, SCHEMA)
    json.dumps(d)  # serialisable
    assert d["summary"]["requests"] == r.requests > 0
    assert "Summary:" in r.text()


def test_csv_one_row_per_request(cli, server, tmp_path) -> None:
    out = tmp_path / "r.csv"
    p = cli("-n", "40", "-c", "2", "-q", "--csv", str(out), server.url("/fast"))
    assert p.returncode == 0 and p.stdout == ""
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and rows[0]["status"] == "200" and rows[0]["error"] == ""
    out2 = tmp_path / "r2.csv"
    loadgen.run_sync(
        Config(url=server.url("/fast"), requests=41, concurrency=2, processes=2, csv_path=str(out2))
    )
    assert len(list(csv.DictReader(out2.open()))) == 41


def test_pure_engine_env(cli, server) -> None:
    p = cli(
        "-n", "20", "-c", "2", "--json", "-", "-q", server.url("/fast"), env={"LOADGEN_PURE": "1"}
    )
    d = json.loads(p.stdout)
    assert d["tool"]["parser"] == "python" and d["tool"]["loop"] == "asyncio"
    p = cli("-n", "20", "-c", "2", "--json", "-", "-q", server.url("/fast"))
    d = json.loads(p.stdout)
    assert d["tool"]["parser"] == "httptools" and d["tool"]["loop"] == "uvloop"


def test_list_scenarios(cli) -> None:
    p = cli("--list-scenarios")
    assert p.returncode == 0
    for name in ("json", "slow-fanout", "mix", "django-admin-login"):
        assert name in p.stdout


def test_remote_needs_allow_remote() -> None:
    with pytest.raises(loadgen.ConfigError):
        Config(url="http://192.0.2.1/").validate()
    Config(url="http://192.0.2.1/", allow_remote=True).validate()
    Config(url="http://localhost:8000/").validate()
    Config(url="http://[::1]:8000/").validate()
