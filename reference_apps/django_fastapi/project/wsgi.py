"""WSGI entry: Django at /, FastAPI at /fastapi through a2wsgi ("keep WSGI, add FastAPI").

    gunicorn -k gthread --threads 10 project.wsgi:application    (see README.md)

a2wsgi runs the FastAPI app on its own asyncio event loop in one background thread per
worker process; each WSGI request thread (or greenlet) hands its request to that loop and
waits for the response. FastAPI's sync endpoints then run in that loop's threadpool.
"""

import io
import os
from urllib.parse import quote

from a2wsgi import ASGIMiddleware
from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_application = get_wsgi_application()  # runs django.setup()

from api.main import PREFIX  # noqa: E402  (needs Django set up)
from api.main import app as fastapi_app  # noqa: E402
from project.concurrency import green_threads  # noqa: E402

if green_threads():
    # Only in a gevent/eventlet worker of this WSGI entry (never under ASGI, threads or
    # manage.py): a2wsgi's event loop then runs in a greenlet, and asyncio records the
    # running loop per OS thread, so every request greenlet (Django's views, FastAPI's
    # `def` endpoints) sees that loop as "running" and Django refuses each ORM call with
    # SynchronousOnlyOperation. That check guards against blocking a loop from inside it;
    # here the ORM runs in other greenlets and the patched drivers yield to the hub. Django
    # reads this one environment variable on every ORM call and has no narrower switch.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

fastapi_application = ASGIMiddleware(fastapi_app)


def _asgi_safe(environ):  # type: ignore[no-untyped-def]
    """a2wsgi decodes PATH_INFO as UTF-8 and QUERY_STRING as ASCII, strictly, and a
    request that fails to decode becomes a 500: replace what cannot decode instead."""
    raw_path = environ.get("PATH_INFO", "").encode("latin-1")
    try:
        raw_path.decode("utf-8")
    except UnicodeDecodeError:
        fixed = raw_path.decode("utf-8", "replace").encode("utf-8")
        environ["PATH_INFO"] = fixed.decode("latin-1")
    query = environ.get("QUERY_STRING", "")
    if not query.isascii():
        environ["QUERY_STRING"] = quote(query.encode("latin-1"), safe="/?&=+%;:@,$!*'()~")
    return environ


# A declared length of more significant digits than this is past any limit: never int()'d.
MAX_LENGTH_DIGITS = 18


def declared_length(environ) -> int | None:  # type: ignore[no-untyped-def]
    """CONTENT_LENGTH's value, None when there is none; ValueError when it is not digits.

    A server may pass thousands of leading zeros, and int() refuses over 4,300 digits.
    """
    raw = environ.get("CONTENT_LENGTH", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit alone takes "²" and "٣"
        raise ValueError("Content-Length is not a number")
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_LENGTH_DIGITS else 10**MAX_LENGTH_DIGITS


def _answer(start_response, status: str, detail: str):  # type: ignore[no-untyped-def]
    body = b'{"detail": "%s"}' % detail.encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _too_large(start_response):  # type: ignore[no-untyped-def]
    return _answer(start_response, "413 Content Too Large", "Request body too large.")


def application(environ, start_response):  # type: ignore[no-untyped-def]
    """Route /fastapi/... to FastAPI (prefix moved to SCRIPT_NAME), the rest to Django.

    Both halves read a body as CONTENT_LENGTH bytes of wsgi.input, so a body without a
    Content-Length would read as empty: a chunked one (HTTP/1.1; the server dechunks it), or
    an HTTP/2 stream's (wsgi.input_terminated: the server ends the input with the body). Up
    to the limit it is read here and handed on with its length. Past the limit, declared or
    not, it is a 413 here.
    """
    limit = settings.MAX_REQUEST_BODY
    try:
        length = declared_length(environ)
    except ValueError:
        return _answer(start_response, "400 Bad Request", "Invalid Content-Length.")
    if length is not None:
        if length > limit:
            return _too_large(start_response)
        environ["CONTENT_LENGTH"] = str(length)  # without leading zeros: both halves int() it
    elif (
        environ.get("wsgi.input_terminated")
        or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return _too_large(start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    path = environ.get("PATH_INFO", "")
    if path == PREFIX or path.startswith(PREFIX + "/"):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + PREFIX
        environ["PATH_INFO"] = path[len(PREFIX) :]
        return fastapi_application(_asgi_safe(environ), start_response)
    return django_application(environ, start_response)
