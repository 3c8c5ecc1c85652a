"""The benchmark's saturation check (``benchmarks.loadgen``): a client that burns its CPU
is saturated, one that sleeps (as a client waiting for its server does) is not, and
only saturated trials count in the ratios to wrk."""

from __future__ import annotations

import sys

import pytest

from benchmarks.loadgen.h2 import parse_h2load
from benchmarks.loadgen.markdown import saturated_ratios
from benchmarks.loadgen.tools import SATURATED, run_measured

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

BURN = "import time\nt = time.perf_counter() + 0.8\nwhile time.perf_counter() < t: pass\n"
SLEEP = "import time\ntime.sleep(0.8)\n"


@pytest.mark.serial  # a share of time, which busy neighbours change (seen: 0.80 beside CI)
def test_a_client_that_burns_its_cpu_is_saturated() -> None:
    out, _, _, busy = run_measured([sys.executable, "-c", BURN + "print('x')"], 30)
    assert out == "x\n"
    assert busy is not None
    assert busy["busy"] >= SATURATED
    assert busy["on_cpu"] <= busy["busy"]


@pytest.mark.serial  # a share of CPU time, which busy neighbours change
def test_a_client_that_waits_is_not_saturated() -> None:
    _, _, _, busy = run_measured([sys.executable, "-c", SLEEP], 30)
    assert busy is not None
    assert busy["busy"] < 0.3  # start-up is at the window's edge


@pytest.mark.serial  # a share of CPU time, which busy neighbours change
def test_half_busy_is_not_saturated() -> None:
    # half the time on the CPU, half asleep: the check must not round it up
    half = (
        "import time\nend = time.perf_counter() + 1.0\n"
        "while time.perf_counter() < end:\n"
        "    t = time.perf_counter() + 0.01\n"
        "    while time.perf_counter() < t: pass\n"
        "    time.sleep(0.01)\n"
    )
    _, _, _, busy = run_measured([sys.executable, "-c", half], 30)
    assert busy is not None
    assert 0.2 < busy["busy"] < SATURATED


def test_a_failing_client_is_one_clear_error() -> None:
    with pytest.raises(RuntimeError, match="failed"):
        run_measured([sys.executable, "-c", "raise SystemExit(3)"], 30)


def test_only_saturated_trials_count() -> None:
    wrk = [{"per_cpu": 100.0}, {"per_cpu": 100.0}, {"per_cpu": 200.0}]
    lg = [
        {"per_cpu": 90.0, "saturated": True},
        {"per_cpu": 50.0, "saturated": False},  # waited for the server: left out
        {"per_cpu": 100.0, "saturated": True},
    ]
    assert saturated_ratios(lg, wrk, "per_cpu") == [0.9, 0.5]
    assert saturated_ratios([{"per_cpu": 1.0}], [{"per_cpu": 1.0}], "per_cpu") == []


H2LOAD_OUT = """\
starting benchmark...
spawning thread #0: 2 total client(s). 2000 total requests
Application protocol: h2c

finished in 5.69s, 351.64 req/s, 11.75KB/s
requests: 2000 total, 2000 started, 1990 done, 1985 succeeded, 5 failed, 0 errored, 0 timeout
status codes: 1985 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 66.85KB (68459) total, 10.10KB (10339) headers (space savings 94.73%), 3.91KB (4000) data
                     min         max         mean         sd        +/- sd
time for request:     1.23ms     71.11ms     22.70ms     14.40ms    56.60%
time for connect:      152us       168us       160us         8us   100.00%
"""


def test_h2load_output_is_read_as_printed() -> None:
    """The HTTP/2 anchor's own figures (section 3): requests done (not started), its rate,
    and the mean time for a request, in seconds."""
    got = parse_h2load(H2LOAD_OUT)
    assert got == {
        "requests": 1990,
        "succeeded": 1985,
        "rps": 351.64,
        "mean": pytest.approx(0.0227),
    }
    with pytest.raises(AssertionError):  # an output it cannot read is not a zero
        parse_h2load("finished in 1.0s, 0 req/s\n")
