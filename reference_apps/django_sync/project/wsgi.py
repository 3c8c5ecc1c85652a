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


def _too_large(start_response):  # type: ignore[no-untyped-def]
    body = b'{"detail": "Request body too large."}'
    start_response(
        "413 Content Too Large",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def application(environ, start_response):  # type: ignore[no-untyped-def]
    """Django, given a chunked request body too.

    Django reads a request body as CONTENT_LENGTH bytes of wsgi.input, so a chunked body
    (no Content-Length; the server dechunks it) would read as empty. Up to the upload limit
    it is read here and handed on with its length; past the limit it is a 413.
    """
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not environ.get("CONTENT_LENGTH"):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return _too_large(start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    return django_application(environ, start_response)
