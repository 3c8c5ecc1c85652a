"""ASGI entry point: ``project.asgi:application`` (uvicorn, hypercorn, daphne, granian).

Django's handler, behind what HTTP servers let through and Django would answer with a 500
(the contract's hostile-client rules, shared_fixtures/CONTRACT.md in stackbench):

- a ``Content-Length`` with thousands of leading zeros (uvicorn and granian pass them;
  ``int()`` refuses over 4,300 digits): read by its value, and handed on without the zeros;
- a body declared over the upload limit: 413 before it is read (Django's handler would
  receive, and spool to disk, all of it before its view said 413);
- a body that never completes (the client left, or granian found a malformed chunk):
  Django answers nothing, so this answers 400, logged in one line;
- a WebSocket handshake: no WebSocket is served here, so it is refused before accept (the
  server answers 403); Django's handler would raise.
"""

import contextlib
import logging
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

django_application = get_asgi_application()
logger = logging.getLogger(__name__)

# A declared length of more significant digits than this is past any limit: never int()'d.
MAX_LENGTH_DIGITS = 18


def declared_length(headers) -> int | None:  # type: ignore[no-untyped-def]
    """Content-Length's value, None when there is none; ValueError when it is not digits."""
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():  # bytes: ASCII digits only
                raise ValueError("Content-Length is not a number")
            digits = value.lstrip(b"0") or b"0"
            return int(digits) if len(digits) <= MAX_LENGTH_DIGITS else 10**MAX_LENGTH_DIGITS
    return None


def with_length(scope, length: int):  # type: ignore[no-untyped-def]
    """The scope with Content-Length as plain digits (Django int()s the header again)."""
    value = b"%d" % length
    headers = [(n, value if n == b"content-length" else v) for n, v in scope["headers"]]
    return {**scope, "headers": headers}


async def answer(send, status: int, detail: str) -> None:  # type: ignore[no-untyped-def]
    body = b'{"detail": "%s"}' % detail.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close"})  # before accept: the server answers 403
        return
    if scope["type"] != "http":  # lifespan: Django's own answer (it has no lifespan)
        await django_application(scope, receive, send)
        return
    try:
        length = declared_length(scope["headers"])
    except ValueError:
        await answer(send, 400, "Invalid Content-Length.")
        return
    if length is not None:
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            await answer(send, 413, "Request body too large.")
            return
        scope = with_length(scope, length)

    answered = False

    async def send_and_note(message):  # type: ignore[no-untyped-def]
        nonlocal answered
        answered = answered or message["type"] == "http.response.start"
        await send(message)

    await django_application(scope, receive, send_and_note)
    if not answered:  # Django's handler returns silently when the body never completes
        logger.warning(
            "%s %s: the request body never completed (client gone or malformed); answered 400",
            scope["method"],
            scope["path"][:200],
        )
        with contextlib.suppress(OSError, RuntimeError):  # a client gone: nobody to answer
            await answer(send, 400, "Incomplete or malformed request body.")
