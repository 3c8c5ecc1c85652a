"""Scenarios: what requests to send, and :func:`load_scenario`.

Two kinds, both loaded by :func:`load_scenario`:

* **Endpoint scenarios** (a list of :class:`Endpoint`): every iteration is ONE request
  picked by weight.  They run on the fast callback-driven path, exactly like a plain
  URL, and check bodies on a sample of responses (``sample_every``).  Every built-in
  endpoint scenario and ``mix`` are of this kind.
  A scenario file (TOML, ``--scenario-file``: :mod:`loadgen.scenario_file`) declares
  endpoint scenarios as data.
* **Flow scenarios** (weighted ``async def flow(user)`` functions): every iteration
  runs one flow for one virtual :class:`~loadgen.user.User`, which has its own
  keep-alive connection, a cookie jar (reset at the start of each iteration, as k6
  does), value extraction helpers and named checks.  ``django-admin-login`` is one.

A Python scenario (``--scenario path.py``) is a file that defines any of:

* ``FLOWS = [(weight, async_fn), ...]`` or functions decorated with ``@flow(weight=..)``;
* ``ENDPOINTS = [Endpoint(...), ...]`` or ``def endpoints(options) -> list[Endpoint]``;
* ``OPTIONS = {"name": "default", ...}`` defaults for ``--scenario-option``.

The types live in :mod:`loadgen.scenario_types` and :mod:`loadgen.user` (re-exported
here), the built-ins in :mod:`loadgen.scenarios`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType
from urllib.parse import parse_qsl

from . import scenario_file
from .errors import ConfigError
from .scenario_types import Endpoint, FlowFn, Scenario, flow
from .scenarios import BUILTINS, MIXABLE
from .user import Response, User
from .values import parse_option  # --scenario-option KEY=VALUE

__all__ = [
    "Endpoint",
    "Response",
    "Scenario",
    "User",
    "flow",
    "load_scenario",
    "option_names",
    "options_for",
    "parse_option",
    "split_spec",
]


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'slow-db?seconds=1&x=2' -> ('slow-db', {'seconds': '1', 'x': '2'})."""
    if "?" in spec and not os.path.exists(spec):
        name, qs = spec.split("?", 1)
        return name, dict(parse_qsl(qs, keep_blank_values=True))
    return spec, {}


def option_names(spec: str, file: str | None = None) -> frozenset[str] | None:
    """The ``--scenario-option`` keys a scenario reads: a built-in's defaults (``mix``: its
    own, every endpoint's, and ``ENDPOINT.KEY``), a Python file's ``OPTIONS``, a scenario
    file's (``file``: :data:`loadgen.scenario_file.OPTIONS`). None when it cannot be known: a
    Python file that declares no ``OPTIONS`` may read any key. Raises ConfigError for an
    unknown scenario, as :func:`load_scenario` does."""
    name, _ = split_spec(spec)
    if file is not None:
        scenario_file.read(file).scenario(name, {})  # raises for a name the file lacks
        return frozenset(scenario_file.OPTIONS)
    if name == "mix":
        endpoints = {n: set(defaults) for n, (_, defaults) in MIXABLE.items()}
        prefixed = {f"{n}.{key}" for n, keys in endpoints.items() for key in keys}
        return frozenset(BUILTINS["mix"][1]).union(*endpoints.values(), prefixed)
    if name in BUILTINS:
        return frozenset(BUILTINS[name][1])
    if not os.path.isfile(name):
        load_scenario(spec)  # raises: an unknown name, or a file that cannot be read
    declared = getattr(_module(name), "OPTIONS", None)
    return None if declared is None else frozenset(str(key) for key in dict(declared))


def options_for(spec: str, options: Mapping[str, str], file: str | None = None) -> dict[str, str]:
    """The ``options`` a scenario reads (all of them for a Python file without ``OPTIONS``):
    one set of options given to several scenarios (``seconds`` for slow-db, not for db)."""
    names = option_names(spec, file)
    return {key: value for key, value in options.items() if names is None or key in names}


def load_scenario(
    spec: str, options: Mapping[str, str] | None = None, file: str | None = None
) -> Scenario:
    """A built-in scenario by name, or a Python scenario by path; with ``file`` (a
    scenario file, :mod:`loadgen.scenario_file`), the scenario of that name in it."""
    name, opts = split_spec(spec)
    opts.update(options or {})
    if file is not None:
        return scenario_file.read(file).scenario(name, opts)
    if name in BUILTINS:
        factory, defaults = BUILTINS[name]
        merged = {**defaults, **opts}
        sc = factory(merged)
        if not sc.options:
            sc.options = merged
        return sc
    if os.path.isfile(name):
        return _load_file(name, opts)
    if name.endswith(".py") or os.sep in name:
        raise ConfigError(f"cannot read scenario file {name!r}")
    known = ", ".join(sorted(BUILTINS))
    raise ConfigError(f"unknown scenario {name!r} (built-ins: {known}; or a .py file)")


def _module(path: str) -> ModuleType:
    modname = "loadgen_scenario_" + re.sub(r"\W", "_", os.path.abspath(path))
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot read scenario file {path!r}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"cannot load scenario {path!r}: {type(e).__name__}: {e}") from None
    return mod


def _load_file(path: str, opts: dict[str, str]) -> Scenario:
    mod = _module(path)
    defaults = {str(k): str(v) for k, v in dict(getattr(mod, "OPTIONS", {}) or {}).items()}
    merged = {**defaults, **opts}
    flows: list[tuple[float, FlowFn]] = []
    if hasattr(mod, "FLOWS"):
        for item in mod.FLOWS:
            if callable(item):
                flows.append((getattr(item, "__loadgen_weight__", 1.0), item))
            else:
                w, fn = item
                flows.append((float(w), fn))
    else:
        for v in vars(mod).values():
            if callable(v) and hasattr(v, "__loadgen_weight__"):
                flows.append((v.__loadgen_weight__, v))
    endpoints: list[Endpoint] = []
    eps = getattr(mod, "ENDPOINTS", None)
    if eps is None and callable(getattr(mod, "endpoints", None)):
        eps = mod.endpoints(merged)
    if eps:
        endpoints = list(eps)
    if flows and endpoints:
        raise ConfigError(f"scenario {path!r} defines both flows and endpoints")
    if not flows and not endpoints:
        raise ConfigError(f"scenario {path!r} defines no FLOWS, @flow functions or ENDPOINTS")
    for w, _ in flows:
        if not w > 0:
            raise ConfigError(f"scenario {path!r}: flow weights must be > 0")
    doc = (mod.__doc__ or "").strip().splitlines()
    return Scenario(
        name=os.path.basename(path),
        endpoints=endpoints,
        flows=flows,
        options=merged,
        description=doc[0] if doc else "",
    )
