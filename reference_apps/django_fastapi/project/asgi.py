"""ASGI entry: Django at /, FastAPI at /fastapi, composed in one process.

uvicorn project.asgi:application --lifespan off    (see README.md for servers)
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_application = get_asgi_application()  # runs django.setup()

from api.main import PREFIX  # noqa: E402  (needs Django set up)
from api.main import app as fastapi_application  # noqa: E402


def declared_length(scope) -> int:  # type: ignore[no-untyped-def]
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # the server refuses a bad one
    return 0


async def too_large(send) -> None:  # type: ignore[no-untyped-def]
    body = b'{"detail": "Request body too large."}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    """Route /fastapi/... to FastAPI (mounted: root_path gains the prefix), the rest to Django.

    Lifespan goes to FastAPI (Django's handler refuses it); it closes FastAPI's client.
    A body declared over the upload limit is refused before it is read: Django's ASGI
    handler would otherwise receive (and spool to disk) all of it before its view said 413.
    """
    if scope["type"] == "lifespan":
        await fastapi_application(scope, receive, send)
        return
    if declared_length(scope) > settings.MAX_REQUEST_BODY:
        await too_large(send)
        return
    path = scope.get("path", "")
    root_path = scope.get("root_path", "")
    route_path = path[len(root_path) :] if path.startswith(root_path) else path
    if route_path == PREFIX or route_path.startswith(PREFIX + "/"):
        # ASGI: path keeps the full path, root_path says where the app is mounted.
        scope = {**scope, "root_path": root_path + PREFIX}
        await fastapi_application(scope, receive, send)
        return
    await django_application(scope, receive, send)
