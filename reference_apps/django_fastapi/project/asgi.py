"""ASGI entry: Django at /, FastAPI at /fastapi, composed in one process.

uvicorn project.asgi:application --lifespan off    (see README.md for servers)
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_application = get_asgi_application()  # runs django.setup()

from api.main import PREFIX  # noqa: E402  (needs Django set up)
from api.main import app as fastapi_application  # noqa: E402


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    """Route /fastapi/... to FastAPI (mounted: root_path gains the prefix), the rest to Django.

    Lifespan goes to FastAPI (Django's handler refuses it); it closes FastAPI's client.
    """
    if scope["type"] == "lifespan":
        await fastapi_application(scope, receive, send)
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
