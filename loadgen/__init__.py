"""loadgen: a pure-asyncio HTTP/1.1 load generator (closed and open models).

Library API::

    import loadgen
    cfg = loadgen.Config(url="http://127.0.0.1:8000/json", duration=10, concurrency=50)
    result = await loadgen.run(cfg)          # or loadgen.run_sync(cfg)
    result.rps, result.percentile(99), result.to_dict(), result.text()

Only the standard library is required; uvloop and httptools are used when importable
(``LOADGEN_PURE=1`` or ``Config(use_uvloop=False, use_httptools=False)`` disables them).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import probe, run, run_sync
from .config import (
    Config,
    ConfigError,
    LoadgenError,
    TargetUnreachable,
    parse_duration,
)
from .histogram import Histogram
from .result import REPORT_VERSION, Result
from .scenario import Endpoint, Response, Scenario, User, flow, load_scenario

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
