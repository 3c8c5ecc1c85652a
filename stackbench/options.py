"""What a bench job is asked to do (BenchOptions), the command-line options that ask it,
and each value checked at the edge: a bad value is one line and exit 2, before the
database, a server or the load has been started.

The load is loadgen's own specification, a ``loadgen.config.Config``: its options (flag,
parser, help) are loadgen's table, added to the harness's parsers with the bench's
defaults (``BENCH_LOAD``), and the Config built from them is handed to loadgen as it is
(``Config.to_argv``, stackbench/loadrun.py). The harness's own options (where the
servers run, how often, where results go) are declared once below, in ``ARGUMENTS``,
their defaults in ``BenchOptions``; an experiment adds the same options with its own
defaults (a ``BenchOptions`` of its own).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from loadgen import scenario_file, values
from loadgen.config import OPTIONS, Config, ConfigError, add_arguments, given
from loadgen.scenario import load_scenario, option_names, options_for
from shared_fixtures.seed import MAX_SCALE, SeedError, validate_scale
from stackbench import results
from stackbench.matrix import Pair, scenario_file_of
from stackbench.matrix import check_protocol as check_servers_speak
from stackbench.proxy import CLIENT_PROTOCOLS, PROXIES, TCP, UNIX, UPSTREAMS, ProxyError, Spec
from stackbench.proxy import check as check_proxy
from stackbench.server_process import READY_TIMEOUT
from stackbench.servers import DEFAULT_POOL_SIZE, H1, HTTP2, PROTOCOLS, Knobs, get_server
from stackbench.variants import VARIANTS

T = TypeVar("T")

DEFAULT_SCENARIOS = ("json", "db", "fortunes", "colleges", "troupes")

# The bench's load where it differs from loadgen's own defaults (loadgen/config.py): 6 s
# measured after 2 s of warm-up, over 32 connections. The rest is loadgen's: a 20 s
# per-request timeout, one process, the closed model. The URL and the scenario are set
# for each scenario as it runs.
BENCH_LOAD = Config(duration=6.0, warmup=2.0, concurrency=32)


@dataclass(frozen=True)
class BenchOptions:
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    load: Config = BENCH_LOAD  # every scenario's load (loadgen's specification)
    workers: int | None = None
    threads: int | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    repeats: int = 1
    server_cpus: str | None = None
    client_cpus: str | None = None
    output: Path = results.ROOT / "results"
    scale: int = 1
    # With DATABASE_URL: the harness may TRUNCATE the contract's tables there and load the
    # seed (stackbench/app_database.py); without it, it changes nothing in that database.
    reseed: bool = False
    ready_timeout: float = READY_TIMEOUT
    prefix: str = ""  # where the contract is mounted, e.g. /fastapi in django_fastapi
    # The virtualenv whose Python and servers serve the app: another interpreter's, for the
    # python-versions experiment. None: the harness's own.
    bin_dir: Path | None = None
    # bench --target with agents on other hosts (docs/distributed.md): this run's loadgen is
    # agent load.agent from load.start_at; the others' reports are awaited in agent_reports.
    agent_reports: Path | None = None
    agent_wait: float = 60.0
    profile: bool = False  # py-spy on the server in each measured window (profiler.py)
    # A bench variant served instead of the app as shipped (stackbench/variants): its name.
    variant: str | None = None
    # What the load speaks to the server (stackbench/servers.py, PROTOCOLS), or to the
    # proxy in front of it; the load's --h2 follows from it (options_from), a TLS one's CA
    # from the run's certificates.
    protocol: str = H1
    # A proxy in front (stackbench/proxy.py), how it reaches the server (None: tcp). It
    # ends --protocol toward the clients and speaks HTTP/1.1 to the server.
    proxy: str | None = None
    upstream: str | None = None

    @property
    def knobs(self) -> Knobs:
        return Knobs(workers=self.workers, threads=self.threads, pool_size=self.pool_size)

    @property
    def server_cpu_count(self) -> int:
        return cpus_named(self.server_cpus) or os.cpu_count() or 1

    @property
    def front(self) -> Spec | None:
        """The proxy in front, as stackbench/proxy.py runs it (None: clients reach the
        server directly). Its workers: one per CPU the server may use."""
        if self.proxy is None:
            return None
        return Spec(
            self.proxy,
            self.upstream or TCP,
            client_protocol=self.protocol,
            workers=self.server_cpu_count,
        )

    @property
    def server_protocol(self) -> str:
        """What the server itself speaks: the load's protocol, or HTTP/1.1 behind a proxy."""
        return self.protocol if self.proxy is None else H1

    def as_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, load=BENCH_LOAD))
        del data["load"]
        load = self.load
        data.update(
            duration=load.duration,
            warmup=load.warmup,
            connections=load.concurrency,
            rate=load.rate,
            processes=load.processes,
            timeout=load.timeout,
            requests=load.requests,
            scenario_options=dict(load.scenario_options),
            scenario_file=load.scenario_file,
            agent=list(load.agent) if load.agent else None,
            start_at=load.start_at,
            streams=load.streams,
            misbehaving=dict(load.misbehaving),
            misbehaving_pace=load.misbehaving_pace,
            misbehaving_path=load.misbehaving_path,
        )
        data["output"] = str(self.output)
        data["scenarios"] = list(self.scenarios)
        data["bin_dir"] = str(self.bin_dir) if self.bin_dir else None
        data["agent_reports"] = str(self.agent_reports) if self.agent_reports else None
        return data


DEFAULTS = BenchOptions()


def cpus_named(spec: str | None) -> int:
    """How many CPUs a taskset list like '0', '0,1' or '0-3' names."""
    if not spec:
        return 0
    count = 0
    for part in spec.split(","):
        low, _, high = part.partition("-")
        count += int(high) - int(low) + 1 if high else 1
    return count


class OptionError(ValueError):
    """An option that parses but cannot be used here; one line, exit 2."""


def _argument(parse: Callable[[str], T], error: type[Exception]) -> Callable[[str], T]:
    """A parser of loadgen's or the fixtures' as an argparse type: its error, one line."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except error as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument


# loadgen's parsers (loadgen/values.py) for the harness's own options: one rule each.
positive_int = _argument(values.positive_int, ConfigError)
non_negative_int = _argument(values.non_negative_int, ConfigError)
positive_number = _argument(values.positive_number, ConfigError)
positive_duration = _argument(values.positive_duration, ConfigError)
scale = _argument(validate_scale, SeedError)
proxy_name = _argument(check_proxy, ProxyError)


def cpus(text: str) -> str:
    """A taskset CPU list naming only CPUs this process may run on."""
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} (e.g. 0 or 0,1 or 0-3)")
    named: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise argparse.ArgumentTypeError(f"not a CPU range: {part!r} (low-high)")
        named.update(range(int(low), int(high or low) + 1))
    usable = os.sched_getaffinity(0)
    if not named <= usable:
        missing = ",".join(str(cpu) for cpu in sorted(named - usable))
        have = ",".join(str(cpu) for cpu in sorted(usable))
        raise argparse.ArgumentTypeError(f"no CPU {missing} here (usable: {have})")
    return text


def scenario_list(text: str) -> tuple[str, ...]:
    """'db,json' -> ('db', 'json'); the defaults when empty."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _flags(*flags: str, **how: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, how


# The harness's own options: flags and how each is read (the defaults: BenchOptions).
ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "scenarios": _flags(
        "--scenario", "--scenarios", type=scenario_list, metavar="A,B",
        help="comma-separated loadgen scenarios (with --scenario-file, the file's: all of"
        " them unless named)",
    ),
    "repeats": _flags(
        "--repeats", type=positive_int, metavar="N",
        help="measured runs per scenario; median and spread reported",
    ),
    "client_cpus": _flags(
        "--client-cpus", type=cpus, metavar="CPUS", help="pin loadgen: taskset CPU list"
    ),
    "workers": _flags(
        "--workers", type=positive_int, metavar="N", help="default: from the CPUs given"
    ),
    "threads": _flags(
        "--threads", type=positive_int, metavar="N",
        help="threads / greenlets per worker (default: sized to the pool)",
    ),
    "pool_size": _flags(
        "--pool-size", type=positive_int, metavar="N", help="DB connections per process pool"
    ),
    "server_cpus": _flags(
        "--server-cpus", type=cpus, metavar="CPUS", help="pin the server: taskset CPU list"
    ),
    "ready_timeout": _flags(
        "--ready-timeout", type=positive_duration, metavar="D",
        help="how long the server may take to answer /health",
    ),
    "scale": _flags("--scale", type=scale, metavar="N", help=f"seed scale, 1..{MAX_SCALE}"),
    "protocol": _flags(
        "--protocol", choices=tuple(PROTOCOLS), metavar="|".join(PROTOCOLS),
        help="what the load speaks to the server: "
        + "; ".join(f"{name}: {what}" for name, what in PROTOCOLS.items()),
    ),
    "variant": _flags(
        "--variant", metavar="NAME",
        help="serve the app with one production feature changed, to price it "
        f"(docs/feature-prices.md): {', '.join(VARIANTS)}",
    ),
    "output": _flags("--output", type=Path, metavar="DIR", help="where run directories go"),
    "reseed": _flags(
        "--reseed", action="store_true",
        help="with DATABASE_URL: let stackbench TRUNCATE the contract's tables there and load "
        "the seed when they do not hold it (it never changes that database otherwise)",
    ),
    "profile": _flags(
        "--profile", action="store_true",
        help="py-spy on the server in each measured window: profiles/ in the run directory",
    ),
    "agent_reports": _flags(
        "--agent-reports", type=Path, metavar="DIR",
        help="where the other agents' JSON reports arrive; merged with this one's",
    ),
    "agent_wait": _flags(
        "--agent-wait", type=positive_duration, metavar="D", help="how long to wait for them"
    ),
    "proxy": _flags(
        "--proxy", type=proxy_name, metavar="NAME",
        help=f"a proxy in front of the server, production-shaped: {', '.join(PROXIES)}"
        " (docs/bench.md, 'A proxy in front')",
    ),
    "upstream": _flags(
        "--upstream", choices=UPSTREAMS,
        help="how the proxy reaches the server: over loopback TCP or a unix socket"
        f" (default {TCP})",
    ),
}  # fmt: skip

# The option groups, by name: a Config field is loadgen's option, any other the harness's.
LOAD = (
    "scenarios", "scenario_file", "scenario_options", "duration", "warmup", "concurrency",
    "rate", "repeats", "processes", "timeout", "requests", "client_cpus",
)  # fmt: skip
SERVER = ("workers", "threads", "pool_size", "server_cpus", "ready_timeout", "scale", "variant")
PROTOCOL = ("protocol", "streams")  # TLS and HTTP/2: bench and serve
DATA = ("output", "reseed")
HOSTS = ("agent", "start_at", "agent_reports", "agent_wait", "cacert")
PROXY = ("proxy", "upstream")
MISBEHAVING = ("misbehaving", "misbehaving_pace", "misbehaving_path")  # loadgen's


def refuse_serve_options(args: argparse.Namespace, defaults: BenchOptions = DEFAULTS) -> None:
    """Beside ``--target`` the pair is the one ``serve`` runs: its server options are
    serve's, refused rather than ignored."""
    for name in (*SERVER, *PROXY, "profile", "reseed"):
        if hasattr(args, name) and getattr(args, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise OptionError(f"{flag} is serve's option: give it to serve on the serving host")


def add_options(
    parser: argparse.ArgumentParser,
    title: str,
    names: Iterable[str],
    defaults: BenchOptions = DEFAULTS,
) -> None:
    """The options ``names`` in one group of ``parser``; their defaults ``defaults``'."""
    group = parser.add_argument_group(title)
    for name in names:
        if name in OPTIONS:
            add_arguments(group, [name], defaults.load)
            continue
        flags, how = ARGUMENTS[name]
        default = getattr(defaults, name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        if isinstance(default, Path) and default.is_relative_to(results.ROOT):
            shown = f"{default.relative_to(results.ROOT)}/"
        elif how.get("type") is positive_duration:
            shown = values.seconds_text(default)
        note = f" (default {shown})" if default not in (None, False) else ""
        group.add_argument(
            *flags, dest=name, default=default, **{**how, "help": how["help"] + note}
        )


def options_from(
    args: argparse.Namespace,
    defaults: BenchOptions = DEFAULTS,
    scenario_file: str | os.PathLike[str] | None = None,
) -> BenchOptions:
    """The options a command line asks for, checked: a bad one raises OptionError.
    ``scenario_file``: the scenario file to use when --scenario-file is not given (an
    app's declared one); its scenarios are then --scenarios', or all of them."""
    chosen = {name: getattr(args, name) for name in ARGUMENTS if hasattr(args, name)}
    protocol = chosen.get("protocol", defaults.protocol)
    options = replace(defaults, load=load_from(args, defaults.load, protocol), **chosen)
    file = options.load.scenario_file or scenario_file
    if file is not None:
        # argparse leaves the default object itself where --scenarios was not typed
        named = () if options.scenarios is defaults.scenarios else options.scenarios
        options = with_scenario_file(options, file, named)
    else:
        if not options.scenarios:
            options = replace(options, scenarios=defaults.scenarios)
        check_scenarios(options.scenarios, options.load.scenario_options.items())
    check_output(options.output)
    return options


def options_for_pairs(
    args: argparse.Namespace, pairs: list[Pair], defaults: BenchOptions = DEFAULTS
) -> BenchOptions:
    """``options_from`` for a run of ``pairs``: the scenario file their apps declare when
    they do not serve the contract (``matrix.scenario_file_of``), unless --scenario-file
    names one."""
    declared = None if given(args).get("scenario_file") else scenario_file_of(pairs)
    return options_from(args, defaults, scenario_file=declared)


def check_upstream(upstream: str | None, server_ids: Iterable[str], proxied: bool) -> None:
    """``--upstream`` only with a proxy in front; ``unix`` only for servers that bind one."""
    if upstream is not None and not proxied:
        raise OptionError("--upstream says how a proxy reaches the server: none is in front")
    if upstream != UNIX:
        return
    for server_id in server_ids:
        if not get_server(server_id).binds_unix:
            raise OptionError(f"--upstream unix: {server_id} cannot listen on a unix socket")


def check_protocol(protocol: str, server_ids: Iterable[str], proxied: bool) -> None:
    """``protocol`` spoken by what faces the load: each server, or the proxy in front (which
    ends it and speaks HTTP/1.1 to the server, so any server will do)."""
    if not proxied:
        check_servers_speak(server_ids, protocol)
    elif protocol not in CLIENT_PROTOCOLS:
        raise OptionError(
            f"--protocol {protocol} with --proxy: nginx ends {', '.join(CLIENT_PROTOCOLS)} "
            "toward clients (its cleartext HTTP/2 port would answer no HTTP/1.1)"
        )


def with_scenario_file(
    options: BenchOptions, path: str | os.PathLike[str], names: Sequence[str] = ()
) -> BenchOptions:
    """``options`` measuring the scenarios ``names`` of the scenario file at ``path`` (all
    of the file's, in its order, when ``names`` is empty), each built as loadgen will
    build it. A file that cannot be read or holds a mistake, a name it does not have, a
    scenario option its scenarios refuse: OptionError, one line naming the file. The
    file's path is made absolute: loadgen reads it from wherever it runs."""
    file = str(Path(path).absolute())
    try:
        declared = scenario_file.read(file).names
    except ConfigError as exc:
        raise OptionError(str(exc)) from None
    scenarios = tuple(names) or tuple(declared)
    load = options.load.replace(scenario_file=file)
    check_scenarios(scenarios, load.scenario_options.items(), file)
    return replace(options, scenarios=scenarios, load=load)


def load_from(args: argparse.Namespace, base: Config = BENCH_LOAD, protocol: str = H1) -> Config:
    """``base`` with the load options given, checked as loadgen will check it (the URL
    and the scenario are the run's), speaking ``protocol`` (HTTP/2 ones: --h2).
    ``--requests N`` counts N requests instead of measuring for a duration, the bench's
    or one given beside it."""
    changes = given(args)
    if "requests" in changes:
        changes["duration"] = None
    if changes.get("streams", 1) != 1 and protocol not in HTTP2:
        raise OptionError(f"--streams needs --protocol {' or '.join(HTTP2)} (HTTP/2's streams)")
    load = base.replace(**changes, h2=protocol in HTTP2)
    try:
        load.validate(target=False)
    except ConfigError as exc:
        raise OptionError(str(exc)) from None
    if not load.timeout:  # the harness bounds its wait for loadgen by it (loadrun.py)
        raise OptionError("--timeout: the bench needs a per-request timeout above 0")
    return load


def _known(scenario: str, file: str | None) -> str:
    """'slow-db takes sample, seconds': what a message names."""
    names = option_names(scenario, file)
    if names is None:
        return f"{scenario} takes any (its file declares no OPTIONS)"
    plain = sorted(name for name in names if "." not in name)
    prefixed = ", ENDPOINT.KEY" if any("." in name for name in names) else ""
    return f"{scenario} takes " + (", ".join(plain) or "none") + prefixed


def check_scenarios(
    scenarios: Sequence[str], options: Iterable[tuple[str, str]], file: str | None = None
) -> None:
    """Each scenario built as loadgen will build it (of the scenario file ``file`` if
    given), with the options it reads; an option that no scenario of the run reads is
    refused, naming each scenario's options (a misspelt key would otherwise run with the
    default and be recorded as if applied)."""
    given = dict(options)
    for scenario in scenarios:
        try:
            option_names(scenario, file)  # an unknown scenario or an unreadable file
        except ConfigError as exc:
            raise OptionError(f"--scenarios: {exc}") from None
    for key, value in given.items():
        if not any(options_for(scenario, {key: value}, file) for scenario in scenarios):
            known = "; ".join(_known(scenario, file) for scenario in scenarios)
            raise OptionError(
                f"--scenario-option {key}={value}: scenario option {key!r} is read by no "
                f"scenario of this run ({known})"
            )
    for scenario in scenarios:
        try:
            load_scenario(scenario, options_for(scenario, given, file), file)
        except ConfigError as exc:
            raise OptionError(
                f"--scenario-option: {scenario}: {exc} ({_known(scenario, file)})"
            ) from None


def check_output(path: Path) -> None:
    """The results directory must be creatable and writable: it is made now, and a probe
    file written and removed, so a bad path fails before anything starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OptionError(
            f"--output: cannot write results in {path}: {exc.strerror or exc}"
        ) from None
