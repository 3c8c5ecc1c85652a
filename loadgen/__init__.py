"""loadgen: a pure-asyncio HTTP/1.1 and HTTP/2 load generator (closed and open models).

Library API::

    import loadgen
    cfg = loadgen.Config(url="http://127.0.0.1:8000/json", duration=10, concurrency=50)
    result = await loadgen.run(cfg)          # or loadgen.run_sync(cfg)
    result.rps, result.percentile(99), result.to_dict(), result.text()

Only the standard library is required; uvloop and httptools are used when importable
(``LOADGEN_PURE=1`` or ``Config(use_uvloop=False, use_httptools=False)`` disables them).
HTTP/2 (``h2=True``) needs python-hyper's h2 and hpack: its lean engine by default,
h2 itself, the reference, under ``LOADGEN_PURE=1`` or ``use_h2wire=False``.
"""

from __future__ import annotations

from .api import probe, run, run_sync
from .config import Config, parse_duration
from .errors import ConfigError, LoadgenError, TargetUnreachable
from .histogram import Histogram
from .outcome import REPORT_VERSION
from .report import Result
from .scenario import load_scenario
from .scenario_types import Endpoint, Scenario, flow
from .user import Response, User
from .version import __version__

__all__ = [
    "REPORT_VERSION",
    "Config",
    "ConfigError",
    "Endpoint",
    "Histogram",
    "LoadgenError",
    "Response",
    "Result",
    "Scenario",
    "TargetUnreachable",
    "User",
    "__version__",
    "flow",
    "load_scenario",
    "parse_duration",
    "probe",
    "run",
    "run_sync",
]
