"""What the fastapi_sqla variants share: a route of the app rebuilt with one thing changed,
or a refusal to start.

Importable only beside the app's ``main`` (the server's cwd): the harness puts this
directory on the server's PYTHONPATH for a variant's job only. A variant that cannot find
what it changes (a renamed route, another endpoint, a session declared differently) raises
at import, so the server fails to start instead of measuring the baseline twice.
"""

import types
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

# The endpoints a variant prices (docs/feature-prices.md).
PRICED = ("/db", "/fortunes")


class VariantError(RuntimeError):
    """The app no longer has what the variant changes."""


def find_route(app: FastAPI, path: str, endpoint: Callable[..., Any]) -> tuple[int, APIRoute]:
    """The app's one GET route at ``path``, served by ``endpoint`` (the app's function).
    (The app answers HEAD through a route of its own, out of the schema; the load is GETs.)"""
    found = [
        (index, route)
        for index, route in enumerate(app.router.routes)
        if isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ())
    ]
    if len(found) != 1:
        raise VariantError(f"variant: the app has {len(found)} GET routes at {path}, not one")
    index, route = found[0]
    if route.endpoint is not endpoint:
        raise VariantError(
            f"variant: {path} is served by {route.endpoint.__name__}, not {endpoint.__name__}"
        )
    return index, route


def replace_route(
    app: FastAPI,
    path: str,
    replaces: Callable[..., Any],
    endpoint: Callable[..., Any],
    **changes: Any,
) -> APIRoute:
    """Rebuild the route at ``path`` (served by ``replaces``) with ``endpoint`` through the
    app's own router, so the router's defaults apply as they did to the original; it keeps
    its place, methods, name, response class and response model unless ``changes`` (e.g.
    ``response_model=None``) says otherwise."""
    index, old = find_route(app, path, replaces)
    declared = {
        "methods": sorted(old.methods or ()),
        "name": old.name,
        "response_class": old.response_class,
        "response_model": old.response_model,
    }
    app.router.add_api_route(path, endpoint, **{**declared, **changes})
    new = app.router.routes.pop()
    assert isinstance(new, APIRoute)
    app.router.routes[index] = new
    return new


def opens_its_session_inline(endpoint: Callable[..., Any]) -> None:
    """Refuse unless ``endpoint`` opens its session itself from the app's ``SessionLocal``
    (``async with SessionLocal() as session``), as the app's TechEmpower endpoints do."""
    if "SessionLocal" not in endpoint.__code__.co_names:
        raise VariantError(f"variant: {endpoint.__name__} does not open SessionLocal itself")


def with_global(endpoint: Callable[..., Any], name: str, now: Any) -> Any:
    """The app's endpoint function itself (the same code object) reading the module-level
    ``name`` as ``now``: what it opens changes, its code does not."""
    if name not in endpoint.__code__.co_names or name not in endpoint.__globals__:
        raise VariantError(f"variant: {endpoint.__name__} does not use {name}")
    copy = types.FunctionType(
        endpoint.__code__,
        {**endpoint.__globals__, name: now},
        endpoint.__name__,
        endpoint.__defaults__,
        endpoint.__closure__,
    )
    copy.__kwdefaults__ = endpoint.__kwdefaults__
    copy.__qualname__ = endpoint.__qualname__
    copy.__module__ = endpoint.__module__
    copy.__annotations__ = endpoint.__annotations__
    return copy
