"""WSGI entry point: ``project.wsgi:application``.

With psycopg2 under gevent or eventlet, PSYCOGREEN=gevent|eventlet makes the driver yield to
the event loop while it waits on PostgreSQL (psycogreen). This must happen before the first
connection, so it happens here, before Django loads. psycopg 3 needs no patch under gevent.
"""

import io
import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

green = os.environ.get("PSYCOGREEN", "").strip()
if green:
    if os.environ.get("DJANGO_DB_DRIVER") != "psycopg2":
        raise ImproperlyConfigured("PSYCOGREEN patches psycopg2: set DJANGO_DB_DRIVER=psycopg2.")
    if green == "gevent":
        from psycogreen.gevent import patch_psycopg
    elif green == "eventlet":
        from psycogreen.eventlet import patch_psycopg
    else:
        raise ImproperlyConfigured("PSYCOGREEN must be 'gevent' or 'eventlet' (or unset).")
    patch_psycopg()

django_application = get_wsgi_application()


# A declared length of more significant digits than this is past any limit: never int()'d.
MAX_LENGTH_DIGITS = 18


def declared_length(environ) -> int | None:  # type: ignore[no-untyped-def]
    """CONTENT_LENGTH's value, None when there is none; ValueError when it is not digits.

    granian passes thousands of leading zeros, and Django int()s the header, which refuses
    over 4,300 digits (a 500): the value is read here and handed on without them.
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


def application(environ, start_response):  # type: ignore[no-untyped-def]
    """Django, given a chunked request body too, and a Content-Length it can read.

    Django reads a request body as CONTENT_LENGTH bytes of wsgi.input, so a body without a
    Content-Length would read as empty: a chunked one (HTTP/1.1; the server dechunks it), or
    an HTTP/2 stream's (the server marks wsgi.input as ending where the body does:
    wsgi.input_terminated). Up to the upload limit it is read here and handed on with its
    length. Past the limit, declared or not, it is a 413 here.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = declared_length(environ)
    except ValueError:
        return _answer(start_response, "400 Bad Request", "Invalid Content-Length.")
    if length is not None:
        if length > limit:
            return _answer(start_response, "413 Content Too Large", "Request body too large.")
        environ["CONTENT_LENGTH"] = str(length)
    elif (
        environ.get("wsgi.input_terminated")
        or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return _answer(start_response, "413 Content Too Large", "Request body too large.")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    return django_application(environ, start_response)
