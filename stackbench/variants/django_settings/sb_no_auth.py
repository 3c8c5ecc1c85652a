"""Variant no-auth-mw: the app's own settings with AuthenticationMiddleware removed."""

from sb_overlay import ADMIN_MIDDLEWARE_CHECKS, without

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = without(MIDDLEWARE, "django.contrib.auth.middleware.AuthenticationMiddleware")
SILENCED_SYSTEM_CHECKS = ADMIN_MIDDLEWARE_CHECKS
