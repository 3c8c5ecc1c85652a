"""What a scenario is: :class:`Endpoint`, :class:`Scenario` and the ``@flow`` decorator
(loaded by :mod:`loadgen.scenario`, built in :mod:`loadgen.scenarios`)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .user import User

FlowFn = Callable[[User], Awaitable[Any]]


@dataclass
class Endpoint:
    """One request of an endpoint scenario.

    ``path`` is relative to the base URL's path; a callable ``path(rng)`` generates
    ``variants`` distinct paths up front (e.g. random ids).  ``expect`` is the set of
    statuses that count as success (None: any 2xx/3xx).  ``validate(status, body)``
    runs on one response in ``sample_every`` on average, drawn at random (never a fixed
    stride), and is counted as the named check ``check``.
    """

    name: str
    path: str | Callable[[random.Random], str]
    method: str = "GET"
    weight: float = 1.0
    expect: frozenset[int] | None = frozenset({200})
    validate: Callable[[int, bytes], bool] | None = None
    check: str = "body shape"
    sample_every: int = 16
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    variants: int = 1


@dataclass
class Scenario:
    name: str
    endpoints: list[Endpoint] = field(default_factory=list)
    flows: list[tuple[float, FlowFn]] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""
    file_sha256: str | None = None  # a scenario file's (loadgen.scenario_file): its digest

    @property
    def kind(self) -> str:
        return "flows" if self.flows else "endpoints"


def flow(weight: float = 1.0) -> Callable[[FlowFn], FlowFn]:
    """Decorator marking an ``async def f(user)`` as a weighted flow of a scenario file."""

    def deco(fn: FlowFn) -> FlowFn:
        fn.__loadgen_weight__ = float(weight)  # type: ignore[attr-defined]
        return fn

    return deco
