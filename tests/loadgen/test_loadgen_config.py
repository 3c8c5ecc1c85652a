"""The one load specification: every field of Config written by to_argv and read back by
loadgen's own parser into an equal Config; Config.validate refusing, through the same
parsers, what the command line refuses."""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest

from loadgen.cli import build_parser, config_from_args
from loadgen.config import OPTIONS, Config, ConfigError


def read_back(argv: list[str]) -> Config:
    """What ``python -m loadgen ARGV`` runs: its parser, then its Config."""
    return config_from_args(build_parser().parse_args(argv))


@pytest.fixture()
def odd(tls_files, tmp_path) -> Config:  # type: ignore[no-untyped-def]
    """A value off its default in every field, each as awkward as the field allows: a
    leading dash, '=' and ':' inside values, empty values, bytes that are not UTF-8, a
    float that is not short in decimal, negative numbers, a file name with blanks."""
    cacert = tmp_path / "the ca=1.pem"
    shutil.copy(tls_files.ca, cacert)
    return Config(
        url="https://[::1]:8123/fastapi?q=a%20b&r=-1",
        requests=12,
        duration=1 / 3,
        concurrency=8,
        rate=1e-05,
        method="PATCH",
        headers=(
            ("X-Empty", ""),
            ("Authorization", "Bearer a:b=c"),
            ("X-Dash", "-leading dash"),
            ("X-Uni", "héllo ✓"),
        ),
        body=b"--json=x \xff\xfe raw\n",
        timeout=0.0,
        connect_timeout=0.25,
        warmup=2.5e-07,
        grace=0.0,
        deadline=3600.5,
        processes=2,
        scenario="slow-db?seconds=2",
        scenario_file="-odd dir/scenarios.toml",
        scenario_options={"seconds": "0.5", "password": "p=w d", "empty": "", "dash": "-x"},
        thresholds=("p99<50ms", "errors<1%"),
        allow_remote=True,
        csv_path="-out.csv",
        keepalive=True,  # the default, but HTTP/2 has no Connection: close (below)
        h2=True,
        streams=3,
        cacert=str(cacert),
        insecure=False,  # the default: with --cacert it is refused (below)
        max_queue=0,
        use_uvloop=False,
        use_httptools=True,
        use_h2wire=False,
        seed=-7,
        check_target=False,
        agent=(1, 3),
        start_at=time.time() + 30.123456789,
        misbehaving=(("stalled-body", 2), ("idle", 1)),
        misbehaving_pace=1 / 7,
        misbehaving_path="/-x?a=b%20c",
    )


# the fields the odd Config leaves at their defaults, each written in the other one
ODD_ELSEWHERE = {"keepalive": {"keepalive": False}, "insecure": {"insecure": True, "cacert": None}}


def test_every_field_is_off_its_default_in_the_odd_config(odd) -> None:
    same = [f.name for f in dataclasses.fields(Config) if getattr(odd, f.name) == f.default]
    assert same == list(ODD_ELSEWHERE)
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(Config)}


def test_to_argv_reads_back_into_an_equal_config(odd) -> None:
    for config in (odd, *(odd.replace(h2=False, streams=1, **c) for c in ODD_ELSEWHERE.values())):
        argv = config.to_argv()
        assert read_back(argv) == config
        assert argv[-1] == config.url
    # each field came through its own flag, not by luck of a default
    argv = odd.to_argv()
    assert "--no-uvloop" in argv and "--httptools" in argv and "--seed=-7" in argv
    assert "--no-h2wire" in argv
    assert "--h2" in argv and argv[argv.index("--streams") + 1] == "3"
    assert odd.cacert in argv and "--insecure" in odd.replace(**ODD_ELSEWHERE["insecure"]).to_argv()


def test_the_odd_config_is_also_valid(odd) -> None:
    # misbehaving connections are held from one host: not beside --agent
    config = odd.replace(agent=(0, 2), processes=1, scenario="db", misbehaving=())
    assert read_back(config.to_argv()).validate() == config


@pytest.mark.parametrize(
    "config",
    [
        Config(url="http://127.0.0.1:8000/"),  # every default: only the URL is written
        Config(url="http://127.0.0.1/", duration=6.0, warmup=2.0, concurrency=32),
        Config(url="http://127.0.0.1/", use_uvloop=True, use_httptools=False, keepalive=True),
    ],
)
def test_plain_configs_read_back(config: Config) -> None:
    assert read_back(config.to_argv()) == config


def test_only_what_differs_from_the_default_is_written() -> None:
    argv = Config(url="http://127.0.0.1/", duration=6.0, concurrency=32).to_argv()
    assert argv == ["-z", "6s", "-c", "32", "http://127.0.0.1/"]


def test_a_body_with_a_nul_byte_is_refused_not_cut() -> None:
    with pytest.raises(ConfigError, match="NUL"):
        Config(url="http://127.0.0.1/", body=b"a\0b").to_argv()


VALID = Config(url="http://127.0.0.1:8000/", requests=10)
REFUSED = [
    ({"concurrency": 0}, "-c/--connections must be positive"),
    ({"requests": True}, "-n/--requests"),
    ({"duration": -1.0}, "-z/--duration"),
    ({"duration": float("inf")}, "-z/--duration"),
    ({"rate": float("nan")}, "-R/--rate"),
    ({"timeout": -0.5}, "-t/--timeout"),
    ({"connect_timeout": 0.0}, "--connect-timeout"),
    ({"warmup": -1.0}, "--warmup"),
    ({"grace": -1.0}, "--grace"),
    ({"deadline": 0.0}, "--deadline"),
    ({"processes": 0}, "--processes"),
    ({"processes": 4, "concurrency": 2}, "--processes (4) cannot exceed -c (2)"),
    ({"max_queue": -1}, "--max-queue"),
    ({"method": "get"}, "-m/--method: 'get' must be given as 'GET'"),
    ({"method": "GE T"}, "invalid method"),
    ({"headers": (("X-A", "a\r\nInjected: 1"),)}, "-H/--header"),
    ({"headers": (("bad name", "v"),)}, "-H/--header"),
    ({"scenario": " "}, "--scenario"),
    ({"scenario_options": {"a=b": "c"}}, "--scenario-option"),
    ({"thresholds": ("p99<<3",)}, "--threshold"),
    ({"agent": (2, 2)}, "--agent"),
    ({"agent": (0, 3), "concurrency": 2}, "agents x processes (3) cannot exceed -c (2)"),
    ({"start_at": time.time() - 60}, "--start-at must not be in the past"),
    ({"start_at": time.time() + 3600}, "--start-at must be at most 600 s away"),
    ({"seed": 1.5}, "--seed"),
    ({"keepalive": "no"}, "--disable-keepalive must be True or False"),
    ({"url": "http://10.1.2.3/"}, "non-loopback"),
    ({"misbehaving": (("idle", 0),)}, "--misbehaving must be positive"),
    ({"misbehaving": (("sleepy", 1),)}, "unknown kind 'sleepy'"),
    ({"misbehaving": (("idle", 1), ("idle", 2))}, "each KIND once"),
    ({"misbehaving": (("idle", 600), ("slow-headers", 401))}, "at most 1000 connections"),
    (
        {"misbehaving": (("idle", 1),), "url": "http://10.1.2.3/", "allow_remote": True},
        "--misbehaving: loopback targets only",
    ),
    ({"misbehaving": (("idle", 1),), "agent": (0, 1)}, "not with --agent"),
    ({"misbehaving_pace": 0.0}, "--misbehaving-pace"),
    ({"misbehaving_path": "no-slash"}, "--misbehaving-path must be a path"),
    ({"misbehaving_path": "/a b"}, "--misbehaving-path must be a path"),
    (
        {"misbehaving": (("slow-headers", 1),), "url": "https://127.0.0.1:8000/"},
        "--misbehaving slow-headers sends HTTP/1.1 in cleartext",
    ),
    ({"misbehaving": (("stalled-body", 1),), "h2": True}, "not with https:// or --h2"),
]


# A start time is read from the clock, its id must not be: every xdist worker collects
# the same ids or none runs.
IDS = [says if "start_at" in changes else str(changes) for changes, says in REFUSED]


@pytest.mark.parametrize(("changes", "says"), REFUSED, ids=IDS)
def test_validate_refuses_what_the_command_line_refuses(changes: dict, says: str) -> None:
    VALID.validate()  # the base is valid: each refusal is the change's
    with pytest.raises(ConfigError) as refused:
        VALID.replace(**changes).validate()
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_idle_misbehaving_connections_are_held_on_tls_and_http2_too() -> None:
    """An idle connection sends nothing, so it is one on any protocol (a TLS server waits
    for its handshake): only the kinds that send cleartext HTTP/1.1 are refused there."""
    VALID.replace(misbehaving=(("idle", 2),), url="https://127.0.0.1:8000/", h2=True).validate()


def test_validate_without_a_target_checks_the_rest() -> None:
    Config(duration=6.0).validate(target=False)  # no URL yet: the harness's spec
    with pytest.raises(ConfigError, match="missing URL"):
        Config(duration=6.0).validate()
    with pytest.raises(ConfigError, match="--processes"):
        Config(processes=3, concurrency=2).validate(target=False)
