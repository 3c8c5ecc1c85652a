"""The HTTP/2 engines alone, no sockets: recorded server bytes replayed into loadgen's lean
engine (``loadgen.h2wire``) and into the reference (python-hyper's ``h2``,
``loadgen.h2ref``), requests per CPU-second of each and their ratio.

    python -m benchmarks.loadgen.h2replay [--requests N] [--streams S] [--repeat R]
                                          [--checkout DIR]

h2 acting as the server answers ``--requests`` GET requests, ``--streams`` at a time (one
read of the server's bytes per batch), the way nginx answers section 3's: ``200``,
``server``, ``date``, ``content-type``, ``content-length`` and ``Hello, World!``. Each
engine then sends the same requests and reads the recorded bytes back, ``--repeat`` times;
the best CPU time of each counts. The event loop, the sockets and the driver
(``H2Conn``) are left out: this is the engines' share of a ``--h2`` run, not a run's
figure (section 3 measures those against h2load).

As every benchmark here, it measures a checkout's loadgen in a child process (this file
with ``--child``, run in ``--checkout``, the repository by default): nothing under
``benchmarks/`` imports loadgen itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESPONSE = [
    (b":status", b"200"),
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Mon, 07 Dec 2026 18:00:00 GMT"),
    (b"content-type", b"text/plain"),
    (b"content-length", b"13"),
]


def record(lg: Any, requests: int, streams: int) -> list[bytes]:
    """The server's bytes: its preface and SETTINGS, then one read per batch of answers."""
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import StreamEnded

    client = lg["h2wire"].Connection(lg["WINDOW"])
    client.start()
    server = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    reads = [server.data_to_send()]
    client.receive(reads[0])
    sid = 1
    for _ in range(requests // streams):
        for _ in range(streams):
            client.send_headers(sid, lg["GET"], True)
            sid += 2
        for ev in server.receive_data(client.data_to_send()):
            if isinstance(ev, StreamEnded):
                server.send_headers(ev.stream_id, RESPONSE)
                server.send_data(ev.stream_id, b"Hello, World!", end_stream=True)
        reads.append(server.data_to_send())
        client.receive(reads[-1])
        server.receive_data(client.data_to_send())  # our SETTINGS ACK, window updates
    return reads


def replay(lg: Any, engine: Any, reads: list[bytes], streams: int) -> tuple[int, float]:
    """(responses, CPU seconds) of one engine reading ``reads``."""
    ended, data_kind, get = lg["h2wire"].STREAM_ENDED, lg["h2wire"].DATA_RECEIVED, lg["GET"]
    t0 = time.process_time()
    c = engine(lg["WINDOW"])
    c.start()
    c.data_to_send()
    c.receive(reads[0])
    sid, done, nbody = 1, 0, 0
    for data in reads[1:]:
        for _ in range(streams):
            c.send_headers(sid, get, True)
            sid += 2
        c.data_to_send()
        for kind, _sid, value in c.receive(data):
            if kind == data_kind:
                nbody += len(value)
            elif kind == ended:
                done += 1
    c.data_to_send()
    cpu = time.process_time() - t0
    assert nbody == 13 * done, (nbody, done)
    return done, cpu


def child(args: argparse.Namespace) -> None:
    # the checkout measured, not this directory (its h2.py would shadow the h2 package)
    here = Path(__file__).resolve().parent
    sys.path[:] = [os.getcwd(), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    lg = {name: importlib.import_module(f"loadgen.{name}") for name in ("h2wire", "h2ref")}
    lg["WINDOW"] = importlib.import_module("loadgen.h2protocol").WINDOW
    request = importlib.import_module("loadgen.request")
    lg["GET"] = request.build_h2_request("GET", "/", "127.0.0.1", (), b"", "http").headers
    reads = record(lg, args.requests, args.streams)
    engines = {"h2wire (lean)": lg["h2wire"].Connection, "h2 (reference)": lg["h2ref"].Connection}
    rate = {}
    for name, engine in engines.items():
        runs = [replay(lg, engine, reads, args.streams) for _ in range(args.repeat)]
        done = runs[0][0]
        rate[name] = done / min(cpu for _, cpu in runs)
    n = (args.requests // args.streams) * args.streams
    print(f"{n} requests replayed, {args.streams} streams per read, best of {args.repeat}:")
    for name, r in rate.items():
        print(f"  {name:<16} {r:>10,.0f} requests per CPU-second")
    lean, ref = rate.values()
    print(f"  ratio            {lean / ref:>10.2f}x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--checkout", type=Path, default=REPO, help="the loadgen measured is here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return
    argv = [sys.executable, __file__, "--child", *(argv if argv is not None else sys.argv[1:])]
    subprocess.run(argv, cwd=args.checkout, check=True)


if __name__ == "__main__":
    main()
