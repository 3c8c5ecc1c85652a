"""The JSON API's edge, as Django middleware: the methods each view serves, and what a
request is told when no pooled database connection came free in time."""

from asgiref.sync import markcoroutinefunction
from django.db import OperationalError
from django.http import JsonResponse
from psycopg_pool import PoolTimeout


def allow(*methods: str):
    """Declare the methods a view serves (HEAD with GET, as HTTP wants) for JsonApiMiddleware."""
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorator(view):
        view.allowed_methods = allowed
        return view

    return decorator


def error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


class JsonApiMiddleware:
    """A JSON 405 for a method the view does not serve, and a JSON 503 for a pool timeout.

    Listed before CsrfViewMiddleware, so `DELETE /json` is told 405 rather than CSRF's 403
    (Django's require_http_methods runs inside the view, after the CSRF check, and answers
    an empty text/html 405).
    """

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)  # async only: Django awaits it

    async def __call__(self, request):
        return await self.get_response(request)

    async def process_view(self, request, view, args, kwargs):  # async: no thread hop
        allowed = getattr(view, "allowed_methods", None)
        if allowed is None or request.method in allowed:
            return None
        response = error(405, f"Method {request.method} not allowed.")
        response["Allow"] = ", ".join(allowed)
        return response

    def process_exception(self, request, exception):
        # psycopg_pool waited DB_POOL_TIMEOUT seconds (settings) for a connection; Django
        # raises its OperationalError from the pool's PoolTimeout.
        if isinstance(exception, OperationalError) and isinstance(exception.__cause__, PoolTimeout):
            response = error(503, "Database busy, retry later.")
            response["Retry-After"] = "1"
            return response
        return None
