"""ASGI entry point: ``project.asgi:application`` (uvicorn, hypercorn, daphne, granian)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

django_application = get_asgi_application()


def declared_length(scope) -> int:  # type: ignore[no-untyped-def]
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # the server refuses a bad one
    return 0


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    """Django, with a body declared over the upload limit refused before it is read.

    Django's ASGI handler reads (and spools to disk) a whole request body before the view
    runs, and only then refuses it past DATA_UPLOAD_MAX_MEMORY_SIZE: a 50 MB upload would be
    received in full to be answered 413. A declared Content-Length is refused here at once.
    """
    if scope["type"] == "http" and declared_length(scope) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        body = b'{"detail": "Request body too large."}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await django_application(scope, receive, send)
