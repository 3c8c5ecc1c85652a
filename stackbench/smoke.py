"""A quick conformance check before load: wrong answers are not benchmarked.

The full suite lives in shared_fixtures/conformance; this checks, in about a second, that
the app answers the contract's basics and the endpoints the scenarios will load.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

Check = Callable[[int, str, str], str | None]


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=15, context=context) as response:
            return (
                response.status,
                response.headers.get("content-type", ""),
                response.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, "", str(exc)


def _json_equals(expected: object) -> Check:
    def check(status: int, content_type: str, body: str) -> str | None:
        if status != 200 or json.loads(body) != expected:
            return f"expected 200 {expected}, got {status} {body[:120]}"
        return None

    return check


def _world(status: int, content_type: str, body: str) -> str | None:
    item = json.loads(body) if status == 200 else None
    if not isinstance(item, dict) or set(item) != {"id", "randomNumber"}:
        return f"expected a world row, got {status} {body[:120]}"
    return None


def _page(status: int, content_type: str, body: str) -> str | None:
    page = json.loads(body) if status == 200 else None
    if not isinstance(page, dict) or set(page) != {"count", "next", "previous", "results"}:
        return f"expected a page, got {status} {body[:120]}"
    return None


def _fortunes(status: int, content_type: str, body: str) -> str | None:
    if status != 200 or "&lt;script&gt;" not in body or "フレームワークのベンチマーク" not in body:
        return f"expected the escaped fortunes page, got {status} {body[:120]}"
    return None


def _ok(status: int, content_type: str, body: str) -> str | None:
    return None if status == 200 else f"expected 200, got {status} {body[:120]}"


CHECKS: dict[str, Check] = {
    "/health": _json_equals({"status": "ok"}),
    "/json": _json_equals({"message": "Hello, World!"}),
    "/db": _world,
    "/fortunes": _fortunes,
    "/api/colleges?page_size=3": _page,
    "/api/troupes?page_size=3": _page,
}
SLOW_CHECKS: dict[str, Check] = {"/slow/db?seconds=0": _ok, "/slow/http?seconds=0": _ok}


def smoke_check(
    base_url: str,
    *,
    slow: bool,
    paths: tuple[str, ...] | None = None,
    cafile: Path | None = None,
) -> list[str]:
    """Failures as 'path: what was wrong'; empty when the app looks right. ``paths``: only
    these of the checks (an app that is not ours serves only part of the contract);
    ``cafile``: the CA an https:// app's certificate is checked against. (HTTP/1.1: what
    an HTTP/2 server speaks is checked by stackbench/protocol_check.py.)"""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    failures = []
    for path, check in {**CHECKS, **(SLOW_CHECKS if slow else {})}.items():
        if paths is not None and path not in paths:
            continue
        status, content_type, body = _get(base_url + path, context)
        try:
            problem = check(status, content_type, body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            problem = f"unparseable body: {body[:120]}"
        if problem:
            failures.append(f"{path}: {problem}")
    return failures
