"""``stackbench serve``: one pair served for load from elsewhere (docs/distributed.md).

The database (seeded and verified as for ``bench``), the slow upstream and the app under
its server, started with the same registries and settings as a bench job, so a served pair
is exactly a benched pair; beside them, the read-only stats endpoint. Everything runs until
Ctrl-C or SIGTERM, or until the server exits, and is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared_fixtures.db import database
from shared_fixtures.net import LOOPBACK, free_port
from shared_fixtures.upstream import start_upstream
from stackbench import proxy, results
from stackbench.app_database import AppDatabases
from stackbench.certificates import LOOPBACK_NAMES, certificates
from stackbench.matrix import get_pair
from stackbench.options import OptionError
from stackbench.server_process import ANY_ADDRESS, READY_TIMEOUT, Served, serve
from stackbench.servers import H1, TLS, Knobs
from stackbench.stats_endpoint import stats_endpoint
from stackbench.variants import get_variant
from stackbench.watch import ServerWatch

BIN_DIR = Path(sys.executable).parent


@dataclass(frozen=True)
class ServeOptions:
    bind: str = LOOPBACK
    port: int | None = None
    stats_port: int | None = None
    knobs: Knobs = field(default_factory=Knobs)
    server_cpus: str | None = None
    server_cpu_count: int = 1
    scale: int = 1
    ready_timeout: float = READY_TIMEOUT
    ready_file: Path | None = None  # the /info document, written once everything answers
    variant: str | None = None  # a bench variant served instead (stackbench/variants)
    protocol: str = H1  # what clients speak: to the server, or to the proxy in front
    reseed: bool = False  # with DATABASE_URL: may load the contract's seed there
    front: proxy.Spec | None = None  # serve --proxy: it faces clients, the server behind it


@dataclass(frozen=True)
class ServingHost:
    """What serve runs: its /info document, the server process and the proxy in front."""

    info: dict[str, Any]
    served: Served
    proxied: proxy.Proxied | None = None

    def proxy_running(self) -> bool:
        return self.proxied is None or self.proxied.process.running()


def bind_address(text: str) -> str:
    """An IPv4 address to listen on (0.0.0.0: every interface)."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise OptionError(f"--bind: not an IPv4 address: {text!r}") from None


def is_loopback(bind: str) -> bool:
    return bind not in ANY_ADDRESS and ipaddress.IPv4Address(bind).is_loopback


def _advertised(bind: str) -> str:
    """The host other machines use: the bound address, or this host's name for 0.0.0.0."""
    return socket.gethostname() if bind in ANY_ADDRESS else bind


@contextlib.contextmanager
def serving_host(app_id: str, server_id: str, options: ServeOptions) -> Iterator[ServingHost]:
    """Everything up and answering; yields the /info document and the server; stops it
    all on exit, whatever happened. ``app_id``: a reference app's id, or a directory."""
    app, server = get_pair(app_id, server_id)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stackbench-serve-")))
        db = stack.enter_context(database(work_dir=work))
        upstream, upstream_url = start_upstream(work / "logs")
        stack.enter_context(upstream)
        tls = None
        if options.protocol in TLS:  # the names the load host may reach this one by
            names = (*LOOPBACK_NAMES, _advertised(options.bind), options.bind)
            tls = stack.enter_context(certificates(work, names))
        databases = AppDatabases(db, options.scale, reseed=options.reseed)
        database_url = databases.url_for(app, BIN_DIR, upstream_url)
        checksum, reseeded = databases.seed or ("", False)
        front, layout = options.front, None
        if front is not None:  # the proxy faces clients; the server listens behind it
            layout = proxy.Layout(work / "proxy", stack.enter_context(proxy.runtime_dir()))
        pinning = ["taskset", "-c", options.server_cpus] if options.server_cpus else None
        served: Served = stack.enter_context(
            serve(
                app,
                server,
                database_url=database_url,
                upstream_url=upstream_url,
                bin_dir=BIN_DIR,
                log_dir=work / "logs",
                knobs=options.knobs,
                cpus=options.server_cpu_count,
                ready_timeout=options.ready_timeout,
                wrap=pinning,
                host=options.bind if front is None else LOOPBACK,
                port=options.port if front is None else None,
                variant=get_variant(options.variant, [app.id]) if options.variant else None,
                # Behind a proxy the server speaks HTTP/1.1: the proxy ends the protocol.
                protocol=options.protocol if front is None else H1,
                certificates=tls if front is None else None,
                unix_socket=layout.socket
                if layout and front and front.upstream == proxy.UNIX
                else None,
            )
        )
        proxied: proxy.Proxied | None = None
        if front is not None and layout is not None:
            proxied = stack.enter_context(
                proxy.front(
                    served,
                    front,
                    layout,
                    wrap=pinning,
                    ready_timeout=options.ready_timeout,
                    host=options.bind,
                    port=options.port,
                    certificates=tls,
                )
            )
        facing = proxied.base_url if proxied else served.base_url
        # Chosen once the server listens, so a free port cannot be the server's own.
        stats_port = options.stats_port or free_port(options.bind)
        host = _advertised(options.bind)
        port = facing.rsplit(":", 1)[1]
        database_pid = db.process.pid if db.embedded and db.process else None
        info: dict[str, Any] = {
            "kind": "stackbench.serve",
            "app": app.id,
            "app_source": results.app_source(app),
            "contract": app.contract,
            "health": app.health,
            "server": server.id,
            "interface": server.interface_for(app),
            "app_url": f"{'https' if tls else 'http'}://{host}:{port}",
            "protocol": options.protocol,
            # The load host trusts this CA (a copy of the file: bench --cacert).
            "ca_cert": str(tls.ca) if tls else None,
            "stats_url": f"http://{host}:{stats_port}",
            "server_pid": served.process.pid,
            "server_command": served.argv,
            "variant": options.variant,
            "server_env": {k: v for k, v in server.env.items() if app.driver_switch},
            "server_settings": server.resolve(options.knobs, options.server_cpu_count),
            "interpreter": results.interpreter(BIN_DIR / "python", served.env),
            "database": db.server_info(),
            "database_cpu_source": "proc" if database_pid is not None else None,
            "seed": {"scale": options.scale, "checksum": checksum, "reseeded": reseeded},
            "machine": results.machine(),
            "host": socket.gethostname(),
            "pinning": {"server_cpus": options.server_cpus},
            "started_at": results.now(),
        }
        if proxied is not None:
            info["proxy"] = {
                "name": proxied.spec.name,
                "version": proxied.version,
                "client_protocol": proxied.spec.client_protocol,
                "upstream": proxied.spec.upstream,
                "upstream_address": proxied.upstream_address,
                "workers": proxied.spec.workers,
                "command": proxied.argv,
                "config": str(proxied.layout.config),
                "config_text": proxied.layout.config.read_text(),
            }
        watch = stack.enter_context(
            ServerWatch(
                served.process.pid,
                database_url,
                database_pid=database_pid,
                server_state=lambda: (served.process.running(), served.process.popen.poll()),
                proxy_pgid=proxied.process.pid if proxied else None,
                proxy_state=(
                    (lambda: (proxied.process.running(), proxied.process.popen.poll()))
                    if proxied
                    else None
                ),
            )
        )
        stack.enter_context(stats_endpoint((options.bind, stats_port), watch, info, database_url))
        if options.ready_file is not None:
            results.write_atomic(options.ready_file, json.dumps(info, indent=1).encode())
            stack.callback(options.ready_file.unlink, missing_ok=True)  # never a stale one
        yield ServingHost(info, served, proxied)


def serve_until_stopped(
    app_id: str,
    server_id: str,
    options: ServeOptions,
    announce: Callable[[dict[str, Any]], None],
) -> tuple[int, str]:
    """Serve until the server exits: returns its exit code and last log lines, everything
    else stopped. A KeyboardInterrupt (Ctrl-C; the caller makes SIGTERM raise one too)
    stops everything on its way out."""
    with serving_host(app_id, server_id, options) as host:
        announce(host.info)
        process = host.served.process
        while process.running() and host.proxy_running():
            time.sleep(0.5)
        if not process.running():
            return process.popen.returncode, process.log_tail(5)
        assert host.proxied is not None
        return host.proxied.process.popen.returncode, host.proxied.log_tail(5)
